"""Logging that never blocks the event loop.

A plain StreamHandler writes to stderr synchronously. When the reader stops
reading (journald under pressure, a pipe nobody drains), the write blocks, the
loop stops, a master's adverts stop, the backup takes over, and this node
still has the VIP in its kernel: two holders. Here every write is
non-blocking; what the reader cannot take yet waits in a bounded backlog that
the loop flushes when the descriptor is writable again; when the backlog is
full, new lines are dropped and counted, and once it has drained one line
says how many were lost.

The descriptor: a socket (journald's stream, under systemd) is written with
MSG_DONTWAIT; a pipe, FIFO or terminal is opened again through /proc/self/fd
with O_NONBLOCK, a file description of our own, so the flag does not change
fd 2 for anyone else who shares it; a regular file never blocks.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
import stat
import time
from collections import deque
from collections.abc import Callable

BACKLOG_BYTES = 256 * 1024  # minutes of a busy agent's log at info level
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK)


def nonblocking_writer(fd: int) -> tuple[int, Callable[[bytes], int]]:
    """(a descriptor to wait on, write(bytes) -> bytes written) for `fd`."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISSOCK(mode):
        sock = socket.socket(fileno=os.dup(fd))
        return sock.fileno(), lambda data: sock.send(data, socket.MSG_DONTWAIT)
    if stat.S_ISREG(mode):
        return fd, lambda data: os.write(fd, data)
    try:
        own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        # No /proc, or a descriptor that cannot be reopened: a duplicate, whose
        # flag is shared with fd 2 (our children get /dev/null, not fd 2).
        own = os.dup(fd)
        os.set_blocking(own, False)
    return own, lambda data: os.write(own, data)


class NonBlockingHandler(logging.Handler):
    def __init__(self, fd: int = 2, limit: int = BACKLOG_BYTES) -> None:
        super().__init__()
        self.fileno, self._write = nonblocking_writer(fd)
        self.limit = limit
        self.backlog: deque[bytes] = deque()
        self.backlog_bytes = 0
        self.dropped = 0  # lines, since start
        self._dropped_unsaid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode(errors="replace")
        except Exception:  # noqa: BLE001 - logging's contract: a bad record must not raise
            self.handleError(record)
            return
        if self.backlog_bytes + len(line) > self.limit:
            self.dropped += 1
            self._dropped_unsaid += 1
            return
        self.backlog.append(line)
        self.backlog_bytes += len(line)
        self._flush()

    def _flush(self) -> None:
        """Write what the reader takes now; wait for writability for the rest."""
        while self.backlog:
            head = self.backlog[0]
            try:
                n = self._write(head)
            except OSError as err:
                if err.errno in _WOULD_BLOCK:
                    self._wait()
                    return
                # EPIPE and the like: nobody will read it; nothing to wait for.
                self.dropped += len(self.backlog)
                self.backlog.clear()
                self.backlog_bytes = 0
                return
            self.backlog_bytes -= n
            if n < len(head):  # a partial write: the rest of the line goes first next time
                self.backlog[0] = head[n:]
                self._wait()
                return
            self.backlog.popleft()
        self._unwait()
        if self._dropped_unsaid:
            said, self._dropped_unsaid = self._dropped_unsaid, 0
            self.emit(
                logging.makeLogRecord(
                    {"msg": "%d log lines dropped: the log reader was too slow",
                     "args": (said,), "levelno": logging.WARNING, "levelname": "WARNING"}
                )
            )  # fmt: skip

    def _wait(self) -> None:
        if self._loop is not None and not self._waiting and not self._loop.is_closed():
            self._loop.add_writer(self.fileno, self._on_writable)
            self._waiting = True

    def _unwait(self) -> None:
        if self._waiting and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self.fileno)
        self._waiting = False

    def _on_writable(self) -> None:
        self.acquire()
        try:
            self._flush()
        finally:
            self.release()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush the backlog from `loop` whenever the reader is ready."""
        self._loop = loop
        if self.backlog:
            self._wait()

    def detach(self) -> None:
        self._unwait()
        self._loop = None

    def drain(self, timeout: float) -> None:
        """At exit: give the reader up to `timeout` s for what is left."""
        self.detach()
        deadline = time.monotonic() + timeout
        while self.backlog and (left := deadline - time.monotonic()) > 0:
            select.select([], [self.fileno], [], left)
            self.acquire()
            try:
                self._flush()
            finally:
                self.release()

    def stats(self) -> dict[str, int]:
        return {"dropped": self.dropped, "backlog_bytes": self.backlog_bytes}


_installed: NonBlockingHandler | None = None


def install(level: str, fmt: str, datefmt: str) -> NonBlockingHandler:
    """The agent's only log handler, on the root logger, writing to stderr."""
    global _installed
    handler = NonBlockingHandler(2)
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _installed = handler
    return handler


def stats() -> dict[str, int] | None:
    """For `status`: lines dropped so far, bytes waiting; None when not installed."""
    return _installed.stats() if _installed is not None else None
