"""Tests shared by the single-VIP scenarios (master_backup, nopreempt, unicast).

Each scenario's tests/test_*.py imports these and its conftest.py provides
`preempt`: whether node1 takes the VIP back when it recovers.
"""

from __future__ import annotations

import time

import drills
import pytest
from drills import (
    DRILLS,
    NODE_IP,
    NODES,
    PRIO_BACKUP,
    agent_status,
    holders,
    host,
    make_master,
    page,
)

from labkit.podman import Probe
from labkit.poll import wait_for

VIP = "10.89.90.100"


def test_agent_and_nginx_run_on_both_nodes() -> None:
    for node in NODES:
        for unit in ("vrrp-agent", "nginx"):
            svc = host(node).service(unit)
            assert svc.is_running and svc.is_enabled, f"{unit} on {node}"
        assert host(node).file("/etc/vrrp-agent/agent.yml").contains("virtual_router_id: 51")


def test_exactly_one_node_holds_the_vip_and_it_is_node1(preempt: bool) -> None:
    # Both nodes start in BACKUP and the first master-down timer to expire wins;
    # node1's is shorter by the skew difference, (150 - 100) / 256 s. Preemption
    # corrects a later start of node1; under nopreempt the deployment does not
    # (keepalived's rule too): if converge started node1's agent more than that
    # 0.2 s after node2's, node2 keeps the VIP. Then the drills begin by moving
    # it (make_master); here what nopreempt promises is asserted: one holder,
    # named as master by the other node.
    if not preempt:
        wait_for("one node to hold the VIP", lambda: len(holders(VIP, NODES)) == 1, 10)
        if holders(VIP, NODES) == ["node2"]:
            st = agent_status("node1")["instances"]["VI_1"]
            assert (st["state"], st["master_ip"], st["master_priority"]) == (
                "BACKUP", NODE_IP["node2"], PRIO_BACKUP,
            )  # fmt: skip
            assert page(VIP) == "Hello from node2"
            make_master(VIP, "node1", "node2")
    wait_for("node1 to hold the VIP", lambda: holders(VIP, NODES) == ["node1"], 10)
    st = agent_status("node2")["instances"]["VI_1"]
    want = ("BACKUP", NODE_IP["node1"], 150)
    assert (st["state"], st["master_ip"], st["master_priority"]) == want
    assert st["rx_dropped"] == {}
    assert page(VIP) == "Hello from node1"


@pytest.mark.parametrize("name", list(DRILLS))
def test_failover_then_failback_or_not(name: str, preempt: bool) -> None:
    drill = DRILLS[name]
    make_master(VIP, "node1", "node2")
    probe = Probe.start(VIP, drill.failover_bound + drill.failback_bound + 6)
    broken = time.monotonic()
    drill.breaks("node1")
    try:
        took = wait_for(
            "node2 to take the VIP",
            lambda: "node2" in holders(VIP, NODES),
            drill.failover_bound + 5,
        )
        print(f"\n{name}: VIP on node2 after {took:.2f}s (bound {drill.failover_bound:.2f}s)")
        assert took <= drill.failover_bound
        _route_follows(name, "node2", broken, drill.failover_bound + drills.ROUTE_BOUND)
        wait_for("the client to reach node2", lambda: page(VIP) == "Hello from node2", 3)
        # Healing at once would leave the probe (0.3 s timeouts) one or two tries
        # at node2 (see below); hold the break until the probe was served by it.
        wait_for(
            "the client's probe to be answered by node2",
            lambda: "Hello from node2" in probe.answered_so_far(),
            3,
            0.1,
        )
    finally:
        healed = time.monotonic()
        drill.heals("node1")
    # A frozen master never left MASTER in its own eyes: thawed, it advertises 150
    # and the RFC makes the lower-priority master yield, nopreempt or not.
    if preempt or name == "frozen":
        back = wait_for(
            "node1 to take the VIP back",
            lambda: holders(VIP, NODES) == ["node1"],
            drill.failback_bound + 5,
        )
        print(f"{name}: VIP back on node1 after {back:.2f}s (bound {drill.failback_bound:.2f}s)")
        assert back <= drill.failback_bound
        _route_follows(name, "node1", healed, drill.failback_bound + drills.route_back_bound(name))
        wait_for("the client to reach node1 again", lambda: page(VIP) == "Hello from node1", 3)
    else:
        deadline = time.monotonic() + drill.failback_bound + 2
        while time.monotonic() < deadline:
            assert holders(VIP, NODES) == ["node2"], "failback despite nopreempt"
            time.sleep(0.2)
        assert agent_status("node1")["instances"]["VI_1"]["state"] == "BACKUP"
        print(f"{name}: no failback (nopreempt), node2 kept the VIP")
    downtime, answered = probe.downtime()
    print(f"{name}: client-visible downtime {downtime:.2f}s; answered by {answered}")
    # In one CI run (unicast, frozen) this record held only node1's answers and
    # the assertion was dropped. Re-run with a capture on the client (6 drills):
    # the break was healed the moment page() first reached node2, and thawed,
    # node1 wins the client back at once (its late advert and GARPs), so node2
    # served the client for only 0.5-0.7 s, from its GARP to node1's. A probe
    # request in flight at node2's GARP still goes to node1 and waits out its
    # 0.3 s, so the probe had one or two tries at node2; on a loaded runner,
    # none. And the freeze was a bare `podman pause`, which stops processes
    # but not the kernel: node1 kept answering ARP for the VIP and completing
    # the probe's TCP handshakes into the frozen nginx's backlog (the probe saw
    # read timeouts, not connect timeouts), which no frozen VM or dead host does.
    # Now the freeze is silent on the wire (labkit.podman.freeze), the break
    # lasts until the probe has been served by node2 (above), and who answered
    # is asserted again.
    assert "Hello from node2" in answered
    # + the client's own ARP/TCP retry; with a router, + its routes following
    # (and after a freeze, the routing adjacency forming again: route_back_bound)
    reroute = max(drills.ROUTE_BOUND, drills.route_back_bound(name))
    assert downtime <= drill.failover_bound + 1.0 + reroute


def _route_follows(name: str, node: str, since: float, bound: float) -> None:
    """With a router in the lab: its route to the VIP goes via `node` only,
    within `bound` seconds of `since` (the break, or the heal)."""
    if drills.ROUTER is None:
        return
    want = {NODE_IP[node]}
    wait_for(f"the router's route to {VIP} via {node}", lambda: drills.route_via(VIP) == want,
             bound + 5, 0.1)  # fmt: skip
    took = time.monotonic() - since
    print(f"{name}: the router's route via {node} after {took:.2f}s (bound {bound:.2f}s)")
    assert took <= bound
