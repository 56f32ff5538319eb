"""Link changes as the kernel announces them: rtnetlink's RTMGRP_LINK group.

The agent used to learn of a link going down only at its next poll (every
0.5 s), so a master whose link dropped kept its VIPs for up to that long;
keepalived reacts to these same messages within milliseconds. The monitor
only says *that* a link changed and what the kernel reported; the caller
still reads the state of every link it cares about, so a lost or unparsable
message can never leave it with a wrong picture: it is told to re-read
everything (`resync`).

Plain struct work on a raw socket, no pyroute2: nothing to import at start.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from dataclasses import dataclass

from vrrp_agent.core.tracking import LinkState

log = logging.getLogger(__name__)

# <linux/rtnetlink.h>, <linux/if_link.h>, <linux/netlink.h>, <linux/if.h>
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME = 3
# The attribute type without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
NLA_TYPE_MASK = 0x3FFF
IFF_UP = 0x1
IFF_RUNNING = 0x40  # the kernel's oper state is UP (or UNKNOWN, as for lo)

NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
RTATTR = struct.Struct("=HH")  # len, type

# Enough for a burst of a few hundred link messages (about 1.5 KB each) between
# two reads; beyond that the kernel reports ENOBUFS and the caller re-reads.
DEFAULT_RCVBUF = 1 << 20
# recv() calls per read(): a flood of link messages must not starve the loop;
# what is left keeps the socket readable for the next round.
MAX_RECVS = 64


@dataclass(frozen=True)
class LinkEvent:
    """One RTM_NEWLINK / RTM_DELLINK: the link's state right after the change."""

    ifname: str
    index: int
    state: LinkState


def state_from_flags(flags: int) -> LinkState:
    """The rule of io/iface.py's `link_state` (SIOCGIFFLAGS reads the same
    dev_get_flags() the kernel puts in ifi_flags): UP only when
    administratively up and running, so a downed veth peer or a pulled cable
    (IFF_RUNNING cleared, IFF_UP kept) is DOWN here as there."""
    up = IFF_UP | IFF_RUNNING
    return LinkState.UP if flags & up == up else LinkState.DOWN


def parse_link_messages(data: bytes) -> tuple[list[LinkEvent], bool]:
    """One datagram from an RTMGRP_LINK socket -> (the link events in it,
    whether anything in it could not be parsed). Never raises: the kernel
    does not send malformed messages, but a parse failure must cost a
    re-read, not the daemon. Other message types are skipped."""
    events: list[LinkEvent] = []
    malformed = False
    offset = 0
    while offset < len(data):
        if offset + NLMSG_HDR.size > len(data):
            return events, True
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            return events, True  # truncated: nothing trustworthy follows
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            try:
                event = _link(data[offset + NLMSG_HDR.size : offset + length], kind == RTM_DELLINK)
            except _Malformed:
                malformed = True
            else:
                if event is not None:
                    events.append(event)
        offset += (length + 3) & ~3
    return events, malformed


class _Malformed(ValueError):
    """A netlink message too short or inconsistent to read."""


def _link(body: bytes, deleted: bool) -> LinkEvent | None:
    """The event in one message's body; None for a message that is not about
    a link's own state."""
    if len(body) < IFINFOMSG.size:
        raise _Malformed
    family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
    if family != socket.AF_UNSPEC:
        # AF_BRIDGE messages are about a bridge port: an RTM_DELLINK of that
        # family means the port left its bridge, not that the link is gone.
        return None
    name: bytes | None = None
    offset = IFINFOMSG.size
    while offset + RTATTR.size <= len(body):
        rta_len, rta_type = RTATTR.unpack_from(body, offset)
        if rta_len < RTATTR.size or offset + rta_len > len(body):
            raise _Malformed
        if rta_type & NLA_TYPE_MASK == IFLA_IFNAME:
            name = body[offset + RTATTR.size : offset + rta_len].split(b"\0", 1)[0]
        offset += (rta_len + 3) & ~3
    if not name:
        raise _Malformed
    state = LinkState.GONE if deleted else state_from_flags(flags)
    # As socket.if_nametoindex and the config spell interface names.
    return LinkEvent(os.fsdecode(name), index, state)


class LinkMonitor:
    """A non-blocking rtnetlink socket subscribed to link changes in the
    network namespace it was made in.

    After `read()`, `resync` is True when events may have been lost since the
    previous read (the kernel dropped some: ENOBUFS; or one did not parse):
    the caller must then re-read every link it watches.
    """

    def __init__(self, rcvbuf: int = DEFAULT_RCVBUF) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.bind((0, RTMGRP_LINK))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self.resync = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[LinkEvent]:
        """The events queued now, oldest first; never blocks."""
        self.resync = False
        events: list[LinkEvent] = []
        for _ in range(MAX_RECVS):
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as err:
                self.resync = True
                if err.errno != errno.ENOBUFS:
                    log.warning("reading link events failed: %s", err)
                    break
                # The queue overflowed and the kernel dropped messages; the
                # socket goes on working, and what is still queued follows.
                log.warning("link events were lost (receive buffer full): re-reading links")
                continue
            got, malformed = parse_link_messages(data)
            if malformed:
                log.warning("a link event did not parse: re-reading links")
                self.resync = True
            events += got
        return events

    def close(self) -> None:
        self._sock.close()
