"""playbooks/drill.yml against an exclusive pair refuses, and says why: a
drained, stopped or frozen node's VIP stays unserved while its peer holds
the partner (exclusive_with is a hard rule), so a drill would take a VIP
down rather than move it. Nothing changes."""

from __future__ import annotations

from drills import NODES, agent_status, healthy, watch_vips
from runbooks import playbook

from labkit.poll import wait_for

HOME = {"10.89.90.101": ["node1"], "10.89.90.102": ["node2"]}


def transitions() -> dict:
    return {
        n: {i: s["last_transition_at"] for i, s in agent_status(n)["instances"].items()}
        for n in NODES
    }


def test_the_drill_refuses_an_exclusive_pair_and_changes_nothing() -> None:
    wait_for("both nodes healthy", lambda: all(healthy(n) for n in NODES), 15, 0.2)
    watch_vips(HOME, 15)
    before = transitions()
    r = playbook("drill.yml")
    assert r.returncode != 0
    assert "drill refused: VIP 10.89.90.101: node1/VI_1 is exclusive_with VI_2" in r.stdout
    assert "so the drill would take it down, not move it" in r.stdout
    assert transitions() == before
    watch_vips(HOME, 1)
