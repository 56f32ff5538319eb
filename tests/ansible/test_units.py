"""The systemd units the roles install: rendered from the roles' templates and
rated by the real `systemd-analyze security --offline=yes`, which reads the
unit file as systemd would and scores what it leaves the service allowed to do
(0 = nothing, 10 = everything).

The agent keeps what it uses (raw sockets and address changes, setuid/setgid
and kill for its scripts, /proc for check_process); everything else goes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.test_site import play

# The bar is 2.5 or lower. As root with every setting it can take, the
# agent's unit stopped at 2.7; its own user with ambient capabilities gives 2.4.
MAX_EXPOSURE = {
    "vrrp-agent.service": 2.5,
    "lvs-realserver.service": 2.5,
    # vrrp_agent_user root: what the agent's unit was before it had a user.
    "vrrp-agent-as-root.service": 2.7,
}


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("units")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"all": {"hosts": {"localhost": local}}}
    r = play("tests/ansible/render_units.yml", inv, tmp, "-e", f"render_dir={tmp / 'out'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return tmp / "out"


def security(unit: Path, bar: float) -> tuple[int, float, str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (package systemd) is needed"
    r = subprocess.run(
        [analyze, "security", "--offline=yes", f"--threshold={round(bar * 10)}", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    return r.returncode, float(m.group(1)), r.stdout


@pytest.mark.parametrize("name", MAX_EXPOSURE)
def test_unit_exposure_is_within_its_bar(units: Path, name: str) -> None:
    bar = MAX_EXPOSURE[name]
    rc, exposure, out = security(units / name, bar)
    assert exposure <= bar and rc == 0, f"{name}: exposure {exposure}\n{out}"


def directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_agent_unit_keeps_what_the_agent_uses(units: Path) -> None:
    d = directives(units / "vrrp-agent.service")
    caps = set(d["CapabilityBoundingSet"][0].split())
    # Raw sockets and VIPs (NET_RAW, NET_ADMIN), scripts as their user (SETUID,
    # SETGID), and killing a script's whole group (KILL).
    assert caps == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
    # Its own user, never the scripts' one, holding exactly those.
    assert d["User"] == d["Group"] == ["vrrp-agent"]
    assert set(d["AmbientCapabilities"][0].split()) == caps
    # check_process reads every process's /proc/PID/comm, as the script user:
    # hidepid (invisible, ptraceable, noaccess) would hide other users' processes.
    assert d.get("ProtectProc", ["default"]) == ["default"]
    assert "ProcSubset" not in d  # /proc/net/ip_vs tells whether IPVS is there
    # Scheduled ahead of a busy machine by systemd, not by itself, and its
    # scripts do not inherit it.
    assert d["CPUSchedulingPolicy"] == ["rr"]
    assert d["CPUSchedulingResetOnFork"] == ["yes"]
    assert d["RestrictRealtime"] == ["yes"]
    # A system call the filter refuses fails with EPERM (a check script that
    # tries one sees an error), rather than killing the process.
    assert d["SystemCallErrorNumber"] == ["EPERM"]
    # Python's subprocess drops to a script user with setgroups, setregid and
    # setreuid; with the last two refused (they are in @privileged), every
    # check and hook failed with EPERM in molecule's dual_master.
    allowed = set(d["SystemCallFilter"][-1].split())
    assert {"setgroups", "setregid", "setreuid"} <= allowed


def test_agent_unit_as_root_keeps_the_capability_bound(units: Path) -> None:
    as_root = directives(units / "vrrp-agent-as-root.service")
    own = directives(units / "vrrp-agent.service")
    assert "User" not in as_root and "AmbientCapabilities" not in as_root
    assert as_root["CapabilityBoundingSet"] == own["CapabilityBoundingSet"]
