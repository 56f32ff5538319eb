"""The agent as the role's unit runs it under real systemd: its own user
(vrrp_agent_user, default vrrp-agent) with exactly the capabilities it uses,
none of them left in its ambient set for its scripts to inherit, and a config
it can read but not write. The other tests of this scenario prove it still
elects, holds and moves the VIP like that.
"""

from __future__ import annotations

import re

import pytest

from labkit import podman

AGENT_USER = "vrrp-agent"
# CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_NET_ADMIN 12, CAP_NET_RAW 13
CAP_MASK = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 12) | (1 << 13)


def on(node: str, *argv: str) -> str:
    return podman.run(node, *argv, check=True).stdout


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_the_agent_runs_as_its_own_user_with_five_capabilities(node: str) -> None:
    pid = on(node, "systemctl", "show", "--property=MainPID", "--value", "vrrp-agent").strip()
    assert pid not in ("", "0"), f"{node}: vrrp-agent is not running"
    status = dict(re.findall(r"^(\w+):\s*(.*)$", on(node, "cat", f"/proc/{pid}/status"), re.M))
    uid = on(node, "id", "-u", AGENT_USER).strip()
    assert status["Uid"].split() == [uid] * 4, status["Uid"]
    assert int(status["CapEff"], 16) == CAP_MASK, status["CapEff"]
    assert int(status["CapAmb"], 16) == 0, f"{node}: scripts would inherit {status['CapAmb']}"


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_the_config_is_readable_by_the_agent_and_writable_by_root_only(node: str) -> None:
    out = on(node, "stat", "-c", "%U:%G %a", "/etc/vrrp-agent/agent.yml").split()
    assert out == [f"root:{AGENT_USER}", "640"]
