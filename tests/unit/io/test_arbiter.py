"""The split-brain arbiter: probe frames (checked against scapy), the pure
round bookkeeping, and the prober's scheduling with its sockets faked (real
sockets are exercised in tests/netns/test_arbiter_probe.py)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPOption_NOP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest
from scapy.layers.l2 import ARP, Ether

from vrrp_agent.config.model import Arbiter
from vrrp_agent.core.tracking import ScriptState
from vrrp_agent.io.arbiter import REQUEST_GAP, ArbiterProber, RoundBook
from vrrp_agent.wire.checksum import internet_checksum
from vrrp_agent.wire.probe import (
    ECHO_PAYLOAD,
    EchoReply,
    arp_probe,
    icmp_echo_request,
    icmpv6_echo_request,
    parse_arp_reply,
    parse_icmp_echo_reply,
    parse_icmpv6_echo_reply,
)

OUR_MAC = bytes.fromhex("020000000001")
THEIR_MAC = bytes.fromhex("020000000003")
A = IPv4Address("192.0.2.1")
B = IPv4Address("192.0.2.2")
C = IPv6Address("2001:db8::3")


# ------------------------------------------------------------------- frames


def test_icmp_echo_request_is_a_valid_echo_request():
    raw = icmp_echo_request(0x1234, 7)
    assert internet_checksum(raw) == 0  # the checksum covers the whole message
    icmp = ICMP(raw)
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (8, 0, 0x1234, 7)
    assert icmp.load == ECHO_PAYLOAD
    # scapy computes the same checksum.
    assert bytes(ICMP(type=8, id=0x1234, seq=7) / ECHO_PAYLOAD) == raw


def test_icmpv6_echo_request_leaves_the_checksum_to_the_kernel():
    raw = icmpv6_echo_request(0xBEEF, 65535)
    assert raw[:8].hex() == "80000000beefffff"
    req = ICMPv6EchoRequest(raw)
    assert (req.id, req.seq, req.data) == (0xBEEF, 65535, ECHO_PAYLOAD)


def test_parse_icmp_echo_reply():
    pkt = IP(src="192.0.2.1", dst="192.0.2.9") / ICMP(type=0, id=0x1234, seq=7) / b"x"
    assert parse_icmp_echo_reply(bytes(pkt)) == EchoReply(0x1234, 7)
    # IP options move the ICMP header: the IHL is honoured.
    with_options = IP(src="192.0.2.1", options=[IPOption_NOP()] * 4) / ICMP(type=0, id=1, seq=2)
    assert bytes(with_options)[0] == 0x46
    assert parse_icmp_echo_reply(bytes(with_options)) == EchoReply(1, 2)


@pytest.mark.parametrize(
    "pkt",
    [
        IP() / ICMP(type=8, id=1, seq=1),  # an echo request, not a reply
        IP() / ICMP(type=0, code=1, id=1, seq=1),
        IP() / ICMP(type=0, chksum=0x1111, id=1, seq=1),  # corrupt
        IP() / ICMP(type=3, code=1),  # host unreachable
        IP() / UDP(sport=0, dport=8),
    ],
    ids=["request", "code", "checksum", "unreachable", "udp"],
)
def test_parse_icmp_echo_reply_rejects_the_rest(pkt: Any):
    assert parse_icmp_echo_reply(bytes(pkt)) is None


def test_parse_icmp_echo_reply_rejects_short_and_non_ipv4():
    raw = bytes(IP() / ICMP(type=0, id=1, seq=1))
    assert parse_icmp_echo_reply(raw[:27]) is None
    assert parse_icmp_echo_reply(b"") is None
    assert parse_icmp_echo_reply(b"\x60" + raw[1:]) is None  # version 6


def test_parse_icmpv6_echo_reply():
    assert parse_icmpv6_echo_reply(bytes(ICMPv6EchoReply(id=9, seq=10, data=b"x"))) == EchoReply(
        9, 10
    )
    assert parse_icmpv6_echo_reply(bytes(ICMPv6EchoRequest(id=9, seq=10))) is None
    assert parse_icmpv6_echo_reply(bytes(ICMPv6EchoReply(id=9, seq=10))[:7]) is None


def test_arp_probe_exact_bytes():
    assert arp_probe(OUR_MAC, A).hex() == (
        "ffffffffffff" "020000000001" "0806"
        "0001" "0800" "06" "04" "0001"
        "020000000001" "00000000" "000000000000" "c0000201"
    )  # fmt: skip


def test_arp_probe_is_an_rfc5227_probe():
    eth = Ether(arp_probe(OUR_MAC, A))
    assert eth.dst == "ff:ff:ff:ff:ff:ff" and eth.src == "02:00:00:00:00:01"
    arp = eth[ARP]
    assert arp.op == 1
    assert arp.hwsrc == "02:00:00:00:00:01"
    # RFC 5227 2.1.1: sender IP all zeroes, target hardware address ignored (zero).
    assert arp.psrc == "0.0.0.0"
    assert arp.hwdst == "00:00:00:00:00:00"
    assert arp.pdst == "192.0.2.1"


def test_arp_probe_rejects_a_bad_mac():
    with pytest.raises(ValueError, match="6 bytes"):
        arp_probe(b"\x01\x02", A)


def linux_reply(**overrides: Any) -> bytes:
    """What Linux sends back to a probe: unicast to the prober, target IP 0."""
    arp = {
        "op": 2,
        "hwsrc": "02:00:00:00:00:03",
        "psrc": "192.0.2.1",
        "hwdst": "02:00:00:00:00:01",
        "pdst": "0.0.0.0",
        **overrides,
    }
    return bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:03") / ARP(**arp))


def test_parse_arp_reply():
    assert parse_arp_reply(linux_reply(), OUR_MAC) == A
    # The NIC pads to 60 bytes: trailing bytes are not part of the ARP message.
    assert parse_arp_reply(linux_reply() + bytes(18), OUR_MAC) == A


@pytest.mark.parametrize(
    "frame",
    [
        linux_reply(op=1),  # somebody's request
        linux_reply(hwdst="02:00:00:00:00:99"),  # an answer to somebody else
        linux_reply()[:41],
        bytes(Ether(dst="02:00:00:00:00:01") / IP()),
    ],
    ids=["request", "other-requester", "short", "not-arp"],
)
def test_parse_arp_reply_rejects_the_rest(frame: bytes):
    assert parse_arp_reply(frame, OUR_MAC) is None


# --------------------------------------------------------------- RoundBook


def book(*addresses: Any, fall: int = 2, rise: int = 2) -> RoundBook:
    return RoundBook(addresses or (A, B), fall=fall, rise=rise, timeout=0.5)


def failed_round(b: RoundBook, now: float) -> bool:
    b.begin(now)
    return b.finish(now + 0.5)


def good_round(b: RoundBook, now: float, addr: Any = A) -> bool:
    seq = b.begin(now)
    assert b.answer(addr, now + 0.01, seq)
    return b.finish(now + 0.01)


def test_starts_up_without_a_success():
    b = book()
    assert b.up and b.state is ScriptState.UP
    assert b.last_success is None
    assert b.status(10.0)["last_success_age"] is None


def test_the_first_answer_decides_the_round():
    b = book()
    seq = b.begin(1.0)
    assert b.awaiting
    assert b.answer(B, 1.002, seq) is True
    assert not b.awaiting
    # Later answers in the same round are recorded, but decide nothing.
    assert b.answer(A, 1.004, seq) is False
    assert b.answer(B, 1.005, seq) is False  # a duplicate
    assert b.last_success == 1.002
    assert b.finish(1.002) is False  # still UP: no change
    assert b.last_ok
    assert b.last_round == {A: "answered", B: "answered"}
    assert b.refs[A].last_answer == 1.004
    assert b.refs[A].rtt == pytest.approx(0.004)
    assert b.refs[B].rtt == pytest.approx(0.002)


def test_answers_to_other_rounds_and_strangers_do_not_count():
    b = book()
    seq = b.begin(1.0)
    assert b.answer(A, 1.1, (seq - 1) & 0xFFFF) is False
    assert b.answer(IPv4Address("192.0.2.77"), 1.1, seq) is False
    b.send_failed(B, "cannot send: Network is unreachable")
    assert b.answer(B, 1.1, seq) is False  # its probe never left
    assert b.refs[A].last_answer is None and b.refs[B].last_answer is None
    b.finish(1.5)
    assert not b.last_ok and b.last_success is None


def test_a_late_answer_updates_the_address_not_the_outcome():
    b = book()
    seq = b.begin(1.0)
    assert b.finish(1.5) is False  # the first failure of fall=2
    assert b.answer(A, 1.6, seq) is False
    assert b.refs[A].last_answer == 1.6
    assert b.last_success is None
    assert not b.last_ok and b.tracker.failures == 1


def test_an_arp_answer_carries_no_sequence_number():
    b = book()
    b.begin(1.0)
    assert b.answer(A, 1.01) is True


def test_fall_and_rise_count_rounds():
    b = book(fall=3, rise=2)
    assert failed_round(b, 1) is False
    assert failed_round(b, 2) is False
    assert b.up
    assert failed_round(b, 3) is True
    assert not b.up and b.tracker.failures == 3
    assert failed_round(b, 4) is False  # DOWN stays DOWN, reported once
    assert good_round(b, 5) is False
    assert not b.up
    assert good_round(b, 6) is True
    assert b.up and b.tracker.successes == 2
    assert b.last_success == 6.01


def test_one_success_resets_the_failures():
    b = book(fall=2)
    failed_round(b, 1)
    good_round(b, 2)
    assert failed_round(b, 3) is False
    assert b.up


def test_a_failed_round_says_why_for_every_address():
    b = book()
    b.begin(1.0)
    b.send_failed(B, "cannot send: Network is unreachable")
    assert b.awaiting  # A's probe went out
    b.finish(1.5)
    assert b.last_round == {
        A: "no answer within 0.5s",
        B: "cannot send: Network is unreachable",
    }
    assert b.refs[B].error == "cannot send: Network is unreachable"
    # Sent fine next time: the error goes.
    b.begin(2.0)
    b.sent(B)
    assert b.refs[B].error is None


def test_nothing_to_wait_for_when_no_probe_left():
    b = book()
    b.begin(1.0)
    b.send_failed(A, "x")
    b.send_failed(B, "y")
    assert not b.awaiting


def test_sequence_numbers_wrap_at_16_bits():
    b = book()
    b.seq = 0xFFFF
    assert b.begin(1.0) == 0
    b.finish(1.0)
    assert b.begin(2.0) == 1


def test_rounds_do_not_nest():
    b = book()
    with pytest.raises(RuntimeError):
        b.finish(1.0)
    b.begin(1.0)
    with pytest.raises(RuntimeError):
        b.begin(1.1)


def test_status():
    b = book(A, C)
    seq = b.begin(10.0)
    b.answer(C, 10.0025, seq)
    b.finish(10.0025)
    b.begin(11.0)
    b.finish(11.5)
    assert b.status(12.0) == {
        "state": "UP",
        "last_success_age": 1.998,
        "failures": 1,
        "successes": 0,
        "fall": 2,
        "rise": 2,
        "rounds": 2,
        "addresses": {
            "192.0.2.1": {"last_answer_age": None, "rtt_ms": None, "error": None},
            "2001:db8::3": {"last_answer_age": 1.998, "rtt_ms": 2.5, "error": None},
        },
    }


# ---------------------------------------------------- the prober, faked I/O


def ipv4_echo_reply(src: IPv4Address, ident: int, seq: int) -> bytes:
    icmp = struct.pack("!BBHHH", 0, 0, 0, ident, seq) + ECHO_PAYLOAD
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, src.packed, bytes(4))  # fmt: skip
    return header + icmp


class FakeProber(ArbiterProber):
    """Sockets replaced: `_send` schedules the reply a real host would send
    (through `_received`, so parsing and matching stay real)."""

    def __init__(self, arbiter: Arbiter, on_round: Any, replies: dict[Any, Any]) -> None:
        super().__init__(arbiter, on_round)
        # address -> reply delay in seconds, None (silent) or an OSError to raise
        self.replies = replies
        self.sends: list[tuple[float, Any, int]] = []

    def _socket(self, kind: str) -> Any:
        return object()

    def _send(self, kind: str, sock: Any, addr: Any, seq: int) -> None:
        loop = asyncio.get_running_loop()
        self.sends.append((loop.time(), addr, seq))
        reply = self.replies.get(addr)
        if isinstance(reply, OSError):
            raise reply
        if reply is None:
            return
        ident = self._ident
        if kind == "icmp4":
            data, src = ipv4_echo_reply(addr, ident, seq), (str(addr), 0)
        else:
            data, src = bytes(ICMPv6EchoReply(id=ident, seq=seq)), (str(addr), 0, 0, 0)
        loop.call_later(reply, lambda: self._received(kind, data, src, loop.time()))


def arbiter(*addresses: Any, **kw: Any) -> Arbiter:
    settings = {"interval": 0.2, "timeout": 0.1, "fall": 2, "rise": 2, **kw}
    return Arbiter(addresses=addresses or (A, B), **settings)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def test_rounds_answers_timeouts_and_on_round():
    interval, timeout = 0.4, 0.3

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: list[tuple[float, bool, bool]] = []
        replies: dict[Any, Any] = {A: None, C: 0.01}

        def on_round() -> None:
            ends.append((loop.time(), p.book.last_ok, p.up))

        p = FakeProber(arbiter(A, C, interval=interval, timeout=timeout), on_round, replies)
        p.start()
        while len(ends) < 2:
            await asyncio.sleep(0.01)
        # Every address got a probe per round, in the same instant.
        for seq in (1, 2):
            times = [t for t, _, s in p.sends if s == seq]
            assert len(times) == 2 and max(times) - min(times) < 0.01
        assert all(ok and up for _, ok, up in ends)
        # Decided by C's answer (10 ms), not by A's timeout.
        first = min(t for t, _, s in p.sends if s == 1)
        assert ends[0][0] - first < timeout - 0.1
        assert ends[1][0] - ends[0][0] == pytest.approx(interval, abs=0.1)
        assert p.last_success is not None
        assert p.status()["addresses"]["192.0.2.1"]["last_answer_age"] is None

        replies[C] = None  # cut off
        cut = loop.time()
        while p.up:
            await asyncio.sleep(0.01)
        down = [e for e in ends if e[0] > cut]
        # fall=2: the second failed round after the cut flips it.
        assert [ok for _, ok, _ in down] == [False, False]
        assert [up for _, _, up in down] == [True, False]
        # A failed round lasts the timeout.
        assert down[0][0] - max(t for t, _, _ in p.sends[:-2]) >= timeout
        assert loop.time() - cut <= 2 * interval + timeout + 0.2
        p.stop()
        await p.wait_closed()

    run(main())


def test_send_errors_fail_the_round_at_once_and_are_reported():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: list[float] = []
        err = OSError(101, "Network is unreachable")
        p = FakeProber(arbiter(A, B), lambda: ends.append(loop.time()), {A: err, B: err})
        p.start()
        started = loop.time()
        await asyncio.sleep(0.05)
        assert len(ends) == 1 and ends[0] - started < 0.02  # no timeout to wait for
        assert p.book.last_round == {
            A: "cannot send: Network is unreachable",
            B: "cannot send: Network is unreachable",
        }
        assert (
            p.status()["addresses"]["192.0.2.2"]["error"] == "cannot send: Network is unreachable"
        )
        p.stop()
        await p.wait_closed()

    run(main())


def test_request_round_runs_one_now_and_restarts_the_cadence():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: list[float] = []
        p = FakeProber(
            arbiter(A, interval=10.0, timeout=0.1), lambda: ends.append(loop.time()), {A: 0.005}
        )
        p.start()
        await asyncio.sleep(0.05)
        assert len(ends) == 1
        asked = loop.time()
        p.request_round()
        await asyncio.sleep(0.05)
        assert len(ends) == 2 and ends[1] - asked < 0.03
        await asyncio.sleep(0.2)
        assert len(ends) == 2  # the next tick is an interval away again
        p.stop()
        await p.wait_closed()

    run(main())


def test_a_request_during_a_round_does_not_double_it():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: list[float] = []
        p = FakeProber(
            arbiter(A, interval=10.0, timeout=0.1), lambda: ends.append(loop.time()), {A: None}
        )
        p.start()
        await asyncio.sleep(0.02)
        assert p.book.running
        p.request_round()
        await asyncio.sleep(0.3)
        assert len(ends) == 1
        p.stop()
        await p.wait_closed()

    run(main())


def test_a_request_from_on_round_is_kept_and_rate_limited():
    """The daemon re-evaluates in on_round and may ask for another round
    right there; with every send failing at once that must not spin."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ends: list[float] = []
        err = OSError(19, "No such device")

        def on_round() -> None:
            ends.append(loop.time())
            p.request_round()

        p = FakeProber(arbiter(A, interval=10.0, timeout=0.1), on_round, {A: err})
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = loop.create_task(ticker())
        p.start()
        await asyncio.sleep(0.5)
        t.cancel()
        p.stop()
        await p.wait_closed()
        # Honoured (not once per 10 s interval), but no faster than REQUEST_GAP.
        assert 3 <= len(ends) <= 0.5 / REQUEST_GAP + 1
        gaps = [b - a for a, b in zip(ends, ends[1:])]
        assert min(gaps) >= REQUEST_GAP * 0.9
        assert ticks > 100  # the loop kept running other tasks
        assert not p.up

    run(main())


def test_an_on_round_error_does_not_stop_the_probing(caplog: pytest.LogCaptureFixture):
    async def main() -> int:
        calls = 0

        def on_round() -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("owner bug")

        p = FakeProber(arbiter(A, interval=0.05, timeout=0.02), on_round, {A: 0.001})
        p.start()
        await asyncio.sleep(0.2)
        p.stop()
        await p.wait_closed()
        return calls

    assert run(main()) >= 3
    assert "arbiter: on_round failed" in caplog.text


def test_replies_are_matched_by_ident_and_source():
    async def main() -> None:
        p = FakeProber(arbiter(A, IPv6Address("fe80::1%eth9")), lambda: None, {})
        loop = asyncio.get_running_loop()
        seq = p.book.begin(loop.time())
        now = loop.time()
        other = (p._ident + 1) & 0xFFFF
        p._received("icmp4", ipv4_echo_reply(A, other, seq), (str(A), 0), now)
        p._received("icmp4", ipv4_echo_reply(B, p._ident, seq), (str(B), 0), now)
        assert not p.book.answered
        # The kernel names a link-local source with its scope; it still matches.
        reply = bytes(ICMPv6EchoReply(id=p._ident, seq=seq))
        p._received("icmp6", reply, ("fe80::1%eth0", 0, 0, 2), now)
        assert p.book.answered == {ip_address("fe80::1%eth9")}

    run(main())


def test_arp_replies_need_our_mac_and_not_our_own_frames():
    async def main() -> None:
        p = FakeProber(arbiter(A, method="arp", interface="eth9"), lambda: None, {})
        p._mac = OUR_MAC
        loop = asyncio.get_running_loop()
        p.book.begin(loop.time())
        now = loop.time()
        outgoing = ("eth9", 0x0806, 4, 1, OUR_MAC)
        p._received("arp", linux_reply(), outgoing, now)
        assert not p.book.answered
        p._received("arp", linux_reply(), ("eth9", 0x0806, 0, 1, THEIR_MAC), now)
        assert p.book.answered == {A}

    run(main())


def test_state_change_is_logged(caplog: pytest.LogCaptureFixture):
    async def main() -> None:
        replies: dict[Any, Any] = {A: None, B: OSError(101, "Network is unreachable")}
        p = FakeProber(arbiter(A, B, interval=0.05, timeout=0.02), lambda: None, replies)
        p.start()
        while p.up:
            await asyncio.sleep(0.01)
        replies[A] = 0.001
        while not p.up:
            await asyncio.sleep(0.01)
        p.stop()
        await p.wait_closed()

    caplog.set_level("INFO", logger="vrrp_agent")
    run(main())
    down = [r for r in caplog.records if "DOWN" in r.getMessage()]
    up = [r for r in caplog.records if " UP " in r.getMessage()]
    assert [r.levelname for r in down] == ["WARNING"]
    assert down[0].getMessage() == (
        "arbiter: DOWN after 2 failed rounds; none of the reference addresses answered: "
        "192.0.2.1 (no answer within 0.02s), 192.0.2.2 (cannot send: Network is unreachable)"
    )
    assert [r.levelname for r in up] == ["INFO"]
    assert up[0].getMessage() == "arbiter: UP after 2 successful rounds; answered: 192.0.2.1"
