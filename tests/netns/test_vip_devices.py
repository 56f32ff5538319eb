"""A VIP on another device than the instance's (`dev eth1` while the
instance runs on eth0), when that device goes away and comes back.

The device is deleted and created again (a new ifindex), as a re-plugged
NIC or a re-created VLAN. The agent must resolve the device by name when it
adds the VIP (an index cached at start names a device that no longer
exists: ENODEV forever), say in `status` that the VIP is configured but not
present, retry the add, and go to FAULT when it cannot add it for
Master_Down_Interval, so that the peer serves the VIP.

Bounds: the link poll (POLL) notices the device change; a retry is at most
one advertisement interval away (core.vip_retry caps the backoff there);
giving up takes one Master_Down_Interval after the first failure; the peer
takes over Skew_Time after our priority-0 advert. MARGIN covers process
scheduling on a loaded two-core machine and polling `ip addr`.
"""

from __future__ import annotations

import json
import signal
import sys
import time

from labkit.netns import Lab, sh
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time
from vrrp_agent.daemon import LINK_CHECK_INTERVAL as POLL

VIP = "10.99.1.100"
ADV = 0.5
P1, P2 = 200, 100
MARGIN = 0.5


def conf(priority: int) -> dict:
    inst = {
        "interface": "eth0",
        "virtual_router_id": 51,
        "priority": priority,
        "advert_int": ADV,
        "virtual_ipaddress": [f"{VIP}/24 dev eth1"],
    }
    return {"vrrp_instances": {"VI_1": inst}}


def unplug_eth1(lab: Lab, i: int) -> None:
    sh("ip", "-n", lab.switch, "link", "del", f"p{i}k1")


def replug_eth1(lab: Lab, i: int) -> None:
    """A new eth1 (new ifindex) with the old address, as after a reconnect."""
    ns = lab[f"n{i}"].ns
    sh("ip", "-n", lab.switch, "link", "add", f"p{i}k1", "type", "veth", "peer", "eth1",
       "netns", ns)  # fmt: skip
    sh("ip", "-n", lab.switch, "link", "set", f"p{i}k1", "master", "br1", "up")
    sh("ip", "-n", ns, "addr", "add", f"10.99.1.{i}/24", "dev", "eth1")
    sh("ip", "-n", ns, "link", "set", "eth1", "up")


def elect(lab: Lab) -> tuple:
    a1 = lab.agent("n1", conf(P1))
    a2 = lab.agent("n2", conf(P2))
    wait_for("n1 to hold the VIP on eth1", lambda: lab["n1"].has(VIP, "eth1"),
             master_down_interval(3, P1, ADV) + 2)  # fmt: skip
    wait_for("n2 to hear n1",
             lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1", 3)  # fmt: skip
    return a1, a2


def vip_status(agent: object) -> tuple[bool, str]:
    st = agent.status()["instances"]["VI_1"]  # type: ignore[attr-defined]
    return st["holds_vips"], st.get("vips", {}).get(f"{VIP}/24", "<no per-VIP field>")


def test_vip_comes_back_on_the_recreated_device_and_status_tells_meanwhile(
    lab_two_links: Lab,
) -> None:
    lab = lab_two_links
    a1, _a2 = elect(lab)
    before = vip_status(a1)
    unplug_eth1(lab, 1)
    # One poll and a margin: the agent has seen the device go and tried again.
    time.sleep(POLL + MARGIN)
    meanwhile = vip_status(a1)
    replug_eth1(lab, 1)
    # Whether n1 retried in time or went through FAULT and preempted back.
    bound = POLL + ADV + master_down_interval(3, P1, ADV) + MARGIN
    took = wait_for("the VIP back on n1's new eth1", lambda: lab["n1"].has(VIP, "eth1"), bound)
    print(f"VIP back on the new eth1 after {took:.3f}s (bound {bound:.3f}s)")
    assert a1.state() == "MASTER"
    assert before == (True, "present")
    print(f"status while eth1 was gone: {meanwhile}")
    assert meanwhile[0] is False
    assert meanwhile[1].startswith("configured, not present: ENODEV"), meanwhile
    wait_for("n1 status to say present", lambda: vip_status(a1) == (True, "present"), 1)


def test_a_vip_that_cannot_be_added_faults_the_master_and_the_peer_serves(
    lab_two_links: Lab,
) -> None:
    lab = lab_two_links
    a1, a2 = elect(lab)
    unplug_eth1(lab, 1)  # and not back for a while
    started = time.monotonic()
    bound = POLL + master_down_interval(3, P1, ADV) + MARGIN
    wait_for("n1 to go FAULT", lambda: a1.state() == "FAULT", bound)
    took = wait_for("n2 to hold the VIP", lambda: lab["n2"].has(VIP, "eth1"),
                    bound + skew_time(3, P2, ADV))  # fmt: skip
    print(
        f"n2 serves the VIP {time.monotonic() - started:.3f}s after the device went ({took:.3f}s after n1's FAULT)"
    )
    assert a2.state() == "MASTER"
    faults = a1.status()["instances"]["VI_1"]["faults"]
    assert "ENODEV" in faults.get("vips", ""), faults
    # The table says it too, once a probe in FAULT found the device missing.
    wait_for("a probe in FAULT", lambda: vip_status(a1)[1].startswith("configured, not"), ADV + 0.5)
    table = lab["n1"].run(sys.executable, "-m", "vrrp_agent.cli", "status", "-c",
                          str(a1.config_path), check=False).stdout  # fmt: skip
    assert f"VI_1: {VIP}/24 configured, not present: ENODEV no such device eth1" in table, table
    # The device back: the fault clears, n1 is a backup again and preempts n2.
    replug_eth1(lab, 1)
    bound = POLL + ADV + master_down_interval(3, P1, ADV) + MARGIN
    wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP, "eth1"), bound)
    wait_for("n2 to yield", lambda: not lab["n2"].has(VIP, "eth1"), 2)
    assert a1.state() == "MASTER"
    assert a2.state() == "BACKUP"


# --- virtual_routes with the routed VIP on lo ------------------------------------

LO_VIP = "10.99.9.1"
ROUTES = [
    f"src {LO_VIP} to 10.98.0.0/24 via 10.99.1.254 dev eth1 table 100",
    "blackhole 10.97.0.0/16",
]


def routed_conf(priority: int) -> dict:
    inst = {
        "interface": "eth0",
        "virtual_router_id": 52,
        "priority": priority,
        "advert_int": ADV,
        # the routed-VIP shape FRR announces: a /32 on lo
        "virtual_ipaddress": [f"{LO_VIP}/32 dev lo"],
        "virtual_routes": ROUTES,
    }
    return {"vrrp_instances": {"VI_1": inst}}


def our_routes(lab: Lab, host: str) -> set[str]:
    """Our routes (proto 112) in table 100 and main, as 'TABLE TYPE DST'."""
    out = set()
    for table in ("100", "main"):
        done = sh("ip", "-n", lab[host].ns, "-j", "route", "show", "table", table,
                  "proto", "112", check=False)  # fmt: skip
        if done.returncode:  # `ip` fails on a table that never held a route
            continue
        for r in json.loads(done.stdout or "[]"):
            out.add(f"{table} {r.get('type', 'unicast')} {r['dst']} {r.get('prefsrc', '-')}")
    return out


EXPECTED = {f"100 unicast 10.98.0.0/24 {LO_VIP}", "main blackhole 10.97.0.0/16 -"}


def holds(lab: Lab, host: str) -> bool:
    return lab[host].has(LO_VIP, "lo") and our_routes(lab, host) == EXPECTED


def test_virtual_routes_follow_the_master_and_a_crash_leaves_none_behind(
    lab_two_links: Lab,
) -> None:
    lab = lab_two_links
    down = master_down_interval(3, P1, ADV) + 2
    a1 = lab.agent("n1", routed_conf(P1))
    a2 = lab.agent("n2", routed_conf(P2))
    wait_for("n1 to hold the VIP on lo and its routes", lambda: holds(lab, "n1"), down)
    assert our_routes(lab, "n2") == set() and not lab["n2"].has(LO_VIP, "lo")
    st = a1.status()["instances"]["VI_1"]
    assert st["vips"] == {f"{LO_VIP}/32": "present"}
    assert [(r["route"], r["present"]) for r in st["virtual_routes"]] == [
        (f"src {LO_VIP} 10.98.0.0/24 via 10.99.1.254 dev eth1 table 100", True),
        ("blackhole 10.97.0.0/16", True),
    ]
    # Failover: SIGTERM takes the routes (before the VIP) off n1, n2 adds them.
    assert a1.stop() == 0
    assert our_routes(lab, "n1") == set() and not lab["n1"].has(LO_VIP, "lo")
    wait_for("n2 to take the VIP and the routes", lambda: holds(lab, "n2"),
             skew_time(3, P2, ADV) + MARGIN + 1)  # fmt: skip
    # n1 back preempts: the routes leave n2, which keeps running as backup.
    a1 = lab.agent("n1", routed_conf(P1))
    wait_for("n1 to hold them again", lambda: holds(lab, "n1"), down)
    wait_for("n2 to drop them", lambda: our_routes(lab, "n2") == set(), 2)
    assert a2.state() == "BACKUP"
    assert [r["present"] for r in a2.status()["instances"]["VI_1"]["virtual_routes"]] == [False] * 2
    # A crash leaves them in the kernel; the restarted agent's start-up
    # cleanup removes them before it waits for Master_Down.
    a1.signal(signal.SIGKILL)
    a1.proc.wait(5)
    assert our_routes(lab, "n1") == EXPECTED
    wait_for("n2 to take over", lambda: holds(lab, "n2"), down)
    a1 = lab.agent("n1", routed_conf(P1))
    assert our_routes(lab, "n1") == set() and not lab["n1"].has(LO_VIP, "lo")
    wait_for("n1 master again", lambda: holds(lab, "n1"), down)
    # lo has no ARP: nothing was announced there, and nothing was warned about.
    assert "announcing" not in a1.log() and "announcing" not in a2.log()
    assert a1.stop() == 0
    assert our_routes(lab, "n1") == set()
