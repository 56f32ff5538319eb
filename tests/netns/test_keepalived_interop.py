"""Our agent paired with real keepalived (Debian's 2.2.7) on one VRID.

Either side can be master; failover and failback work in both directions,
in VRRPv3 (keepalived's default checksum includes the IPv4 pseudo-header)
and in VRRPv2 with PASS authentication.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from labkit.keepalived import keepalived_conf, start_keepalived
from labkit.netns import Lab
from labkit.poll import wait_for
from tests.netns.test_failover import VIP, conf
from vrrp_agent.core.timers import master_down_interval, skew_time

MARGIN = 0.1

MODES = {
    "v3": {"version": 3},
    "v2-pass": {"version": 2, "authentication": {"auth_type": "PASS", "auth_pass": "1111"}},
}


@pytest.fixture(autouse=True)
def _need_keepalived() -> None:
    if shutil.which("keepalived") is None:
        # Installed by `make deps`; CI runs that first, so this fails there.
        pytest.fail("keepalived is not installed (apt-get install keepalived)")


def agent_conf(priority: int, mode: str) -> dict:
    return conf(priority, **MODES[mode])


def ka_conf(host: str, priority: int, mode: str) -> str:
    version = MODES[mode]["version"]
    return keepalived_conf(
        f"ka_{host}",
        priority,
        f"{VIP}/24",
        version=version,
        auth_pass="1111" if version == 2 else None,
    )


@pytest.mark.parametrize("mode", MODES)
def test_keepalived_master_agent_backup(lab: Lab, mode: str) -> None:
    ka = start_keepalived(lab, "n1", ka_conf("n1", 200, mode))
    agent = lab.agent("n2", agent_conf(100, mode))
    wait_for("keepalived to become master", lambda: lab["n1"].has(VIP), 8)
    wait_for(
        "our agent to follow keepalived",
        lambda: agent.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1",
        3,
    )
    st = agent.status()["instances"]["VI_1"]
    assert st["state"] == "BACKUP"
    # Every advert keepalived sent passed our checksum, version and auth checks.
    assert st["rx_dropped"] == {}
    assert st["stats"]["rx_address_mismatch"] == 0
    assert st["stats"]["address_list_mismatch"] == 0  # the older name, kept
    assert not lab["n2"].has(VIP)

    # keepalived frozen: we take over within Master_Down.
    os.kill(ka.vrrp_pid, signal.SIGSTOP)
    took = wait_for("agent to take over from frozen keepalived", lambda: lab["n2"].has(VIP), 8)
    assert took <= master_down_interval(MODES[mode]["version"], 100, 1.0) + MARGIN
    # keepalived wakes, hears our lower priority, and preempts us back.
    os.kill(ka.vrrp_pid, signal.SIGCONT)
    wait_for("agent to yield to keepalived", lambda: not lab["n2"].has(VIP), 5)
    assert "higher priority 200 from 10.99.0.1" in agent.log()

    # keepalived stopped gracefully: its priority 0 lets us take over after Skew_Time.
    ka.stop()
    took = wait_for("agent to take over after keepalived stops", lambda: lab["n2"].has(VIP), 5)
    assert took <= skew_time(MODES[mode]["version"], 100, 1.0) + MARGIN
    assert agent.status()["instances"]["VI_1"]["stats"]["priority_zero_received"] >= 1

    # keepalived back: failback to it, the VIP leaves us.
    start_keepalived(lab, "n1", ka_conf("n1", 200, mode))
    wait_for("keepalived to reclaim", lambda: lab["n1"].has(VIP) and not lab["n2"].has(VIP), 8)
    assert agent.state() == "BACKUP"
    assert agent.status()["instances"]["VI_1"]["rx_dropped"] == {}


@pytest.mark.parametrize("mode", MODES)
def test_agent_master_keepalived_backup(lab: Lab, mode: str) -> None:
    agent = lab.agent("n1", agent_conf(200, mode))
    ka = start_keepalived(lab, "n2", ka_conf("n2", 100, mode))
    wait_for("our agent to become master", lambda: lab["n1"].has(VIP), 8)
    wait_for("keepalived to settle as backup", lambda: "Entering BACKUP STATE" in ka.log(), 3)
    assert not lab["n2"].has(VIP)
    assert "Entering MASTER STATE" not in ka.log()
    # keepalived logs packets it rejects; it must have accepted ours.
    for complaint in ("bogus VRRP packet", "Invalid checksum", "incorrect checksum", "auth"):
        assert complaint not in ka.log(), f"keepalived complained: {complaint}"

    # We freeze: keepalived takes over; we wake and preempt it back.
    agent.signal(signal.SIGSTOP)
    took = wait_for("keepalived to take over", lambda: lab["n2"].has(VIP), 8)
    assert took <= master_down_interval(MODES[mode]["version"], 100, 1.0) + MARGIN
    agent.signal(signal.SIGCONT)
    wait_for("keepalived to yield", lambda: not lab["n2"].has(VIP), 5)
    assert lab["n1"].has(VIP)

    # We stop gracefully: keepalived takes over after Skew_Time.
    agent.stop()
    took = wait_for("keepalived to take over after SIGTERM", lambda: lab["n2"].has(VIP), 5)
    assert took <= skew_time(MODES[mode]["version"], 100, 1.0) + MARGIN
    assert not lab["n1"].has(VIP)

    # We come back and preempt keepalived.
    lab.agent("n1", agent_conf(200, mode))
    wait_for("our agent to reclaim", lambda: lab["n1"].has(VIP) and not lab["n2"].has(VIP), 8)
