"""playbooks/drill.yml against this lab, after its own drills: the active
director is drained, the VIP and the balancing move to the other one and
back, and the client probing through the VIP to the real servers sees a
downtime within the timers' bound both ways."""

from __future__ import annotations

from pathlib import Path

from runbooks import check_report, drill, no_node_drained

from labkit.poll import wait_for
from labkit.vips import holders

DIRECTORS = ("director1", "director2")
VIP = "10.89.90.200"


def test_graceful_drill_moves_the_director_and_back(tmp_path: Path) -> None:
    wait_for("the VIP on director1", lambda: holders(VIP, DIRECTORS) == ["director1"], 15, 0.2)
    report = drill(tmp_path / "r.json")
    check_report(report, {VIP: ("director1", "director2")})
    assert holders(VIP, DIRECTORS) == ["director1"]
    no_node_drained(DIRECTORS)
