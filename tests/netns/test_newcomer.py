"""The newcomer's path: the commands the README's "Run the agent by hand" and
the examples' "Check it with:" lines show work as written on a fresh host.

"Fresh" is made, not assumed: each host runs in its own mount namespace with
/etc overlaid (no role-created `vrrp_script` user, no /etc/vrrp-agent), /run
a new tmpfs, and /usr/local/lib/vrrp-agent (the role's scripts) hidden.
`vrrp-agent` is the console script pyproject declares, i.e. this interpreter
with `-m vrrp_agent.cli`; PATH is a distribution's default.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labkit.netns import REPO, Host, Lab
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

FRESH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AGENT = [sys.executable, "-m", "vrrp_agent.cli"]

SETUP = """
set -e
mount --make-rprivate /
mkdir -p {tmp}/upper {tmp}/work
mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp}/upper,workdir={tmp}/work /etc
sed -i '/^vrrp_script:/d' /etc/passwd /etc/group
! test -e /etc/shadow || sed -i '/^vrrp_script:/d' /etc/shadow
rm -rf /etc/vrrp-agent
mount -t tmpfs tmpfs /run
! test -d /usr/local/lib/vrrp-agent || mount -t tmpfs tmpfs /usr/local/lib/vrrp-agent
echo ready
exec sleep 3600
"""


class Fresh:
    """A lab host as a machine the role never touched, with a shell into it."""

    def __init__(self, host: Host, tmp: Path) -> None:
        tmp.mkdir()
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, "unshare", "-m", "sh", "-c", SETUP.format(tmp=tmp)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline().strip()
        assert line == "ready", line + self.holder.stdout.read()
        self.procs: list[subprocess.Popen[str]] = []

    def argv(self, command: list[str]) -> list[str]:
        if command[0] == "vrrp-agent":
            command = AGENT + command[1:]
        env = ["env", "-i", f"PATH={FRESH_PATH}", f"PYTHONPATH={REPO}", "HOME=/root",
               "PYTHONDONTWRITEBYTECODE=1"]  # fmt: skip
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", f"--wd={REPO}", "--", *env,
                *command]  # fmt: skip

    def run(self, command: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command), input=stdin, capture_output=True, text=True, timeout=30, cwd=REPO
        )

    def start(self, command: list[str], log: Path) -> subprocess.Popen[str]:
        f = open(log, "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(self.argv(command), stdout=f, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.holder.kill()
        self.holder.wait()


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)


def console(body: str) -> list[tuple[list[str], list[str]]]:
    """Each `# command` line of a console block, with the output lines shown after it."""
    steps: list[tuple[list[str], list[str]]] = []
    for line in body.splitlines():
        if line.startswith("# "):
            steps.append((shlex.split(line[2:], comments=True), []))
        elif steps:
            steps[-1][1].append(line)
    return steps


README = (REPO / "README.md").read_text()
# The steps themselves: the section's subsections (### ...) document keys,
# some with fragments of configuration of their own.
BY_HAND = section(README, "Run the agent by hand").split("\n### ")[0]


def check_lines() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted((REPO / "examples").glob("*.yml")):
        for m in re.finditer(r"^# Check it with:\s*(.+)$", path.read_text(), flags=re.M):
            found.append((path.name, shlex.split(m.group(1))))
    return found


@pytest.fixture
def fresh(lab: Lab) -> Iterator[dict[str, Fresh]]:
    hosts = {name: Fresh(lab[name], lab.tmp / f"fresh-{name}") for name in ("n1", "n2")}
    yield hosts
    for h in hosts.values():
        h.close()


def test_the_fresh_host_is_fresh(fresh: dict[str, Fresh]) -> None:
    n1 = fresh["n1"]
    assert n1.run(["id", "vrrp_script"]).returncode != 0
    assert n1.run(["test", "-e", "/etc/vrrp-agent"]).returncode != 0
    assert n1.run(["test", "-e", "/run/vrrp-agent"]).returncode != 0


def test_the_install_block_puts_vrrp_agent_on_path() -> None:
    # Not run (pip needs the network); but every later block calls a bare
    # `vrrp-agent`, which a venv provides only once its bin/ is on PATH.
    install = [body for lang, body in blocks(BY_HAND) if lang == "sh"][0]
    assert "pip install" in install
    assert re.search(r"(\. |source )\.venv/bin/activate|PATH=.*\.venv/bin", install), install


@pytest.mark.parametrize(("name", "command"), check_lines())
def test_the_examples_check_it_with_lines(
    fresh: dict[str, Fresh], name: str, command: list[str]
) -> None:
    assert command[:2] == ["vrrp-agent", "validate"], command  # the only kind that is safe here
    got = fresh["n1"].run(command)
    assert got.returncode == 0, got.stdout + got.stderr
    assert re.fullmatch(rf"examples/{name}: OK \(.*\)\n", got.stdout), got.stdout
    assert "Traceback" not in got.stderr


def start_both(lab: Lab, fresh: dict[str, Fresh], command: list[str]) -> None:
    """The README's run, on node1 and on node2, until node1 is MASTER."""
    logs = {h: lab.tmp / f"by-hand-{h}.log" for h in fresh}
    agents = [fresh[h].start(command, logs[h]) for h in fresh]
    for log in logs.values():
        wait_for(f"{log.name} ready", lambda log=log: "vrrp-agent ready" in log.read_text(), 15)
    n1 = logs["n1"]
    wait_for(
        "node1 MASTER",
        lambda: "Entering MASTER STATE" in n1.read_text(),
        master_down_interval(3, 150, 1) + 2,
    )
    assert all(p.poll() is None for p in agents)


def test_run_the_agent_by_hand(lab: Lab, fresh: dict[str, Fresh]) -> None:
    yml = [body for lang, body in blocks(BY_HAND) if lang == "yaml"]
    assert len(yml) == 1 and "/etc/vrrp-agent/agent.yml" in BY_HAND
    node1 = yml[0]
    assert "priority: 150              # node2: 100" in node1
    second = yaml.safe_load(node1)
    second["global_defs"]["router_id"] = "node2"
    second["vrrp_instances"]["VI_1"]["priority"] = 100
    node2 = yaml.safe_dump(second)
    for host, text in (("n1", node1), ("n2", node2)):
        put = fresh[host].run(
            ["sh", "-c", "mkdir -p /etc/vrrp-agent && cat > /etc/vrrp-agent/agent.yml"], text
        )
        assert put.returncode == 0, put.stderr
    steps = [s for lang, body in blocks(BY_HAND) if lang == "console" for s in console(body)]
    assert [s[0][:2] for s in steps] == [
        ["vrrp-agent", "validate"],
        ["vrrp-agent", "run"],
        ["vrrp-agent", "status"],
        ["vrrp-agent", "status"],
    ], steps
    n1 = fresh["n1"]
    for command, shown in steps:
        verb = command[1]
        if verb == "validate":
            got = n1.run(command)
            assert (got.returncode, got.stdout.splitlines(), got.stderr) == (0, shown, "")
        elif verb == "run":
            start_both(lab, fresh, command)
        elif "--json" in command:
            got = n1.run(command)
            assert got.returncode == 0, got.stderr
            vi1 = json.loads(got.stdout)["instances"]["VI_1"]
            assert vi1["state"] == "MASTER" and vi1["priority"] == 150, vi1
        else:
            got = n1.run(command)
            assert got.returncode == 0, got.stderr
            out = got.stdout.splitlines()
            assert out[0].split()[:2] == shown[0].split()[:2]  # router_id node1
            assert out[1].split() == shown[1].split()  # the column heads
            assert out[2].split()[:7] == shown[2].split()[:7], (
                out
            )  # VI_1 MASTER 150 150 eth0 51 VIP
    assert "Entering MASTER STATE" not in (lab.tmp / "by-hand-n2.log").read_text()
