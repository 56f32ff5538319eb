from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from vrrp_agent.wire import gratuitous_arp, unsolicited_na

# The VRRP virtual MAC for IPv4 VRID 51 and IPv6 VRID 51 (RFC 9568 section 7.3).
MAC4 = bytes.fromhex("00005e000133")
MAC6 = bytes.fromhex("00005e000233")
VIP4 = IPv4Address("192.0.2.1")
VIP6 = IPv6Address("2001:db8::1")


def test_gratuitous_arp_fields():
    frame = gratuitous_arp(MAC4, VIP4)
    assert len(frame) == 42
    eth = Ether(frame)
    assert eth.dst == "ff:ff:ff:ff:ff:ff"
    assert eth.src == "00:00:5e:00:01:33"
    assert eth.type == 0x0806
    arp = eth[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (1, 0x0800, 6, 4)
    assert arp.op == 1  # a request ("who-has"), as keepalived sends
    assert arp.hwsrc == "00:00:5e:00:01:33"
    assert arp.psrc == "192.0.2.1"
    assert arp.hwdst == "00:00:00:00:00:00"
    assert arp.pdst == "192.0.2.1"
    assert not eth[ARP].payload  # no padding: the kernel adds it


def test_gratuitous_arp_exact_bytes():
    assert gratuitous_arp(MAC4, VIP4).hex() == (
        "ffffffffffff" "00005e000133" "0806"
        "0001" "0800" "06" "04" "0001"
        "00005e000133" "c0000201" "000000000000" "c0000201"
    )  # fmt: skip


def test_unsolicited_na_fields():
    body = unsolicited_na(MAC6, VIP6)
    assert len(body) == 32
    na = ICMPv6ND_NA(body)
    assert (na.type, na.code, na.cksum) == (136, 0, 0)
    assert (na.R, na.S, na.O) == (1, 0, 1)
    assert na.res == 0
    assert na.tgt == "2001:db8::1"
    opt = na[ICMPv6NDOptDstLLAddr]
    assert (opt.type, opt.len) == (2, 1)
    assert opt.lladdr == "00:00:5e:00:02:33"
    assert not opt.payload


def test_unsolicited_na_matches_scapy_built_bytes():
    theirs = ICMPv6ND_NA(R=1, S=0, O=1, tgt=str(VIP6), cksum=0) / ICMPv6NDOptDstLLAddr(
        lladdr="00:00:5e:00:02:33"
    )
    assert unsolicited_na(MAC6, VIP6) == bytes(theirs)


def test_unsolicited_na_dissects_inside_ipv6_as_sent():
    ip = IPv6(src="fe80::1", dst="ff02::1", nh=58, hlim=255) / Raw(unsolicited_na(MAC6, VIP6))
    pkt = IPv6(bytes(ip))
    assert pkt.hlim == 255
    assert pkt[ICMPv6ND_NA].tgt == "2001:db8::1"


@pytest.mark.parametrize("mac", [b"", b"\x00" * 5, b"\x00" * 7])
def test_bad_mac_length(mac):
    with pytest.raises(ValueError, match="6 bytes"):
        gratuitous_arp(mac, VIP4)
    with pytest.raises(ValueError, match="6 bytes"):
        unsolicited_na(mac, VIP6)
