"""bench/link_down.py's own link request: what `ip link set DEV down|up` sends."""

from __future__ import annotations

import struct

from bench.link_down import link_request

RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFF_UP = 0x1


def test_down_clears_iff_up_and_changes_nothing_else() -> None:
    data = link_request(7, up=False, seq=3)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, seq, pid) == (
        len(data),
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        3,
        0,
    )
    family, _type, index, ifi_flags, change = struct.unpack_from("=BxHiII", data, 16)
    assert (family, index, ifi_flags, change) == (0, 7, 0, IFF_UP)
    assert len(data) == 32


def test_up_sets_it() -> None:
    _family, _type, _index, ifi_flags, change = struct.unpack_from(
        "=BxHiII", link_request(7, up=True, seq=4), 16
    )
    assert (ifi_flags, change) == (IFF_UP, IFF_UP)
