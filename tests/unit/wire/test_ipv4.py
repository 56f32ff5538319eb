from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import IP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.vrrp import VRRPv3
from scapy.packet import Raw

from vrrp_agent.wire import (
    MCAST_V4,
    VRRP_PROTO,
    Advertisement,
    DecodeError,
    IPv4Header,
    decode,
    parse_ipv4,
)

SRC = IPv4Address("192.0.2.10")
PAYLOAD = bytes(range(1, 15))


def packet(**ip_fields) -> bytes:
    fields = {"src": str(SRC), "dst": str(MCAST_V4), "proto": VRRP_PROTO, "ttl": 255}
    ip = IP(**{**fields, **ip_fields})
    return bytes(ip / Raw(PAYLOAD))


def reason(raw: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as err:
        parse_ipv4(raw)
    return err.value


def test_plain_header():
    assert parse_ipv4(packet()) == IPv4Header(
        src=SRC, dst=MCAST_V4, ttl=255, proto=112, payload=PAYLOAD
    )


def test_options_are_skipped_by_ihl():
    raw = packet(options=[IPOption_Router_Alert()])
    assert raw[0] == 0x46  # IHL 6: one 4-byte option word
    hdr = parse_ipv4(raw)
    assert hdr.payload == PAYLOAD
    assert (hdr.src, hdr.dst, hdr.ttl, hdr.proto) == (SRC, MCAST_V4, 255, 112)


def test_longest_header():
    # Forty bytes of NOP options make IHL 15, the largest there is.
    raw = packet(options=[IPOption_NOP()] * 40)
    assert raw[0] == 0x4F
    assert parse_ipv4(raw).payload == PAYLOAD


def test_buffer_longer_than_total_length_is_cut():
    # Ethernet pads short frames; the padding is not VRRP.
    hdr = parse_ipv4(packet() + b"\x00" * 12)
    assert hdr.payload == PAYLOAD


def test_ttl_is_reported_for_the_255_check():
    assert parse_ipv4(packet(ttl=1)).ttl == 1


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_ihl_below_five(ihl):
    raw = bytearray(packet())
    raw[0] = 0x40 | ihl
    err = reason(bytes(raw))
    assert err.reason == "ip_header"
    assert f"IHL {ihl}" in str(err)


@pytest.mark.parametrize("version", [0, 6, 15])
def test_version_not_4(version):
    raw = bytearray(packet())
    raw[0] = version << 4 | 5
    err = reason(bytes(raw))
    assert err.reason == "ip_header"
    assert f"version {version}" in str(err)


def test_shorter_than_ihl():
    raw = packet(options=[IPOption_Router_Alert()])
    assert reason(raw[:22]).reason == "ip_header"


@pytest.mark.parametrize("length", [0, 1, 19])
def test_shorter_than_minimum_header(length):
    assert reason(packet()[:length]).reason == "ip_header"


def test_total_length_longer_than_buffer():
    err = reason(packet()[:-1])
    assert err.reason == "length"
    assert "34" in str(err)


def test_total_length_shorter_than_header():
    raw = bytearray(packet())
    raw[2:4] = (19).to_bytes(2, "big")
    assert reason(bytes(raw)).reason == "length"


def test_header_only_gives_empty_payload():
    raw = bytearray(packet())[:20]
    raw[2:4] = (20).to_bytes(2, "big")
    assert parse_ipv4(bytes(raw)).payload == b""


def test_from_raw_socket_to_advertisement():
    adv = Advertisement(
        version=3, vrid=7, priority=150, max_advert_int=100, addresses=(IPv4Address("192.0.2.1"),)
    )
    raw = bytes(
        IP(src=str(SRC), dst=str(MCAST_V4), proto=112, ttl=255, options=[IPOption_Router_Alert()])
        / VRRPv3(vrid=7, priority=150, adv=100, addrlist=["192.0.2.1"])
    )
    hdr = parse_ipv4(raw + b"\x00" * 6)
    assert decode(hdr.payload, src=hdr.src, dst=hdr.dst) == adv
