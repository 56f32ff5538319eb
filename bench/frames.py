"""What the failover benchmark reads off the wire and out of the kernel: pure
parsers and builders, no sockets.

The benchmark observes both implementations from outside, the same way for
each, so the parsing shares no code with the agent: an Ethernet frame (VRRP
advert or ARP), an rtnetlink address message, an ICMP echo. Only the probes'
RFC 1071 checksum is the agent's: it is what the kernel checks, not what is
measured.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from vrrp_agent.wire.checksum import internet_checksum

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
IPPROTO_VRRP = 112

RTM_NEWADDR, RTM_DELADDR = 20, 21
IFA_ADDRESS, IFA_LOCAL = 1, 2
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTATTR = struct.Struct("=HH")  # len, type

ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8


@dataclass(frozen=True, slots=True)
class Advert:
    src: str
    vrid: int
    priority: int


@dataclass(frozen=True, slots=True)
class Arp:
    sender_ip: str
    sender_mac: str
    gratuitous: bool  # sender and target address are the same


@dataclass(frozen=True, slots=True)
class AddrChange:
    added: bool
    ifindex: int
    address: str


def parse_frame(frame: bytes) -> Advert | Arp | None:
    """An Ethernet frame -> the VRRP advert or ARP packet in it; None for anything else."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_P_IP:
        return _vrrp(frame[14:])
    if ethertype == ETH_P_ARP:
        return _arp(frame[14:])
    return None


def _vrrp(ip: bytes) -> Advert | None:
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != IPPROTO_VRRP:
        return None
    ihl = (ip[0] & 0x0F) * 4
    if len(ip) < ihl + 8:
        return None
    vrrp = ip[ihl:]
    return Advert(socket.inet_ntoa(ip[12:16]), vrid=vrrp[1], priority=vrrp[2])


def _arp(arp: bytes) -> Arp | None:
    # Ethernet/IPv4 only: hardware type 1, protocol 0x0800, lengths 6 and 4.
    if len(arp) < 28 or arp[:6] != b"\x00\x01\x08\x00\x06\x04":
        return None
    sha, spa, tpa = arp[8:14], arp[14:18], arp[24:28]
    return Arp(socket.inet_ntoa(spa), sha.hex(":"), gratuitous=spa == tpa)


def parse_addr_messages(data: bytes) -> list[AddrChange]:
    """One recv() from an rtnetlink socket subscribed to address groups ->
    the IPv4 address additions and removals in it."""
    out: list[AddrChange] = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            break  # truncated: nothing trustworthy follows
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            change = _addr(data[offset + NLMSG_HDR.size : offset + length], kind == RTM_NEWADDR)
            if change is not None:
                out.append(change)
        offset += (length + 3) & ~3
    return out


def _addr(body: bytes, added: bool) -> AddrChange | None:
    if len(body) < IFADDRMSG.size:
        return None
    family, _plen, _flags, _scope, index = IFADDRMSG.unpack_from(body)
    if family != socket.AF_INET:
        return None
    found: dict[int, bytes] = {}
    offset = IFADDRMSG.size
    while offset + RTATTR.size <= len(body):
        rta_len, rta_type = RTATTR.unpack_from(body, offset)
        if rta_len < RTATTR.size:
            break
        found[rta_type] = body[offset + RTATTR.size : offset + rta_len]
        offset += (rta_len + 3) & ~3
    # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on point-to-point links.
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
    if raw is None or len(raw) != 4:
        return None
    return AddrChange(added, index, socket.inet_ntoa(raw))


def echo_request(ident: int, seq: int) -> bytes:
    """An ICMP echo request (for a raw socket: the kernel adds the IP header)."""
    payload = b"vrrp-bench"
    head = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    csum = internet_checksum(head + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, csum, ident, seq) + payload


def echo_reply_seq(packet: bytes, ident: int) -> int | None:
    """What a raw ICMP socket received (IP header included) -> the sequence
    number if it is an echo reply to `ident`, else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return None
    kind, _code, _sum, got_ident, seq = struct.unpack_from("!BBHHH", packet, ihl)
    if kind != ICMP_ECHO_REPLY or got_ident != ident:
        return None
    return seq
