"""Golden vectors, rejections and argument checks for VRRP advertisements.

The golden hex was computed by hand (checksum arithmetic in the comments) and
then confirmed once against scapy; it is written out literally so a change in
either our encoder or scapy cannot silently move it.
"""

import pickle
from ipaddress import IPv4Address, IPv6Address

import pytest

from vrrp_agent.wire import (
    AUTH_NONE,
    AUTH_PASS,
    MCAST_V4,
    MCAST_V6,
    Advertisement,
    DecodeError,
    decode,
    encode,
    internet_checksum,
)
from vrrp_agent.wire.checksum import ipv4_pseudo_header

SRC4 = IPv4Address("192.0.2.10")
SRC6 = IPv6Address("fe80::1")
VIP4 = IPv4Address("192.0.2.1")

# v2, PASS auth "1111", vrid 51, priority 100, 1 s, VIP 192.0.2.1.
V2_PASS = Advertisement(
    version=2,
    vrid=51,
    priority=100,
    max_advert_int=1,
    addresses=(VIP4,),
    auth_type=AUTH_PASS,
    auth_data=b"1111",
)
V2_PASS_HEX = (
    "21"  # version 2, type 1
    "33"  # vrid 51
    "64"  # priority 100
    "01"  # count 1
    "01"  # auth type 1 (simple text password)
    "01"  # adver int 1 s
    "5566"  # 2133+6401+0101+c000+0201+3131+3131 = 1aa98 -> aa99, complement 5566
    "c0000201"  # 192.0.2.1
    "3131313100000000"  # "1111" padded with NULs to 8
)

# v3 over IPv4, vrid 51, priority 100, 100 cs, VIP 192.0.2.1, from 192.0.2.10 to 224.0.0.18.
V3_V4 = Advertisement(version=3, vrid=51, priority=100, max_advert_int=100, addresses=(VIP4,))
V3_V4_PSEUDO_HEX = (
    "31"  # version 3, type 1
    "33"  # vrid 51
    "64"  # priority 100
    "01"  # count 1
    "0064"  # rsvd 0, max adver int 100 cs
    # message words 3133+6401+0064+c000+0201 = 15799, plus pseudo-header c000+020a (src)
    # + e000+0012 (dst) + 0070 (zero, proto 112) + 000c (length 12) = 2fa31 -> fa33
    "05cc"
    "c0000201"  # 192.0.2.1
)
V3_V4_NO_PSEUDO_HEX = (
    "31336401"
    "0064"
    "a865"  # message words only: 15799 -> 579a, complement a865
    "c0000201"
)

# v3 over IPv6, vrid 1, priority 255, 100 cs, two VIPs, from fe80::1 to ff02::12.
V3_V6 = Advertisement(
    version=3,
    vrid=1,
    priority=255,
    max_advert_int=100,
    addresses=(IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")),
)
V3_V6_HEX = (
    "31"  # version 3, type 1
    "01"  # vrid 1
    "ff"  # priority 255
    "02"  # count 2
    "0064"  # max adver int 100 cs
    # message 3101+ff02+0064 + (2001+0db8+0001) + (2001+0db8+0002) = 18bdc; pseudo-header
    # fe80+0001 (src) + ff02+0012 (dst) + 0000 0028 (length 40) + 0000 0070 (next header 112)
    # = 38a09 -> 8a0c, complement 75f3
    "75f3"
    "20010db8000000000000000000000001"  # 2001:db8::1
    "20010db8000000000000000000000002"  # 2001:db8::2
)


class TestGoldenVectors:
    def test_v2_pass_auth(self):
        assert encode(V2_PASS).hex() == V2_PASS_HEX
        # src/dst play no part in the v2 checksum.
        assert encode(V2_PASS, src=SRC4, dst=MCAST_V4).hex() == V2_PASS_HEX

    def test_v2_decode_returns_the_eight_raw_auth_bytes(self):
        adv = decode(bytes.fromhex(V2_PASS_HEX))
        assert adv == Advertisement(
            version=2,
            vrid=51,
            priority=100,
            max_advert_int=1,
            addresses=(VIP4,),
            auth_type=AUTH_PASS,
            auth_data=b"1111\x00\x00\x00\x00",
        )
        assert decode(bytes.fromhex(V2_PASS_HEX), src=SRC4, dst=MCAST_V4) == adv

    def test_v3_ipv4_with_pseudo_header(self):
        assert encode(V3_V4, src=SRC4, dst=MCAST_V4).hex() == V3_V4_PSEUDO_HEX
        assert decode(bytes.fromhex(V3_V4_PSEUDO_HEX), src=SRC4, dst=MCAST_V4) == V3_V4

    def test_v3_ipv4_without_pseudo_header(self):
        got = encode(V3_V4, src=SRC4, dst=MCAST_V4, pseudo_header=False)
        assert got.hex() == V3_V4_NO_PSEUDO_HEX
        # Without the pseudo-header the addresses are not needed at all.
        assert encode(V3_V4, pseudo_header=False).hex() == V3_V4_NO_PSEUDO_HEX
        raw = bytes.fromhex(V3_V4_NO_PSEUDO_HEX)
        assert decode(raw, src=SRC4, dst=MCAST_V4, pseudo_header=False) == V3_V4

    def test_v3_ipv4_checksums_differ_and_do_not_cross_validate(self):
        with_ph = encode(V3_V4, src=SRC4, dst=MCAST_V4)
        without_ph = encode(V3_V4, src=SRC4, dst=MCAST_V4, pseudo_header=False)
        assert with_ph[6:8] != without_ph[6:8]
        assert with_ph[:6] + with_ph[8:] == without_ph[:6] + without_ph[8:]
        with pytest.raises(DecodeError) as err:
            decode(with_ph, src=SRC4, dst=MCAST_V4, pseudo_header=False)
        assert err.value.reason == "checksum"
        with pytest.raises(DecodeError) as err:
            decode(without_ph, src=SRC4, dst=MCAST_V4, pseudo_header=True)
        assert err.value.reason == "checksum"

    def test_v3_ipv4_pseudo_header_depends_on_src(self):
        other = encode(V3_V4, src=IPv4Address("192.0.2.11"), dst=MCAST_V4)
        assert other.hex() != V3_V4_PSEUDO_HEX

    def test_v3_ipv6_two_addresses(self):
        assert encode(V3_V6, src=SRC6, dst=MCAST_V6).hex() == V3_V6_HEX
        assert decode(bytes.fromhex(V3_V6_HEX), src=SRC6, dst=MCAST_V6) == V3_V6

    def test_v3_ipv6_always_uses_the_pseudo_header(self):
        got = encode(V3_V6, src=SRC6, dst=MCAST_V6, pseudo_header=False)
        assert got.hex() == V3_V6_HEX
        assert decode(got, src=SRC6, dst=MCAST_V6, pseudo_header=False) == V3_V6

    def test_v3_reserved_bits_are_ignored_on_receive(self):
        raw = bytearray(encode(V3_V4, pseudo_header=False))
        raw[4] |= 0xF0
        # Re-checksum: the reserved bits are still covered by it.
        raw[6:8] = b"\x00\x00"
        raw[6:8] = internet_checksum(bytes(raw)).to_bytes(2, "big")
        assert decode(bytes(raw), src=SRC4, dst=MCAST_V4, pseudo_header=False) == V3_V4


def _reason(payload, **kw):
    with pytest.raises(DecodeError) as err:
        decode(payload, **kw)
    assert isinstance(err.value, ValueError)
    return err.value


class TestRejections:
    def test_checksum_one_bit_flipped(self):
        raw = bytearray.fromhex(V3_V4_PSEUDO_HEX)
        raw[7] ^= 0x01
        err = _reason(bytes(raw), src=SRC4, dst=MCAST_V4)
        assert err.reason == "checksum"
        assert str(err) == "checksum 0x05cd does not match computed 0x05cc"

    def test_checksum_bit_flipped_in_an_address(self):
        raw = bytearray.fromhex(V3_V6_HEX)
        raw[-1] ^= 0x80
        assert _reason(bytes(raw), src=SRC6, dst=MCAST_V6).reason == "checksum"

    def test_checksum_v2(self):
        raw = bytearray.fromhex(V2_PASS_HEX)
        raw[-8] ^= 0x02  # "1111" -> "3111"
        assert _reason(bytes(raw)).reason == "checksum"

    def test_checksum_wrong_src(self):
        raw = bytes.fromhex(V3_V4_PSEUDO_HEX)
        assert _reason(raw, src=IPv4Address("192.0.2.11"), dst=MCAST_V4).reason == "checksum"

    def test_version_4(self):
        raw = bytearray.fromhex(V3_V4_PSEUDO_HEX)
        raw[0] = 0x41
        err = _reason(bytes(raw), src=SRC4, dst=MCAST_V4)
        assert err.reason == "version"
        assert "4" in str(err)

    @pytest.mark.parametrize("first", [0x01, 0x11, 0xF1])
    def test_other_versions(self, first):
        raw = bytes([first]) + bytes.fromhex(V2_PASS_HEX)[1:]
        assert _reason(raw).reason == "version"

    def test_type_2(self):
        raw = bytearray.fromhex(V3_V4_PSEUDO_HEX)
        raw[0] = 0x32
        err = _reason(bytes(raw), src=SRC4, dst=MCAST_V4)
        assert err.reason == "type"
        assert "2" in str(err)

    def test_type_checked_even_with_a_valid_checksum(self):
        adv = Advertisement(version=3, vrid=1, priority=1, max_advert_int=1, addresses=(), type=2)
        raw = encode(adv, src=SRC4, dst=MCAST_V4)
        assert _reason(raw, src=SRC4, dst=MCAST_V4).reason == "type"

    def test_count_larger_than_payload(self):
        raw = bytearray.fromhex(V3_V4_PSEUDO_HEX)
        raw[3] = 2
        err = _reason(bytes(raw), src=SRC4, dst=MCAST_V4)
        assert err.reason == "truncated"
        assert "count 2" in str(err)

    def test_v2_missing_auth_bytes(self):
        raw = bytes.fromhex(V2_PASS_HEX)[:-1]
        assert _reason(raw).reason == "truncated"

    def test_v3_ipv4_sized_packet_seen_as_ipv6(self):
        raw = bytes.fromhex(V3_V4_PSEUDO_HEX)
        assert _reason(raw, src=SRC6, dst=MCAST_V6).reason == "truncated"

    @pytest.mark.parametrize("length", [0, 1, 5, 7])
    def test_shorter_than_header(self, length):
        raw = bytes.fromhex(V3_V4_PSEUDO_HEX)[:length]
        err = _reason(raw, src=SRC4, dst=MCAST_V4)
        assert err.reason == "truncated"
        assert str(length) in str(err)

    def test_v2_over_ipv6(self):
        err = _reason(bytes.fromhex(V2_PASS_HEX), src=SRC6, dst=MCAST_V6)
        assert err.reason == "family"

    def test_trailing_zero_bytes_in_v2_are_tolerated(self):
        # Zero words add nothing to the sum, and v2 has no length in a pseudo-header.
        raw = bytes.fromhex(V2_PASS_HEX) + b"\x00\x00"
        assert decode(raw).addresses == (VIP4,)

    def test_trailing_bytes_are_covered_by_the_checksum(self):
        assert _reason(bytes.fromhex(V2_PASS_HEX) + b"\x01").reason == "checksum"
        # v3: even zeros change the pseudo-header's length field.
        raw = bytes.fromhex(V3_V4_PSEUDO_HEX) + b"\x00\x00"
        assert _reason(raw, src=SRC4, dst=MCAST_V4).reason == "checksum"

    def test_trailing_bytes_with_a_matching_checksum_are_accepted(self):
        raw = bytearray.fromhex(V3_V4_PSEUDO_HEX) + b"\xde\xad\xbe"
        raw[6:8] = b"\x00\x00"
        ph = ipv4_pseudo_header(SRC4, MCAST_V4, 112, len(raw))
        raw[6:8] = internet_checksum(ph + raw).to_bytes(2, "big")
        assert decode(bytes(raw), src=SRC4, dst=MCAST_V4) == V3_V4

    def test_vrid_zero_is_decoded_for_the_caller_to_judge(self):
        adv = Advertisement(version=3, vrid=0, priority=0, max_advert_int=1, addresses=(VIP4,))
        raw = encode(adv, src=SRC4, dst=MCAST_V4)
        assert decode(raw, src=SRC4, dst=MCAST_V4) == adv

    def test_v3_interval_zero_is_malformed(self):
        # A backup adopting 0 from a forged advert would get Master_Down 0.
        adv = Advertisement(version=3, vrid=51, priority=254, max_advert_int=0, addresses=(VIP4,))
        raw = encode(adv, src=SRC4, dst=MCAST_V4)
        assert _reason(raw, src=SRC4, dst=MCAST_V4).reason == "zero_interval"

    def test_v3_interval_zero_with_reserved_bits_set_is_still_zero(self):
        adv = Advertisement(version=3, vrid=51, priority=254, max_advert_int=0, addresses=(VIP4,))
        raw = bytearray(encode(adv, pseudo_header=False, src=SRC4, dst=MCAST_V4))
        raw[4] |= 0xF0
        raw[6:8] = b"\x00\x00"
        raw[6:8] = internet_checksum(bytes(raw)).to_bytes(2, "big")
        err = _reason(bytes(raw), src=SRC4, dst=MCAST_V4, pseudo_header=False)
        assert err.reason == "zero_interval"

    def test_v2_interval_zero_is_malformed(self):
        adv = Advertisement(
            version=2, vrid=51, priority=100, max_advert_int=0, addresses=(VIP4,), auth_type=0
        )
        assert _reason(encode(adv)).reason == "zero_interval"

    def test_decode_error_pickles_with_its_reason(self):
        err = pickle.loads(pickle.dumps(DecodeError("checksum", "bad sum")))
        assert (err.reason, str(err)) == ("checksum", "bad sum")
        assert str(DecodeError("truncated")) == "truncated"


class TestCallerErrors:
    """Mistakes in the caller's arguments are ValueError, never a DecodeError."""

    def test_decode_v3_without_src_dst(self):
        with pytest.raises(ValueError, match="src and dst") as err:
            decode(bytes.fromhex(V3_V4_PSEUDO_HEX))
        assert not isinstance(err.value, DecodeError)

    def test_decode_only_one_of_src_dst(self):
        with pytest.raises(ValueError, match="both"):
            decode(bytes.fromhex(V2_PASS_HEX), src=SRC4)

    def test_decode_mixed_src_dst(self):
        with pytest.raises(ValueError, match="different address families"):
            decode(bytes.fromhex(V3_V4_PSEUDO_HEX), src=SRC4, dst=MCAST_V6)

    def test_decode_rejects_a_string_address(self):
        with pytest.raises(TypeError, match="src"):
            decode(bytes.fromhex(V3_V4_PSEUDO_HEX), src="192.0.2.10", dst=MCAST_V4)

    def test_encode_v3_ipv4_pseudo_header_needs_src_dst(self):
        with pytest.raises(ValueError, match="needs src and dst"):
            encode(V3_V4)

    def test_encode_v3_ipv6_needs_src_dst_even_without_pseudo_header_switch(self):
        with pytest.raises(ValueError, match="needs src and dst"):
            encode(V3_V6, pseudo_header=False)

    def test_encode_v3_without_addresses_or_src_dst(self):
        adv = Advertisement(version=3, vrid=1, priority=1, max_advert_int=1, addresses=())
        with pytest.raises(ValueError, match="family"):
            encode(adv, pseudo_header=False)

    def test_encode_mixed_address_families(self):
        adv = Advertisement(
            version=3, vrid=1, priority=1, max_advert_int=1, addresses=(VIP4, IPv6Address("::1"))
        )
        with pytest.raises(ValueError, match="mix"):
            encode(adv, src=SRC6, dst=MCAST_V6)

    def test_encode_addresses_and_src_dst_disagree(self):
        with pytest.raises(ValueError, match="IPv4 but src/dst are IPv6"):
            encode(V3_V4, src=SRC6, dst=MCAST_V6)

    def test_encode_v2_ipv6(self):
        adv = Advertisement(
            version=2, vrid=1, priority=1, max_advert_int=1, addresses=(IPv6Address("::1"),)
        )
        with pytest.raises(ValueError, match="IPv4 addresses only"):
            encode(adv)

    def test_encode_address_that_is_a_string(self):
        adv = Advertisement(version=2, vrid=1, priority=1, max_advert_int=1, addresses=("1.2.3.4",))
        with pytest.raises(TypeError, match="addresses"):
            encode(adv)

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"version": 4}, "version 4"),
            ({"vrid": 256}, "vrid 256 is outside 0..255"),
            ({"vrid": -1}, "vrid -1"),
            ({"priority": 256}, "priority 256"),
            ({"type": 16}, "type 16"),
            ({"max_advert_int": 4096}, r"max_advert_int \(centiseconds\) 4096 is outside 0..4095"),
            ({"auth_type": AUTH_PASS}, "no authentication"),
            ({"auth_data": b"x"}, "no authentication"),
            ({"addresses": (VIP4,) * 256}, "address count 256"),
        ],
    )
    def test_encode_v3_out_of_range(self, changes, match):
        fields = {
            "version": 3,
            "vrid": 1,
            "priority": 100,
            "max_advert_int": 100,
            "addresses": (VIP4,),
        }
        with pytest.raises(ValueError, match=match):
            encode(Advertisement(**{**fields, **changes}), src=SRC4, dst=MCAST_V4)

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"max_advert_int": 256}, r"adver_int \(seconds\) 256 is outside 0..255"),
            ({"auth_type": 256}, "auth_type 256"),
            ({"auth_data": b"123456789"}, "auth_data is 9 bytes"),
        ],
    )
    def test_encode_v2_out_of_range(self, changes, match):
        fields = {
            "version": 2,
            "vrid": 1,
            "priority": 100,
            "max_advert_int": 1,
            "addresses": (VIP4,),
            "auth_type": AUTH_NONE,
        }
        with pytest.raises(ValueError, match=match):
            encode(Advertisement(**{**fields, **changes}))


def test_advertisement_is_frozen():
    with pytest.raises(AttributeError):
        V3_V4.priority = 1
