"""The single-VIP drills (molecule/shared/single_vip.py) across a router: the
VIP's route on the router follows the VRRP master (conftest.py sets the lab).
Unicast VRRP is proven here, across a router, with all four drills; it was the
`unicast` scenario's job, on one segment, before this one took it over."""

import re

from drills import agent_status, host, route_via
from single_vip import (  # noqa: F401 - collected by pytest
    test_agent_and_nginx_run_on_both_nodes,
    test_exactly_one_node_holds_the_vip_and_it_is_node1,
    test_failover_then_failback_or_not,
)

from labkit.poll import wait_for

VIP = "10.89.255.1"


def test_nodes_reach_each_other_only_through_the_router() -> None:
    for node, other in (("node1", "10.89.92.12"), ("node2", "10.89.91.11")):
        r = host(node).run(f"ip -o route get {other}")
        gw = "10.89.91.254" if node == "node1" else "10.89.92.254"
        assert f"via {gw} " in r.stdout, r.stdout


def test_unicast_adverts_that_crossed_the_router_are_accepted() -> None:
    # Sent with TTL 255, decremented once by the router: keepalived's rule for
    # unicast takes them (multicast would demand 255).
    cfg = host("node1").file("/etc/vrrp-agent/agent.yml").content_string
    assert "unicast_src_ip: 10.89.91.11" in cfg and "- 10.89.92.12" in cfg
    st = agent_status("node2")["instances"]["VI_1"]
    assert st["unicast_peer"] == ["10.89.91.11"]
    assert st["master_ip"] == "10.89.91.11"
    assert st["stats"]["adverts_received"] > 0
    assert st["stats"]["last_rx_ttl"] == 254
    assert "ttl" not in st["rx_dropped"]


def test_the_vip_is_on_lo_and_announced_by_ospf_from_the_master_only() -> None:
    wait_for("the route via node1", lambda: route_via(VIP) == {"10.89.91.11"}, 10, 0.2)
    r = host("router").run(f"vtysh -c 'show ip route {VIP}/32 json'")
    assert r.rc == 0, r.stderr
    assert '"protocol":"ospf"' in r.stdout.replace(" ", ""), r.stdout
    assert host("node1").run(f"ip -o addr show dev lo to {VIP}/32").stdout.strip()
    assert not host("node2").run(f"ip -o addr show to {VIP}/32").stdout.strip()
    # The router's FRR has BFD sessions up with both nodes.
    peers = host("router").run("vtysh -c 'show bfd peers brief'").stdout
    for ip in ("10.89.91.11", "10.89.92.12"):
        assert any(ip in line and "up" in line for line in peers.splitlines()), peers


def test_a_frr_reload_keeps_the_adjacency_and_the_route() -> None:
    # The frr role's handler for a new frr.conf: frr-reload.py applies the
    # difference, so the VIP's route never leaves the router.
    wait_for("the route via node1", lambda: route_via(VIP) == {"10.89.91.11"}, 10, 0.2)
    before = _adjacency_up_ms("10.89.91.11")
    r = host("node1").run("systemctl reload frr")
    assert r.rc == 0, r.stderr
    assert route_via(VIP) == {"10.89.91.11"}
    # The same adjacency, not a new one: its up time kept counting.
    assert _adjacency_up_ms("10.89.91.11") > before
    assert host("node1").run("systemctl show frr -p NRestarts").stdout.strip() == "NRestarts=0"


def _adjacency_up_ms(neighbor: str) -> int:
    """How long the router's OSPF adjacency with `neighbor` has been Full."""
    out = host("router").run(f"vtysh -c 'show ip ospf neighbor {neighbor} json'").stdout
    m = re.search(r'"upTimeInMsec":\s*(\d+)', out)
    assert m and "Full" in out, out
    return int(m.group(1))
