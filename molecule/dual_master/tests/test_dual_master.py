"""dual_master: node1 masters VIP1, node2 masters VIP2; a node that fails hands
its VIP to the survivor, which holds both, and takes it back when it recovers."""

from __future__ import annotations

import pytest
from drills import DRILLS, NODES, agent_status, host, make_master, page

from labkit.podman import Probe
from labkit.poll import wait_for
from labkit.vips import holders

VIP1, VIP2 = "10.89.90.101", "10.89.90.102"


def test_agent_and_nginx_run_on_both_nodes() -> None:
    for node in NODES:
        for unit in ("vrrp-agent", "nginx"):
            assert host(node).service(unit).is_running, f"{unit} on {node}"


def test_each_node_masters_one_vip_while_both_are_healthy() -> None:
    wait_for("VIP1 on node1", lambda: holders(VIP1, NODES) == ["node1"], 10)
    wait_for("VIP2 on node2", lambda: holders(VIP2, NODES) == ["node2"], 10)
    assert page(VIP1) == "Hello from node1"
    assert page(VIP2) == "Hello from node2"
    st = agent_status("node1")["instances"]
    assert (st["VI_1"]["state"], st["VI_2"]["state"]) == ("MASTER", "BACKUP")


@pytest.mark.parametrize("name", list(DRILLS))
def test_survivor_holds_both_then_each_goes_home(name: str) -> None:
    drill = DRILLS[name]
    make_master(VIP1, "node1", "node2")
    probe = Probe.start(VIP1, drill.failover_bound + drill.failback_bound + 6)
    drill.breaks("node1")
    try:
        took = wait_for(
            "node2 to hold both VIPs",
            lambda: "node2" in holders(VIP1, NODES),
            drill.failover_bound + 5,
        )
        print(f"\n{name}: VIP1 on node2 after {took:.2f}s (bound {drill.failover_bound:.2f}s)")
        assert took <= drill.failover_bound
        assert "node2" in holders(VIP2, NODES), "the survivor lost its own VIP"
        wait_for(
            "the client to reach node2 through VIP1", lambda: page(VIP1) == "Hello from node2", 3
        )
        # As in single_vip.py: the break lasts until the probe has been served by node2.
        wait_for(
            "the client's probe to be answered by node2",
            lambda: "Hello from node2" in probe.answered_so_far(),
            3,
            0.1,
        )
    finally:
        drill.heals("node1")
    back = wait_for(
        "VIP1 back on node1", lambda: holders(VIP1, NODES) == ["node1"], drill.failback_bound + 5
    )
    print(f"{name}: VIP1 back on node1 after {back:.2f}s (bound {drill.failback_bound:.2f}s)")
    assert back <= drill.failback_bound
    assert holders(VIP2, NODES) == ["node2"]
    downtime, answered = probe.downtime()
    print(f"{name}: client-visible downtime on VIP1 {downtime:.2f}s; answered by {answered}")
    assert answered == ["Hello from node1", "Hello from node2"]
    assert downtime <= drill.failover_bound + 1.0
