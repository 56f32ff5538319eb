"""VIPs announced by routing (roles/vrrp/filter_plugins/vrrp_routing.py): the
plan the agent and the frr role get, and the preflight rules, without Ansible.
As in test_topology_filter.py, every plan is fed to the agent's own loader."""

from __future__ import annotations

import pytest
import vrrp_routing as routing
import vrrp_topology as topo
import yaml

from tests.roles.test_topology_filter import agent_config, nodes, settings
from vrrp_agent.config import parse

OSPF = {"vip_routing": "ospf", "vip_routing_ospf_area": "0.0.0.0", "unicast": True}
BGP = {
    "vip_routing": "bgp",
    "vip_routing_bgp_asn": 65001,
    "vip_routing_bgp_peers": [{"address": "10.1.1.1", "asn": 65000}],
}
ANYCAST = {**BGP, "vip_routing_mode": "anycast", "check_weight": 0}


def racks(n: int = 2) -> list[dict]:
    """Each node in a subnet of its own, as two racks behind a router."""
    ns = nodes(n)
    for i, node in enumerate(ns):
        node["address"] = f"10.1.{i + 1}.11"
        node["network"] = f"10.1.{i + 1}.0/24"
    return ns


def routed(ns: list[dict], s: dict) -> dict[str, dict]:
    out = {}
    for n in ns:
        me = n["name"]
        assert topo.vrrp_problems(ns, me, s) + routing.vrrp_routing_problems(ns, me, s) == []
        plan = routing.vrrp_routed(topo.vrrp_plan(ns, me, s), ns, me, s)
        parse(yaml.safe_dump(agent_config(plan)), f"<{me}>")  # the agent accepts it
        out[me] = plan
    return out


def test_routing_off_changes_nothing() -> None:
    s = settings()
    plan = topo.vrrp_plan(nodes(), "lb1", s)
    assert routing.vrrp_routed(plan, nodes(), "lb1", s) == {**plan, "routing": None}


def test_ospf_puts_the_vip_on_lo_and_announces_it_by_the_master() -> None:
    p = routed(racks(), settings(vips=["10.1.255.1"], **OSPF))
    a = p["lb1"]["instances"]["VI_1"]
    assert a["virtual_ipaddress"] == ["10.1.255.1/32 dev lo"]
    assert a["unicast_src_ip"] == "10.1.1.11" and a["unicast_peer"] == ["10.1.2.11"]
    r = p["lb2"]["routing"]
    assert r["protocol"] == "ospf" and r["mode"] == "vrrp"
    assert r["prefixes"] == ["10.1.255.1/32"]
    # Never the VIP: two nodes holding it in a split brain would share a router-id.
    assert r["router_id"] == "10.1.2.11"
    assert r["ospf"] == {
        "area": "0.0.0.0", "network": "point-to-point", "hello_interval": 1, "dead_interval": 3,
    }  # fmt: skip
    assert r["bgp"] is None
    # Noticed within 1 s by default (FRR's own: 40 s for OSPF).
    assert r["bfd"]["interval"] * r["bfd"]["multiplier"] <= 1000


def test_dual_master_routes_each_vip_from_its_own_master() -> None:
    s = settings(topology="dual_master", vips=["10.1.255.1", "10.1.255.2"], **OSPF)
    p = routed(racks(), s)
    for node, mastered in (("lb1", "VI_1"), ("lb2", "VI_2")):
        insts = p[node]["instances"]
        assert insts[mastered]["state"] == "MASTER"
        assert [i["virtual_ipaddress"] for i in insts.values()] == [
            ["10.1.255.1/32 dev lo"], ["10.1.255.2/32 dev lo"],
        ]  # fmt: skip
        # Both may be announced; FRR announces what the node holds at the time.
        assert p[node]["routing"]["prefixes"] == ["10.1.255.1/32", "10.1.255.2/32"]


def test_ospf_area_as_a_number_is_written_dotted() -> None:
    p = routed(racks(), settings(vips=["10.1.255.1/32"], **{**OSPF, "vip_routing_ospf_area": "1"}))
    assert p["lb1"]["routing"]["ospf"]["area"] == "0.0.0.1"


def test_bgp_peers_and_router_id_override() -> None:
    s = settings(vips=["10.1.255.1"], **BGP, unicast=True, vip_routing_router_id="10.9.9.9")
    r = routed(racks(), s)["lb1"]["routing"]
    assert r["bgp"] == {
        "asn": 65001, "peers": [{"address": "10.1.1.1", "asn": 65000}],
        "keepalive": 1, "holdtime": 3,
    }  # fmt: skip
    assert r["router_id"] == "10.9.9.9" and r["ospf"] is None


def test_anycast_makes_every_node_hold_the_vip_alone() -> None:
    ns = nodes(3)
    p = routed(ns, settings(vips=["10.1.255.1"], **ANYCAST))
    for name, addr in (("lb1", "192.0.2.11"), ("lb3", "192.0.2.13")):
        inst = p[name]["instances"]["VI_1"]
        assert inst["unicast_peer"] == [] and inst["unicast_src_ip"] == addr
        assert inst["state"] == "MASTER"
        assert inst["virtual_ipaddress"] == ["10.1.255.1/32 dev lo"]
        assert inst["track_script"] == ["chk_http"]
        assert p[name]["checks"][0]["weight"] == 0
        assert p[name]["routing"]["mode"] == "anycast"


def test_no_bfd_leaves_it_out() -> None:
    s = settings(vips=["10.1.255.1"], **OSPF, vip_routing_bfd=False)
    assert routed(racks(), s)["lb1"]["routing"]["bfd"] is None


@pytest.mark.parametrize(
    ("kw", "ns", "expected"),
    [
        ({"vips": ["10.1.255.1"]}, racks(),
         "vrrp_unicast: the nodes are in different subnets (lb1 10.1.1.0/24, lb2 10.1.2.0/24) and "
         "multicast VRRP does not cross a router; set vrrp_unicast: true (host lb1)"),
        ({"vip_routing_mode": "anycast"}, None,
         "vrrp_vip_routing_mode: anycast needs a routing protocol"),
        ({**OSPF, "vips": ["10.1.1.100"]}, racks(),
         "vrrp_vips[0]: 10.1.1.100 is inside lb1's subnet 10.1.1.0/24; with vrrp_vip_routing the "
         "VIP needs a subnet of its own"),
        ({**OSPF, "vips": ["10.1.255.1/24"]}, racks(),
         "vrrp_vips[0]: 10.1.255.1/24: a routed VIP is announced as a host route; write 10.1.255.1 "
         "or 10.1.255.1/32 (host lb1)"),
        ({**OSPF, "vips": ["2001:db8::1"]}, racks(),
         "vrrp_vips[0]: 2001:db8::1 is IPv6; vrrp_vip_routing announces IPv4 VIPs only (host lb1)"),
        ({**OSPF, "vips": ["10.1.255.1"], "vip_routing_ospf_area": ""}, racks(),
         "vrrp_vip_routing_ospf_area: vrrp_vip_routing: ospf needs the area the nodes' interfaces "
         "are in (e.g. 0.0.0.0), got '' (host lb1)"),
        ({**OSPF, "vips": ["10.1.255.1"], "vip_routing_ospf_dead_interval": 1}, racks(),
         "vrrp_vip_routing_ospf_dead_interval: must be above the hello interval (1)"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bgp_asn": 0}, None,
         "vrrp_vip_routing_bgp_asn: vrrp_vip_routing: bgp needs this node's AS number "
         "(1..4294967295), got 0 (host lb1)"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bgp_peers": []}, None,
         "vrrp_vip_routing_bgp_peers: vrrp_vip_routing: bgp needs the routers to announce to"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bgp_peers": [{"address": "r1", "asn": 1}]}, None,
         "vrrp_vip_routing_bgp_peers[0]: must be {address: IPv4, asn: 1..4294967295}, got "
         "{'address': 'r1', 'asn': 1} (host lb1)"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bgp_holdtime": 2}, None,
         "vrrp_vip_routing_bgp_holdtime: must be at least 3 s and above the keepalive (1), got 2"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bfd_interval": 5}, None,
         "vrrp_vip_routing_bfd_interval: 10..60000 ms, got 5 (host lb1)"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_bfd_multiplier": 1}, None,
         "vrrp_vip_routing_bfd_multiplier: 2..255, got 1 (host lb1)"),
        ({**BGP, "vips": ["10.9.0.1"], "vip_routing_router_id": "node1"}, None,
         "vrrp_vip_routing_router_id: must be an IPv4 address, got 'node1' (host lb1)"),
        ({**BGP, "topology": "lvs_nginx", "vips": ["10.9.0.1"]}, None,
         "vrrp_vip_routing: not available with lvs_nginx"),
        ({**ANYCAST, "topology": "dual_master", "vips": ["10.9.0.1", "10.9.0.2"]}, None,
         "vrrp_vip_routing_mode: anycast announces one VIP from every node; set vrrp_topology: "
         "master_backup (got 'dual_master') (host lb1)"),
        ({**ANYCAST, "vips": ["10.9.0.1"], "check_weight": -60}, None,
         "vrrp_check_weight: anycast nodes are alone in their VRID, so only a check that puts the "
         "node in FAULT (weight 0) withdraws it; got -60 (host lb1)"),
        ({**ANYCAST, "vips": ["10.9.0.1"], "health_checks": []}, None,
         "vrrp_health_checks: anycast withdraws a node only when its check fails"),
    ],
)  # fmt: skip
def test_preflight_names_the_variable_and_the_host(kw, ns, expected) -> None:
    problems = routing.vrrp_routing_problems(nodes() if ns is None else ns, "lb1", settings(**kw))
    assert any(expected in p for p in problems), problems


def test_routing_checks_only_the_vrrp_nodes() -> None:
    # Preflight runs on every host: a client has no AS number of its own.
    s = settings(vips=["10.9.0.1"], **{**BGP, "vip_routing_bgp_asn": 0})
    assert routing.vrrp_routing_problems(nodes(), "client1", s) == []


def test_the_plan_refuses_what_preflight_refuses() -> None:
    s = settings(vips=["192.0.2.100"], **OSPF)
    with pytest.raises(ValueError, match="inside lb1's subnet"):
        routing.vrrp_routed(topo.vrrp_plan(nodes(), "lb1", s), nodes(), "lb1", s)
