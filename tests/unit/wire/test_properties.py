"""Property-based tests: decode never fails in an unplanned way, and encode/decode round-trip."""

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from vrrp_agent.wire import Advertisement, DecodeError, decode, encode

FAST = settings(max_examples=300, deadline=None)

ipv4 = st.integers(0, 2**32 - 1).map(IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(IPv6Address)
# What a socket can report: both ends of one family.
endpoints = st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6))


@st.composite
def advertisements(draw, version=None, family=None):
    version = draw(st.sampled_from([2, 3])) if version is None else version
    if version == 2:
        family = 4
    elif family is None:
        family = draw(st.sampled_from([4, 6]))
    addrs = tuple(draw(st.lists(ipv4 if family == 4 else ipv6, max_size=20)))
    common = {
        "version": version,
        "vrid": draw(st.integers(0, 255)),
        "priority": draw(st.integers(0, 255)),
        "addresses": addrs,
    }
    if version == 2:
        return Advertisement(
            **common,
            max_advert_int=draw(st.integers(1, 255)),  # 0 is refused
            auth_type=draw(st.integers(0, 255)),
            # decode returns all 8 wire bytes, so only 8-byte auth data round-trips as is.
            auth_data=draw(st.binary(min_size=8, max_size=8)),
        )
    return Advertisement(**common, max_advert_int=draw(st.integers(1, 4095)))  # 0 is refused


@st.composite
def advert_with_endpoints(draw):
    adv = draw(advertisements())
    family = adv.addresses[0].version if adv.addresses else draw(st.sampled_from([4, 6]))
    if adv.version == 2:
        family = 4
    addr = ipv4 if family == 4 else ipv6
    return adv, draw(addr), draw(addr), draw(st.booleans())


@st.composite
def decode_inputs(draw):
    """Arbitrary bytes and endpoints, plus near-valid packets so the later checks run too."""
    kind = draw(st.sampled_from(["random", "header", "encoded"]))
    src, dst = draw(endpoints)
    pseudo_header = draw(st.booleans())
    if kind == "random":
        return draw(st.binary(max_size=120)), src, dst, pseudo_header
    if kind == "header":
        first = draw(st.sampled_from([0x21, 0x31, 0x22, 0x41]))
        return bytes([first]) + draw(st.binary(max_size=120)), src, dst, pseudo_header
    adv, src, dst, ph = draw(advert_with_endpoints())
    raw = bytearray(encode(adv, src=src, dst=dst, pseudo_header=ph))
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.binary(max_size=4))
    if draw(st.booleans()):
        src, dst = draw(endpoints)
    return bytes(raw), src, dst, draw(st.sampled_from([ph, not ph]))


def payloads():
    return decode_inputs().map(lambda case: case[0])


@FAST
@given(case=decode_inputs())
def test_decode_returns_an_advertisement_or_raises_decode_error(case):
    payload, src, dst, pseudo_header = case
    try:
        adv = decode(payload, src=src, dst=dst, pseudo_header=pseudo_header)
    except DecodeError as err:
        event(err.reason)
        assert err.reason in {"truncated", "version", "type", "checksum", "family"}
        assert str(err)
        return
    event("accepted")
    assert isinstance(adv, Advertisement)
    assert adv.version in (2, 3)
    assert all(a.version == src.version for a in adv.addresses)


@FAST
@given(payload=payloads(), pseudo_header=st.booleans())
def test_decode_without_endpoints(payload, pseudo_header):
    # Without src/dst, only a well-formed v3 header gets past the packet checks to the
    # argument check, which is the caller's error (ValueError), not the packet's.
    try:
        adv = decode(payload, pseudo_header=pseudo_header)
    except DecodeError as err:
        assert err.reason in {"truncated", "version", "type", "checksum"}
        return
    except ValueError as err:
        assert payload[0] == 0x31
        assert len(payload) >= 8
        assert "src and dst" in str(err)
        return
    assert adv.version == 2


@FAST
@given(case=advert_with_endpoints())
def test_round_trip(case):
    adv, src, dst, pseudo_header = case
    raw = encode(adv, src=src, dst=dst, pseudo_header=pseudo_header)
    assert decode(raw, src=src, dst=dst, pseudo_header=pseudo_header) == adv


@FAST
@given(adv=advertisements(version=2))
def test_v2_round_trip_without_endpoints(adv):
    assert decode(encode(adv)) == adv


@FAST
@given(adv=advertisements(version=2), data=st.binary(max_size=8))
def test_v2_short_auth_data_comes_back_padded(adv, data):
    adv = replace(adv, auth_data=data)
    assert decode(encode(adv)) == replace(adv, auth_data=data.ljust(8, b"\x00"))


@FAST
@given(case=advert_with_endpoints(), data=st.data())
def test_any_single_bit_flip_is_rejected(case, data):
    # The ones' complement sum changes by +-2**k for one flipped bit, never by a
    # multiple of 0xffff, so the checksum catches it if nothing earlier does.
    adv, src, dst, pseudo_header = case
    raw = bytearray(encode(adv, src=src, dst=dst, pseudo_header=pseudo_header))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(DecodeError):
        decode(bytes(raw), src=src, dst=dst, pseudo_header=pseudo_header)
