"""unicast_peer with keepalived's per-peer TTL range, unicast_ttl, an explicitly
empty unicast_peer, and virtual_routes: good input and bad, with key paths."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

import pytest

from vrrp_agent.config import VirtualRoute, parse
from vrrp_agent.config.model import Instance

from .test_config import FILE, VI, assert_one, doc


def instance(overrides: dict[str, Any]) -> Instance:
    return parse(doc(overrides), FILE).vrrp_instances["VI_1"]


# --- unicast_peer ----------------------------------------------------------------


def test_peers_take_a_ttl_range_as_a_string_or_a_mapping() -> None:
    inst = instance({
        "unicast_peer": [
            "10.0.0.2",
            "10.0.0.3 min_ttl 250",
            "10.0.0.4 min_ttl 250 max_ttl 254",
            {"address": "10.0.0.5", "max_ttl": 254},
            {"address": "10.0.0.6"},
        ]
    })  # fmt: skip
    assert inst.unicast_peer == tuple(IPv4Address(f"10.0.0.{i}") for i in range(2, 7))
    assert dict(inst.unicast_peer_ttl) == {
        IPv4Address("10.0.0.3"): (250, 255),
        IPv4Address("10.0.0.4"): (250, 254),
        IPv4Address("10.0.0.5"): (0, 254),
    }
    assert inst.unicast and not inst.unicast_no_peer


@pytest.mark.parametrize(
    ("peer", "keypath", "fragment"),
    [
        ("10.0.0.2 min_ttl 300", "unicast_peer[0]", "300"),
        (
            "10.0.0.2 min_ttl 200 max_ttl 100",
            "unicast_peer[0]",
            "min_ttl 200 is greater than max_ttl 100",
        ),
        ("10.0.0.2 min_ttl", "unicast_peer[0]", "'min_ttl' needs a value"),
        ("10.0.0.2 min_ttl x", "unicast_peer[0]", "min_ttl must be an integer 0..255"),
        ("10.0.0.2 ttl 3", "unicast_peer[0]", "unsupported option 'ttl'"),
        ("10.0.0.2 min_ttl 1 min_ttl 2", "unicast_peer[0]", "given twice"),
        ({"address": "10.0.0.2", "min_ttl": -1}, "unicast_peer[0].min_ttl", "-1"),
        ({"address": "10.0.0.2", "min_ttl": 9, "max_ttl": 8}, "unicast_peer[0]", "greater"),
        ({"min_ttl": 9}, "unicast_peer[0].address", "required key is missing"),
        ({"address": "10.0.0.2", "ttl": 9}, "unicast_peer[0].ttl", "unknown key"),
        (7, "unicast_peer[0]", "expected 'ADDR [min_ttl N] [max_ttl N]' or a mapping"),
    ],
)
def test_bad_peers_name_the_entry(peer: Any, keypath: str, fragment: str) -> None:
    assert_one(doc({"unicast_peer": [peer]}), f"{VI}.{keypath}", fragment)


def test_duplicate_peers_are_found_with_ranges_too() -> None:
    assert_one(doc({"unicast_peer": ["10.0.0.2", "10.0.0.2 min_ttl 250"]}),
               f"{VI}.unicast_peer[1]", "duplicate of")  # fmt: skip


def test_unicast_ttl() -> None:
    assert instance({}).unicast_ttl == 255
    assert instance({"unicast_ttl": 64, "unicast_peer": ["10.0.0.2"]}).unicast_ttl == 64
    assert_one(doc({"unicast_ttl": 0}), f"{VI}.unicast_ttl", "between 1 and 255")


def test_an_empty_peer_list_written_out_is_unicast_without_peers() -> None:
    alone = instance({"unicast_peer": [], "unicast_src_ip": "10.0.0.1"})
    assert alone.unicast and alone.unicast_no_peer and alone.unicast_peer == ()
    for absent in ({}, {"unicast_peer": None}):
        multicast = instance(absent)
        assert not multicast.unicast and not multicast.unicast_no_peer


# --- virtual_routes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "route"),
    [
        (
            "10.1.255.0/24 via 10.1.1.1 dev eth0 metric 100 table 100",
            VirtualRoute(IPv4Network("10.1.255.0/24"), via=IPv4Address("10.1.1.1"), dev="eth0",
                         metric=100, table=100),
        ),
        (
            "src 10.1.255.1 to 10.9.0.0/16 via 10.1.1.1",
            VirtualRoute(IPv4Network("10.9.0.0/16"), src=IPv4Address("10.1.255.1"),
                         via=IPv4Address("10.1.1.1")),
        ),
        ("blackhole 10.1.255.0/24", VirtualRoute(IPv4Network("10.1.255.0/24"), type="blackhole")),
        ("10.1.255.0/24 blackhole", VirtualRoute(IPv4Network("10.1.255.0/24"), type="blackhole")),
        ("unreachable 10.2.0.0/16 table main",
         VirtualRoute(IPv4Network("10.2.0.0/16"), type="unreachable", table=254)),
        ("prohibit fd00:9::/64 table local",
         VirtualRoute(IPv6Network("fd00:9::/64"), type="prohibit", table=255)),
        ("0.0.0.0/0 gw 10.1.1.1 table 100",
         VirtualRoute(IPv4Network("0.0.0.0/0"), via=IPv4Address("10.1.1.1"), table=100)),
        ("10.3.0.0/16 dev lo scope host",
         VirtualRoute(IPv4Network("10.3.0.0/16"), dev="lo", scope="host")),
    ],
)  # fmt: skip
def test_routes_in_keepalived_syntax(text: str, route: VirtualRoute) -> None:
    assert instance({"virtual_routes": [text]}).virtual_routes == (route,)


def test_a_route_as_a_mapping_and_back_as_text() -> None:
    inst = instance({
        "virtual_routes": [
            {"to": "10.9.0.0/16", "src": "192.168.1.100", "via": "10.1.1.1", "dev": "eth0",
             "metric": 5, "table": "main", "scope": "global"},
            {"to": "10.8.0.0/16", "type": "blackhole"},
        ]
    })  # fmt: skip
    first, second = inst.virtual_routes
    assert first.table == 254 and first.metric == 5
    assert (
        str(first)
        == "src 192.168.1.100 10.9.0.0/16 via 10.1.1.1 dev eth0 metric 5 table 254 scope global"
    )
    assert str(second) == "blackhole 10.8.0.0/16"
    # what str() writes reads back as the same route
    again = instance({"virtual_routes": [str(first), str(second)]}).virtual_routes
    assert again == inst.virtual_routes


@pytest.mark.parametrize(
    ("route", "keypath", "fragment"),
    [
        ("10.1.0.0/16 via 10.1.1.1 onlink", "[0]", "unsupported option 'onlink'"),
        ("10.1.0.0/16 via 10.1.1.1 or 10.1.1.2", "[0]", "unsupported option 'or' in"),
        ("10.1.0.0/16 via 10.1.1.1 mtu 1400", "[0]", "(supported: src ADDR, [to] ADDR/LEN, via GW"),
        ("10.1.0.0/16", "[0]", "a route needs via GW or dev IF"),
        ("10.1.0.1/16 dev eth0", "[0]", "has host bits set"),
        ("10.1.0.0/16 via fd00::1", "[0]", "via fd00::1 is IPv6, the destination is not"),
        ("src fd00::1 10.1.0.0/16 dev eth0", "[0]", "src fd00::1 is IPv6"),
        (
            "blackhole 10.1.0.0/16 via 10.1.1.1",
            "[0]",
            "a blackhole route takes neither via nor dev",
        ),
        ("10.1.0.0/16 dev eth0 table wrong", "[0]", "table must be a number"),
        ("10.1.0.0/16 dev eth0 table 0", "[0]", "0"),
        ("10.1.0.0/16 dev eth0 scope site", "[0]", "scope must be one of host, link, global"),
        ("10.1.0.0/16 dev eth0 metric", "[0]", "'metric' needs a value"),
        ("10.1.0.0/16 dev eth0 dev eth1", "[0]", "'dev' given twice"),
        ("via 10.1.1.1", "[0]", "no destination"),
        ("", "[0]", "must not be empty"),
        ({"to": "10.1.0.0/16", "via": "10.1.1.1", "onlink": True}, "[0].onlink", "unknown key"),
        ({"via": "10.1.1.1"}, "[0].to", "required key is missing"),
        ({"to": "10.1.0.0/16", "type": "local"}, "[0].type", "type must be one of blackhole"),
        (5, "[0]", "expected a route in keepalived's syntax or a mapping"),
    ],
)
def test_bad_routes_name_the_entry_and_the_option(route: Any, keypath: str, fragment: str) -> None:
    assert_one(doc({"virtual_routes": [route]}), f"{VI}.virtual_routes{keypath}", fragment)


def test_duplicate_routes_and_routes_of_their_own_family() -> None:
    assert_one(
        doc({"virtual_routes": ["10.1.0.0/16 dev eth0", "10.1.0.0/16 via 10.0.0.9 table main"]}),
        f"{VI}.virtual_routes[1]", "duplicate of vrrp_instances.VI_1.virtual_routes[0]",
    )  # fmt: skip
    # another table or metric is another route; an IPv6 route in an IPv4 instance is fine
    inst = instance({"virtual_routes": ["10.1.0.0/16 dev eth0", "10.1.0.0/16 dev eth0 table 7",
                                        "10.1.0.0/16 dev eth0 metric 7", "fd00::/64 dev eth0"]})  # fmt: skip
    assert len(inst.virtual_routes) == 4
