"""The drain file (`global_defs.drain_file`): `vrrp-agent drain` survives an
agent restart because the agent records it here before it changes anything.

Content: JSON `{"since": <unix time>}`, written to a temporary file beside it
and renamed over it, so a reader never sees half a file. Its presence is what
counts: a file that cannot be read or parsed still means drained (since
unknown), since the operator asked for maintenance and nothing said otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from vrrp_agent.core.node import Node, NodeAction, released

log = logging.getLogger("vrrp_agent")


@dataclass(frozen=True)
class Reading:
    """What the drain file said at start: `drained`, since when (None: not
    said), and a warning to log when it could not be read as written."""

    drained: bool
    since: float | None = None
    warning: str | None = None


def read(path: str) -> Reading:
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except (FileNotFoundError, NotADirectoryError):
        # Not there (ENOTDIR: a component of the path is a file, so it cannot be).
        return Reading(False)
    except OSError as err:
        return Reading(True, None, f"cannot read {path} ({describe(err)}): drained all the same")
    try:
        since = json.loads(raw)["since"]
        if since is None:  # written so: the time was unknown then too
            return Reading(True, None)
        if isinstance(since, bool) or not isinstance(since, (int, float)):
            raise ValueError
        if not math.isfinite(since):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        why = f'{path} is not {{"since": <unix time>}}: drained all the same (since unknown)'
        return Reading(True, None, why)
    return Reading(True, float(since))


def write(path: str, since: float | None) -> None:
    """Record the drain atomically (tmp file + fsync + rename). Raises OSError
    when it cannot; then nothing is left behind."""
    parent = os.path.dirname(path) or "."
    if not os.path.lexists(parent):
        # As the control socket's: made if missing (not when it is a file:
        # opening below then says what is wrong).
        os.makedirs(parent, mode=0o755, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps({"since": since}).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: str) -> None:
    """Forget the drain; a file already gone is fine. Raises OSError otherwise."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def answer(
    drained: bool, since: float | None, changed: bool, released: list[str]
) -> dict[str, object]:
    """The control socket's answer to drain and undrain."""
    return {"drained": drained, "since": since, "changed": changed, "released": released}


def describe(err: OSError) -> str:
    """An OSError as `[Errno 13] Permission denied`, without the path twice."""
    if err.errno is not None and err.strerror:
        return f"[Errno {err.errno}] {err.strerror}"
    return str(err)


def iso(when: float | None) -> str:
    """A unix time as 2026-12-06T21:40:00Z (UTC), as the CLI prints it."""
    if when is None:
        return "an unknown time"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


class Maintenance:
    """`vrrp-agent drain` / `undrain` for the daemon: the drain file first,
    then the node's event, its actions carried out by `run` at once (so the
    priority-0 adverts leave right after `since` is taken)."""

    def __init__(
        self, node: Node, run: Callable[[list[NodeAction]], None], clock: Callable[[], float]
    ) -> None:
        self.node = node
        self._run = run
        self._clock = clock  # the loop's monotonic time, for the node

    def start(self, path: str) -> None:
        """At start: a drain file left by an earlier run means drained."""
        found = read(path)
        if found.warning:
            log.warning("%s", found.warning)
        if found.drained:
            log.warning(
                "drained since %s (%s): staying BACKUP until `vrrp-agent undrain`",
                iso(found.since),
                path,
            )
            self._run(self.node.drain(self._clock(), found.since))

    def drain(self, path: str) -> dict[str, object]:
        node = self.node
        if node.drained:
            return answer(True, node.drained_since, False, [])
        since = time.time()
        try:
            write(path, since)
        except OSError as err:
            why = f"cannot write drain_file {path}: {describe(err)}"
            log.error("drain refused: %s", why)
            return {"error": why}
        out = node.drain(self._clock(), since)
        self._run(out)
        gone = released(out)
        log.warning(
            "drained: released %s; staying BACKUP until `vrrp-agent undrain`",
            ", ".join(gone) or "nothing (no instance was MASTER)",
        )
        return answer(True, since, True, gone)

    def undrain(self, path: str) -> dict[str, object]:
        node = self.node
        if not node.drained:
            return answer(False, None, False, [])
        since = node.drained_since
        try:
            remove(path)
        except OSError as err:
            why = f"cannot remove drain_file {path}: {describe(err)}"
            log.error("undrain refused: %s", why)
            return {"error": why}
        self._run(node.undrain(self._clock()))
        log.warning("undrained (drained since %s): instances compete for MASTER again", iso(since))
        return answer(False, since, True, [])

    def moved(self, old: str, new: str) -> None:
        """A reload named another drain_file: the drain (if any) moves there."""
        if not self.node.drained or old == new:
            return
        try:
            write(new, self.node.drained_since)
            remove(old)
        except OSError as err:
            log.error(
                "reload: cannot move the drain record from %s to %s: %s (still drained)",
                old,
                new,
                describe(err),
            )
