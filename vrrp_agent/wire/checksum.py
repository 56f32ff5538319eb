"""RFC 1071 Internet checksum and the IP pseudo-headers VRRPv3 sums over."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address


def internet_checksum(data: bytes) -> int:
    """The 16-bit ones' complement of the ones' complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_pseudo_header(src: IPv4Address, dst: IPv4Address, proto: int, length: int) -> bytes:
    """The RFC 793 layout that TCP/UDP use and keepalived/FRR reuse for VRRPv3."""
    return src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)


def ipv6_pseudo_header(src: IPv6Address, dst: IPv6Address, proto: int, length: int) -> bytes:
    """RFC 8200 section 8.1: a 32-bit length, then three zero bytes and next header."""
    return src.packed + dst.packed + struct.pack("!I3xB", length, proto)
