"""The operators' playbooks against anycast VIPs, after this lab's own
drills: there is no election, so the drill refuses and says why; maintenance
takes node1 out of the router's ECMP set (drained, it withdraws its route)
and puts it back."""

from __future__ import annotations

import drills
from drills import MARGIN, agent_status, route_via
from runbooks import drained, playbook

from labkit.poll import wait_for

VIP = "10.89.255.2"
ROUTE_BOUND = MARGIN  # BGP withdraws and announces at once (test_anycast.py)


def routed_to(*nodes: str) -> bool:
    return route_via(VIP) == {drills.NODE_IP[n] for n in nodes}


def test_the_drill_refuses_anycast_and_changes_nothing() -> None:
    wait_for("the VIP routed to all three", lambda: routed_to("node1", "node2", "node3"), 20, 0.2)
    r = playbook("drill.yml")
    assert r.returncode != 0
    assert "no VIP to drill: every VIP is anycast (10.89.255.2)" in r.stdout
    assert routed_to("node1", "node2", "node3")


def test_maintenance_takes_a_node_out_of_the_spread_and_back() -> None:
    on = playbook("maintenance.yml", "-e", "maintenance_host=node1", "-e", "maintenance=on")
    assert on.returncode == 0
    assert drained("node1") and agent_status("node1")["instances"]["VI_1"]["state"] == "BACKUP"
    wait_for("node1 out of the ECMP set", lambda: routed_to("node2", "node3"), ROUTE_BOUND + 1)
    off = playbook("maintenance.yml", "-e", "maintenance_host=node1", "-e", "maintenance=off")
    assert off.returncode == 0
    # The playbook waited for node1's MASTER (its Master_Down, alone); the route follows.
    assert not drained("node1")
    wait_for("node1 back in the set", lambda: routed_to("node1", "node2", "node3"), ROUTE_BOUND + 1)
