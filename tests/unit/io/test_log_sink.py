"""The non-blocking log handler on a real pipe that nobody reads: writes never
block, the backlog is bounded, what it cannot hold is dropped and counted, and
one line says so once the reader is back (tests/netns/test_log_stall.py shows
what a blocking write cost: a second master)."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time

from vrrp_agent.io.log_sink import NonBlockingHandler

F_SETPIPE_SZ = 1031


def record(i: int) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": "line %d " + "x" * 80, "args": (i,)})


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_a_full_pipe_never_blocks_and_the_overflow_is_counted() -> None:
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    handler = NonBlockingHandler(w, limit=2048)
    t0 = time.monotonic()
    for i in range(1000):  # ~90 KB into a 4 KiB pipe and a 2 KiB backlog
        handler.handle(record(i))
    assert time.monotonic() - t0 < 2  # a blocking write would never return
    assert 0 < handler.backlog_bytes <= 2048
    assert handler.dropped > 900
    dropped = handler.dropped
    first = read_all(r)  # the reader is back
    handler.drain(timeout=1)
    rest = read_all(r)
    lines = (first + rest).decode().splitlines()
    # Whole lines only, in order, the earliest kept; then how many were lost.
    numbers = [int(ln.split()[1]) for ln in lines[:-1]]
    assert numbers == list(range(len(numbers)))
    assert lines[-1] == f"{dropped} log lines dropped: the log reader was too slow"
    assert handler.stats() == {"dropped": dropped, "backlog_bytes": 0}


def test_fd_2_keeps_its_blocking_mode() -> None:
    # The handler opens a description of its own; the shared one is untouched.
    r, w = os.pipe()
    NonBlockingHandler(w)
    assert os.get_blocking(w)
    os.close(r)


def test_a_stream_socket_is_written_without_waiting() -> None:
    # journald's stream socket, under systemd: MSG_DONTWAIT, the socket's mode unchanged.
    a, b = socket.socketpair()
    handler = NonBlockingHandler(a.fileno(), limit=4096)
    t0 = time.monotonic()
    for i in range(5000):
        handler.handle(record(i))
    assert time.monotonic() - t0 < 2
    assert handler.dropped > 0
    assert a.getblocking()
    a.close()
    b.close()
