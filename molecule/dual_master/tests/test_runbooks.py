"""playbooks/drill.yml against this lab, after its own drills: each node is
drained in turn, its VIP moves to the other node and back, each move within
the bound the timers give, as measured by the client and by the agents."""

from __future__ import annotations

from pathlib import Path

from drills import NODES
from runbooks import check_report, drill, no_node_drained

from labkit.poll import wait_for
from labkit.vips import holders

VIP1, VIP2 = "10.89.90.101", "10.89.90.102"


def at_home() -> bool:
    return holders(VIP1, NODES) == ["node1"] and holders(VIP2, NODES) == ["node2"]


def test_graceful_drill_moves_each_vip_away_and_home(tmp_path: Path) -> None:
    wait_for("each VIP at home", at_home, 15, 0.2)
    report = drill(tmp_path / "r.json")
    check_report(report, {VIP1: ("node1", "node2"), VIP2: ("node2", "node1")})
    assert at_home()
    no_node_drained(NODES)
