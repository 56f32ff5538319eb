"""vrrp_script / track_script on real namespaces: a failing check moves the VIP,
a recovering one brings it back, weight 0 means FAULT, a hanging check is
killed with everything it started.

Bounds are derived from the settings: a check needs at most fall (or rise)
intervals to change state, then the protocol's own timer runs; MARGIN covers
process start-up, scheduling and polling `ip addr` / `status`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from labkit.netns import Agent, Lab, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

VIP = "10.99.0.100"
ADVERT_INT = 0.5
INTERVAL, FALL, RISE = 0.5, 2, 1
MARGIN = 0.5
SCRIPT_USER = "nobody"  # the checks run unprivileged, as deployed


def conf(priority: int, flag: Path, weight: int = -60, **script: object) -> dict:
    return {
        "global_defs": {"script_user": SCRIPT_USER},
        "vrrp_scripts": {
            "chk_file": {
                "script": f"/usr/bin/test -e {flag}",
                "interval": INTERVAL,
                "fall": FALL,
                "rise": RISE,
                "weight": weight,
                **script,
            }
        },
        "vrrp_instances": {
            "VI_1": vrrp_instance(priority, VIP, ADVERT_INT, track_script=["chk_file"])
        },
    }


def elect(lab: Lab, flags: Path, weight: int = -60) -> tuple[Agent, Agent, Path]:
    f1, f2 = flags / "healthy-n1", flags / "healthy-n2"
    f1.touch()
    f2.touch()
    a1 = lab.agent("n1", conf(150, f1, weight))
    a2 = lab.agent("n2", conf(100, f2, weight))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2)
    wait_for(
        "n2 to hear n1", lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1", 3
    )
    s1 = a1.status()
    assert s1["vrrp_scripts"]["chk_file"]["state"] == "UP"
    assert s1["vrrp_scripts"]["chk_file"]["last_exit"] == 0
    assert s1["instances"]["VI_1"]["effective_priority"] == 150
    return a1, a2, f1


def test_failing_script_lowers_priority_and_moves_the_vip_then_back(lab: Lab, flags: Path) -> None:
    a1, a2, flag = elect(lab, flags)

    flag.unlink()
    # n1 advertises 90 at once; n2 (100) ignores that and its Master_Down
    # timer, armed by n1's last 150 advert before the drop, runs out.
    bound = FALL * INTERVAL + master_down_interval(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), bound + 2)
    print(f"failover after the check failed: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n1 to release", lambda: not lab["n1"].has(VIP), 2)
    s1 = a1.status()
    assert s1["instances"]["VI_1"]["effective_priority"] == 90
    assert s1["instances"]["VI_1"]["priority"] == 150
    assert s1["instances"]["VI_1"]["state"] == "BACKUP"
    chk = s1["vrrp_scripts"]["chk_file"]
    assert chk["state"] == "DOWN"
    assert chk["last_exit"] == 1
    assert chk["failures"] >= FALL and chk["successes"] == 0
    assert "vrrp_script chk_file: DOWN after 2 failures (exit 1)" in a1.log()
    assert "(VI_1) effective priority 150 -> 90 (track_script)" in a1.log()
    assert a2.status()["instances"]["VI_1"]["master_priority"] == 100

    flag.touch()
    # Back to 150, n1 preempts: it drops n2's adverts and its Master_Down
    # timer, armed at priority 90 by n2's last advert, runs out.
    bound = RISE * INTERVAL + master_down_interval(3, 90, ADVERT_INT) + MARGIN
    took = wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP), bound + 2)
    print(f"failback after the check recovered: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n2 to release", lambda: not lab["n2"].has(VIP), 2)
    s1 = a1.status()
    assert s1["instances"]["VI_1"]["effective_priority"] == 150
    assert s1["vrrp_scripts"]["chk_file"]["state"] == "UP"
    assert "vrrp_script chk_file: UP after 1 success" in a1.log()
    # n2's own check never failed.
    assert a2.status()["vrrp_scripts"]["chk_file"]["state"] == "UP"


def test_weight_zero_puts_the_instance_in_fault(lab: Lab, flags: Path) -> None:
    a1, a2, flag = elect(lab, flags, weight=0)

    flag.unlink()
    # FAULT on a master sends priority 0: n2 waits only its Skew_Time.
    bound = FALL * INTERVAL + skew_time(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), bound + 2)
    print(f"failover into FAULT: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n1 to release", lambda: not lab["n1"].has(VIP), 2)
    s1 = a1.status()["instances"]["VI_1"]
    assert s1["state"] == "FAULT"
    assert s1["faults"] == {"script:chk_file": "vrrp_script chk_file failed"}
    assert s1["effective_priority"] == 150  # weight 0 never moves the priority
    assert a1.status()["vrrp_scripts"]["chk_file"]["state"] == "DOWN"

    flag.touch()
    # Leaving FAULT is BACKUP first, for a Master_Down, then preemption.
    wait_for("n1 to leave FAULT", lambda: a1.state() in ("BACKUP", "MASTER"), RISE * INTERVAL + 1)
    bound = RISE * INTERVAL + master_down_interval(3, 150, ADVERT_INT) + MARGIN
    took = wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP), bound + 2)
    print(f"failback out of FAULT: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n2 to release", lambda: not lab["n2"].has(VIP), 2)
    s1 = a1.status()["instances"]["VI_1"]
    assert s1["state"] == "MASTER" and s1["faults"] == {}
    log = a1.log()
    entered_backup = log.index("(VI_1) Entering BACKUP STATE (fault cleared (script:chk_file))")
    assert entered_backup < log.rindex("(VI_1) Entering MASTER STATE")
    assert log.index("(VI_1) Entering FAULT STATE (vrrp_script chk_file failed)") < entered_backup


def pgrep(marker: str) -> str:
    return subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout


def test_hanging_script_is_killed_with_its_children_and_counts_as_failure(
    lab: Lab, flags: Path
) -> None:
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    hang = flags / "hang.sh"
    # A background child shares the script's process group: killing only the
    # script would leave it running.
    hang.write_text(f"#!/bin/sh\n/bin/sleep 600.{marker} &\n/bin/sleep 601.{marker}\n")
    hang.chmod(0o755)
    interval, timeout = 3.0, 0.5
    cfg = conf(150, hang, interval=interval, timeout=timeout, fall=1)
    cfg["vrrp_scripts"]["chk_file"]["script"] = str(hang)
    started = time.monotonic()
    a1 = lab.agent("n1", cfg)

    def down() -> bool:
        return a1.status()["vrrp_scripts"]["chk_file"]["state"] == "DOWN"

    wait_for("the check to time out", down, timeout + 2)
    took = time.monotonic() - started
    assert took < interval, "the next run started before the first one was judged"
    assert pgrep(marker) == "", "the timed-out check left processes behind"
    chk = a1.status()["vrrp_scripts"]["chk_file"]
    assert chk["last_exit"] is None and chk["failures"] == 1
    assert "vrrp_script chk_file: DOWN after 1 failure (timed out after 0.5s, killed)" in a1.log()
    wait_for("n1 master", lambda: lab["n1"].has(VIP), 5)
    assert a1.status()["instances"]["VI_1"]["effective_priority"] == 90

    # Stopping the agent while a check runs kills that check too.
    wait_for("the second run", lambda: pgrep(marker) != "", interval + 2)
    assert a1.stop() == 0
    assert pgrep(marker) == "", "a check outlived the agent"


def test_reload_keeps_an_unchanged_scripts_state(lab: Lab, flags: Path) -> None:
    a1, a2, flag = elect(lab, flags)
    flag.unlink()
    wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), 5)
    base = conf(150, flag)

    # An unrelated instance is added: chk_file stays DOWN, the VIP stays put.
    extra = dict(base["vrrp_instances"]["VI_1"], virtual_router_id=52)
    extra.update(virtual_ipaddress=["10.99.0.101/24"], track_script=[])
    a1.rewrite({**base, "vrrp_instances": {**base["vrrp_instances"], "VI_2": extra}})
    a1.signal(signal.SIGHUP)
    wait_for("reload", lambda: a1.status()["reloads"] == 1, 3)
    time.sleep(2 * INTERVAL)
    st = a1.status()
    assert st["vrrp_scripts"]["chk_file"]["state"] == "DOWN"
    assert st["vrrp_scripts"]["chk_file"]["failures"] >= FALL + 2, "the runner was restarted"
    assert st["instances"]["VI_1"]["effective_priority"] == 90
    assert lab["n2"].has(VIP) and not lab["n1"].has(VIP)

    # Only the weight changes: still DOWN, the new weight applies at once.
    base["vrrp_scripts"]["chk_file"]["weight"] = -100
    a1.rewrite(base)
    a1.signal(signal.SIGHUP)
    wait_for("reload", lambda: a1.status()["reloads"] == 2, 3)
    st = a1.status()
    assert st["vrrp_scripts"]["chk_file"]["state"] == "DOWN"
    assert st["instances"]["VI_1"]["effective_priority"] == 50

    # A changed command is a new script: it starts UP (keepalived's default)
    # and this one stays UP, so n1 takes its VIP back.
    base["vrrp_scripts"]["chk_file"]["script"] = "/bin/true"
    a1.rewrite(base)
    a1.signal(signal.SIGHUP)
    wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP), 5)
    assert a1.status()["vrrp_scripts"]["chk_file"]["state"] == "UP"
    assert lab["n1"].has(VIP) and not lab["n2"].has(VIP)
    assert "vrrp_script chk_file" not in "".join(
        line for line in a1.log().splitlines() if "ERROR" in line
    )


def test_what_a_check_leaves_running_is_killed_when_it_exits(lab: Lab) -> None:
    """`sleep N & exit 0` every 0.2 s: before, every run left its sleep behind
    (17 alive after 3 s, and they outlive the agent)."""
    marker = f"100000.{random.randrange(10**6, 10**7)}"  # this test's sleeps only
    config = {
        "global_defs": {"script_user": SCRIPT_USER},
        "vrrp_scripts": {
            "chk_fork": {"script": f"/bin/sh -c 'sleep {marker} & exit 0'", "interval": 0.2}
        },
        "vrrp_instances": {"VI_1": vrrp_instance(150, VIP, ADVERT_INT, track_script=["chk_fork"])},
    }
    agent = lab.agent("n1", config)

    def alive() -> int:
        out = subprocess.run(["pgrep", "-c", "-f", f"sleep {marker}"], capture_output=True)
        return int(out.stdout or 0)

    seen = []
    for _ in range(15):
        time.sleep(0.2)
        seen.append(alive())
    assert agent.status()["vrrp_scripts"]["chk_fork"]["state"] == "UP"
    # At most the sleep of a run that has not been reaped yet.
    assert max(seen) <= 1, seen
    assert agent.stop() == 0
    assert alive() == 0


def test_a_missing_default_script_user_runs_checks_as_root(lab: Lab, flags: Path) -> None:
    """keepalived's fallback: where the default user (vrrp_script) does not
    exist, as on a host set up by hand, checks run as root, and status says so."""
    flag = flags / "healthy-n1"
    flag.touch()
    cfg = conf(150, flag)
    del cfg["global_defs"]["script_user"]
    a1 = lab.agent("n1", cfg)
    # A check starts UP; FALL intervals decide whether it can run at all.
    wait_for(
        "the check to run",
        lambda: (c := a1.status()["vrrp_scripts"]["chk_file"])["successes"] + c["failures"] >= FALL,
        FALL * INTERVAL + MARGIN + 2,
    )
    st = a1.status()
    assert st["vrrp_scripts"]["chk_file"]["state"] == "UP"
    assert st["vrrp_scripts"]["chk_file"]["last_exit"] == 0
    assert st["script_user"] == {"name": "root", "fallback": True}
