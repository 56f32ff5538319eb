"""Probes the split-brain arbiter sends to its reference addresses, and the
answers it looks for: ICMP/ICMPv6 echo and RFC 5227 ARP probes.

Pure functions: bytes out, bytes in, no sockets. Parsers return None for
anything that is not the answer they look for; on a raw socket most of what
arrives is somebody else's traffic, not an error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from vrrp_agent.wire.checksum import internet_checksum

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

ETHERTYPE_ARP = 0x0806
ARP_OP_REQUEST = 1
ARP_OP_REPLY = 2

# Shows up in tcpdump on the reference host, so its operators can tell what
# pings them once a second.
ECHO_PAYLOAD = b"vrrp-agent arbiter"

_BROADCAST_MAC = b"\xff" * 6
_ZERO_MAC = b"\x00" * 6
_ZERO_IP = b"\x00" * 4
_ARP_HTYPE_ETHERNET = 1
_ARP_PTYPE_IPV4 = 0x0800
_ETH_HEADER = struct.Struct("!6s6sH")
_ARP_BODY = struct.Struct("!HHBBH6s4s6s4s")
_ECHO_HEADER = struct.Struct("!BBHHH")
_IPPROTO_ICMP = 1


@dataclass(frozen=True)
class EchoReply:
    """The identifying fields of an ICMP echo reply."""

    ident: int
    seq: int


def icmp_echo_request(ident: int, seq: int, payload: bytes = ECHO_PAYLOAD) -> bytes:
    """An ICMPv4 echo request with its checksum: the kernel does not fill
    one in on a raw IPv4 socket."""
    body = _ECHO_HEADER.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq) + payload
    checksum = internet_checksum(body)
    return body[:2] + struct.pack("!H", checksum) + body[4:]


def icmpv6_echo_request(ident: int, seq: int, payload: bytes = ECHO_PAYLOAD) -> bytes:
    """An ICMPv6 echo request with a zero checksum: the kernel always computes
    it on raw ICMPv6 sockets (RFC 3542 3.1), since it alone knows the source."""
    return _ECHO_HEADER.pack(ICMPV6_ECHO_REQUEST, 0, 0, ident, seq) + payload


def parse_icmp_echo_reply(packet: bytes) -> EchoReply | None:
    """An IPv4 packet as a raw ICMP socket delivers it (IP header included)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or packet[9] != _IPPROTO_ICMP or len(packet) < ihl + _ECHO_HEADER.size:
        return None
    icmp = packet[ihl:]
    kind, code, _, ident, seq = _ECHO_HEADER.unpack_from(icmp)
    if kind != ICMP_ECHO_REPLY or code != 0 or internet_checksum(icmp) != 0:
        return None
    return EchoReply(ident, seq)


def parse_icmpv6_echo_reply(message: bytes) -> EchoReply | None:
    """An ICMPv6 message as a raw ICMPv6 socket delivers it (no IPv6 header).
    The kernel has verified its checksum already."""
    if len(message) < _ECHO_HEADER.size:
        return None
    kind, code, _, ident, seq = _ECHO_HEADER.unpack_from(message)
    if kind != ICMPV6_ECHO_REPLY or code != 0:
        return None
    return EchoReply(ident, seq)


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")


def arp_probe(mac: bytes, target: IPv4Address) -> bytes:
    """RFC 5227 2.1.1: a broadcast who-has for ``target`` from ``mac`` with
    sender IP 0.0.0.0. Without a sender IP the target answers but learns
    nothing, and no host on the segment adds or updates a neighbour entry
    for us (which a normal request would do, possibly with a VIP's owner)."""
    _check_mac(mac)
    ethernet = _ETH_HEADER.pack(_BROADCAST_MAC, mac, ETHERTYPE_ARP)
    arp = _ARP_BODY.pack(
        _ARP_HTYPE_ETHERNET,
        _ARP_PTYPE_IPV4,
        6,
        4,
        ARP_OP_REQUEST,
        mac,
        _ZERO_IP,
        _ZERO_MAC,
        target.packed,
    )
    return ethernet + arp


def parse_arp_reply(frame: bytes, mac: bytes) -> IPv4Address | None:
    """The sender IP of an Ethernet frame carrying an ARP reply addressed to
    ``mac`` (our probes' answers: Linux sends them to the prober's MAC with
    target IP 0.0.0.0), else None."""
    if len(frame) < _ETH_HEADER.size + _ARP_BODY.size:
        return None
    _, _, ethertype = _ETH_HEADER.unpack_from(frame)
    if ethertype != ETHERTYPE_ARP:
        return None
    htype, ptype, hlen, plen, op, _, spa, tha, _ = _ARP_BODY.unpack_from(frame, _ETH_HEADER.size)
    if (htype, ptype, hlen, plen, op) != (_ARP_HTYPE_ETHERNET, _ARP_PTYPE_IPV4, 6, 4, ARP_OP_REPLY):
        return None
    if tha != mac:
        return None
    return IPv4Address(spa)
