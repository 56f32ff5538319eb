"""playbooks/drill.yml across the router, after this lab's own drills: node1
is drained, OSPF moves the router's route to node2 and back, and the client
behind the router sees a downtime within Skew_Time plus the routing bound
(drill_routing_bound, 1.5 s by default with vrrp_vip_routing)."""

from __future__ import annotations

from pathlib import Path

from drills import NODE_IP, NODES, route_via
from runbooks import check_report, drill, no_node_drained

from labkit.poll import wait_for

VIP = "10.89.255.1"


def test_graceful_drill_moves_the_route_and_back(tmp_path: Path) -> None:
    via_node1 = {NODE_IP["node1"]}
    wait_for("the route to the VIP via node1", lambda: route_via(VIP) == via_node1, 15, 0.2)
    report = drill(tmp_path / "r.json")
    check_report(report, {VIP: ("node1", "node2")})
    assert report["vips"][VIP]["bound_s"] > 1.5  # the routing protocol's part is in it
    wait_for("the route back via node1", lambda: route_via(VIP) == via_node1, 5, 0.2)
    no_node_drained(NODES)
