"""notify hooks and notify_fifo on real namespaces: hooks follow the
transitions in order, as the script user, one at a time; a slow hook never
delays a failover; STOP hooks run before the agent exits; the fifo gets
keepalived's lines; editing a hook on reload does not restart the instance.

Every hook appends `TIME UID TAG ARGS...` to its node's log through rec.sh.
Bounds are derived from the timers; MARGIN covers process start-up,
scheduling and polling `ip addr`.
"""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import stat
import time
from pathlib import Path

import pytest

from labkit.netns import Lab
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

VIP, VIP2 = "10.99.0.100", "10.99.0.101"
ADVERT_INT = 0.5
MARGIN = 0.5
SCRIPT_USER = "nobody"  # hooks run unprivileged, as deployed
SLOW = 5.0  # seconds n2's notify_backup sleeps


@pytest.fixture
def hooks(flags: Path) -> Path:
    """Only root may write the directory (enable_script_security refuses hooks
    in a writable one); the logs the hooks append to are writable one by one."""
    for name in ("n1.log", "n2.log"):
        (flags / name).touch()
        (flags / name).chmod(0o666)
    rec = flags / "rec.sh"
    rec.write_text(
        '#!/bin/sh\nlog=$1; tag=$2; shift 2\necho "$(date +%s.%N) $(id -u) $tag" "$@" >> "$log"\n'
    )
    rec.chmod(0o755)
    return flags


def rec(d: Path, log: Path, tag: str) -> str:
    return f"{d / 'rec.sh'} {log} {tag}"


def sh(script: str) -> str:
    return f"/bin/sh -c {shlex.quote(script)}"


def entries(log: Path) -> list[tuple[float, int, str]]:
    """(time, uid, 'TAG ARGS...') per line."""
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        t, uid, rest = line.split(" ", 2)
        out.append((float(t), int(uid), rest))
    return out


def tags(log: Path) -> list[str]:
    return [rest for _, _, rest in entries(log)]


def instance(priority: int, vrid: int = 51, vip: str = VIP, **hooks: str) -> dict:
    return {
        "interface": "eth0",
        "virtual_router_id": vrid,
        "priority": priority,
        "advert_int": ADVERT_INT,
        "virtual_ipaddress": [f"{vip}/24"],
        **hooks,
    }


def read_fifo(fd: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode()


def test_hooks_follow_failover_in_order_and_never_delay_it(lab: Lab, hooks: Path) -> None:
    log1, log2 = hooks / "n1.log", hooks / "n2.log"
    fifo1, fifo2 = hooks / "n1.fifo", hooks / "n2.fifo"
    # n2's fifo has a reader from the start; n1's does not exist: the agent creates it.
    os.mkfifo(fifo2, 0o600)
    reader = os.open(fifo2, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _failover(lab, hooks, log1, log2, fifo1, fifo2, reader)
    finally:
        os.close(reader)


def _failover(
    lab: Lab, d: Path, log1: Path, log2: Path, fifo1: Path, fifo2: Path, reader: int
) -> None:
    nobody = pwd.getpwnam(SCRIPT_USER).pw_uid
    a1 = lab.agent(
        "n1",
        {
            "global_defs": {"script_user": SCRIPT_USER, "notify_fifo": str(fifo1)},
            "vrrp_instances": {
                "VI_1": instance(
                    150,
                    notify_master=rec(d, log1, "master"),
                    notify_backup=rec(d, log1, "backup"),
                    # Fails on purpose: its exit status must reach the log.
                    notify_stop=sh(f"{rec(d, log1, 'stop')}; exit 7"),
                    notify=rec(d, log1, "notify"),
                )
            },
        },
    )
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2)
    wait_for("n1's MASTER hooks", lambda: len(tags(log1)) == 4, 2)
    assert tags(log1) == [
        "backup",
        "notify INSTANCE VI_1 BACKUP 150",
        "master",
        "notify INSTANCE VI_1 MASTER 150",
    ]
    assert stat.S_ISFIFO(fifo1.stat().st_mode) and stat.S_IMODE(fifo1.stat().st_mode) == 0o600

    slow_backup = sh(f"{rec(d, log2, 'backup-begin')}; sleep {SLOW}; {rec(d, log2, 'backup-end')}")
    a2 = lab.agent(
        "n2",
        {
            "global_defs": {"script_user": SCRIPT_USER, "notify_fifo": str(fifo2)},
            "vrrp_instances": {
                "VI_1": instance(
                    100,
                    notify_master=rec(d, log2, "master"),
                    notify_backup=slow_backup,
                    notify=rec(d, log2, "notify"),
                )
            },
        },
    )
    wait_for("n2's slow backup hook to start", lambda: "backup-begin" in tags(log2), 2)

    # n1 leaves: priority 0, so n2 waits only its Skew_Time, slow hook or not.
    a1.signal(signal.SIGTERM)
    bound = skew_time(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), bound + 2)
    moved_at = time.time()
    print(f"failover with a hook still running: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    assert "backup-end" not in tags(log2), "the failover waited for the hook"
    st = a2.status()
    assert st["instances"]["VI_1"]["state"] == "MASTER"
    # notify_backup runs; its generic hook and MASTER's two wait their turn.
    assert st["notify"]["running"]["hook"] == "notify_backup"
    assert st["notify"]["queued"] == 3
    # The fifo is not queued behind hooks: MASTER is there already.
    assert read_fifo(reader) == 'INSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" MASTER 100\n'

    # n1 ran its STOP hooks before exiting, after handing over.
    assert a1.proc.wait(10) == 0
    assert tags(log1)[4:] == ["stop", "notify INSTANCE VI_1 STOP 150"]
    agent1 = a1.log()
    assert "notify: notify_master INSTANCE VI_1 MASTER: exit 0 (" in agent1
    assert "notify: notify_stop INSTANCE VI_1 STOP: exit 7 (" in agent1
    # No reader on n1's fifo: said once, not per transition.
    assert agent1.count(f"notify_fifo {fifo1}: no reader attached") == 1

    # n2's hooks ran one at a time, in transition order, after the slow one.
    wait_for("n2's MASTER hooks", lambda: len(tags(log2)) == 5, SLOW + 2)
    assert tags(log2) == [
        "backup-begin",
        "backup-end",
        "notify INSTANCE VI_1 BACKUP 100",
        "master",
        "notify INSTANCE VI_1 MASTER 100",
    ]
    times = {rest: t for t, _, rest in entries(log2)}
    assert times["backup-end"] - times["backup-begin"] >= SLOW
    assert moved_at < times["backup-end"], "the VIP moved only after the hook ended"
    recent = a2.status()["notify"]["recent"]
    assert [(o["hook"], o["state"], o["exit"]) for o in recent] == [
        ("notify_backup", "BACKUP", 0),
        ("notify", "BACKUP", 0),
        ("notify_master", "MASTER", 0),
        ("notify", "MASTER", 0),
    ]

    assert a2.stop() == 0
    assert tags(log2)[5:] == ["notify INSTANCE VI_1 STOP 100"]
    assert read_fifo(reader) == 'INSTANCE "VI_1" STOP 100\n'
    # Every hook on both nodes ran as the script user.
    assert {uid for _, uid, _ in entries(log1) + entries(log2)} == {nobody}


def test_reload_reports_removed_instances_and_keeps_one_whose_hooks_changed(
    lab: Lab, hooks: Path
) -> None:
    log = hooks / "n1.log"
    generic = rec(hooks, log, "notify")
    a1 = lab.agent(
        "n1",
        {
            "global_defs": {"script_user": SCRIPT_USER},
            "vrrp_instances": {
                "VI_1": instance(150, notify_master=rec(hooks, log, "master-v1"), notify=generic),
                "VI_2": instance(150, vrid=52, vip=VIP2, notify=generic),
            },
        },
    )
    bound = master_down_interval(3, 150, ADVERT_INT) + 2
    wait_for("n1 master of both", lambda: lab["n1"].has(VIP) and lab["n1"].has(VIP2), bound)
    wait_for("the MASTER hooks", lambda: "notify INSTANCE VI_2 MASTER 150" in tags(log), 2)

    # VI_1: only its hooks change; VI_2: removed.
    a1.rewrite(
        {
            "vrrp_instances": {
                "VI_1": instance(
                    150,
                    notify_master=rec(hooks, log, "master-v2"),
                    notify_stop=rec(hooks, log, "stop-v2"),
                    notify=generic,
                )
            }
        }
    )
    a1.signal(signal.SIGHUP)
    wait_for("the reload", lambda: "reloaded:" in a1.log(), 3)
    assert "reloaded: 1 kept, 1 stopped, 0 started" in a1.log()
    wait_for("VI_2's STOP hook", lambda: "notify INSTANCE VI_2 STOP 150" in tags(log), 2)
    st = a1.status()["instances"]["VI_1"]
    assert st["state"] == "MASTER" and st["stats"]["became_master"] == 1
    assert f"removed virtual addresses {VIP}/" not in a1.log(), "VI_1 flapped on reload"
    assert not any("VI_1 STOP" in t for t in tags(log))

    # The edited hooks are the ones in force now.
    assert a1.stop() == 0
    assert tags(log)[-2:] == ["stop-v2", "notify INSTANCE VI_1 STOP 150"]
    assert "master-v2" not in tags(log)
