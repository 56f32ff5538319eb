"""A migration on the wire: one node still runs keepalived (Debian's 2.2.7)
with the original file, the other runs our agent with `import-keepalived` of
its own copy of that file. The files are written by hand in keepalived's
syntax (tests/keepalived_corpus/roundtrip/), one per pair with @n1/@n2 lines,
as operators keep them: keepalived reads them with --config-id, the import
with the same --config-id.

In VRRPv2 with PASS authentication and in VRRPv3, multicast and unicast, both
ways round: they elect, the master fails over (frozen, then stopped) and
fails back. Bounds come from the protocol's timers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labkit.keepalived import Keepalived, start_keepalived
from labkit.netns import Agent, Lab
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

FILES = Path(__file__).resolve().parents[1] / "keepalived_corpus" / "roundtrip"
VIP = "10.99.0.100"
ADVERT_INT = 1.0
MARGIN = 0.3
PAIRS = sorted(p.stem for p in FILES.glob("*.conf"))


@pytest.fixture(autouse=True)
def _need_keepalived() -> None:
    if shutil.which("keepalived") is None:
        pytest.fail("keepalived is not installed (apt-get install keepalived)")


def imported(pair: str, node: str) -> dict:
    """What an operator runs: the command, its YAML."""
    r = subprocess.run(
        [sys.executable, "-m", "vrrp_agent.cli", "import-keepalived", str(FILES / f"{pair}.conf"),
         "--config-id", node],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def keepalived(lab: Lab, pair: str, node: str) -> Keepalived:
    return start_keepalived(lab, node, (FILES / f"{pair}.conf").read_text(), config_id=node)


def version_of(pair: str) -> int:
    return 2 if pair.startswith("v2") else 3


def settled(agent: Agent, master_ip: str) -> bool:
    st = agent.status()["instances"]["VI_1"]
    return st["master_ip"] == master_ip and st["rx_dropped"] == {}


@pytest.mark.parametrize("pair", PAIRS)
def test_keepalived_master_imported_agent_backup(lab: Lab, pair: str) -> None:
    v = version_of(pair)
    cfg = imported(pair, "n2")
    assert cfg["vrrp_instances"]["VI_1"]["version"] == v
    ka = keepalived(lab, pair, "n1")
    agent = lab.agent("n2", cfg)
    wait_for("keepalived to become master", lambda: lab["n1"].has(VIP), 8)
    wait_for("the agent to follow keepalived", lambda: settled(agent, "10.99.0.1"), 4)
    assert not lab["n2"].has(VIP)

    # keepalived frozen: the agent takes over within its Master_Down_Interval.
    os.kill(ka.vrrp_pid, signal.SIGSTOP)
    took = wait_for("the agent to take over", lambda: lab["n2"].has(VIP), 8)
    assert took <= master_down_interval(v, 100, ADVERT_INT) + MARGIN
    # keepalived wakes and, with the higher priority, takes the VIP back.
    os.kill(ka.vrrp_pid, signal.SIGCONT)
    wait_for("keepalived to fail back", lambda: not lab["n2"].has(VIP), 5)
    wait_for("keepalived to hold it", lambda: lab["n1"].has(VIP), 5)

    # keepalived stopped: its priority 0 hands over after Skew_Time.
    ka.stop()
    took = wait_for("the agent to take over after the stop", lambda: lab["n2"].has(VIP), 5)
    assert took <= skew_time(v, 100, ADVERT_INT) + MARGIN
    assert agent.status()["instances"]["VI_1"]["rx_dropped"] == {}


@pytest.mark.parametrize("pair", PAIRS)
def test_imported_agent_master_keepalived_backup(lab: Lab, pair: str) -> None:
    v = version_of(pair)
    agent = lab.agent("n1", imported(pair, "n1"))
    ka = keepalived(lab, pair, "n2")
    wait_for("the agent to become master", lambda: lab["n1"].has(VIP), 8)
    wait_for("keepalived to back up", lambda: "Entering BACKUP STATE" in ka.log(), 4)
    assert "Entering MASTER STATE" not in ka.log()
    for complaint in ("bogus VRRP packet", "Invalid checksum", "incorrect checksum", "auth"):
        assert complaint not in ka.log(), f"keepalived complained: {complaint}"

    # The agent frozen: keepalived takes over; the agent wakes and takes it back.
    agent.signal(signal.SIGSTOP)
    took = wait_for("keepalived to take over", lambda: lab["n2"].has(VIP), 8)
    assert took <= master_down_interval(v, 100, ADVERT_INT) + MARGIN
    agent.signal(signal.SIGCONT)
    wait_for("the agent to fail back", lambda: not lab["n2"].has(VIP), 5)
    assert lab["n1"].has(VIP)

    # The agent stopped: keepalived takes over after Skew_Time.
    agent.stop()
    took = wait_for("keepalived to take over after the stop", lambda: lab["n2"].has(VIP), 5)
    assert took <= skew_time(v, 100, ADVERT_INT) + MARGIN
