"""lvs_nginx: director1 holds the VIP and balances it round robin with direct
routing (DR) over web1 and web2; director2 is its VRRP backup and programs
nothing until it takes the VIP. Each real server's checker takes it out of the
schedule when its nginx stops and back when it returns; freezing the active
director moves the VIP, and the balancing with it, to the other director."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from drills import (
    DRILLS,
    MARGIN,
    agent_status,
    host,
    make_master,
    real_server_down_bound,
    settled,
    virtual_server,
)

from labkit.podman import Probe, answers, mac, neighbour
from labkit.poll import wait_for
from labkit.vips import holders, spread

DIRECTORS = ("director1", "director2")
WEBS = ("web1", "web2")
VIP = "10.89.90.200"
WEB_IP = {"web1": "10.89.90.41", "web2": "10.89.90.42"}
PAGE = {w: f"Hello from {w}" for w in WEBS}
RS = {w: f"{ip}:80" for w, ip in WEB_IP.items()}
N = 20  # requests per spread check

# The checker's timings, as the scenario's inventory sets them.
_VARS = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())["provisioner"][
    "inventory"
]["group_vars"]["all"]
DELAY_LOOP = float(_VARS["vrrp_lvs_delay_loop"])
# nginx stopped: refused at once, but the bound allows each attempt its full timeout.
RS_DOWN = (
    real_server_down_bound(
        DELAY_LOOP,
        float(_VARS["vrrp_lvs_connect_timeout"]),
        int(_VARS["vrrp_lvs_retry"]),
        float(_VARS["vrrp_lvs_delay_before_retry"]),
    )
    + MARGIN
)
# nginx back: the next check, at most delay_loop later, passes and schedules it. (The
# agent's general bound adds 2 x connect_timeout for an attempt still running to its
# deadline; against a stopped nginx every attempt is refused at once.)
RS_UP = DELAY_LOOP + MARGIN
FROZEN = DRILLS["frozen"]  # Master_Down(100) to take over, an advert to take back
CLEAN = 2.0  # seconds a settled probe must stay clean before the next step


def at_home() -> None:
    """Each drill starts with director1 balancing over both real servers."""
    for web in WEBS:
        r = host(web).run("systemctl start nginx")
        assert r.rc == 0, r.stderr
    make_master(VIP, "director1", "director2")

    def both_scheduled() -> bool:
        vs = virtual_server("director1", VIP)
        return vs["active"] and sorted(vs["scheduled"]) == sorted(RS.values())

    wait_for("director1 to schedule both real servers", both_scheduled, RS_UP + 5, 0.2)


def test_directors_run_the_agent_and_real_servers_serve_the_vip() -> None:
    for d in DIRECTORS:
        assert host(d).service("vrrp-agent").is_running, d
        assert not host(d).package("nginx").is_installed, f"{d} is a director, not a web server"
        # Only DR's own forwarding carries the VIP's traffic (molecule.yml).
        assert host(d).sysctl("net.ipv4.ip_forward") == 0, d
        cfg = yaml.safe_load(host(d).file("/etc/vrrp-agent/agent.yml").content_string)
        [vs] = cfg["virtual_servers"]
        assert (vs["ip"], vs["lb_kind"], vs["lb_algo"]) == (VIP, "DR", "rr")
        assert [(r["ip"], r["port"]) for r in vs["real_servers"]] == [(WEB_IP[w], 80) for w in WEBS]
        for r in vs["real_servers"]:
            assert r["HTTP_GET"]["url"] == {"path": "/", "status_code": 200}, r
    for web in WEBS:
        h = host(web)
        assert h.service("nginx").is_running and h.service("nginx").is_enabled, web
        assert h.service("lvs-realserver").is_enabled, web
        lo = h.run("ip -o addr show dev lo").stdout
        assert f"{VIP}/32" in lo, lo
        for key in ("all.arp_ignore", "lo.arp_ignore"):
            assert h.sysctl(f"net.ipv4.conf.{key}") == 1, (web, key)
        for key in ("all.arp_announce", "lo.arp_announce"):
            assert h.sysctl(f"net.ipv4.conf.{key}") == 2, (web, key)
        # The real servers hold the VIP, but only on lo: no ARP answer from them.
        assert not h.run(f"ip -o addr show dev eth0 | grep -w {VIP}").stdout


def test_only_the_vip_holder_programs_the_virtual_server() -> None:
    at_home()
    assert holders(VIP, DIRECTORS) == ["director1"]
    active, standby = virtual_server("director1", VIP), virtual_server("director2", VIP)
    for d, vs in (("director1", active), ("director2", standby)):
        states = {rs: v["state"] for rs, v in vs["real_servers"].items()}
        print(f"\n{d}: active {vs['active']}, {vs['data_plane']}, scheduled {vs['scheduled']}, "
              f"real servers {states}", end="")  # fmt: skip
    print()
    assert (active["active"], standby["active"]) == (True, False)
    assert active["lb_kind"] == "DR" and active["lb_algo"] == "rr"
    assert active["on_sorry_server"] is False
    # Both directors check the real servers: a backup that takes over knows them.
    for vs in (active, standby):
        assert {rs: vs["real_servers"][rs]["state"] for rs in RS.values()} == {
            rs: "UP" for rs in RS.values()
        }
    st = agent_status("director2")["instances"]["VI_1"]
    assert (st["state"], st["master_ip"]) == ("BACKUP", "10.89.90.31")


def test_fresh_connections_are_spread_round_robin_over_both_real_servers() -> None:
    at_home()
    counts = spread(answers(VIP, N), list(PAGE.values()))
    print(f"\n{N} requests through director1: {counts}")


def test_a_stopped_real_server_leaves_the_schedule_and_returns() -> None:
    at_home()
    probe = Probe.start(VIP, 1 + RS_DOWN + CLEAN + RS_UP + CLEAN + 1)
    time.sleep(1)  # both answer first
    stopped = time.time()
    r = host("web1").run("systemctl stop nginx")
    assert r.rc == 0, r.stderr
    try:

        def web1_out() -> bool:
            vs = virtual_server("director1", VIP)
            return vs["real_servers"][RS["web1"]]["state"] == "DOWN" and vs["scheduled"] == [
                RS["web2"]
            ]

        took = wait_for("director1 to mark web1 DOWN", web1_out, RS_DOWN + 5, 0.1)
        print(
            f"\nnginx stopped on web1: DOWN on director1 after {took:.2f}s (bound {RS_DOWN:.2f}s)"
        )
        vs = virtual_server("director1", VIP)
        rs = vs["real_servers"][RS["web1"]]
        print(f"director1: web1 {rs['state']} ({rs['detail']}), scheduled {vs['scheduled']}")
        assert took <= RS_DOWN
        assert vs["active"] and vs["on_sorry_server"] is False
        assert vs["real_servers"][RS["web2"]]["state"] == "UP"
        # Keep probing until the settled stretch is long enough to mean something.
        time.sleep(max(0.0, stopped + RS_DOWN + CLEAN - time.time()))
    finally:
        r = host("web1").run("systemctl start nginx")
        assert r.rc == 0, r.stderr
    started = time.time()

    def web1_back() -> bool:
        vs = virtual_server("director1", VIP)
        return vs["real_servers"][RS["web1"]]["state"] == "UP" and RS["web1"] in vs["scheduled"]

    back = wait_for("director1 to schedule web1 again", web1_back, RS_UP + 5, 0.1)
    print(f"nginx started on web1: UP on director1 after {back:.2f}s (bound {RS_UP:.2f}s)")
    assert back <= RS_UP

    out = [row for row in probe.since(stopped) if row[0] < started - stopped]
    failed = sum(1 for _, ok, _ in out if not ok)
    to_web2 = settled(out, lambda ok, body: ok and body == PAGE["web2"])
    print(
        f"client: {len(out)} requests while web1 was stopped, {failed} failed; "
        f"only web2 answered from {to_web2:.2f}s on (bound {RS_DOWN:.2f}s)"
    )
    assert to_web2 <= RS_DOWN
    assert out[-1][0] - to_web2 >= CLEAN, "too short a settled stretch to judge"

    returned = probe.since(started)
    first = [t for t, ok, body in returned if ok and body == PAGE["web1"]]
    assert first, f"web1 never answered again: {returned[-5:]}"
    print(f"client: web1 answers again {first[0]:.2f}s after nginx started (bound {RS_UP:.2f}s)")
    assert first[0] <= RS_UP
    assert all(ok for _, ok, _ in returned), [r for r in returned if not r[1]]
    assert spread(answers(VIP, N), list(PAGE.values()))


def test_a_frozen_director_hands_the_balancing_to_the_other() -> None:
    at_home()
    macs = {d: mac(d) for d in DIRECTORS}
    # Probes only while the VIP moves: interleaved with `answers` they would
    # take every other turn of the round robin, so the spread is counted apart.
    probe = Probe.start(VIP, FROZEN.failover_bound + 3)
    FROZEN.breaks("director1")
    try:
        took = wait_for(
            "director2 to take the VIP",
            lambda: "director2" in holders(VIP, DIRECTORS),
            FROZEN.failover_bound + 5,
        )
        print(
            f"\nfrozen director1: VIP on director2 after {took:.2f}s "
            f"(bound {FROZEN.failover_bound:.2f}s)"
        )
        assert took <= FROZEN.failover_bound
        vs = virtual_server("director2", VIP)
        assert vs["active"] and sorted(vs["scheduled"]) == sorted(RS.values()), vs
        # Frozen, director1 is silent on the wire (labkit.podman.freeze: a paused
        # container's kernel alone would still answer ARP and forward, its DR
        # rules included). What shows that director2 balances is where the
        # client sends: its GARP on taking over points the client's ARP entry
        # at director2.
        arp = wait_for(
            "the client to send to director2",
            lambda: neighbour("client", VIP) == macs["director2"],
            MARGIN,
        )
        print(f"client's ARP entry for the VIP names director2 {arp:.2f}s after that")
        downtime, answered = probe.downtime()
        print(f"failover: client-visible downtime {downtime:.2f}s; answered by {answered}")
        assert downtime <= FROZEN.failover_bound + 1.0  # + the client's own ARP/TCP retry
        counts = spread(answers(VIP, N), list(PAGE.values()))
        print(f"{N} requests through director2: {counts}")
        probe = Probe.start(VIP, FROZEN.failback_bound + 3)
    finally:
        FROZEN.heals("director1")
    back = wait_for(
        "director1 to take the VIP back",
        lambda: holders(VIP, DIRECTORS) == ["director1"],
        FROZEN.failback_bound + 5,
    )
    print(f"thawed director1: VIP back after {back:.2f}s (bound {FROZEN.failback_bound:.2f}s)")
    assert back <= FROZEN.failback_bound
    # The thawed master never left MASTER, and the client's ARP entry still names
    # director2: director1 re-announces with GARPs, because its advert timer
    # fired late (it was not running for longer than any backup waits) and, like
    # keepalived (garp_lower_prio_repeat), when it hears a lower-priority advert.
    # Without them the client would keep sending to director2, which does not
    # forward (molecule.yml), until the entry expired, and live traffic keeps it fresh.
    arp = wait_for(
        "the client to send to director1 again",
        lambda: neighbour("client", VIP) == macs["director1"],
        FROZEN.failback_bound + 5,
        0.1,
    )
    print(f"client's ARP entry for the VIP names director1 {arp:.2f}s after that")
    assert back + arp <= FROZEN.failback_bound
    wait_for(
        "director2 to drop its rules",
        lambda: not virtual_server("director2", VIP)["active"],
        2,
        0.1,
    )
    assert virtual_server("director1", VIP)["active"]
    downtime, answered = probe.downtime()
    print(f"failback: client-visible downtime {downtime:.2f}s; answered by {answered}")
    assert answered == sorted(PAGE.values())
    assert downtime <= FROZEN.failback_bound + 1.0
    counts = spread(answers(VIP, N), list(PAGE.values()))
    print(f"{N} requests through director1 again: {counts}")
