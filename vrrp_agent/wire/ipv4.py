"""The IPv4 header that a raw IPv4 socket hands over in front of each VRRP message."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vrrp_agent.wire.errors import DecodeError

_MIN_HEADER_LEN = 20


@dataclass(frozen=True)
class IPv4Header:
    """What the receive checks need from the IP header, plus the payload it frames."""

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    proto: int
    payload: bytes


def parse_ipv4(packet: bytes) -> IPv4Header:
    """Split a raw-socket IPv4 packet into header fields and payload.

    Honours IHL, so IP options (such as Router Alert) are skipped, and the
    total length, so link-layer padding is not mistaken for VRRP bytes.
    The header checksum is not checked: the kernel drops bad ones before a
    raw socket sees them.

    Raises DecodeError "ip_header" for a version other than 4, IHL below 5 or
    a packet shorter than IHL says; "length" when the total length field is
    shorter than the header or longer than the packet received.
    """
    packet = bytes(packet)
    if len(packet) < _MIN_HEADER_LEN:
        raise DecodeError(
            "ip_header", f"{len(packet)} bytes is shorter than a {_MIN_HEADER_LEN}-byte IPv4 header"
        )
    version, ihl = packet[0] >> 4, packet[0] & 0x0F
    if version != 4:
        raise DecodeError("ip_header", f"IP version {version} is not 4")
    header_len = ihl * 4
    if ihl < 5:
        raise DecodeError("ip_header", f"IHL {ihl} is below the minimum of 5")
    if len(packet) < header_len:
        raise DecodeError(
            "ip_header", f"IHL {ihl} says {header_len} header bytes but only {len(packet)} arrived"
        )
    total_len = int.from_bytes(packet[2:4], "big")
    if total_len < header_len:
        raise DecodeError(
            "length", f"total length {total_len} is shorter than the {header_len}-byte header"
        )
    if total_len > len(packet):
        raise DecodeError(
            "length", f"total length {total_len} is more than the {len(packet)} bytes received"
        )
    return IPv4Header(
        src=IPv4Address(packet[12:16]),
        dst=IPv4Address(packet[16:20]),
        ttl=packet[8],
        proto=packet[9],
        payload=packet[header_len:total_len],
    )
