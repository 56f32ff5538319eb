"""bench/link_down.py's own link-message check, on hand-built RTM_NEWLINK messages."""

from __future__ import annotations

import socket
import struct

from bench.link_down import links_down

AF_BRIDGE = 7
IFF_UP, IFF_RUNNING = 0x1, 0x40


def newlink(index: int, flags: int, family: int = socket.AF_UNSPEC, kind: int = 16) -> bytes:
    body = struct.pack("=BxHiII", family, 1, index, flags, 0) + struct.pack("=HH", 8, 3) + b"eth0"
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_down_and_carrier_loss_count_running_does_not() -> None:
    assert links_down(newlink(2, 0), 2)
    assert links_down(newlink(2, IFF_UP), 2)
    assert not links_down(newlink(2, IFF_UP | IFF_RUNNING), 2)


def test_only_the_watched_link_and_its_own_messages() -> None:
    assert not links_down(newlink(3, 0), 2)
    assert not links_down(newlink(2, 0, family=AF_BRIDGE), 2)
    assert not links_down(newlink(2, 0, kind=20), 2)  # RTM_NEWADDR
    assert links_down(newlink(3, 0) + newlink(2, IFF_UP), 2)


def test_truncated_data_is_not_a_link_down() -> None:
    assert not links_down(newlink(2, 0)[:20], 2)
    assert not links_down(b"", 2)
