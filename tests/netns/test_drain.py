"""`vrrp-agent drain` / `undrain` between two agents on a real bridge.

n1 (priority 200) is master, n2 (100) backup, VRRPv3 at advert_int 1. A
drain hands over as a shutdown does (priority 0: n2 takes over after its
Skew_Time, not Master_Down), and a drained node never becomes master, not
even with nobody else left, across a restart of the agent, until undrain.
Bounds come from the protocol's timers plus an honest margin for scheduling,
for polling `ip addr` and for starting the CLI (a Python process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from labkit.netns import Agent, Lab, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

VIP = "10.99.0.100"
ADVERT = 1.0
MD1 = master_down_interval(3, 200, ADVERT)  # n1's Master_Down, 3.22 s
MD2 = master_down_interval(3, 100, ADVERT)  # n2's, 3.61 s
SKEW2 = skew_time(3, 100, ADVERT)  # 0.61 s
# Scheduling and the agents' own work between events; the CLI's start-up
# (before the agent acts) is outside every measured interval.
MARGIN = 0.3
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def conf(priority: int, **global_defs: object) -> dict:
    config: dict = {"vrrp_instances": {"VI_1": vrrp_instance(priority, VIP, ADVERT)}}
    if global_defs:
        config["global_defs"] = dict(global_defs)
    return config


def cli(agent: Agent, command: str, wrap: list[str] | None = None) -> tuple[int, dict, str]:
    """`vrrp-agent COMMAND --json` for `agent`; (exit code, answer, stderr)."""
    out = subprocess.run(
        [*(wrap or []), sys.executable, "-m", "vrrp_agent.cli", command, "--json",
         "-c", str(agent.config_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.returncode, json.loads(out.stdout or "{}"), out.stderr


def holders(lab: Lab) -> list[str]:
    return [name for name, h in lab.hosts.items() if h.has(VIP)]


def never(what: str, predicate: object, seconds: float) -> None:
    """Poll for `seconds`: `predicate` must not hold at any point."""
    assert callable(predicate)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert not predicate(), what
        time.sleep(0.05)


def instance(agent: Agent) -> dict:
    return agent.status()["instances"]["VI_1"]


def test_drain_hands_over_in_skew_time_and_holds_until_undrain(lab: Lab) -> None:
    a1 = lab.agent("n1", conf(200))
    wait_for("n1 to become master", lambda: lab["n1"].has(VIP), MD1 + 2)
    a2 = lab.agent("n2", conf(100))
    wait_for("n2 to follow n1", lambda: instance(a2)["master_ip"] == lab["n1"].ip4, 3)

    # Drain the master: priority 0 goes out, n2 takes over after its Skew_Time.
    code, answer, err = cli(a1, "drain")
    assert code == 0, err
    assert answer["drained"] is True and answer["changed"] is True
    assert answer["released"] == ["VI_1"]
    took = wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), MD2)
    assert holders(lab) == ["n2"]
    s2 = instance(a2)
    takeover = s2["last_transition_at"] - answer["since"]
    print(f"takeover after drain: {takeover:.3f}s (Skew {SKEW2:.3f}s, Master_Down {MD2:.3f}s)")
    assert s2["state"] == "MASTER"
    assert 0 < takeover <= SKEW2 + MARGIN < MD2
    assert took <= SKEW2 + MARGIN
    s1 = a1.status()
    assert (s1["drained"], s1["drained_since"]) == (True, answer["since"])
    assert s1["instances"]["VI_1"]["state"] == "BACKUP"
    assert s1["instances"]["VI_1"]["last_transition_reason"] == "drained"
    assert s1["instances"]["VI_1"]["stats"]["priority_zero_sent"] == 1
    assert json.loads(Path(a1.drain_file).read_text()) == {"since": answer["since"]}
    # Drain again: unchanged.
    code, again, _ = cli(a1, "drain")
    assert (code, again) == (0, {**answer, "changed": False, "released": []})

    # n2 goes away (priority 0 again): nobody holds the VIP, for several
    # Master_Down intervals. That is what drained means.
    a2.stop()
    wait_for("n2 to drop the VIP", lambda: holders(lab) == [], 2)
    never("drained n1 took the VIP", lambda: lab["n1"].has(VIP), 3 * MD1)
    s1 = instance(a1)
    assert s1["state"] == "BACKUP" and s1["stats"]["priority_zero_received"] >= 1

    # Restart the drained agent with n2 back as master: it comes up drained
    # (from its drain file) and does not preempt n2.
    a1.stop()
    assert os.path.exists(a1.drain_file)
    a2 = lab.agent("n2", conf(100))
    wait_for("n2 to become master again", lambda: lab["n2"].has(VIP), MD2 + 2)
    a1 = lab.agent("n1", conf(200, drain_file=a1.drain_file))
    assert "staying BACKUP until `vrrp-agent undrain`" in a1.log()
    st = a1.status()
    assert (st["drained"], st["drained_since"]) == (True, answer["since"])
    never("restarted drained n1 preempted n2", lambda: lab["n1"].has(VIP), 2 * MD1)
    assert holders(lab) == ["n2"] and instance(a1)["master_ip"] == lab["n2"].ip4

    # Undrain: n1 preempts n2 within its Master_Down (the advert it follows
    # last re-armed the timer no later than the undrain).
    code, answer2, err = cli(a1, "undrain")
    assert code == 0, err
    assert answer2 == {"drained": False, "since": answer["since"], "changed": True,
                       "released": []}  # fmt: skip
    assert not os.path.exists(a1.drain_file)
    took = wait_for("n1 to preempt n2", lambda: holders(lab) == ["n1"], MD1 + 2)
    assert took <= MD1 + MARGIN
    assert a1.status()["drained"] is False and instance(a1)["state"] == "MASTER"
    code, again, _ = cli(a1, "undrain")
    assert (code, again["drained"], again["changed"]) == (0, False, False)


def test_refused_drains_change_nothing(lab: Lab, flags: Path) -> None:
    # The drain file's directory would be a regular file: it cannot be made,
    # by root either (ENOTDIR).
    blocker = flags / "not-a-dir"
    blocker.write_text("")
    drain_file = f"{blocker}/drained"
    a1 = lab.agent("n1", conf(200, drain_file=drain_file), files=flags)
    wait_for("n1 to become master", lambda: lab["n1"].has(VIP), MD1 + 2)
    os.chmod(a1.control_socket, 0o666)  # reachable by others: the uid check must hold

    # Not root: refused, naming the uid.
    code, answer, err = cli(a1, "drain", wrap=NOBODY)
    assert code == 1
    assert answer == {"error": "drain needs root (peer uid 65534)"}
    assert "drain needs root (peer uid 65534)" in err
    # status stays open to whoever reaches the socket.
    out = subprocess.run(
        [*NOBODY, sys.executable, "-m", "vrrp_agent.cli", "status", "--json", "-c",
         str(a1.config_path)], capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["drained"] is False

    # Root, but the drain cannot be recorded: refused with the path and the error.
    code, answer, err = cli(a1, "drain")
    assert code == 1
    assert answer == {"error": f"cannot write drain_file {drain_file}: [Errno 20] Not a directory"}
    assert f"cannot write drain_file {drain_file}" in err

    st = a1.status()
    assert (st["drained"], st["drained_since"]) == (False, None)
    s1 = st["instances"]["VI_1"]
    assert s1["state"] == "MASTER" and s1["stats"]["priority_zero_sent"] == 0
    assert holders(lab) == ["n1"]
    assert blocker.read_text() == ""
