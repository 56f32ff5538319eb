"""track_interface, track_file and script security on real namespaces, two
agents per case: n1 (150) is master, n2 (100) takes over when n1's tracked
interface or file says so, and n1 takes the VIP back when it recovers.

Bounds are derived from the settings: the agent polls links and files every
LINK_CHECK_INTERVAL (POLL), then the protocol's own timer runs; MARGIN covers
scheduling and polling `ip addr` / `status` from here.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import yaml

from labkit.netns import Agent, Lab, sh, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time
from vrrp_agent.daemon import LINK_CHECK_INTERVAL as POLL

VIP = "10.99.0.100"
ADVERT_INT = 0.5
MARGIN = 0.5
SCRIPT_USER = "nobody"


def conf(priority: int, **inst: object) -> dict:
    return {
        "global_defs": {"script_user": SCRIPT_USER},
        "vrrp_instances": {"VI_1": vrrp_instance(priority, VIP, ADVERT_INT, **inst)},
    }


def elect(lab: Lab, n1: dict, n2: dict | None = None) -> tuple[Agent, Agent]:
    a1 = lab.agent("n1", n1)
    a2 = lab.agent("n2", n2 or conf(100))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2)
    wait_for(
        "n2 to hear n1", lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1", 3
    )
    return a1, a2


def port(lab: Lab, host: str, link: int, state: str) -> None:
    """The switch side of a host's ethN: down is a pulled cable (no carrier)."""
    i = int(host.removeprefix("n"))
    sh("ip", "-n", lab.switch, "link", "set", f"p{i}k{link}", state)


def moves(lab: Lab, to: str, bound: float, what: str) -> float:
    other = "n2" if to == "n1" else "n1"
    took = wait_for(f"{to} to take the VIP ({what})", lambda: lab[to].has(VIP), bound + 2)
    print(f"{what}: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound, f"{what} took {took:.3f}s, bound {bound:.3f}s"
    wait_for(f"{other} to release", lambda: not lab[other].has(VIP), 2)
    return took


def vi(agent: Agent) -> dict:
    return agent.status()["instances"]["VI_1"]


# ----------------------------------------------------------- track_interface


def test_tracked_interface_without_weight_faults_on_carrier_loss(lab_two_links: Lab) -> None:
    lab = lab_two_links
    a1, a2 = elect(lab, conf(150, track_interface=["eth1"]))
    assert vi(a1)["track_interface"] == {"eth1": {"state": "UP", "weight": 0}}

    port(lab, "n1", 1, "down")
    # FAULT on a master sends priority 0: n2 waits only its Skew_Time.
    moves(lab, "n2", POLL + skew_time(3, 100, ADVERT_INT) + MARGIN, "failover into FAULT")
    s1 = vi(a1)
    assert s1["state"] == "FAULT"
    assert s1["faults"] == {"iface:eth1": "tracked interface eth1 is down"}
    assert s1["track_interface"] == {"eth1": {"state": "DOWN", "weight": 0}}
    assert s1["effective_priority"] == 150
    assert "interface eth1 is DOWN" in a1.log()

    port(lab, "n1", 1, "up")
    # Out of FAULT into BACKUP, then preemption when Master_Down (at 150) runs out.
    moves(lab, "n1", POLL + master_down_interval(3, 150, ADVERT_INT) + MARGIN, "failback")
    s1 = vi(a1)
    assert s1["state"] == "MASTER" and s1["faults"] == {}
    assert "(VI_1) Entering BACKUP STATE (fault cleared (iface:eth1))" in a1.log()


def test_weighted_tracked_interface_lowers_the_priority_while_down(lab_two_links: Lab) -> None:
    lab = lab_two_links
    a1, a2 = elect(lab, conf(150, track_interface=[{"name": "eth1", "weight": -60}]))

    lab["n1"].run("ip", "link", "set", "eth1", "down")  # administratively down
    # n1 advertises 90 at once; n2 (100) drops it and its Master_Down, armed
    # by n1's last 150 advert, runs out.
    moves(lab, "n2", POLL + master_down_interval(3, 100, ADVERT_INT) + MARGIN, "failover")
    s1 = vi(a1)
    assert (s1["state"], s1["effective_priority"], s1["priority"]) == ("BACKUP", 90, 150)
    assert s1["faults"] == {}
    assert s1["track_delta"] == {"track_script": 0, "track_interface": -60, "track_file": 0}
    assert "(VI_1) effective priority 150 -> 90 (track_interface)" in a1.log()

    lab["n1"].run("ip", "link", "set", "eth1", "up")
    moves(lab, "n1", POLL + master_down_interval(3, 90, ADVERT_INT) + MARGIN, "failback")
    assert vi(a1)["effective_priority"] == 150
    assert "(VI_1) effective priority 90 -> 150 (track_interface)" in a1.log()


def test_own_interface_without_carrier_faults_the_instance(lab_two_links: Lab) -> None:
    lab = lab_two_links
    a1, a2 = elect(lab, conf(150))
    assert vi(a1)["link"] == "UP"

    port(lab, "n1", 0, "down")
    # n2 hears nothing from n1 any more (not even its priority-0 advert).
    moves(lab, "n2", POLL + master_down_interval(3, 100, ADVERT_INT) + MARGIN, "failover")
    s1 = vi(a1)
    assert s1["state"] == "FAULT" and s1["link"] == "DOWN"
    assert s1["faults"] == {"link:eth0": "interface eth0 is down"}

    port(lab, "n1", 0, "up")
    moves(lab, "n1", POLL + master_down_interval(3, 150, ADVERT_INT) + MARGIN, "failback")
    assert vi(a1)["faults"] == {}


# ---------------------------------------------------------------- track_file


def put(path: Path, text: str) -> None:
    # Renamed into place, as a careful writer does; FileReading's unit tests
    # cover the in-place `echo > file` a poll can catch half-done.
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_track_file_with_weight_zero_faults_on_a_non_zero_value(
    lab_two_links: Lab, tmp_path: Path
) -> None:
    lab = lab_two_links
    flag = tmp_path / "n1.fault"
    put(flag, "0\n")
    a1, a2 = elect(lab, conf(150, track_file=[{"name": str(flag), "weight": 0}]))
    assert vi(a1)["track_file"] == {str(flag): {"value": 0, "weight": 0, "note": None}}

    put(flag, "1\n")
    moves(lab, "n2", POLL + skew_time(3, 100, ADVERT_INT) + MARGIN, "failover into FAULT")
    s1 = vi(a1)
    assert s1["state"] == "FAULT"
    assert s1["faults"] == {f"file:{flag}": f"track_file {flag} holds 1"}
    assert f"track_file {flag}: 0 -> 1" in a1.log()

    put(flag, "0\n")
    moves(lab, "n1", POLL + master_down_interval(3, 150, ADVERT_INT) + MARGIN, "failback")
    assert vi(a1)["faults"] == {}


def test_track_file_value_is_added_to_the_priority(lab_two_links: Lab, tmp_path: Path) -> None:
    lab = lab_two_links
    prio = tmp_path / "n1.prio"  # absent at start: it counts as 0
    a1, a2 = elect(lab, conf(150, track_file=[str(prio)]))
    assert vi(a1)["track_file"][str(prio)] == {
        "value": 0,
        "weight": 1,  # keepalived's track_file default
        "note": "missing; it counts as 0",
    }

    put(prio, "-60\n")
    moves(lab, "n2", POLL + master_down_interval(3, 100, ADVERT_INT) + MARGIN, "failover")
    s1 = vi(a1)
    assert (s1["effective_priority"], s1["state"]) == (90, "BACKUP")
    assert "(VI_1) effective priority 150 -> 90 (track_file)" in a1.log()

    # Not a number: read as keepalived does (0), and said in the log.
    put(prio, "oops\n")
    moves(lab, "n1", POLL + master_down_interval(3, 90, ADVERT_INT) + MARGIN, "failback")
    assert vi(a1)["effective_priority"] == 150
    assert f"track_file {prio}: 'oops' is not a number; it counts as 0" in a1.log()


# ----------------------------------------------------------- script security


def validate(lab: Lab, path: Path) -> tuple[int, str]:
    r = lab["n1"].run(
        sys.executable, "-m", "vrrp_agent.cli", "validate", "-c", str(path), check=False
    )
    return r.returncode, r.stderr


def test_insecure_script_is_refused_by_validate_and_reload_and_disabled_at_start(
    lab_two_links: Lab, flags: Path
) -> None:
    lab = lab_two_links
    checks = flags / "checks"
    checks.mkdir(mode=0o777)
    checks.chmod(0o777)  # anyone may replace what is in it
    chk = checks / "chk.sh"
    chk.write_text("#!/bin/sh\nexit 0\n")
    chk.chmod(0o755)
    cfg = conf(150, track_script=["chk"])
    cfg["vrrp_scripts"] = {"chk": {"script": str(chk), "interval": 0.5, "weight": 0}}
    path = lab.tmp / "n1-secure.yml"
    path.write_text(yaml.safe_dump(cfg))
    code, err = validate(lab, path)
    assert code == 2
    assert err.splitlines() == [
        f"{path}: vrrp_scripts.chk.script: {chk}: directory {checks} is writable by"
        " everyone (mode 0777) on this host (enable_script_security)"
    ]

    # The agent starts anyway, as keepalived does, but never runs the script:
    # it counts as failed, so with weight 0 n1 stays in FAULT and n2 is master.
    a1 = lab.agent("n1", cfg)
    a2 = lab.agent("n2", conf(100))
    wait_for("n2 master", lambda: lab["n2"].has(VIP), master_down_interval(3, 100, ADVERT_INT) + 2)
    st = a1.status()
    assert st["vrrp_scripts"]["chk"]["state"] == "DOWN"
    assert st["vrrp_scripts"]["chk"]["disabled"] == "insecure (enable_script_security)"
    assert st["vrrp_scripts"]["chk"]["last_exit"] is None  # never ran
    assert st["instances"]["VI_1"]["state"] == "FAULT"
    assert "is writable by everyone (mode 0777) on this host" in a1.log()
    assert not lab["n1"].has(VIP)

    # Fixed on disk: validate passes, a reload runs the script, n1 takes over.
    checks.chmod(0o755)
    assert validate(lab, a1.config_path)[0] == 0
    a1.signal(signal.SIGHUP)
    wait_for("reload", lambda: a1.status()["reloads"] == 1, 3)
    moves(lab, "n1", 0.5 + master_down_interval(3, 150, ADVERT_INT) + MARGIN, "failback")
    st = a1.status()
    assert st["vrrp_scripts"]["chk"]["disabled"] is None
    assert st["vrrp_scripts"]["chk"]["last_exit"] == 0

    # Insecure again: the reload is refused with the same message, nothing changes.
    checks.chmod(0o777)
    a1.signal(signal.SIGHUP)
    wait_for("the refusal", lambda: a1.log().count("reload refused") == 1, 3)
    assert a1.status()["reloads"] == 1
    assert a1.log().count(f"directory {checks} is writable by everyone") == 2
    assert lab["n1"].has(VIP) and a2.state() == "BACKUP"
