"""What the daemon reads from the host for tracking: link states, interface
indexes and track files. Each read returns a value for `core.node.Node`."""

from __future__ import annotations

import fcntl
import logging
import socket
import struct

from vrrp_agent.core.tracking import FileReading, LinkState
from vrrp_agent.io.host_errors import CANNOT_LOOK, CannotLook
from vrrp_agent.io.iface import link_state
from vrrp_agent.io.log_limit import LogLimiter
from vrrp_agent.io.track_files import read_track_file

log = logging.getLogger(__name__)


_limited = LogLimiter(log)


class _IoctlSocket:
    """One datagram socket for every interface ioctl, opened once.

    A socket per read cost a descriptor each poll, so running out of
    descriptors (a leak, a flood of control connections) made every link
    read fail, and the failures looked like links going down: a healthy
    MASTER went to FAULT and dropped its VIPs. The socket also fixes the
    namespace: the one the agent runs in."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def get(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            except OSError as err:
                raise CannotLook(err.errno, err.strerror) from None
        return self._sock


_ioctl = _IoctlSocket()
_SIOCGIFINDEX = 0x8933  # <linux/sockios.h>


def read_link(name: str) -> LinkState | None:
    """The link's state, or None when the host cannot say (keep the last)."""
    try:
        return link_state(_ioctl.get(), name)
    except OSError as err:
        if err.errno in CANNOT_LOOK:
            _limited.warning(
                f"link:{err.errno}", "interface %s: cannot read its state (%s);"
                " keeping the last one", name, err.strerror or err,
            )  # fmt: skip
            return None
        # Not "no such interface" (that is GONE): unexpected; not up, then.
        log.warning("interface %s: cannot read its state: %s", name, err)
        return LinkState.DOWN


def ifindex_now(ifname: str) -> int | None:
    """The interface's index, None when there is no such interface; raises
    CannotLook when the host cannot say. (socket.if_nametoindex opens a
    socket per call and reports EMFILE as "no interface with this name".)"""
    try:
        ifreq = fcntl.ioctl(
            _ioctl.get().fileno(), _SIOCGIFINDEX, struct.pack("16si20x", ifname.encode(), 0)
        )
    except OSError as err:
        if err.errno in CANNOT_LOOK:
            _limited.warning(
                f"ifindex:{err.errno}", "interface %s: cannot read its index (%s)",
                ifname, err.strerror or err,
            )  # fmt: skip
            raise CannotLook(err.errno, err.strerror) from None
        return None  # ENODEV, or a name the kernel refuses (too long)
    (index,) = struct.unpack_from("i", ifreq, 16)
    return int(index)


def poll_file(reading: FileReading) -> bool:
    """Read one track file into `reading`; True when its value changed."""
    before = reading.value
    try:
        text, why = read_track_file(reading.path)
    except CannotLook as err:
        _limited.warning(
            f"file:{err.errno}", "track_file %s: cannot read it now (%s); keeping %d",
            reading.path, err.strerror or err, reading.value,
        )  # fmt: skip
        return False
    if reading.record(text, why) and reading.note is not None:
        # Said once per change, not every poll.
        log.warning("track_file %s: %s", reading.path, reading.note)
    if reading.value == before:
        return False
    log.info("track_file %s: %d -> %d", reading.path, before, reading.value)
    return True


class TrackFiles:
    """The reading of every track file, kept across polls (a reading
    remembers what the previous poll saw, see FileReading).

    Polled rather than watched with inotify (as keepalived does): a poll sees
    the file however it appears (created later, renamed over, its directory
    made after start, on a filesystem or bind mount inotify does not report),
    costs one small read per file per poll, and shares the link poll's timer,
    so a file moves a VIP within the same bound as a link. The price, a write
    caught half-done, is handled by FileReading."""

    def __init__(self) -> None:
        self.readings: dict[str, FileReading] = {}

    def read(self, paths: set[str]) -> dict[str, FileReading]:
        """The readings of `paths`; a path not read before is read now."""
        for path in paths - set(self.readings):
            poll_file(self.readings.setdefault(path, FileReading(path)))
        return {p: self.readings[p] for p in paths}

    def poll(self, paths: set[str]) -> dict[str, FileReading]:
        """Read every file of `paths` again: the readings whose value changed."""
        return {p: r for p, r in self.read(paths).items() if poll_file(r)}
