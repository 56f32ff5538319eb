"""Frames a new master sends so that neighbours and switches learn where the VIPs went."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

_BROADCAST_MAC = b"\xff" * 6
_ZERO_MAC = b"\x00" * 6
_ETHERTYPE_ARP = 0x0806
_ARP_HTYPE_ETHERNET = 1
_ARP_PTYPE_IPV4 = 0x0800
_ARP_OP_REQUEST = 1

_ICMPV6_NEIGHBOR_ADVERT = 136
_NA_FLAG_ROUTER = 0x80
_NA_FLAG_SOLICITED = 0x40
_NA_FLAG_OVERRIDE = 0x20
_ND_OPT_TARGET_LLADDR = 2


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")


def gratuitous_arp(mac: bytes, ip: IPv4Address) -> bytes:
    """A broadcast Ethernet frame with a gratuitous ARP request for ``ip`` at ``mac``.

    A request rather than a reply, with a zero target MAC, is what keepalived
    sends; hosts that ignore unsolicited replies still update from a request.
    42 bytes: the kernel pads to the Ethernet minimum.
    """
    _check_mac(mac)
    ethernet = _BROADCAST_MAC + mac + struct.pack("!H", _ETHERTYPE_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        _ARP_HTYPE_ETHERNET,
        _ARP_PTYPE_IPV4,
        6,
        4,
        _ARP_OP_REQUEST,
        mac,
        ip.packed,
        _ZERO_MAC,
        ip.packed,
    )
    return ethernet + arp


def unsolicited_na(mac: bytes, target: IPv6Address) -> bytes:
    """An ICMPv6 Neighbor Advertisement body announcing ``target`` at ``mac``.

    Meant for ff02::1 with hop limit 255. Router=1 because a VRRP master is a
    router, Solicited=0 because nobody asked, Override=1 so caches replace the
    old master's MAC. The checksum is left zero: the kernel fills it in on a
    raw ICMPv6 socket, since it alone knows the source address.
    """
    _check_mac(mac)
    flags = _NA_FLAG_ROUTER | _NA_FLAG_OVERRIDE
    # Option length counts 8-byte units: type, length and a 6-byte MAC make one.
    return struct.pack(
        "!BBHB3x16sBB6s",
        _ICMPV6_NEIGHBOR_ADVERT,
        0,
        0,
        flags,
        target.packed,
        _ND_OPT_TARGET_LLADDR,
        1,
        mac,
    )
