"""The RTMGRP_LINK parser on hand-built messages, laid out as the kernel's
rtnl_fill_ifinfo() lays them out: nlmsghdr, ifinfomsg, then attributes, each
padded to 4 bytes. The socket itself is tested in tests/netns/test_link_events.py."""

from __future__ import annotations

import socket
import struct

import pytest

from vrrp_agent.core.tracking import LinkState
from vrrp_agent.io.link_monitor import (
    IFF_RUNNING,
    IFF_UP,
    IFLA_IFNAME,
    RTM_DELLINK,
    RTM_NEWLINK,
    LinkEvent,
    parse_link_messages,
    state_from_flags,
)

IFF_LOWER_UP = 0x10000
IFF_BROADCAST, IFF_MULTICAST = 0x2, 0x1000
IFLA_MTU = 4
NLA_F_NESTED = 0x8000
IFLA_LINKINFO = 18
RTM_NEWADDR = 20
AF_BRIDGE = 7


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def message(
    kind: int,
    index: int,
    flags: int,
    attrs: bytes,
    family: int = socket.AF_UNSPEC,
) -> bytes:
    body = struct.pack("=BxHiII", family, 1, index, flags, 0xFFFFFFFF) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def name(ifname: str) -> bytes:
    return attr(IFLA_IFNAME, ifname.encode() + b"\0")


def link(kind: int, ifname: str, index: int, flags: int) -> bytes:
    # IFLA_IFNAME after another attribute, as the kernel puts it (after the
    # address attributes, before the MTU): the parser must walk to it.
    return message(kind, index, flags, attr(IFLA_MTU, struct.pack("=I", 1500)) + name(ifname))


RUNNING = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING | IFF_LOWER_UP


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        (RUNNING, LinkState.UP),
        # `ip link set DEV down`: IFF_UP cleared (and with it RUNNING and LOWER_UP).
        (IFF_BROADCAST | IFF_MULTICAST, LinkState.DOWN),
        # The veth peer or the switch port down: still IFF_UP, no carrier.
        (IFF_UP | IFF_BROADCAST | IFF_MULTICAST, LinkState.DOWN),
        # Carrier but not operationally up (dormant, or still testing): not UP,
        # as iface.link_state, which looks only at IFF_UP and IFF_RUNNING.
        (IFF_UP | IFF_LOWER_UP, LinkState.DOWN),
        # lo and dummies: no carrier to report, oper state UNKNOWN, IFF_RUNNING set.
        (IFF_UP | IFF_RUNNING, LinkState.UP),
    ],
)
def test_state_follows_up_and_running(flags: int, state: LinkState) -> None:
    assert state_from_flags(flags) is state
    (event,), malformed = parse_link_messages(link(RTM_NEWLINK, "eth0", 2, flags))
    assert event == LinkEvent("eth0", 2, state)
    assert not malformed


def test_dellink_is_gone_whatever_the_flags() -> None:
    assert parse_link_messages(link(RTM_DELLINK, "eth1", 7, RUNNING)) == (
        [LinkEvent("eth1", 7, LinkState.GONE)],
        False,
    )


def test_several_messages_in_one_datagram_in_order() -> None:
    data = (
        link(RTM_NEWLINK, "eth0", 2, IFF_UP)
        + link(RTM_NEWLINK, "eth0", 2, RUNNING)
        + link(RTM_DELLINK, "veth-long-name", 12, 0)
    )
    events, malformed = parse_link_messages(data)
    assert events == [
        LinkEvent("eth0", 2, LinkState.DOWN),
        LinkEvent("eth0", 2, LinkState.UP),
        LinkEvent("veth-long-name", 12, LinkState.GONE),
    ]
    assert not malformed


def test_other_message_types_are_skipped() -> None:
    addr = struct.pack("=IHHII", 24, RTM_NEWADDR, 0, 0, 0) + b"\0" * 8
    data = addr + link(RTM_NEWLINK, "eth0", 2, RUNNING)
    assert parse_link_messages(data) == ([LinkEvent("eth0", 2, LinkState.UP)], False)


def test_bridge_port_messages_are_not_link_states() -> None:
    # A port leaving its bridge: RTM_DELLINK of family AF_BRIDGE, the link stays.
    data = message(RTM_DELLINK, 3, RUNNING, name("eth0"), family=AF_BRIDGE)
    assert parse_link_messages(data) == ([], False)


def test_nested_flag_on_the_attribute_type_is_ignored() -> None:
    nested = attr(IFLA_LINKINFO | NLA_F_NESTED, attr(1, b"veth\0"))
    data = message(RTM_NEWLINK, 4, RUNNING, nested + name("p1"))
    assert parse_link_messages(data) == ([LinkEvent("p1", 4, LinkState.UP)], False)


def test_a_name_that_is_not_utf8_survives_as_the_os_spells_it() -> None:
    data = message(RTM_NEWLINK, 5, RUNNING, attr(IFLA_IFNAME, b"et\xffh\0"))
    (event,), _ = parse_link_messages(data)
    assert event.ifname.encode("utf-8", "surrogateescape") == b"et\xffh"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x10\0\0", id="shorter than a header"),
        pytest.param(struct.pack("=IHHII", 8, RTM_NEWLINK, 0, 0, 0), id="length below a header"),
        pytest.param(link(RTM_NEWLINK, "eth0", 2, RUNNING)[:-4], id="length beyond the data"),
        pytest.param(
            struct.pack("=IHHII", 20, RTM_NEWLINK, 0, 0, 0) + b"\0" * 4, id="short ifinfomsg"
        ),
        pytest.param(message(RTM_NEWLINK, 2, RUNNING, b""), id="no name"),
        pytest.param(message(RTM_NEWLINK, 2, RUNNING, attr(IFLA_IFNAME, b"\0")), id="empty name"),
        pytest.param(
            message(RTM_NEWLINK, 2, RUNNING, struct.pack("=HH", 2, IFLA_IFNAME)),
            id="attribute length below its header",
        ),
        pytest.param(
            message(RTM_NEWLINK, 2, RUNNING, struct.pack("=HH", 64, IFLA_IFNAME) + b"eth0"),
            id="attribute beyond the message",
        ),
    ],
)
def test_malformed_input_is_reported_not_raised(data: bytes) -> None:
    events, malformed = parse_link_messages(data)
    assert events == []
    assert malformed


def test_good_messages_around_a_malformed_one_still_count() -> None:
    bad = message(RTM_NEWLINK, 9, RUNNING, b"")
    data = link(RTM_NEWLINK, "eth0", 2, IFF_UP) + bad + link(RTM_NEWLINK, "eth1", 3, RUNNING)
    events, malformed = parse_link_messages(data)
    assert events == [LinkEvent("eth0", 2, LinkState.DOWN), LinkEvent("eth1", 3, LinkState.UP)]
    assert malformed


def test_nothing_to_parse_is_no_event_and_no_error() -> None:
    assert parse_link_messages(b"") == ([], False)
