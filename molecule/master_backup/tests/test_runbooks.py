"""The operators' playbooks against this lab, after its own drills: the
drill refuses a cluster whose backup is down and changes nothing; --check
plans only; a graceful drill moves the VIP and back within its bounds;
maintenance drains a node across an agent restart; a rolling upgrade to a
wheel with a bumped version keeps client downtime to the graceful handovers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from drills import (
    MARGIN,
    NODES,
    PRIO_MASTER,
    agent_status,
    holders,
    host,
    make_master,
    master_down,
    watch_vips,
)
from runbooks import (
    REPO,
    agent_answers,
    agent_pid,
    check_report,
    drained,
    no_node_drained,
    playbook,
)

from labkit.poll import wait_for

VIP = "10.89.90.100"


def test_drill_refuses_while_the_backup_is_down_and_changes_nothing() -> None:
    make_master(VIP, "node1", "node2")
    before = agent_pid("node1"), agent_status("node1")["instances"]["VI_1"]["last_transition_at"]
    assert host("node2").run("systemctl stop vrrp-agent").rc == 0
    try:
        r = playbook("drill.yml")
        assert r.returncode != 0
        assert "drill refused: node2: the agent does not answer `vrrp-agent status`" in r.stdout
        # Nothing moved, nothing was restarted, the stopped agent stays stopped.
        assert holders(VIP, NODES) == ["node1"]
        after = agent_pid("node1"), agent_status("node1")["instances"]["VI_1"]["last_transition_at"]
        assert after == before
        assert host("node2").run("systemctl is-active vrrp-agent").stdout.strip() == "inactive"
        assert not drained("node1")
    finally:
        assert host("node2").run("systemctl start vrrp-agent").rc == 0
    make_master(VIP, "node1", "node2")


def test_drill_check_mode_prints_the_plan_only() -> None:
    make_master(VIP, "node1", "node2")
    before = agent_status("node1")["instances"]["VI_1"]["last_transition_at"]
    r = playbook("drill.yml", check=True)
    assert r.returncode == 0
    assert f"{VIP} moves to node2 (VI_1) within" in r.stdout
    assert "drain node1:" in r.stdout
    assert agent_status("node1")["instances"]["VI_1"]["last_transition_at"] == before
    assert holders(VIP, NODES) == ["node1"] and not drained("node1")


def test_graceful_drill_moves_the_vip_and_back_within_the_timers(tmp_path: Path) -> None:
    make_master(VIP, "node1", "node2")
    r = playbook("drill.yml", "-e", f"drill_report={tmp_path}/r.json")
    assert r.returncode == 0
    report = json.loads((tmp_path / "r.json").read_text())
    check_report(report, {VIP: ("node1", "node2")})
    assert report["mode"] == "graceful" and report["probe_host"] == "client"
    assert "nothing left to restore" in r.stdout
    assert holders(VIP, NODES) == ["node1"]
    no_node_drained(NODES)


@pytest.mark.parametrize("mode", ["stop", "freeze"])
def test_the_harder_drills_move_the_vip_and_restore(mode: str, tmp_path: Path) -> None:
    """stop: SIGTERM's priority-0 advert, bounded by Skew_Time like a drain;
    freeze: SIGSTOP of the agent for Master_Down + 1 s, bounded by Master_Down
    (the frozen host's kernel and nginx still answer, so the client may see
    nothing). Either way the agent is running and unfrozen afterwards."""
    make_master(VIP, "node1", "node2")
    r = playbook("drill.yml", "-e", f"drill_mode={mode}", "-e", f"drill_report={tmp_path}/r.json")
    assert r.returncode == 0
    report = json.loads((tmp_path / "r.json").read_text())
    check_report(report, {VIP: ("node1", "node2")})
    e = report["vips"][VIP]
    if mode == "freeze":
        # Master_Down (3.61 s) from the freeze, less the up to one interval
        # since node1's last advert: at least 2.6 s, and well above Skew_Time.
        assert e["moved_after_s"] > 2 * 1.0 + 0.6, e
    else:
        assert e["moved_after_s"] < 1.0 + 0.6, e
    assert host("node1").run("systemctl is-active vrrp-agent").stdout.strip() == "active"
    state = host("node1").check_output("ps -o stat= -p %s", str(agent_pid("node1")))
    assert not state.startswith("T"), state  # not left stopped
    assert holders(VIP, NODES) == ["node1"]


def test_maintenance_drains_a_node_across_an_agent_restart() -> None:
    make_master(VIP, "node1", "node2")
    on = playbook("maintenance.yml", "-e", "maintenance_host=node1", "-e", "maintenance=on")
    assert on.returncode == 0
    assert holders(VIP, NODES) == ["node2"] and drained("node1")
    # The drain file lives under /run/vrrp-agent, which the unit keeps.
    assert host("node1").run("systemctl restart vrrp-agent").rc == 0
    wait_for("node1's agent back", lambda: agent_answers("node1"), 15, 0.2)
    assert drained("node1")
    # A restarted node1 that forgot the drain would take the VIP back within
    # its Master_Down (priority 150 > 100, preempt): it must stay on node2.
    watch_vips({VIP: ["node2"]}, timeout=1, stay=master_down(PRIO_MASTER) + MARGIN)
    off = playbook("maintenance.yml", "-e", "maintenance_host=node1", "-e", "maintenance=off")
    assert off.returncode == 0
    assert holders(VIP, NODES) == ["node1"] and not drained("node1")


def bumped_wheel(dest: Path) -> tuple[Path, str]:
    """The agent's wheel from a copy of this checkout with the patch version
    bumped: what an operator's new release looks like to upgrade.yml."""
    src = dest / "src"
    shutil.copytree(REPO / "vrrp_agent", src / "vrrp_agent")
    shutil.copy(REPO / "pyproject.toml", src)
    old = re.search(r'^version = "([^"]+)"', (src / "pyproject.toml").read_text(), re.M)[1]
    major, minor, patch = old.split(".")
    new = f"{major}.{minor}.{int(patch) + 1}"
    for f in (src / "pyproject.toml", src / "vrrp_agent/__init__.py"):
        f.write_text(f.read_text().replace(f'"{old}"', f'"{new}"', 1))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(dest), str(src)], check=True,
    )  # fmt: skip
    return dest / f"vrrp_agent-{new}-py3-none-any.whl", new


def test_rolling_upgrade_keeps_client_downtime_to_graceful_handovers(tmp_path: Path) -> None:
    make_master(VIP, "node1", "node2")
    wheel, new = bumped_wheel(tmp_path)
    old = agent_status("node1")["version"]
    r = playbook("upgrade.yml", "-e", f"upgrade_wheel={wheel}",
                 "-e", f"upgrade_report={tmp_path}/u.json")  # fmt: skip
    assert r.returncode == 0
    report = json.loads((tmp_path / "u.json").read_text())
    assert [(n["node"], n["from_version"], n["to_version"]) for n in report["nodes"]] == [
        ("node1", old, new), ("node2", old, new),
    ]  # fmt: skip
    # node1 held the VIP: away and back, two graceful handovers at most; node2
    # held nothing, so its upgrade moved nothing.
    v = report["nodes"][0]["vips"][VIP]
    assert v["to"] == "node2" and v["outages"] <= 2 and v["client_downtime_s"] <= v["bound_s"], v
    assert report["nodes"][1]["vips"] == {}
    for node in NODES:
        assert agent_status(node)["version"] == new
    assert holders(VIP, NODES) == ["node1"]
    no_node_drained(NODES)
