"""Alert mail: what is mailed (Alerts), the queue and its backoff (Mailer with
a fake server and a fake sleep), and the SMTP dialogue against a real
asyncio SMTP server (aiosmtpd), a dead one and one that never answers."""

from __future__ import annotations

import asyncio
import email
import email.utils
import logging
import socket
import time
from collections.abc import Awaitable, Iterator
from ipaddress import ip_address
from typing import Any, Callable

import pytest

from vrrp_agent.config.enums import CheckerKind
from vrrp_agent.config.model import (
    Checker,
    Config,
    GlobalDefs,
    Instance,
    RealServer,
    SmtpServer,
    SyncGroup,
    VirtualServer,
)
from vrrp_agent.io.mail_format import Alert
from vrrp_agent.io.smtp_alert import (
    Alerts,
    Envelope,
    Mailer,
    MailSettings,
    SmtpError,
    backoff,
)

SERVER = SmtpServer("127.0.0.1", 2525)


def settings(server: SmtpServer = SERVER, timeout: float = 5.0, **kw: Any) -> MailSettings:
    base: dict[str, Any] = {
        "recipients": ("ops@example.com", "Team <team@example.com>"),
        "sender": "Agent <agent@example.com>",
        "helo": "node1.example.com",
    }
    base.update(kw)
    return MailSettings(server, timeout=timeout, **base)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def alert(n: int) -> Alert:
    return Alert(f"subject {n}", f"body {n}")


class FakeServer:
    """deliver() stand-in: each call takes the next outcome (None: accepted)."""

    def __init__(self, outcomes: list[BaseException | None] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        self.got: list[Envelope] = []
        self.calls = 0

    async def __call__(self, server: SmtpServer, mail: Envelope, timeout: float) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.got.append(mail)


class FakeSleep:
    """Records the backoff delays and advances a fake clock instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []

    def clock(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        await asyncio.sleep(0)


def mailer(fake: FakeServer, sleep: FakeSleep, **kw: Any) -> Mailer:
    return Mailer(settings(), deliver=fake, clock=sleep.clock, sleep=sleep, **kw)


async def finished(m: Mailer) -> None:
    worker = m._worker
    assert worker is not None
    await asyncio.wait_for(worker, 5)


def down() -> SmtpError:
    return SmtpError("connect", "cannot connect: Connection refused")


# --- backoff and the queue ------------------------------------------------------------


def test_backoff_doubles_to_a_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(30) == 300.0


def test_retries_with_backoff_then_sends_in_order() -> None:
    fake, sleep = FakeServer([down(), down(), down()]), FakeSleep()

    async def main() -> Mailer:
        m = mailer(fake, sleep)
        m.submit(alert(1))
        m.submit(alert(2))
        await finished(m)
        return m

    m = run(main())
    assert sleep.delays == [1.0, 2.0, 4.0]
    assert [b"subject 1" in e.data for e in fake.got] == [True, False]
    assert [b"subject 2" in e.data for e in fake.got] == [False, True]
    assert (m.sent, m.failed, m.dropped, m.failures) == (2, 3, 0, 0)
    assert m.status()["queued"] == 0 and m.status()["last_error"] is None


def test_success_resets_the_backoff() -> None:
    fake, sleep = FakeServer([down(), down(), None, down()]), FakeSleep()

    async def main() -> None:
        m = mailer(fake, sleep)
        m.submit(alert(1))
        m.submit(alert(2))
        await finished(m)

    run(main())
    assert sleep.delays == [1.0, 2.0, 1.0]


def test_overflow_drops_the_oldest_and_counts() -> None:
    fake, sleep = FakeServer([down()]), FakeSleep()

    async def main() -> Mailer:
        m = mailer(fake, sleep, queue_size=3)
        for n in range(6):
            m.submit(alert(n))
        await finished(m)
        return m

    m = run(main())
    assert m.dropped == 3 and m.sent == 3
    assert [e.data.split(b"Subject: ")[1].split(b"\r\n")[0] for e in fake.got] == [
        b"subject 3", b"subject 4", b"subject 5",
    ]  # fmt: skip


def test_the_mail_being_sent_is_never_dropped() -> None:
    async def main() -> tuple[Mailer, list[bytes]]:
        gate = asyncio.Event()
        got: list[bytes] = []

        async def slow(server: SmtpServer, mail: Envelope, timeout: float) -> None:
            await gate.wait()
            got.append(mail.data)

        m = Mailer(settings(), deliver=slow, queue_size=2)
        for n in range(5):
            m.submit(alert(n))
            await asyncio.sleep(0)  # the worker takes mail 0 at once
        assert m.status()["queued"] == 3  # the one in flight and two waiting
        gate.set()
        await finished(m)
        return m, got

    m, got = run(main())
    assert [b"subject 0" in d for d in got] == [True, False, False]
    assert b"subject 3" in got[1] and b"subject 4" in got[2]
    assert m.dropped == 2


def test_too_old_is_dropped() -> None:
    # down for more than max_age: the first mail is history by then
    fake, sleep = FakeServer([down()] * 4), FakeSleep()

    async def main() -> Mailer:
        m = mailer(fake, sleep, max_age=5.0)
        m.submit(alert(1))
        await finished(m)
        return m

    m = run(main())
    assert sleep.delays == [1.0, 2.0, 4.0]  # 7 s > 5 s: dropped before the fourth try
    assert (m.sent, m.dropped, fake.calls) == (0, 1, 3)


def test_permanent_refusal_is_not_retried() -> None:
    fake, sleep = (
        FakeServer([SmtpError("reply", "MAIL FROM refused: 550", permanent=True)]),
        FakeSleep(),
    )

    async def main() -> Mailer:
        m = mailer(fake, sleep)
        m.submit(alert(1))
        m.submit(alert(2))
        await finished(m)
        return m

    m = run(main())
    assert sleep.delays == []
    assert (m.sent, m.failed, m.dropped) == (1, 1, 1)


def test_failures_are_logged_once_per_condition(caplog: pytest.LogCaptureFixture) -> None:
    fake, sleep = FakeServer([down()] * 5 + [SmtpError("timeout", "no reply")] * 2), FakeSleep()

    async def main() -> None:
        m = mailer(fake, sleep)
        m.submit(alert(1))
        await finished(m)

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one "connect", one "timeout"
    assert "[127.0.0.1]:2525: cannot connect: Connection refused" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("reachable again after 7 failed attempt(s)" in i for i in infos), infos


def test_drain_gives_up_on_a_dead_server_at_once() -> None:
    async def main() -> tuple[Mailer, float]:
        m = Mailer(settings(), deliver=FakeServer([down()] * 100))
        m.submit(alert(1))
        m.submit(alert(2))
        await asyncio.sleep(0.05)  # in its first backoff now
        start = time.monotonic()
        await m.drain(5.0)
        return m, time.monotonic() - start

    m, took = run(main())
    assert took < 1.0
    assert m.dropped == 2 and m.sent == 0
    assert m.status()["queued"] == 0


# --- what is mailed -----------------------------------------------------------------


class Recorder:
    def __init__(self, s: MailSettings) -> None:
        self.settings = s
        self.subjects: list[str] = []
        self._queue: list[Alert] = []

    def submit(self, a: Alert) -> None:
        self.subjects.append(a.subject)


def alerts(**g: Any) -> tuple[Alerts, Recorder]:
    base: dict[str, Any] = {
        "router_id": "node1",
        "smtp_server": SERVER,
        "notification_email": ("ops@example.com",),
    }
    base.update(g)
    made: list[Recorder] = []

    def make(s: MailSettings) -> Recorder:
        made.append(Recorder(s))
        return made[-1]

    a = Alerts(Config("t.yml", global_defs=GlobalDefs(**base)), make)  # type: ignore[arg-type]
    return a, made[0]


VI = Instance(name="VI_1", interface="eth0", virtual_router_id=51, smtp_alert=True)
VG = SyncGroup(name="VG1", group=("VI_1",), smtp_alert=True)
RS = RealServer(ip_address("10.0.0.1"), 80, checker=Checker(kind=CheckerKind.TCP_CHECK))
VS = VirtualServer(ip_address("192.168.1.100"), 80, real_servers=(RS,))


def test_instance_group_and_real_server_mails() -> None:
    a, rec = alerts()
    a.instance_changed(VI, "MASTER")
    a.group_changed(VG, "MASTER")
    a.real_server_changed(VS, RS, False)
    assert rec.subjects == [
        "[node1] VRRP Instance VI_1 - Entering MASTER state",
        "[node1] VRRP Group VG1 - Entering MASTER state",
        "[node1] Realserver [10.0.0.1]:tcp:80 of virtual server [192.168.1.100]:tcp:80 - DOWN",
    ]


def test_one_mail_per_state() -> None:
    # keepalived's last_email_state: the same state reported again is no news
    a, rec = alerts()
    for state in ("BACKUP", "BACKUP", "MASTER", "MASTER", "BACKUP"):
        a.instance_changed(VI, state)
    assert [s.rsplit(" - ", 1)[1] for s in rec.subjects] == [
        "Entering BACKUP state", "Entering MASTER state", "Entering BACKUP state",
    ]  # fmt: skip


def test_precedence_is_the_configurations() -> None:
    a, rec = alerts(smtp_alert_vrrp=False)
    quiet = Instance(name="VI_2", interface="eth0", virtual_router_id=52)
    a.instance_changed(quiet, "MASTER")  # off: smtp_alert_vrrp
    a.instance_changed(VI, "MASTER")  # its own smtp_alert wins
    a.real_server_changed(VS, RS, False)  # real servers: on by default
    a.real_server_changed(VS, RealServer(RS.ip, 81, smtp_alert=False, checker=RS.checker), False)
    assert [s.split("] ", 1)[1][:10] for s in rec.subjects] == ["VRRP Insta", "Realserver"]


def test_no_email_faults() -> None:
    a, rec = alerts(no_email_faults=True)
    a.instance_changed(VI, "FAULT")
    a.group_changed(VG, "FAULT")
    a.instance_changed(VI, "BACKUP")
    assert rec.subjects == ["[node1] VRRP Instance VI_1 - Entering BACKUP state"]


def test_nothing_without_server_or_recipients() -> None:
    cfg = Config("t.yml", global_defs=GlobalDefs(smtp_server=SERVER, smtp_alert=True))
    a = Alerts(cfg)
    a.instance_changed(VI, "MASTER")
    assert a.mailer is None and a.status() is None


def test_reload_updates_the_settings_of_queued_mail() -> None:
    a, rec = alerts()
    other = SmtpServer("192.0.2.1", 25)
    a.reconfigure(
        Config("t.yml", global_defs=GlobalDefs(smtp_server=other, notification_email=("x@y",)))
    )
    assert a.mailer is rec and rec.settings.server == other


# --- a real SMTP server -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps what arrived."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((session.host_name, envelope.mail_from, list(envelope.rcpt_tos),
                           envelope.original_content))  # fmt: skip
        return "250 OK"


@pytest.fixture
def smtpd() -> Iterator[tuple[SmtpServer, Inbox]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    inbox = Inbox()
    port = free_port()
    controller = controller_mod.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port), inbox
    finally:
        controller.stop()


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_real_smtp_envelope_headers_and_body(smtpd: tuple[SmtpServer, Inbox]) -> None:
    server, inbox = smtpd
    cfg = Config("t.yml", global_defs=GlobalDefs(
        router_id="node1",
        smtp_server=server,
        notification_email=("ops@example.com", "Team <team@example.com>"),
        notification_email_from='"Agent, node1" <agent@example.com>',
        smtp_helo_name="node1.example.com",
        smtp_connect_timeout=5.0,
        smtp_alert=True,
    ))  # fmt: skip

    async def main() -> dict[str, object] | None:
        a = Alerts(cfg)
        before = time.time()
        a.instance_changed(VI, "MASTER")
        a.real_server_changed(VS, RS, True)
        await wait_for(lambda: len(inbox.mails) == 2)
        # the server keeps the mail before it answers 250: the count follows
        assert a.mailer is not None
        await wait_for(lambda: a.mailer.sent == 2)  # type: ignore[union-attr]
        assert abs(before - time.time()) < 10
        return a.status()

    status = run(main())
    assert status is not None and (status["sent"], status["failed"], status["dropped"]) == (2, 0, 0)
    helo, sender, rcpts, data = inbox.mails[0]
    assert helo == "node1.example.com"
    assert sender == "agent@example.com"  # the addr-spec, not the display name
    assert rcpts == ["ops@example.com", "team@example.com"]
    msg = email.message_from_bytes(data)
    assert msg["From"] == '"Agent, node1" <agent@example.com>'
    assert msg["To"] == "ops@example.com, Team <team@example.com>"
    assert msg["Subject"] == "[node1] VRRP Instance VI_1 - Entering MASTER state"
    assert abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 60
    assert msg["X-Mailer"].startswith("Keepalived")
    assert msg.get_payload().splitlines() == ["=> VRRP Instance is now owning VRRP VIPs <="]
    msg2 = email.message_from_bytes(inbox.mails[1][3])
    assert msg2["Subject"] == (
        "[node1] Realserver [10.0.0.1]:tcp:80 of virtual server [192.168.1.100]:tcp:80 - UP"
    )
    assert msg2.get_payload().splitlines() == ["=> TCP CHECK succeed on service <="]


def test_default_sender_and_helo_are_user_at_local_name(smtpd: tuple[SmtpServer, Inbox]) -> None:
    server, inbox = smtpd

    async def main() -> None:
        m = Mailer(settings(server, sender=None, helo=None, recipients=("ops@example.com",)))
        m.submit(alert(1))
        await wait_for(lambda: len(inbox.mails) == 1)

    run(main())
    helo, sender, _, data = inbox.mails[0]
    assert helo and " " not in helo
    assert sender.endswith("@" + helo)  # keepalived: USER@LOCAL_NAME, HELO LOCAL_NAME
    assert email.message_from_bytes(data)["From"] == sender


async def ticking(stop: asyncio.Event, every: float = 0.01) -> float:
    """How late a 10 ms tick ran at worst while the mailer worked."""
    worst = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + every
        await asyncio.sleep(every)
        worst = max(worst, loop.time() - due)
    return worst


# the bound for a tick on a busy 2-core machine; a blocking connect would be seconds
TICK_BOUND = 0.25


def test_dead_server_never_blocks_the_loop_and_is_retried() -> None:
    port = free_port()  # nothing listens: connection refused

    async def main() -> tuple[Mailer, float]:
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticking(stop))
        m = Mailer(settings(SmtpServer("127.0.0.1", port), timeout=1.0),
                   sleep=lambda d: asyncio.sleep(0.05))  # fmt: skip
        m.submit(alert(1))
        await wait_for(lambda: m.failed >= 3)
        stop.set()
        worst = await tick
        await m.drain(1.0)
        return m, worst

    m, worst = run(main())
    assert worst < TICK_BOUND
    assert m.sent == 0 and m.dropped == 1
    assert m.last_error is not None and "cannot connect" in m.last_error


def test_slow_server_times_out_without_blocking_the_loop() -> None:
    async def main() -> tuple[Mailer, float, int]:
        accepted = 0

        async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            await asyncio.sleep(30)  # accepts, never greets

        srv = await asyncio.start_server(stall, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticking(stop))
        m = Mailer(settings(SmtpServer("127.0.0.1", port), timeout=0.3),
                   sleep=lambda d: asyncio.sleep(0.05))  # fmt: skip
        started = time.monotonic()
        m.submit(alert(1))
        assert time.monotonic() - started < 0.05  # submit returns at once
        await wait_for(lambda: m.failed >= 2)
        stop.set()
        worst = await tick
        await m.drain(1.0)
        srv.close()
        return m, worst, accepted

    m, worst, accepted = run(main())
    assert worst < TICK_BOUND
    assert accepted >= 2  # retried: a new connection each time
    assert m.last_error is not None and "no reply to the greeting within 0.3s" in m.last_error
