"""use_vmac on a real bridge: the VIP lives at the RFC's virtual MAC, so a
client's neighbour entry survives a failover untouched.

Bounds come from the protocol's timers (RFC 9568) plus a margin for a busy
two-core machine and for polling `ip`, never from measured figures.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time

from labkit.keepalived import start_keepalived
from labkit.netns import Host, Lab, inside
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

VIP = "10.99.0.100"
VMAC = "00:00:5e:00:01:33"  # VRID 51
ADVERT_INT = 1.0
MARGIN = 2.0  # scheduling on a busy 2-core machine and polling through `ip`
ETH_P_ALL = 0x0003


def conf(priority: int, **kw: object) -> dict:
    inst = {
        "interface": "eth0",
        "virtual_router_id": 51,
        "priority": priority,
        "advert_int": ADVERT_INT,
        "use_vmac": True,
        "virtual_ipaddress": [f"{VIP}/24"],
        **kw,
    }
    return {"vrrp_instances": {"VI_1": inst}}


def elect(lab: Lab, **kw: object) -> tuple:
    a1 = lab.agent("n1", conf(200, **kw))
    a2 = lab.agent("n2", conf(100, **kw))
    wait_for(
        "n1 to hold the VIP on its vmac",
        lambda: holds(lab["n1"], "vrrp.51"),
        master_down_interval(3, 200, ADVERT_INT) + MARGIN,
    )
    # The backup hears the master: on its own vmac (private mode hands a frame
    # from the virtual MAC to the macvlan of that MAC only), or on eth0.
    wait_for(
        "n2 to hear n1",
        lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1",
        ADVERT_INT + MARGIN,
    )
    return a1, a2


def link(host: Host, ifname: str) -> dict | None:
    out = host.run("ip", "-d", "-j", "link", "show", ifname, check=False)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def holds(host: Host, ifname: str) -> bool:
    """Whether `host` has the VIP on `ifname` (False while there is no `ifname`)."""
    out = host.run("ip", "-j", "addr", "show", "dev", ifname, check=False)
    if out.returncode != 0:
        return False
    return any(a["local"] == VIP for li in json.loads(out.stdout) for a in li["addr_info"])


def conf_value(host: Host, ifname: str, key: str) -> int:
    return int(host.run("cat", f"/proc/sys/net/ipv4/conf/{ifname}/{key}").stdout)


def capture_adverts(host: Host, seconds: float) -> list[tuple[str, str]]:
    """(source MAC, source IP) of every VRRP frame `host`'s eth0 sees."""
    with inside(host.ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    seen = []
    try:
        s.bind(("eth0", 0))
        s.settimeout(0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                frame = s.recv(2048)
            except TimeoutError:
                continue
            if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != 0x0800:
                continue
            if frame[14 + 9] == 112:  # IP protocol VRRP
                src_ip = socket.inet_ntoa(frame[14 + 12 : 14 + 16])
                seen.append((frame[6:12].hex(":"), src_ip))
    finally:
        s.close()
    return seen


class NeighbourSampler:
    """Samples the client's neighbour entry for the VIP every 20 ms."""

    def __init__(self, client: Host) -> None:
        self.client = client
        self.samples: list[str | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.client.neighbour(VIP))
            time.sleep(0.02)

    def __enter__(self) -> NeighbourSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ping(client: Host) -> bool:
    return client.run("ping", "-c", "1", "-W", "1", VIP, check=False).returncode == 0


def test_failover_needs_no_arp_update_on_the_client(lab: Lab) -> None:
    a1, a2 = elect(lab)
    n1, n2, n3 = lab["n1"], lab["n2"], lab["n3"]
    for host in (n1, n2):
        vmac = link(host, "vrrp.51")
        assert vmac is not None, f"{host.name} has no vrrp.51"
        assert vmac["address"] == VMAC
        assert vmac["linkinfo"]["info_kind"] == "macvlan"
        assert vmac["linkinfo"]["info_data"]["mode"] == "private"
        # keepalived's devconf, set over netlink
        assert conf_value(host, "vrrp.51", "arp_ignore") == 1
        assert conf_value(host, "vrrp.51", "accept_local") == 1
        assert conf_value(host, "vrrp.51", "rp_filter") == 0
        assert conf_value(host, "eth0", "arp_ignore") == 1
        assert conf_value(host, "eth0", "arp_filter") == 1
        assert conf_value(host, "eth0", "arp_announce") == 2
    assert not holds(n1, "eth0") and not holds(n2, "vrrp.51")
    s1 = a1.status()["instances"]["VI_1"]
    assert (s1["vmac_interface"], s1["vmac_address"], s1["vmac_xmit_base"]) == (
        "vrrp.51",
        VMAC,
        False,
    )
    # On the wire: the master's adverts come from the virtual MAC.
    adverts = capture_adverts(n3, 2.5 * ADVERT_INT)
    assert adverts, "no advert seen on the segment"
    assert set(adverts) == {(VMAC, "10.99.0.1")}

    assert ping(n3)
    assert n3.neighbour(VIP) == VMAC
    with NeighbourSampler(n3) as sampler:
        a1.signal(signal.SIGTERM)  # priority 0: n2 takes over after Skew_Time
        took = wait_for(
            "n2 to hold the VIP on its vmac",
            lambda: holds(n2, "vrrp.51"),
            skew_time(3, 100, ADVERT_INT) + MARGIN,
        )
        assert a1.proc.wait(10) == 0
        assert link(n1, "vrrp.51") is None, "the stopped agent left its vmac"
        assert ping(n3), "the client cannot reach the VIP on the new master"
    print(f"n2 took the VIP {took:.3f}s after n1's SIGTERM; {len(sampler.samples)} samples")
    # The client never had another MAC for the VIP.
    assert len(sampler.samples) >= 10
    assert {m for m in sampler.samples if m is not None} == {VMAC}
    assert n3.neighbour(VIP) == VMAC
    adverts = capture_adverts(n3, 2.5 * ADVERT_INT)
    assert adverts and set(adverts) == {(VMAC, "10.99.0.2")}
    assert a2.state() == "MASTER"
    # n1's base interface has its arp settings back.
    assert [conf_value(n1, "eth0", k) for k in ("arp_ignore", "arp_filter", "arp_announce")] == [
        0,
        0,
        0,
    ]


def test_vmac_xmit_base_sends_adverts_with_the_base_mac(lab: Lab) -> None:
    a1, a2 = elect(lab, vmac_xmit_base=True)
    n1, n3 = lab["n1"], lab["n3"]
    adverts = capture_adverts(n3, 2.5 * ADVERT_INT)
    assert adverts and set(adverts) == {(n1.mac("eth0"), "10.99.0.1")}
    assert holds(n1, "vrrp.51")
    assert ping(n3)
    assert n3.neighbour(VIP) == VMAC
    assert a1.status()["instances"]["VI_1"]["vmac_xmit_base"] is True
    assert a2.state() == "BACKUP"


def test_a_vmac_left_by_a_crash_is_reused_then_removed_at_stop(lab: Lab) -> None:
    n1 = lab["n1"]
    a1 = lab.agent("n1", conf(200))
    wait_for(
        "n1 to hold the VIP",
        lambda: holds(n1, "vrrp.51"),
        master_down_interval(3, 200, ADVERT_INT) + MARGIN,
    )
    index = link(n1, "vrrp.51")["ifindex"]  # type: ignore[index]
    a1.signal(signal.SIGKILL)
    a1.proc.wait(5)
    assert holds(n1, "vrrp.51"), "a crash leaves the vmac and its VIP"
    a2 = lab.agent("n1", conf(200))
    assert "reusing vmac interface vrrp.51 (left by an earlier run)" in a2.log()
    assert link(n1, "vrrp.51")["ifindex"] == index  # type: ignore[index]
    # Start-up cleanup took the leftover VIP off before the election.
    assert "removed virtual addresses 10.99.0.100/24 (start-up cleanup)" in a2.log()
    wait_for(
        "n1 to hold the VIP again",
        lambda: holds(n1, "vrrp.51"),
        master_down_interval(3, 200, ADVERT_INT) + MARGIN,
    )
    assert a2.stop() == 0
    assert link(n1, "vrrp.51") is None
    assert not holds(n1, "eth0")
    # As keepalived: what the base had before the crashed run is not known any
    # more, so its arp settings stay as the vmac needs them.
    assert (conf_value(n1, "eth0", "arp_ignore"), conf_value(n1, "eth0", "arp_filter")) == (1, 1)


def test_a_stale_macvlan_is_replaced_and_a_foreign_interface_refused(lab: Lab) -> None:
    n1 = lab["n1"]
    n1.run("ip", "link", "add", "vrrp.51", "link", "eth0", "address", "02:11:22:33:44:55",
           "type", "macvlan", "mode", "bridge")  # fmt: skip
    a1 = lab.agent("n1", conf(200))
    assert "removing vmac interface vrrp.51: another base, MAC or mode" in a1.log()
    vmac = link(n1, "vrrp.51")
    assert vmac is not None
    assert (vmac["address"], vmac["linkinfo"]["info_data"]["mode"]) == (VMAC, "private")
    assert a1.stop() == 0
    # An interface of the name that is no macvlan is not ours to delete.
    n1.run("ip", "link", "add", "vrrp.51", "type", "veth", "peer", "name", "other51")
    a2 = lab.agent("n1", conf(200), wait=False)
    assert a2.proc.wait(10) == 1
    assert "vrrp_instances.VI_1.use_vmac: interface vrrp.51 exists and is not a macvlan" in a2.log()
    assert link(n1, "vrrp.51")["linkinfo"]["info_kind"] == "veth"  # type: ignore[index]


def test_reload_that_turns_use_vmac_on_and_off_rebuilds_the_interface(lab: Lab) -> None:
    n1 = lab["n1"]
    plain = conf(200)
    del plain["vrrp_instances"]["VI_1"]["use_vmac"]
    a1 = lab.agent("n1", plain)
    bound = master_down_interval(3, 200, ADVERT_INT) + MARGIN
    wait_for("the VIP on eth0", lambda: holds(n1, "eth0"), bound)
    a1.rewrite(conf(200))
    a1.signal(signal.SIGHUP)
    wait_for("the VIP on vrrp.51", lambda: holds(n1, "vrrp.51"), bound)
    assert not holds(n1, "eth0")
    a1.rewrite(plain)
    a1.signal(signal.SIGHUP)
    wait_for("the VIP back on eth0", lambda: holds(n1, "eth0"), bound)
    wait_for("vrrp.51 to go", lambda: link(n1, "vrrp.51") is None, MARGIN)


def test_keepalived_with_use_vmac_against_ours(lab: Lab) -> None:
    """keepalived 2.2.7 (use_vmac, higher priority) and our agent: ours hears
    keepalived on its vmac, and takes the VIP over at the same virtual MAC.

    keepalived leaves arp_announce alone, so answering the client it asks
    for the client's MAC from the VIP over its base interface, and the client
    learns the VIP at keepalived's base MAC; our GARP from the vmac puts the
    entry back to the virtual MAC."""
    n1, n2, n3 = lab["n1"], lab["n2"], lab["n3"]
    ours = lab.agent("n2", conf(100))
    ka_conf = (
        "global_defs {\n    router_id n1\n}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n"
        "    virtual_router_id 51\n    priority 200\n    advert_int 1\n    version 3\n"
        f"    use_vmac\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )
    ka = start_keepalived(lab, "n1", ka_conf)
    wait_for(
        "keepalived to hold the VIP on its vmac",
        lambda: holds(n1, "vrrp.51"),
        master_down_interval(3, 200, ADVERT_INT) + MARGIN,
    )
    wait_for(
        "ours to hear keepalived",
        lambda: ours.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1",
        ADVERT_INT + MARGIN,
    )
    assert not holds(n2, "vrrp.51")
    assert ping(n3)
    assert n3.neighbour(VIP) in (VMAC, n1.mac("eth0"))
    ka.stop()
    wait_for(
        "ours to take the VIP",
        lambda: holds(n2, "vrrp.51"),
        master_down_interval(3, 100, ADVERT_INT) + MARGIN,
    )
    assert ping(n3) and n3.neighbour(VIP) == VMAC


VIP6 = "fd99::100"
VMAC6 = "00:00:5e:00:02:33"


def holds6(host: Host, ifname: str) -> bool:
    out = host.run("ip", "-j", "addr", "show", "dev", ifname, check=False)
    if out.returncode != 0:
        return False
    return any(a["local"] == VIP6 for li in json.loads(out.stdout) for a in li["addr_info"])


def test_ipv6_vmac_fails_over_at_the_same_mac(lab: Lab) -> None:
    """IPv6: the vmac sends from the base's link-local address (added to it,
    since addr_gen_mode none keeps it from making one of its own)."""
    n1, n2, n3 = lab["n1"], lab["n2"], lab["n3"]

    def conf6(priority: int) -> dict:
        c = conf(priority)
        c["vrrp_instances"]["VI_1"]["virtual_ipaddress"] = [f"{VIP6}/64"]
        return c

    a1 = lab.agent("n1", conf6(200))
    a2 = lab.agent("n2", conf6(100))
    bound = master_down_interval(3, 200, ADVERT_INT) + MARGIN
    wait_for("n1 to hold the IPv6 VIP on its vmac", lambda: holds6(n1, "vrrp.51"), bound)
    wait_for(
        "n2 to hear n1",
        lambda: a2.status()["instances"]["VI_1"]["master_ip"].startswith("fe80::"),
        ADVERT_INT + MARGIN,
    )
    for host in (n1, n2):
        vmac = link(host, "vrrp.51")
        assert vmac is not None and vmac["address"] == VMAC6
        lladdrs = {
            a["local"]
            for li in json.loads(host.run("ip", "-j", "addr", "show", "dev", "vrrp.51").stdout)
            for a in li["addr_info"]
            if a["local"].startswith("fe80")
        }
        base_ll = {a for a in host.addresses("eth0") if a.startswith("fe80")}
        assert lladdrs == base_ll, "the vmac has a link-local address of its own"
    assert n3.run("ping", "-6", "-c", "1", "-W", "1", VIP6, check=False).returncode == 0
    assert n3.neighbour(VIP6) == VMAC6
    a1.signal(signal.SIGTERM)
    wait_for(
        "n2 to take the IPv6 VIP", lambda: holds6(n2, "vrrp.51"), skew_time(3, 100, 1) + MARGIN
    )
    assert n3.run("ping", "-6", "-c", "1", "-W", "1", VIP6, check=False).returncode == 0
    assert n3.neighbour(VIP6) == VMAC6


def test_a_vmac_deleted_under_the_master_is_made_again(lab: Lab) -> None:
    n1 = lab["n1"]
    a1 = lab.agent("n1", conf(200))
    bound = master_down_interval(3, 200, ADVERT_INT) + MARGIN
    wait_for("n1 to hold the VIP", lambda: holds(n1, "vrrp.51"), bound)
    n1.run("ip", "link", "del", "vrrp.51")
    # The link poll (0.5 s) or the link event sees it gone: FAULT, made
    # again, then BACKUP and MASTER after Master_Down with nobody else.
    wait_for("the vmac to be made again", lambda: link(n1, "vrrp.51") is not None, 0.5 + MARGIN)
    wait_for("n1 to hold the VIP again", lambda: holds(n1, "vrrp.51"), bound)
    log = a1.log()
    assert "vmac interface vrrp.51 was gone: made it again" in log
    assert "Entering FAULT STATE" in log
    assert a1.state() == "MASTER"
