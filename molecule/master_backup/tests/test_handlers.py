"""The vrrp_agent role's handlers, on the converged lab: site.yml again with one
inventory value changed reloads the agents in place, and a new wheel restarts them.

Runs before the drills (pytest takes the files in name order) and leaves the
lab as it found it: node1 master, the configuration as converged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from labkit import podman, vips

VIP = "10.89.90.100"
NODES = ("node1", "node2")
REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
AGENT = "/opt/vrrp-agent/bin/vrrp-agent"
# A new build each run: the same source again would build the same wheel.
MARKER = f"# a new build, from molecule/master_backup/tests/test_handlers.py, {time.time_ns()}"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on(node: str, *argv: str) -> str:
    return podman.run(node, *argv, check=True).stdout


def main_pid(node: str) -> int:
    return int(on(node, "systemctl", "show", "--property=MainPID", "--value", "vrrp-agent"))


def status(node: str) -> dict:
    return json.loads(on(node, AGENT, "status", "--json"))


def holders() -> list[str]:
    return vips.holders(VIP, NODES)


class VipWatch(threading.Thread):
    """Who holds the VIP, polled until stopped: every different answer seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: list[list[str]] = []
        self.polls = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            now = holders()
            self.polls += 1
            if not self.seen or self.seen[-1] != now:
                self.seen.append(now)
            time.sleep(0.1)

    def __enter__(self) -> VipWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join()


def converge(tmp: Path, **inventory_vars: object) -> str:
    """site.yml over molecule's inventory plus one more source with these group vars."""
    extra = tmp / "changed.yml"
    extra.write_text(yaml.safe_dump({"all": {"vars": inventory_vars}}))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    r = subprocess.run(
        [str(playbook), str(REPO / "site.yml"), "-i", inventory, "-i", str(extra)],
        cwd=REPO, env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return ANSI.sub("", r.stdout)


def handlers_run(out: str) -> list[str]:
    """The vrrp_agent handlers that ran on some host, in order."""
    ran, current = [], None
    for line in (x.strip() for x in out.splitlines()):
        if line.startswith("RUNNING HANDLER [vrrp_agent : "):
            current = line.split(" : ", 1)[1].split("]", 1)[0]
        elif current and line.startswith(("ok: [node", "changed: [node")):
            if current not in ran:
                ran.append(current)
        elif line.startswith(("TASK ", "PLAY ", "RUNNING HANDLER")):
            current = None
    return ran


def test_the_first_deploy_started_each_agent_once() -> None:
    """Converge installed the agent on fresh nodes and idempotence ran site.yml
    again: one start per node. The role used to restart the agent it had just
    started (the unit's handler), a second election that a nopreempt pair gave
    to whichever node restarted first."""
    for node in NODES:
        journal = on(node, "journalctl", "--boot", "--unit=vrrp-agent", "--output=cat")
        starts = [line for line in journal.splitlines() if line.startswith("Started vrrp-agent")]
        assert len(starts) == 1, f"{node}: {len(starts)} starts of vrrp-agent:\n{journal}"


def wait_until_steady(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {n: status(n)["instances"]["VI_1"]["state"] for n in NODES}
        if holders() == ["node1"] and states == {"node1": "MASTER", "node2": "BACKUP"}:
            return
        assert time.monotonic() < deadline, f"not steady: {states}, VIP on {holders()}"
        time.sleep(0.2)


def test_a_changed_value_reloads_and_a_new_wheel_restarts(tmp_path: Path) -> None:
    wait_until_steady()
    pids = {n: main_pid(n) for n in NODES}
    before = {n: status(n) for n in NODES}

    # One inventory value: the checks' timeout (the drills time nothing by it).
    with VipWatch() as watch:
        out = converge(tmp_path, vrrp_check_timeout=1.5)
    ran = handlers_run(out)
    assert ran == ["Validate the vrrp-agent configuration", "Reload vrrp-agent"], out[-6000:]
    assert watch.polls > 10 and watch.seen == [["node1"]], watch.seen
    for n in NODES:
        assert "timeout: 1.5" in on(n, "cat", "/etc/vrrp-agent/agent.yml")
        assert main_pid(n) == pids[n], f"{n}: the agent was restarted, not reloaded"
        after = status(n)
        assert after["reloads"] == before[n]["reloads"] + 1
        was, now = before[n]["instances"]["VI_1"], after["instances"]["VI_1"]
        assert now["state"] == was["state"]
        assert now["stats"]["became_master"] == was["stats"]["became_master"]
    assert status("node1")["instances"]["VI_1"]["state"] == "MASTER"

    # New code, and the value back as converged: one restart, which reads the
    # configuration too, so no reload before it.
    src = tmp_path / "src"
    shutil.copytree(REPO / "vrrp_agent", src / "vrrp_agent",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    init = src / "vrrp_agent/__init__.py"
    init.write_text(init.read_text() + f"\n{MARKER}\n")
    out = converge(tmp_path, vrrp_agent_source_dir=str(src))
    ran = handlers_run(out)
    assert ran == ["Validate the vrrp-agent configuration", "Restart vrrp-agent"], out[-6000:]
    code = "import vrrp_agent; print(open(vrrp_agent.__file__).read())"
    for n in NODES:
        assert MARKER in on(n, "/opt/vrrp-agent/bin/python", "-c", code)
        assert main_pid(n) not in (0, pids[n]), f"{n}: the agent was not restarted"
        assert status(n)["reloads"] == 0
        assert "timeout: 1.5" not in on(n, "cat", "/etc/vrrp-agent/agent.yml")
    wait_until_steady()
