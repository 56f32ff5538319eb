"""VRRP advertisement encoding and decoding: VRRPv2 (RFC 3768) and VRRPv3 (RFC 9568).

Only the VRRP message itself is handled here; the IP header belongs to the
socket (sending) or to :mod:`vrrp_agent.wire.ipv4` (receiving on a raw IPv4
socket, which hands the IP header over too).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from vrrp_agent.wire.addresses import IPAddr
from vrrp_agent.wire.checksum import internet_checksum, ipv4_pseudo_header, ipv6_pseudo_header
from vrrp_agent.wire.errors import DecodeError

VRRP_PROTO = 112
MCAST_V4 = IPv4Address("224.0.0.18")
MCAST_V6 = IPv6Address("ff02::12")
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2
TYPE_ADVERTISEMENT = 1

HEADER_LEN = 8
V2_AUTH_LEN = 8
_CHECKSUM = slice(6, 8)
# v2: ver/type, vrid, priority, count, auth type, adver int, checksum
_V2_HEADER = struct.Struct("!BBBBBBH")
# v3: ver/type, vrid, priority, count, rsvd(4)+max adver int(12), checksum
_V3_HEADER = struct.Struct("!BBBBHH")
_ADDR_LEN = {4: 4, 6: 16}


@dataclass(frozen=True)
class Advertisement:
    """One VRRP packet's fields.

    ``max_advert_int`` is in centiseconds for v3 (12 bits) and is v2's
    "Adver Int" in seconds (8 bits): the unit follows ``version``, so callers
    converting to time must look at it. ``auth_type``/``auth_data`` exist only
    in v2; decode returns the 8 raw authentication bytes as received.
    """

    version: int
    vrid: int
    priority: int
    max_advert_int: int
    addresses: tuple[IPv4Address, ...] | tuple[IPv6Address, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    type: int = TYPE_ADVERTISEMENT


def encode(
    adv: Advertisement,
    *,
    src: IPAddr | None = None,
    dst: IPAddr | None = None,
    pseudo_header: bool = True,
) -> bytes:
    """The VRRP message (no IP header) with its checksum filled in.

    ``src``/``dst`` are the IP addresses the message will travel between; they
    are needed whenever the checksum covers the pseudo-header: VRRPv3 over
    IPv6 always, VRRPv3 over IPv4 unless ``pseudo_header`` is False (for peers
    that follow RFC 5798's text literally rather than keepalived and FRR).

    Raises ValueError for out-of-range fields, mixed address families, or
    missing ``src``/``dst``; TypeError for something that is not an address.
    """
    family = _encode_family(adv, src, dst)
    _check_fields(adv)
    addrs = b"".join(a.packed for a in adv.addresses)
    first = adv.version << 4 | adv.type
    if adv.version == 2:
        header = _V2_HEADER.pack(
            first, adv.vrid, adv.priority, len(adv.addresses), adv.auth_type, adv.max_advert_int, 0
        )
        msg = bytearray(header + addrs + adv.auth_data.ljust(V2_AUTH_LEN, b"\x00"))
        summed = bytes(msg)
    else:
        header = _V3_HEADER.pack(
            first, adv.vrid, adv.priority, len(adv.addresses), adv.max_advert_int, 0
        )
        msg = bytearray(header + addrs)
        summed = bytes(msg)
        if family == 6 or pseudo_header:
            if src is None or dst is None:
                raise ValueError(
                    f"VRRPv3 over IPv{family} with the pseudo-header checksum needs src and dst"
                )
            summed = _pseudo_header(src, dst, len(msg)) + summed
    msg[_CHECKSUM] = internet_checksum(summed).to_bytes(2, "big")
    return bytes(msg)


def decode(
    payload: bytes,
    *,
    src: IPAddr | None = None,
    dst: IPAddr | None = None,
    pseudo_header: bool = True,
) -> Advertisement:
    """Parse and check a received VRRP message (the bytes after the IP header).

    The address family comes from ``src``/``dst``, the received packet's IP
    addresses. VRRPv3 needs them; for VRRPv2 they may both be None (IPv4).

    Raises DecodeError for anything wrong with the packet, in the order:
    truncated, version, type, family, truncated (count), checksum. Bytes after
    the declared addresses (and v2 auth data) are tolerated, but the checksum
    covers them, since RFC 3768 and RFC 9568 checksum "the entire VRRP message".
    Raises ValueError, not DecodeError, when the caller's own arguments are
    inconsistent (mixed families, only one of src/dst, v3 without them).
    """
    payload = bytes(payload)
    family = _pair_family(src, dst)
    if len(payload) < HEADER_LEN:
        raise DecodeError(
            "truncated", f"{len(payload)} bytes is shorter than the {HEADER_LEN}-byte VRRP header"
        )
    version, msg_type = payload[0] >> 4, payload[0] & 0x0F
    if version not in (2, 3):
        raise DecodeError("version", f"version {version} is neither 2 nor 3")
    if msg_type != TYPE_ADVERTISEMENT:
        raise DecodeError("type", f"type {msg_type} is not {TYPE_ADVERTISEMENT} (ADVERTISEMENT)")
    if version == 2 and family == 6:
        raise DecodeError("family", "VRRPv2 is defined for IPv4 only but arrived over IPv6")
    if family is None:
        if version == 3:
            raise ValueError("decoding VRRPv3 needs the packet's src and dst addresses")
        family = 4

    count = payload[3]
    addr_len = _ADDR_LEN[family]
    addrs_end = HEADER_LEN + count * addr_len
    needed = addrs_end + (V2_AUTH_LEN if version == 2 else 0)
    if len(payload) < needed:
        raise DecodeError(
            "truncated",
            f"count {count} needs {needed} bytes of VRRPv{version} over IPv{family} "
            f"but only {len(payload)} arrived",
        )

    received = int.from_bytes(payload[_CHECKSUM], "big")
    summed = payload[: _CHECKSUM.start] + b"\x00\x00" + payload[_CHECKSUM.stop :]
    if version == 3 and (family == 6 or pseudo_header):
        assert src is not None and dst is not None  # _pair_family gave a family
        summed = _pseudo_header(src, dst, len(payload)) + summed
    computed = internet_checksum(summed)
    if received != computed:
        raise DecodeError(
            "checksum", f"checksum 0x{received:04x} does not match computed 0x{computed:04x}"
        )

    # An interval of 0 is meaningless in both versions, and dangerous: a
    # backup that adopted it from a (forged) v3 advert would compute a
    # Master_Down of zero and take over at the next pause of the adverts.
    interval = payload[5] if version == 2 else int.from_bytes(payload[4:6], "big") & 0x0FFF
    if interval == 0:
        raise DecodeError("zero_interval", "Max Adver Int is 0, which no sender may use")

    addr_type = IPv4Address if family == 4 else IPv6Address
    addresses = tuple(
        addr_type(payload[i : i + addr_len]) for i in range(HEADER_LEN, addrs_end, addr_len)
    )
    if version == 2:
        return Advertisement(
            version=2,
            vrid=payload[1],
            priority=payload[2],
            max_advert_int=interval,
            addresses=addresses,
            auth_type=payload[4],
            auth_data=payload[addrs_end:needed],
            type=msg_type,
        )
    return Advertisement(
        version=3,
        vrid=payload[1],
        priority=payload[2],
        # The top 4 bits are reserved: senders zero them, receivers ignore them.
        max_advert_int=interval,
        addresses=addresses,
        type=msg_type,
    )


def _family_of(what: str, addr: object) -> int:
    if not isinstance(addr, (IPv4Address, IPv6Address)):
        raise TypeError(f"{what} must be an IPv4Address or IPv6Address, not {addr!r}")
    return addr.version


def _pair_family(src: IPAddr | None, dst: IPAddr | None) -> int | None:
    if src is None and dst is None:
        return None
    if src is None or dst is None:
        raise ValueError("give both src and dst, or neither")
    src_family, dst_family = _family_of("src", src), _family_of("dst", dst)
    if src_family != dst_family:
        raise ValueError(f"src {src} and dst {dst} are of different address families")
    return src_family


def _encode_family(adv: Advertisement, src: IPAddr | None, dst: IPAddr | None) -> int:
    families = {_family_of("each of addresses", a) for a in adv.addresses}
    if len(families) > 1:
        raise ValueError("addresses mix IPv4 and IPv6; one advertisement carries one family")
    pair = _pair_family(src, dst)
    family = families.pop() if families else pair
    if pair is not None and pair != family:
        raise ValueError(f"addresses are IPv{family} but src/dst are IPv{pair}")
    if family is None:
        if adv.version == 3:
            # With no addresses and no src/dst nothing says whether this is IPv4 or IPv6.
            raise ValueError("VRRPv3 with no addresses needs src and dst to know the family")
        family = 4
    if adv.version == 2 and family == 6:
        raise ValueError("VRRPv2 carries IPv4 addresses only; use version 3 for IPv6")
    return family


def _check_range(name: str, value: int, high: int) -> None:
    if not 0 <= value <= high:
        raise ValueError(f"{name} {value} is outside 0..{high}")


def _check_fields(adv: Advertisement) -> None:
    if adv.version not in (2, 3):
        raise ValueError(f"version {adv.version} is neither 2 nor 3")
    # Any 4-bit type is encodable so tests can build packets a receiver must reject.
    _check_range("type", adv.type, 0x0F)
    _check_range("vrid", adv.vrid, 255)
    _check_range("priority", adv.priority, 255)
    _check_range("address count", len(adv.addresses), 255)
    if adv.version == 2:
        _check_range("VRRPv2 adver_int (seconds)", adv.max_advert_int, 255)
        _check_range("auth_type", adv.auth_type, 255)
        if len(adv.auth_data) > V2_AUTH_LEN:
            raise ValueError(
                f"auth_data is {len(adv.auth_data)} bytes; VRRPv2 has room for {V2_AUTH_LEN}"
            )
    else:
        _check_range("VRRPv3 max_advert_int (centiseconds)", adv.max_advert_int, 0x0FFF)
        # RFC 9568 removed authentication; silently dropping these would hide a config error.
        if adv.auth_type != AUTH_NONE or adv.auth_data:
            raise ValueError("VRRPv3 has no authentication; auth_type/auth_data must be unset")


def _pseudo_header(src: IPAddr, dst: IPAddr, length: int) -> bytes:
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return ipv4_pseudo_header(src, dst, VRRP_PROTO, length)
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return ipv6_pseudo_header(src, dst, VRRP_PROTO, length)
    raise ValueError(f"src {src} and dst {dst} are of different address families")
