"""One netlink request and its replies, for rtnetlink (io/netlink.py) and
generic netlink (lvs/ipvs.py). Plain struct work, no pyroute2: the callers
bring their own message classes, and `vrrp-agent validate` may import the
IPVS module without loading any of pyroute2.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import Any, Protocol

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSG_HDR = struct.Struct("=IHHII")


class NetlinkError(OSError):
    """An error the kernel answered a netlink request with."""


class NetlinkSocket(Protocol):
    """What exchange() needs of a netlink socket (a real one, or the tests' fake)."""

    def send(self, data: bytes, /) -> int: ...

    def recv(self, bufsize: int, /) -> bytes: ...


def exchange(
    sock: NetlinkSocket,
    msg: Any,
    msg_type: int,
    flags: int,
    seq: int,
    nlmsgerr: Callable[[bytes], Any],
) -> list[bytes]:
    """Send `msg` (a pyroute2 message) with NLM_F_ACK or NLM_F_DUMP in
    `flags`, either of which guarantees an end; return the raw replies to
    `seq` before it. An error reply raises NetlinkError(errno)."""
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    sock.send(bytes(msg.data))
    replies: list[bytes] = []
    while True:
        data = sock.recv(1 << 16)
        if not data:
            raise NetlinkError(errno.EIO, "netlink socket closed")
        off = 0
        while off + NLMSG_HDR.size <= len(data):
            length, typ, _flags, rseq, _pid = NLMSG_HDR.unpack_from(data, off)
            if length < NLMSG_HDR.size:
                raise NetlinkError(errno.EIO, "malformed netlink reply")
            chunk = data[off : off + length]
            off += (length + 3) & ~3
            if rseq != seq:
                continue
            if typ == NLMSG_DONE:
                return replies
            if typ == NLMSG_ERROR:
                err = nlmsgerr(chunk)
                err.decode()
                code = -err["error"]
                if code:
                    raise NetlinkError(code, os.strerror(code))
                return replies
            replies.append(chunk)
