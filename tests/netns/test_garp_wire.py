"""The gratuitous ARPs and unsolicited NAs of one burst, as they leave the host.

keepalived's vrrp_garp_interval / vrrp_gna_interval space the messages of ONE
burst (garp_master_repeat of them on becoming master); they are not a periodic
re-announcement (that is vrrp_garp_master_refresh). Captured with a raw
AF_PACKET socket on the bridge's end of n1's veth, kernel-timestamped.
"""

from __future__ import annotations

import socket
import struct
import time
from ipaddress import IPv6Address, ip_address

from labkit.netns import Lab, inside
from labkit.poll import wait_for

VIP4, VIP6 = "10.99.0.100", "fd99::100"
REPEAT = 5
GARP_INTERVAL, GNA_INTERVAL = 0.2, 0.3
# asyncio.sleep never returns early by more than the clock's resolution; the
# kernel stamps both ends of a gap the same way.
EARLY = 0.01
# Generous: a loaded 2-core machine delays a wake-up by tens of ms, not this.
LATE = 0.5

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def config() -> dict:
    def inst(vrid: int, vip: str, prefix: int) -> dict:
        return {
            "interface": "eth0",
            "virtual_router_id": vrid,
            "priority": 100,
            "advert_int": 0.1,
            "state": "MASTER",  # alone on the segment: master after Skew_Time
            "virtual_ipaddress": [f"{vip}/{prefix}"],
        }

    return {
        "global_defs": {
            "vrrp_garp_master_repeat": REPEAT,
            "vrrp_garp_master_delay": 0,  # no second burst: every message counted is this burst's
            "vrrp_garp_master_refresh": 0,
            "vrrp_garp_interval": GARP_INTERVAL,
            "vrrp_gna_interval": GNA_INTERVAL,
        },
        "vrrp_instances": {"VI_4": inst(51, VIP4, 24), "VI_6": inst(52, VIP6, 64)},
    }


def capture(sock: socket.socket) -> list[tuple[float, bytes]]:
    """Everything queued on the socket: (kernel receive time, frame) sent by the host."""
    frames = []
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return frames
        if addr[2] == PACKET_OUTGOING:  # the bridge's frames towards n1
            continue
        stamp = next(
            (struct.unpack("qq", d[:16]) for lvl, typ, d in anc if typ == SO_TIMESTAMPNS), None
        )
        assert stamp is not None, "no kernel timestamp"
        frames.append((stamp[0] + stamp[1] / 1e9, data))


def garps(frames: list[tuple[float, bytes]], mac: bytes, vip: str) -> list[float]:
    """Times of the gratuitous ARP requests for `vip` at `mac`."""
    out = []
    for t, f in frames:
        if len(f) < 42 or f[12:14] != b"\x08\x06":
            continue
        op, sha, spa, tha, tpa = struct.unpack("!6xH6s4s6s4s", f[14:42])
        if spa == ip_address(vip).packed:
            assert (op, sha, tpa, tha) == (1, mac, spa, bytes(6)), f.hex()
            assert f[:6] == b"\xff" * 6 and f[6:12] == mac
            out.append(t)
    return out


def nas(frames: list[tuple[float, bytes]], mac: bytes, vip: str) -> list[float]:
    """Times of the unsolicited NAs for target `vip` at `mac`."""
    out = []
    for t, f in frames:
        if len(f) < 14 + 40 + 32 or f[12:14] != b"\x86\xdd" or f[14 + 6] != 58:
            continue
        ip6, icmp = f[14:54], f[54:]
        if icmp[0] != 136 or IPv6Address(icmp[8:24]) != IPv6Address(vip):
            continue
        assert ip6[7] == 255, "hop limit"  # RFC 4861 7.1.2
        assert IPv6Address(ip6[24:40]) == IPv6Address("ff02::1")
        assert f[6:12] == mac
        flags = icmp[4]
        assert (flags & 0x80, flags & 0x40, flags & 0x20) == (0x80, 0, 0x20), hex(flags)  # R S O
        assert icmp[24:32] == bytes([2, 1]) + mac  # target link-layer address option
        out.append(t)
    return out


def check_burst(times: list[float], interval: float, what: str) -> None:
    assert len(times) == REPEAT, f"{what}: {len(times)} messages, expected {REPEAT}"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(interval - EARLY <= g <= interval + LATE for g in gaps), (what, gaps)


def test_one_burst_of_garps_and_nas_spaced_by_their_intervals(lab: Lab) -> None:
    n1 = lab["n1"]
    mac = bytes.fromhex(n1.mac().replace(":", ""))
    # VI_6 sends its adverts from the link-local address, refused (EINVAL) while DAD runs.
    wait_for(
        "n1's link-local past DAD",
        lambda: not n1.run("ip", "-6", "addr", "show", "dev", "eth0", "tentative").stdout.strip(),
        5,
    )
    with inside(lab.switch):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("p1k0", 0))  # the bridge's end of n1's eth0
        sock.setblocking(False)
        agent = lab.agent("n1", config())
        wait_for("n1 master of both", lambda: n1.has(VIP4) and n1.has(VIP6), 5)
        # The longer burst, once it has surely ended, and then some: nothing more may come.
        time.sleep((REPEAT - 1) * max(GARP_INTERVAL, GNA_INTERVAL) + 1.0)
        frames = capture(sock)
    finally:
        sock.close()
    st = agent.status()["instances"]
    assert st["VI_4"]["state"] == st["VI_6"]["state"] == "MASTER"
    check_burst(garps(frames, mac, VIP4), GARP_INTERVAL, "GARP")
    check_burst(nas(frames, mac, VIP6), GNA_INTERVAL, "NA")
