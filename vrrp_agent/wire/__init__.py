"""VRRP wire formats: pure functions from bytes to frozen dataclasses and back."""

from vrrp_agent.wire.advert import (
    AUTH_AH,
    AUTH_NONE,
    AUTH_PASS,
    MCAST_V4,
    MCAST_V6,
    VRRP_PROTO,
    Advertisement,
    decode,
    encode,
)
from vrrp_agent.wire.announce import gratuitous_arp, unsolicited_na
from vrrp_agent.wire.checksum import internet_checksum
from vrrp_agent.wire.errors import DecodeError, DecodeReason
from vrrp_agent.wire.ipv4 import IPv4Header, parse_ipv4

__all__ = [
    "AUTH_AH",
    "AUTH_NONE",
    "AUTH_PASS",
    "MCAST_V4",
    "MCAST_V6",
    "VRRP_PROTO",
    "Advertisement",
    "DecodeError",
    "DecodeReason",
    "IPv4Header",
    "decode",
    "encode",
    "gratuitous_arp",
    "internet_checksum",
    "parse_ipv4",
    "unsolicited_na",
]
