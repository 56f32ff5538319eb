"""Exclusive dual-master pairs and sync groups, with two real agents.

A sampler thread reads both hosts' addresses every few milliseconds for the
whole test, so "never both VIPs on one node" is checked continuously, not
just at the end. Bounds come from the timers: a check needs FALL (RISE)
intervals, then the preempting backup's Master_Down runs out, then the
displaced side's peer waits one Skew_Time after the priority-0 advert.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from labkit.netns import Agent, Lab, sh
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

VIP1, VIP2 = "10.99.0.100", "10.99.0.101"
ADVERT_INT = 0.5
INTERVAL, FALL, RISE = 0.5, 2, 1
WEIGHT = -60
MARGIN = 0.8


class Sampler(threading.Thread):
    """Which of the two VIPs each host holds, sampled continuously."""

    def __init__(self, lab: Lab, hosts: tuple[str, ...]) -> None:
        super().__init__(daemon=True)
        self.lab, self.hosts = lab, hosts
        self.both_on_one: list[str] = []
        self.samples = 0
        self._halt = threading.Event()

    def held(self, host: str) -> set[str]:
        out = sh("ip", "-n", self.lab[host].ns, "-4", "-br", "addr", "show", "dev", "eth0").stdout
        return {ip for ip in (VIP1, VIP2) if f"{ip}/" in out}

    def run(self) -> None:
        while not self._halt.is_set():
            for h in self.hosts:
                if self.held(h) == {VIP1, VIP2}:
                    self.both_on_one.append(h)
            self.samples += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def node_check(flag: Path) -> dict:
    """The node's health: healthy while `flag` exists."""
    return {
        "script": f"/usr/bin/test -e {flag}",
        "interval": INTERVAL,
        "fall": FALL,
        "rise": RISE,
        "weight": WEIGHT,
    }


def exclusive_conf(home_first: bool, flag: Path) -> dict:
    hi, lo = 150, 100
    inst = {
        "interface": "eth0",
        "advert_int": ADVERT_INT,
        "track_script": ["chk"],
    }
    return {
        "global_defs": {"script_user": "nobody"},
        "vrrp_scripts": {"chk": node_check(flag)},
        "vrrp_instances": {
            "VI_1": {
                **inst,
                "virtual_router_id": 51,
                "priority": hi if home_first else lo,
                "virtual_ipaddress": [f"{VIP1}/24"],
                "exclusive_with": "VI_2",
            },
            "VI_2": {
                **inst,
                "virtual_router_id": 52,
                "priority": lo if home_first else hi,
                "virtual_ipaddress": [f"{VIP2}/24"],
            },
        },
    }


def exclusive_pair(lab: Lab, flags: Path) -> tuple[Agent, Agent, Path, Path, Sampler]:
    """Both nodes healthy, n1 home of VI_1 and n2 of VI_2, sampled from now on."""
    f1, f2 = flags / "n1", flags / "n2"
    f1.touch()
    f2.touch()
    a1 = lab.agent("n1", exclusive_conf(True, f1))
    a2 = lab.agent("n2", exclusive_conf(False, f2))
    s = Sampler(lab, ("n1", "n2"))
    s.start()
    return a1, a2, f1, f2, s


def placed(lab: Lab, s: Sampler, vip1_on: str, vip2_on: str) -> bool:
    return s.held(vip1_on) == {VIP1} and s.held(vip2_on) == {VIP2}


def test_exclusive_pair_swaps_on_one_check_failure_and_swaps_back(lab: Lab, flags: Path) -> None:
    a1, a2, f1, f2, s = exclusive_pair(lab, flags)
    try:
        settle = master_down_interval(3, 100, ADVERT_INT) + 2
        wait_for("home placement", lambda: placed(lab, s, "n1", "n2"), settle + 2)
        st = a1.status()["instances"]["VI_2"]
        assert st["exclusive"]["with"] == "VI_1"

        f1.unlink()
        # n2's VI_1 (100) preempts n1's degraded 90 after its Master_Down;
        # n2's VI_2 steps down with priority 0, n1's VI_2 (40) waits one Skew.
        bound = (
            FALL * INTERVAL
            + master_down_interval(3, 100, ADVERT_INT)
            + skew_time(3, 100 + WEIGHT, ADVERT_INT)
            + MARGIN
        )
        took = wait_for("the swap", lambda: placed(lab, s, "n2", "n1"), bound + 3)
        print(f"swap after n1's check failed: {took:.3f}s (bound {bound:.3f}s)")
        assert took <= bound
        assert "exclusive_with: VI_1 won its election here" in a2.log()
        # Stable: no flapping back and forth while the check stays failed.
        time.sleep(3 * master_down_interval(3, 1, ADVERT_INT))
        assert placed(lab, s, "n2", "n1")
        st2 = a2.status()["instances"]["VI_2"]
        assert st2["state"] == "BACKUP"
        assert st2["exclusive"]["held_back"] is True

        f1.touch()
        bound = (
            RISE * INTERVAL
            + master_down_interval(3, 150, ADVERT_INT)
            + skew_time(3, 150, ADVERT_INT)
            + MARGIN
        )
        took = wait_for("the swap back", lambda: placed(lab, s, "n1", "n2"), bound + 3)
        print(f"swap back after n1's check recovered: {took:.3f}s (bound {bound:.3f}s)")
        assert took <= bound

        # The other node failing swaps the pair too (VI_2's home degrades).
        f2.unlink()
        took = wait_for("the swap on n2's failure", lambda: placed(lab, s, "n2", "n1"), bound + 3)
        print(f"swap after n2's check failed: {took:.3f}s")
        f2.touch()
        wait_for("home again", lambda: placed(lab, s, "n1", "n2"), bound + 3)
    finally:
        s.stop()
    print(f"{s.samples} samples")
    assert s.samples > 100
    assert s.both_on_one == [], f"a node held both VIPs: {s.both_on_one[:5]}"


def test_exclusive_survivor_keeps_its_own_vip_and_says_why(lab: Lab, flags: Path) -> None:
    a1, a2, f1, f2, s = exclusive_pair(lab, flags)
    try:
        wait_for("home placement", lambda: placed(lab, s, "n1", "n2"), 5)
        assert a2.stop() == 0
        # Long enough for any claim: three Master_Downs of the slowest router.
        time.sleep(3 * master_down_interval(3, 1, ADVERT_INT))
        assert s.held("n1") == {VIP1}
        assert s.held("n2") == set()
        vi2 = a1.status()["instances"]["VI_2"]
        assert vi2["state"] == "BACKUP"
        assert vi2["exclusive"]["held_back"] is True
        assert "VI_1 is MASTER here" in vi2["exclusive"]["reason"]
        assert vi2["wants_master"]["kind"] in ("resigned", "master_down")
        table = (
            lab["n1"]
            .run(sys.executable, "-m", "vrrp_agent.cli", "status", "-c", str(a1.config_path))
            .stdout
        )
        row = next(line for line in table.splitlines() if line.startswith("VI_2"))
        assert "BACKUP" in row and "held back: VI_1 is MASTER here" in row, table

        a2 = lab.agent("n2", exclusive_conf(False, f2))
        bound = master_down_interval(3, 150, ADVERT_INT) + MARGIN
        took = wait_for("VIP2 back home", lambda: placed(lab, s, "n1", "n2"), bound + 3)
        print(f"VIP2 back on the restarted node: {took:.3f}s (bound {bound:.3f}s)")
        assert took <= bound
        assert "wants_master" not in a1.status()["instances"]["VI_2"]
    finally:
        s.stop()
    assert s.both_on_one == []


def sync_conf(priority: int, flag: Path) -> dict:
    inst = {"interface": "eth0", "advert_int": ADVERT_INT, "priority": priority}
    return {
        "global_defs": {"script_user": "nobody"},
        # The weight is ignored in a sync group, as keepalived does: a failure is a FAULT.
        "vrrp_scripts": {"chk": node_check(flag)},
        "vrrp_instances": {
            # Only VI_1 tracks the check: the group carries VI_2 along.
            "VI_1": {
                **inst,
                "virtual_router_id": 51,
                "virtual_ipaddress": [f"{VIP1}/24"],
                "track_script": ["chk"],
            },
            "VI_2": {**inst, "virtual_router_id": 52, "virtual_ipaddress": [f"{VIP2}/24"]},
        },
        "vrrp_sync_groups": {
            "VG_1": {
                "group": ["VI_1", "VI_2"],
                # The group's own hook, with keepalived's TYPE NAME STATE PRIORITY.
                "notify": f"/bin/sh -c 'echo \"$*\" >> {flag}.group' hook",
            }
        },
    }


def test_sync_group_members_fail_over_and_back_together(lab: Lab, flags: Path) -> None:
    f1, f2 = flags / "n1", flags / "n2"
    f1.touch()
    f2.touch()
    group_log = Path(f"{f1}.group")
    group_log.touch()
    group_log.chmod(0o666)  # the hook runs as the unprivileged script user
    a1 = lab.agent("n1", sync_conf(150, f1))
    lab.agent("n2", sync_conf(100, f2))
    s = Sampler(lab, ("n1", "n2"))
    wait_for("n1 holds the group", lambda: s.held("n1") == {VIP1, VIP2}, 5)
    assert a1.status()["vrrp_sync_groups"] == {"VG_1": "MASTER"}

    f1.unlink()
    # FAULT on VI_1 faults VI_2; both send priority 0; n2 waits one Skew.
    bound = FALL * INTERVAL + skew_time(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 holds the group", lambda: s.held("n2") == {VIP1, VIP2}, bound + 3)
    print(f"group failover: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    assert s.held("n1") == set()
    st = a1.status()
    assert st["instances"]["VI_1"]["faults"] == {"script:chk": "vrrp_script chk failed"}
    assert st["instances"]["VI_1"]["effective_priority"] == 150
    assert st["instances"]["VI_2"]["state"] == "FAULT"
    assert st["instances"]["VI_2"]["faults"] == {"sync:VG_1": "sync group VG_1: VI_1 in FAULT"}
    assert st["vrrp_sync_groups"] == {"VG_1": "FAULT"}

    f1.touch()
    bound = RISE * INTERVAL + master_down_interval(3, 150, ADVERT_INT) + MARGIN
    took = wait_for("n1 holds the group again", lambda: s.held("n1") == {VIP1, VIP2}, bound + 3)
    print(f"group failback: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n2 releases both", lambda: s.held("n2") == set(), 2)
    assert "(VG_1) sync group entering MASTER STATE" in a1.log()
    assert a1.stop() == 0
    wait_for("the group's STOP hook", lambda: "STOP" in group_log.read_text(), 3)
    lines = group_log.read_text().splitlines()
    # BACKUP at start, MASTER, FAULT, BACKUP on leaving FAULT, MASTER, STOP.
    assert lines == [
        "GROUP VG_1 BACKUP 0",
        "GROUP VG_1 MASTER 0",
        "GROUP VG_1 FAULT 0",
        "GROUP VG_1 BACKUP 0",
        "GROUP VG_1 MASTER 0",
        "GROUP VG_1 STOP 0",
    ], lines


def test_shared_dual_master_survivor_holds_both_and_each_vip_goes_home(
    lab: Lab, flags: Path
) -> None:
    """The default dual-master mode: no exclusive_with, so a node that fails
    its check or dies hands its VIP to the peer, which then holds both."""
    f1, f2 = flags / "n1", flags / "n2"
    f1.touch()
    f2.touch()
    shared = []
    for home_first, flag in ((True, f1), (False, f2)):
        c = exclusive_conf(home_first, flag)
        del c["vrrp_instances"]["VI_1"]["exclusive_with"]
        shared.append(c)
    lab.agent("n1", shared[0])
    a2 = lab.agent("n2", shared[1])
    s = Sampler(lab, ("n1", "n2"))
    wait_for("home placement", lambda: placed(lab, s, "n1", "n2"), 5)

    f1.unlink()
    bound = FALL * INTERVAL + master_down_interval(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 holds both", lambda: s.held("n2") == {VIP1, VIP2}, bound + 3)
    print(f"shared: n2 holds both after n1's check failed: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    assert s.held("n1") == set()

    f1.touch()
    bound = RISE * INTERVAL + master_down_interval(3, 100 + WEIGHT, ADVERT_INT) + MARGIN
    took = wait_for("VIP1 home again", lambda: placed(lab, s, "n1", "n2"), bound + 3)
    print(f"shared: VIP1 back on n1: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound

    assert a2.stop() == 0
    bound = skew_time(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n1 holds both", lambda: s.held("n1") == {VIP1, VIP2}, bound + 3)
    print(f"shared: n1 holds both after n2 stopped: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound

    lab.agent("n2", shared[1])
    bound = master_down_interval(3, 150, ADVERT_INT) + MARGIN
    took = wait_for("VIP2 home again", lambda: placed(lab, s, "n1", "n2"), bound + 3)
    print(f"shared: VIP2 back on the restarted n2: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
