from ipaddress import IPv4Address, IPv6Address

from vrrp_agent.wire import internet_checksum
from vrrp_agent.wire.checksum import ipv4_pseudo_header, ipv6_pseudo_header


def test_rfc1071_worked_example():
    # RFC 1071 section 3: these words sum to 0xddf2, whose complement is 0x220d.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_odd_length_is_padded_with_a_zero_byte():
    assert internet_checksum(b"\x12\x34\x56") == internet_checksum(b"\x12\x34\x56\x00")
    assert internet_checksum(b"\x12\x34\x56") == ~(0x1234 + 0x5600) & 0xFFFF


def test_end_around_carry():
    # 0xffff + 0x0002 = 0x10001 -> folds to 0x0002 -> complement 0xfffd.
    assert internet_checksum(b"\xff\xff\x00\x02") == 0xFFFD


def test_empty_and_data_that_sums_to_minus_zero():
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0x0000


def test_data_with_its_checksum_sums_to_zero():
    data = bytes.fromhex("2133640101010000c000020131313131")
    ck = internet_checksum(data)
    assert internet_checksum(data[:6] + ck.to_bytes(2, "big") + data[8:]) == 0


def test_ipv4_pseudo_header_layout():
    got = ipv4_pseudo_header(IPv4Address("192.0.2.10"), IPv4Address("224.0.0.18"), 112, 12)
    assert got.hex() == "c000020a" + "e0000012" + "00" + "70" + "000c"


def test_ipv6_pseudo_header_layout_is_rfc8200():
    got = ipv6_pseudo_header(IPv6Address("fe80::1"), IPv6Address("ff02::12"), 112, 40)
    assert len(got) == 40
    assert got[32:].hex() == "00000028" + "000000" + "70"
