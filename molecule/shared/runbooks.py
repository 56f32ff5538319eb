"""The operators' playbooks (playbooks/drill.yml, maintenance.yml,
upgrade.yml) run against a molecule lab, as an operator runs them against
a deployed inventory: ansible-playbook with the lab's own inventory, from
the repository root. The tests check what the playbooks report against
what the lab shows (testinfra, podman), so a report that lies fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from drills import agent_status, host

from labkit.poll import wait_for

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
BIN = Path(sys.executable).parent


def inventory() -> str:
    return os.environ["MOLECULE_INVENTORY_FILE"]


def playbook(name: str, *extra: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run playbooks/NAME against the lab; the output is printed (pytest -s),
    so a failing run shows the play that failed."""
    argv = [str(BIN / "ansible-playbook"), f"playbooks/{name}", "-i", inventory(), *extra]
    if check:
        argv.append("--check")
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    r = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    print(f"=== ansible-playbook {' '.join(argv[1:])}: rc {r.returncode}")
    print(r.stdout[-6000:], r.stderr[-3000:], sep="\n")
    return r


def drill(report: Path, *extra: str) -> dict:
    r = playbook("drill.yml", "-e", f"drill_report={report}", *extra)
    assert r.returncode == 0, r.stdout[-3000:]
    return json.loads(report.read_text())


def agent_pid(node: str) -> int:
    return int(host(node).check_output("systemctl show -p MainPID --value vrrp-agent"))


def drained(node: str) -> bool:
    return bool(agent_status(node).get("drained"))


def check_report(report: dict, moves: dict[str, tuple[str, str]], failback: bool = True) -> None:
    """Every VIP in `moves` ({vip: (from, to)}) drilled, measured and within
    its bound; each figure is a real measurement (not None, not negative)."""
    assert sorted(report["vips"]) == sorted(moves), report
    assert report["exceeded"] == [], report["exceeded"]
    for vip, (src, dst) in moves.items():
        e = report["vips"][vip]
        assert (e["from"], e["to"]) == (src, dst), e
        assert 0 < e["moved_after_s"] <= e["bound_s"], e
        assert 0 <= e["client_downtime_s"] <= e["bound_s"], e
        assert e["requests"] > 10 and e["client_recovered"], e
        if failback:
            assert 0 <= e["failback_after_s"] <= e["failback_bound_s"], e
        else:
            assert e["failback_after_s"] is None, e
        print(f"drill {vip}: {src} -> {dst} after {e['moved_after_s']:.2f}s, client down "
              f"{e['client_downtime_s']:.2f}s, back after {e['failback_after_s']}s "
              f"(bound {e['bound_s']:.2f}s)")  # fmt: skip


def no_node_drained(nodes: tuple[str, ...]) -> None:
    wait_for("every agent answering", lambda: all(agent_answers(n) for n in nodes), 15, 0.2)
    assert [n for n in nodes if drained(n)] == []


def agent_answers(node: str) -> bool:
    return host(node).run("/opt/vrrp-agent/bin/vrrp-agent status --json").rc == 0
