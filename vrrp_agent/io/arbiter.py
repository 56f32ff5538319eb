"""The split-brain arbiter: probes reference addresses so that a node cut off
from them goes to FAULT instead of becoming a second master.

Every `interval` seconds a *round* sends one probe to every reference address
at once (ICMP/ICMPv6 echo, or an RFC 5227 ARP probe on `interface`); the
round succeeds as soon as any address answers and fails when none has after
`timeout`. A `ScriptTracker` turns rounds into UP/DOWN with fall/rise
hysteresis, starting UP as scripts do; whoever owns the prober (the daemon)
is called after every round and reads `up` and `last_success`, and may ask
for a round at once (`request_round`, before a takeover); such rounds count
towards fall/rise like the periodic ones.

`RoundBook` is the sans-I/O part (sequence numbers, which answer decides a
round, per-address records, the tracker); `ArbiterProber` only owns the
sockets and the timing. Sockets are non-blocking and read from the event
loop, so a probe never blocks the agent.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from vrrp_agent.config.model import Arbiter
from vrrp_agent.core.tracking import ScriptState, ScriptTracker
from vrrp_agent.io.iface import link
from vrrp_agent.wire.addresses import IPAddr
from vrrp_agent.wire.probe import (
    ETHERTYPE_ARP,
    ICMP_ECHO_REPLY,
    ICMPV6_ECHO_REPLY,
    arp_probe,
    icmp_echo_request,
    icmpv6_echo_request,
    parse_arp_reply,
    parse_icmp_echo_reply,
    parse_icmpv6_echo_reply,
)

log = logging.getLogger(__name__)

# Not in Python's socket module (linux/icmp.h, linux/icmpv6.h).
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1

# The least time between the start of a round and a requested one: bounds
# the round rate for an owner that asks again after every round.
REQUEST_GAP = 0.05

# At most this many packets are read per wake-up, so a flood on the segment
# (every ARP broadcast reaches the ARP socket) cannot starve the loop.
_READ_BURST = 64


def _plural(n: int, word: str, plural: str) -> str:
    return f"{n} {word if n == 1 else plural}"


def _unscoped(addr: IPAddr) -> IPAddr:
    """Replies come from the bare address; a configured `fe80::1%eth0` keeps
    its scope only for sending."""
    return ip_address(addr.packed)


# ---------------------------------------------------------------- sans-I/O


@dataclass
class Reference:
    """What one reference address did lately, for `status`."""

    last_answer: float | None = None  # loop time of its last answer to one of our probes
    rtt: float | None = None  # seconds, of that answer
    error: str | None = None  # why the last probe could not be sent; None once one was


@dataclass
class RoundBook:
    """Rounds and their outcomes, without sockets or a clock.

    The I/O layer calls `begin`, then `send_failed` for probes it could not
    send, `answer` for every answer it recognises, and `finish` when the
    first answer arrived (`answer` returned True) or the timeout passed.
    """

    addresses: Sequence[IPAddr]
    fall: int = 2
    rise: int = 2
    timeout: float = 0.5
    tracker: ScriptTracker = field(init=False)
    refs: dict[IPAddr, Reference] = field(init=False)
    seq: int = field(default=0, init=False)  # of the current (or last) round
    rounds: int = field(default=0, init=False)
    running: bool = field(default=False, init=False)
    started: float = field(default=0.0, init=False)
    last_success: float | None = field(default=None, init=False)
    # The current round: answers so far and why the others did not answer.
    answered: set[IPAddr] = field(default_factory=set, init=False)
    errors: dict[IPAddr, str] = field(default_factory=dict, init=False)
    # The last finished round: whether anybody answered, and who did (if
    # it succeeded) or why each address did not (if it failed).
    last_ok: bool = field(default=False, init=False)
    last_round: dict[IPAddr, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.tracker = ScriptTracker(fall=self.fall, rise=self.rise)
        self.refs = {a: Reference() for a in self.addresses}

    @property
    def up(self) -> bool:
        return self.tracker.up

    @property
    def state(self) -> ScriptState:
        return self.tracker.state

    def begin(self, now: float) -> int:
        """Start a round; returns its sequence number (16 bits, as ICMP has)."""
        if self.running:
            raise RuntimeError("a probe round is already running")
        self.seq = (self.seq + 1) & 0xFFFF
        self.running = True
        self.started = now
        self.answered = set()
        self.errors = {}
        return self.seq

    def send_failed(self, addr: IPAddr, detail: str) -> None:
        self.errors[addr] = detail
        self.refs[addr].error = detail

    def sent(self, addr: IPAddr) -> None:
        self.refs[addr].error = None

    @property
    def awaiting(self) -> bool:
        """Whether an answer can still decide the round: some probe went out."""
        return self.running and not self.answered and len(self.errors) < len(self.addresses)

    def answer(self, addr: IPAddr, now: float, seq: int | None = None) -> bool:
        """Record an answer from ``addr`` to the round numbered ``seq`` (None:
        the probe carries no number, as ARP). True when it decides the running
        round, i.e. it is the round's first answer.

        Answers to the current round that arrive after it was decided still
        count for the address's record (status shows who is reachable), but
        not those to an older round: their round trip would be wrong.
        """
        ref = self.refs.get(addr)
        if ref is None or (seq is not None and seq != self.seq) or addr in self.answered:
            return False
        if addr in self.errors:  # not sent this round: an old probe's answer
            return False
        self.answered.add(addr)
        ref.last_answer = now
        ref.rtt = now - self.started
        if not self.running or len(self.answered) > 1:
            return False
        self.last_success = now
        return True

    def finish(self, now: float) -> bool:
        """End the running round; True when the UP/DOWN state changed with it."""
        if not self.running:
            raise RuntimeError("no probe round is running")
        self.running = False
        self.rounds += 1
        ok = self.last_ok = bool(self.answered)
        if ok:
            self.last_round = {a: "answered" for a in self.addresses if a in self.answered}
        else:
            self.last_round = {
                a: self.errors.get(a, f"no answer within {self.timeout:g}s") for a in self.addresses
            }
        return self.tracker.record(ok)

    def status(self, now: float) -> dict[str, object]:
        def age(t: float | None) -> float | None:
            return None if t is None else round(now - t, 3)

        return {
            "state": self.state.value,
            "last_success_age": age(self.last_success),
            "failures": self.tracker.failures,
            "successes": self.tracker.successes,
            "fall": self.fall,
            "rise": self.rise,
            "rounds": self.rounds,
            "addresses": {
                str(a): {
                    "last_answer_age": age(r.last_answer),
                    "rtt_ms": None if r.rtt is None else round(r.rtt * 1000, 3),
                    "error": r.error,
                }
                for a, r in self.refs.items()
            },
        }


# --------------------------------------------------------------------- I/O


def _bind_to_device(s: socket.socket, ifname: str | None) -> None:
    if ifname is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())


def _icmp_socket(ifname: str | None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        # Every raw ICMP socket gets a copy of every ICMP packet the host
        # receives; the kernel's filter (a mask of types to drop) keeps all
        # but echo replies from waking us up.
        mask = ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF
        s.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", mask))
        _bind_to_device(s, ifname)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def _icmp6_socket(ifname: str | None) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        # RFC 3542 3.2: a bit set blocks the type. Neighbour discovery would
        # otherwise wake us for every NS/NA on the link.
        words = [0xFFFFFFFF] * 8
        words[ICMPV6_ECHO_REPLY >> 5] &= ~(1 << (ICMPV6_ECHO_REPLY & 31)) & 0xFFFFFFFF
        s.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("=8I", *words))
        _bind_to_device(s, ifname)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def _arp_socket(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_ARP))
    try:
        s.bind((ifname, ETHERTYPE_ARP))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def _describe(err: OSError) -> str:
    return err.strerror or errno.errorcode.get(err.errno or 0, str(err))


class ArbiterProber:
    """Probes `arbiter.addresses` every `arbiter.interval` and calls
    `on_round()` after each round. `up` is the hysteresis state, starting UP;
    `last_success` the loop time of the last round anybody answered in."""

    def __init__(self, arbiter: Arbiter, on_round: Callable[[], None]) -> None:
        self.arbiter = arbiter
        self.book = RoundBook(
            arbiter.addresses, fall=arbiter.fall, rise=arbiter.rise, timeout=arbiter.timeout
        )
        self._on_round = on_round
        # Tells our echo replies from those to other pingers on the host.
        self._ident = random.getrandbits(16)
        self._by_ip: dict[IPAddr, IPAddr] = {_unscoped(a): a for a in arbiter.addresses}
        # "icmp4" / "icmp6" / "arp" -> socket; opened at the start of a round.
        self._sockets: dict[str, socket.socket] = {}
        self._mac = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._decided: asyncio.Future[None] | None = None  # set during a round
        self._wakeup: asyncio.Future[None] | None = None  # set between rounds
        self._requested = False  # request_round() since the last round began
        # Socket kind -> the open error logged for it, so that a missing
        # interface is reported once, not every round.
        self._reported: dict[str, str] = {}

    @property
    def up(self) -> bool:
        return self.book.up

    @property
    def state(self) -> ScriptState:
        return self.book.state

    @property
    def last_success(self) -> float | None:
        return self.book.last_success

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run_forever(), name="arbiter")
        self._task.add_done_callback(self._task_done)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._close_sockets()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def request_round(self) -> None:
        """Probe now rather than at the next tick, e.g. before a takeover.

        A round already running is not doubled: its end calls `on_round`.
        Safe to call from `on_round` and on every re-evaluation: a requested
        round starts no sooner than `REQUEST_GAP` after the last one began,
        so an owner that keeps asking while every probe fails at once (no
        interface) gets rounds at a bounded rate, not a busy loop.
        """
        if self.book.running:
            return
        self._requested = True
        if self._wakeup is not None:
            _resolve(self._wakeup)

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.arbiter.method}
        if self.arbiter.interface is not None:
            out["interface"] = self.arbiter.interface
        # loop.time() is time.monotonic() on the default loop; the latter
        # also serves a status asked for before start().
        now = self._loop.time() if self._loop is not None else time.monotonic()
        out.update(self.book.status(now))
        return out

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._close_sockets()
        if not task.cancelled() and task.exception() is not None:
            # A bug, not an unreachable reference: say so loudly; the state freezes.
            log.error(
                "arbiter: prober crashed; state stays %s",
                self.state.value,
                exc_info=task.exception(),
            )

    # ------------------------------------------------------------------ rounds

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._requested = False
            started = loop.time()
            await self._round()
            while True:
                # A fixed cadence from the round starts (a requested round
                # restarts it); a request moves the next round forward.
                due = started + self.arbiter.interval
                if self._requested:
                    due = min(due, started + REQUEST_GAP)
                delay = due - loop.time()
                if delay <= 0:
                    break
                self._wakeup = loop.create_future()
                handle = loop.call_later(delay, _resolve, self._wakeup)
                try:
                    await self._wakeup
                finally:
                    handle.cancel()
                    self._wakeup = None

    async def _round(self) -> None:
        loop = asyncio.get_running_loop()
        book = self.book
        seq = book.begin(loop.time())
        self._send_all(seq)
        if book.awaiting:
            self._decided = loop.create_future()
            handle = loop.call_later(self.arbiter.timeout, _resolve, self._decided)
            try:
                await self._decided
            finally:
                handle.cancel()
                self._decided = None
        changed = book.finish(loop.time())
        if not book.last_ok:
            # Fresh sockets for the next round: one bound to an interface
            # that was deleted (and perhaps re-created under a new index or
            # MAC) would otherwise fail or stay deaf for good.
            self._close_sockets()
            log.debug("arbiter: round %d failed: %s", seq, self._summary())
        if changed:
            self._log_change()
        try:
            self._on_round()
        except Exception:
            # The owner's bug must not stop the probing (and freeze the state).
            log.exception("arbiter: on_round failed")

    def _send_all(self, seq: int) -> None:
        method = self.arbiter.method
        for addr in self.arbiter.addresses:
            if method == "arp":
                kind = "arp"
            else:
                kind = "icmp4" if isinstance(addr, IPv4Address) else "icmp6"
            try:
                sock = self._socket(kind)
            except OSError as err:
                where = f" on {self.arbiter.interface}" if self.arbiter.interface else ""
                detail = f"cannot open the {kind} socket{where}: {_describe(err)}"
                if self._reported.get(kind) != detail:
                    self._reported[kind] = detail
                    log.error("arbiter: %s", detail)
                self.book.send_failed(addr, detail)
                continue
            try:
                self._send(kind, sock, addr, seq)
            except OSError as err:
                self.book.send_failed(addr, f"cannot send: {_describe(err)}")
            else:
                self.book.sent(addr)

    def _send(self, kind: str, sock: socket.socket, addr: IPAddr, seq: int) -> None:
        if kind == "arp":
            assert isinstance(addr, IPv4Address)
            sock.send(arp_probe(self._mac, addr))
            return
        # A socket error left by an ICMP error for some earlier probe (host
        # unreachable) would fail this send to another address: clear it.
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if kind == "icmp4":
            sock.sendto(icmp_echo_request(self._ident, seq), (str(addr), 0))
            return
        assert isinstance(addr, IPv6Address)
        scope = 0
        if addr.scope_id:
            scope = socket.if_nametoindex(addr.scope_id)
        elif addr.is_link_local and self.arbiter.interface is not None:
            scope = socket.if_nametoindex(self.arbiter.interface)
        dest = str(_unscoped(addr))
        sock.sendto(icmpv6_echo_request(self._ident, seq), (dest, 0, 0, scope))

    def _socket(self, kind: str) -> socket.socket:
        sock = self._sockets.get(kind)
        if sock is not None:
            return sock
        ifname = self.arbiter.interface
        if kind == "arp":
            assert ifname is not None  # validation requires it for arp
            self._mac = link(ifname).mac
            sock = _arp_socket(ifname)
        elif kind == "icmp4":
            sock = _icmp_socket(ifname)
        else:
            sock = _icmp6_socket(ifname)
        self._sockets[kind] = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, kind, sock)
        if self._reported.pop(kind, None) is not None:
            log.info(
                "arbiter: the %s socket%s works again", kind, f" on {ifname}" if ifname else ""
            )
        return sock

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    # ----------------------------------------------------------------- answers

    def _on_readable(self, kind: str, sock: socket.socket) -> None:
        now = asyncio.get_running_loop().time()
        for _ in range(_READ_BURST):
            try:
                data, src = sock.recvfrom(2048)
            except BlockingIOError:
                return
            except OSError as err:
                # A pending ICMP error for one of our probes; the round's
                # timeout accounts for the missing answer.
                log.debug("arbiter: %s socket: %s", kind, _describe(err))
                continue
            self._received(kind, data, src, now)

    def _received(self, kind: str, data: bytes, src: tuple[object, ...], now: float) -> None:
        seq: int | None = None
        if kind == "arp":
            if src[2] == socket.PACKET_OUTGOING:
                return  # our own probe, looped back to packet sockets
            sender: IPAddr | None = parse_arp_reply(data, self._mac)
        else:
            reply = (parse_icmp_echo_reply if kind == "icmp4" else parse_icmpv6_echo_reply)(data)
            if reply is None or reply.ident != self._ident:
                return
            seq = reply.seq
            host = str(src[0]).split("%", 1)[0]
            sender = ip_address(host)
        addr = self._by_ip.get(sender) if sender is not None else None
        if addr is None:
            return
        if self.book.answer(addr, now, seq) and self._decided is not None:
            _resolve(self._decided)

    # ----------------------------------------------------------------- logging

    def _summary(self) -> str:
        return ", ".join(f"{a} ({why})" for a, why in self.book.last_round.items())

    def _log_change(self) -> None:
        t = self.book.tracker
        if t.up:
            log.info(
                "arbiter: UP after %s; answered: %s",
                _plural(t.successes, "successful round", "successful rounds"),
                ", ".join(str(a) for a in self.book.last_round),
            )
        else:
            log.warning(
                "arbiter: DOWN after %s; none of the reference addresses answered: %s",
                _plural(t.failures, "failed round", "failed rounds"),
                self._summary(),
            )


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
