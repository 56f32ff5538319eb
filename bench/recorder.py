"""One thread that watches a failover from outside both implementations.

Everything is timestamped with `time.monotonic()` in the same select() loop,
so times from different sources compare directly:

- `vip`: RTM_NEWADDR/RTM_DELADDR on each VRRP node (rtnetlink, subscribed in
  the node's namespace): the instant the kernel holds or drops an address;
- `state`: keepalived's notify_fifo line (both implementations write it), one
  fifo per node;
- `advert` and `garp`: frames seen by the observer's eth0 (an AF_PACKET
  socket, only while `capture` is on: with 255 instances at advert_int 0.1
  that is 2,550 frames a second the CPU figures should not pay for);
- probes: ICMP echo requests to the VIP from the observer every `interval`,
  and their replies (while `probing` is on).

The main thread only waits on a condition; it never reads a socket, so a
busy benchmark step cannot delay a timestamp.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import frames
from labkit.netns import Lab, inside

RTMGRP_IPV4_IFADDR = 0x10
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
STATES = {"MASTER", "BACKUP", "FAULT", "STOP"}


@dataclass(frozen=True, slots=True)
class Event:
    t: float
    kind: str  # vip_add, vip_del, state, advert, garp
    host: str  # the node it is about (for adverts and GARPs: the sender)
    data: dict[str, object] = field(default_factory=dict)


class Recorder:
    def __init__(self, lab: Lab, nodes: list[str], observer: str, fifos: dict[str, Path]) -> None:
        self.by_ip = {lab[n].ip4: n for n in lab.hosts}
        self.by_mac = {lab[n].mac(): n for n in lab.hosts}
        self.events: list[Event] = []
        self.times: list[float] = []
        self.held: dict[str, set[str]] = {n: set() for n in nodes}
        # The last notify_fifo state per node and instance.
        self.state: dict[str, dict[str, str]] = {n: {} for n in nodes}
        # Probe n was sent at sent[n]; its reply arrived at replied[n]. The
        # 16-bit ICMP sequence number wraps, so it maps to the latest n.
        self.sent: list[float] = []
        self.replied: dict[int, float] = {}
        self._by_seq: dict[int, int] = {}
        self.cond = threading.Condition()
        self._stop = False
        self.error: BaseException | None = None
        self._capture = False
        self._drain = False
        self._probe: tuple[str, float] | None = None
        self._sources: dict[int, Callable[[float], None]] = {}
        self._fifo_rest: dict[str, bytes] = {}
        self._keep: list[int] = []
        self._sockets: list[socket.socket] = []
        self._ident = os.getpid() & 0xFFFF
        self._next_probe = 0.0

        for node in nodes:
            with inside(lab[node].ns):
                nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            nl.bind((0, RTMGRP_IPV4_IFADDR))
            nl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self._sources[nl.fileno()] = self._netlink_reader(nl, node)
            self._sockets.append(nl)
            self.held[node] = set(lab[node].addresses())
        for node, path in fifos.items():
            if path.exists():
                path.unlink()
            os.mkfifo(path, 0o600)
            rd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            # Our own write end keeps the fifo from reporting hang-up (and
            # select() from spinning) while no implementation has it open.
            self._keep.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            self._keep.append(rd)
            self._sources[rd] = self._fifo_reader(rd, node)
        with inside(lab[observer].ns):
            self.packets = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.packets.bind(("eth0", ETH_P_ALL))
            self.icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.packets.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.icmp.setblocking(False)
        self.packets.setblocking(False)
        self._sources[self.icmp.fileno()] = self._icmp_reader
        self._sockets += [self.packets, self.icmp]
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- control

    def capture(self, on: bool) -> None:
        """Adverts and GARPs from the wire on or off (the socket drops what
        arrives meanwhile: it is drained when capture resumes)."""
        with self.cond:
            self._capture = on
            # What queued while capture was off is stale: drop it, or it
            # would be stamped with the time it is read.
            self._drain = on
        os.write(self._wake_w, b"x")

    def probing(self, target: str | None, interval: float = 0.005) -> None:
        with self.cond:
            self._probe = (target, interval) if target else None
            self._next_probe = 0.0
        os.write(self._wake_w, b"x")

    def close(self) -> None:
        with self.cond:
            self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        for fd in self._keep:
            os.close(fd)
        for sock in self._sockets:
            sock.close()

    # ------------------------------------------------------------------- query

    def since(self, t: float) -> list[Event]:
        with self.cond:
            return self.events[bisect.bisect_right(self.times, t) :]

    def between(self, t1: float, t2: float) -> list[Event]:
        with self.cond:
            lo = bisect.bisect_left(self.times, t1)
            hi = bisect.bisect_right(self.times, t2)
            return self.events[lo:hi]

    def wait_event(
        self, what: str, pred: Callable[[Event], bool], after: float, timeout: float
    ) -> Event:
        """The first event after `after` that satisfies `pred`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = bisect.bisect_right(self.times, after)
            while True:
                self._check()
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
                self.cond.wait(left)

    def wait_until(self, what: str, pred: Callable[[], bool], timeout: float) -> float:
        """Wait until `pred` (called under the lock, on `held` and friends) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                self._check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
                self.cond.wait(left)
        return time.monotonic()

    def holders(self, vip: str) -> set[str]:
        return {n for n, addrs in self.held.items() if vip in addrs}

    def probes(self, t1: float, t2: float, answer_within: float = 0.02) -> list[tuple[float, bool]]:
        """(send time, answered) for each probe sent in [t1, t2]. A reply
        later than `answer_within` counts as lost: while the client's kernel
        re-resolves the VIP's MAC it queues the probes and releases them once
        it learns the new holder, so a late reply is an outage, not service.
        (On this lab a reply takes well under a millisecond.)"""
        with self.cond:
            lo = bisect.bisect_left(self.sent, t1)
            hi = bisect.bisect_right(self.sent, t2)
            out = []
            for n in range(lo, hi):
                got = self.replied.get(n)
                out.append((self.sent[n], got is not None and got - self.sent[n] <= answer_within))
        return out

    # -------------------------------------------------------------------- loop

    def _record(self, t: float, kind: str, host: str, **data: object) -> None:
        self.events.append(Event(t, kind, host, data))
        self.times.append(t)

    def _loop(self) -> None:
        try:
            self._run()
        except BaseException as e:  # the waiters must hear of it, not time out
            with self.cond:
                self.error = e
                self.cond.notify_all()
            raise

    def _check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the recorder thread failed: {self.error!r}") from self.error

    def _run(self) -> None:
        while True:
            with self.cond:
                if self._stop:
                    return
                if self._drain:
                    self._discard_packets()
                    self._drain = False
                fds = [*self._sources, self._wake_r]
                if self._capture:
                    fds.append(self.packets.fileno())
                probe = self._probe
                next_probe = self._next_probe
            timeout = None
            if probe is not None:
                timeout = max(0.0, next_probe - time.monotonic())
            ready, _, _ = select.select(fds, [], [], timeout)
            t = time.monotonic()
            with self.cond:
                for fd in ready:
                    if fd == self._wake_r:
                        os.read(self._wake_r, 4096)
                    elif fd == self.packets.fileno():
                        self._packets(t)
                    else:
                        self._sources[fd](t)
                if probe is not None and t >= self._next_probe:
                    self._send_probe(probe[0], t)
                    self._next_probe = max(t, self._next_probe) + probe[1]
                self.cond.notify_all()

    def _netlink_reader(self, sock: socket.socket, node: str) -> Callable[[float], None]:
        def read(t: float) -> None:
            for change in frames.parse_addr_messages(sock.recv(1 << 16)):
                if change.added:
                    self.held[node].add(change.address)
                    self._record(t, "vip_add", node, ip=change.address)
                else:
                    self.held[node].discard(change.address)
                    self._record(t, "vip_del", node, ip=change.address)

        return read

    def _fifo_reader(self, fd: int, node: str) -> Callable[[float], None]:
        def read(t: float) -> None:
            data = self._fifo_rest.get(node, b"") + os.read(fd, 1 << 16)
            *lines, rest = data.split(b"\n")
            self._fifo_rest[node] = rest
            for line in lines:
                # INSTANCE "VI_1" MASTER 200
                parts = line.decode(errors="replace").split()
                if len(parts) >= 3:
                    name = parts[1].strip('"')
                    # keepalived also reports events such as MASTER_RX_LOWER_PRI.
                    if parts[2] in STATES:
                        self.state[node][name] = parts[2]
                    self._record(t, "state", node, type=parts[0], name=name, state=parts[2])

        return read

    def _packets(self, t: float) -> None:
        while True:
            try:
                frame, addr = self.packets.recvfrom(2048)
            except BlockingIOError:
                return
            if not self._capture or addr[2] == PACKET_OUTGOING:
                continue
            got = frames.parse_frame(frame)
            if isinstance(got, frames.Advert):
                sender = self.by_ip.get(got.src, got.src)
                self._record(t, "advert", sender, vrid=got.vrid, priority=got.priority)
            elif isinstance(got, frames.Arp) and got.gratuitous:
                sender = self.by_mac.get(got.sender_mac, got.sender_mac)
                self._record(t, "garp", sender, ip=got.sender_ip)

    def _discard_packets(self) -> None:
        while True:
            try:
                self.packets.recv(2048)
            except BlockingIOError:
                return

    def _send_probe(self, target: str, t: float) -> None:
        n = len(self.sent)
        seq = n & 0xFFFF
        self.sent.append(t)
        self._by_seq[seq] = n
        # No route or no ARP answer yet: a lost probe, which is what we measure.
        with contextlib.suppress(OSError):
            self.icmp.sendto(frames.echo_request(self._ident, seq), (target, 0))

    def _icmp_reader(self, t: float) -> None:
        while True:
            try:
                packet = self.icmp.recv(2048)
            except BlockingIOError:
                return
            seq = frames.echo_reply_seq(packet, self._ident)
            if seq is not None and seq in self._by_seq:
                self.replied.setdefault(self._by_seq[seq], t)
