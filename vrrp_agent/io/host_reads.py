"""What the daemon reads from the host for tracking: link states, interface
indexes and track files. Each read returns a value for `core.node.Node`."""

from __future__ import annotations

import logging
import socket

from vrrp_agent.core.tracking import FileReading, LinkState
from vrrp_agent.io.iface import link_state
from vrrp_agent.io.track_files import read_track_file

log = logging.getLogger(__name__)


def read_link(name: str) -> LinkState:
    # A datagram socket per read: a few syscalls every poll, nothing to keep open.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            return link_state(sock, name)
    except OSError as err:
        # Not "no such interface" (that is GONE): unexpected; not up, then.
        log.warning("interface %s: cannot read its state: %s", name, err)
        return LinkState.DOWN


def ifindex_now(ifname: str) -> int | None:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def poll_file(reading: FileReading) -> bool:
    """Read one track file into `reading`; True when its value changed."""
    before = reading.value
    text, why = read_track_file(reading.path)
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
