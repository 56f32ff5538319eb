"""keepalived's alert mail (smtp_alert), sent without ever holding up the protocol.

`Alerts` decides what is mailed (keepalived's smtp_alert precedence, see
config.model.smtp_alert_on; no_email_faults; one mail per state, as
keepalived's last_email_state) and hands it to `Mailer`, which only appends
to a bounded queue and returns. One worker task on the agent's loop sends the
queue over SMTP, one connection per mail as keepalived does.

Why a small asyncio SMTP client rather than smtplib in a thread: a thread
blocked in connect() or recv() cannot be cancelled, and asyncio joins its
executor's threads at exit, so a dead server would hold up the agent's stop
by the connect timeout; a task is cancelled at once. No new dependency.

What keepalived does not and this does: a server that is down or slow is
retried with exponential backoff (keepalived tries each mail once and logs),
logged once per condition per minute (io/log_limit.py), and mails wait at
most MAX_AGE; the queue holds QUEUE_SIZE mails and drops the oldest beyond.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pwd
import socket
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Callable

from vrrp_agent.config.model import (
    Config,
    GlobalDefs,
    Instance,
    RealServer,
    SmtpServer,
    SyncGroup,
    VirtualServer,
    alerts_instance,
    alerts_real_server,
)
from vrrp_agent.io.log_limit import LogLimiter
from vrrp_agent.io.mail_format import (
    Alert,
    address_of,
    group_alert,
    instance_alert,
    real_server_alert,
    render,
)

log = logging.getLogger(__name__)

# Mails waiting at most: a storm of transitions while the server is down keeps
# the latest ones (the current states), not hours of history.
QUEUE_SIZE = 64
# A mail older than this is dropped unsent: news of a state an hour old misleads.
MAX_AGE = 3600.0
# Backoff after a failed attempt: 1 s, doubling, at most 5 minutes.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
# Lines of one (multi-line) reply read at most, so a babbling server ends.
_MAX_REPLY_LINES = 64
# A shutdown drains the queue this long at most (as the notify hooks).
DRAIN_TIMEOUT = 5.0


def backoff(failures: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after `failures` consecutive failed attempts (>= 1)."""
    return min(cap, first * 2.0 ** max(failures - 1, 0))


class SmtpError(Exception):
    """A failed attempt; `condition` names it for the rate-limited log line."""

    def __init__(self, condition: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.condition = condition
        # a 5xx reply: the same mail would be refused again, so it is not retried
        self.permanent = permanent


@dataclass(frozen=True)
class MailSettings:
    """What global_defs says about sending; fixed per configuration."""

    server: SmtpServer
    recipients: tuple[str, ...]
    sender: str | None  # None: keepalived's USER@LOCAL_NAME
    helo: str | None  # None: LOCAL_NAME
    timeout: float

    @classmethod
    def of(cls, g: GlobalDefs) -> MailSettings | None:
        """None when no mail can go (keepalived: silently nothing)."""
        if g.smtp_server is None or not g.notification_email:
            return None
        return cls(g.smtp_server, g.notification_email, g.notification_email_from,
                   g.smtp_helo_name, g.smtp_connect_timeout)  # fmt: skip


@dataclass(frozen=True)
class Envelope:
    """One mail as the SMTP dialogue needs it."""

    helo: str
    sender: str  # addr-spec
    recipients: tuple[str, ...]  # addr-specs
    data: bytes  # rendered, dot-stuffed, CRLF


# --- the SMTP dialogue -------------------------------------------------------------


async def _reply(reader: asyncio.StreamReader, timeout: float, step: str) -> tuple[int, str]:
    """One reply ("250-..." lines up to "250 ..."), every line within `timeout`."""
    text: list[str] = []
    for _ in range(_MAX_REPLY_LINES):
        try:
            raw = await asyncio.wait_for(reader.readline(), timeout)
        except asyncio.TimeoutError:  # not the builtin before 3.11
            raise SmtpError("timeout", f"no reply to {step} within {timeout:g}s") from None
        except (ValueError, asyncio.LimitOverrunError):
            raise SmtpError("reply", f"reply to {step} too long") from None
        if not raw.endswith(b"\n"):
            raise SmtpError("closed", f"connection closed by the server at {step}")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit():
            raise SmtpError("reply", f"not an SMTP reply to {step}: {line[:80]!r}")
        text.append(line[4:])
        if line[3:4] != "-":
            return int(line[:3]), " ".join(text)
    raise SmtpError("reply", f"reply to {step} has more than {_MAX_REPLY_LINES} lines")


async def _command(
    writer: asyncio.StreamWriter,
    reader: asyncio.StreamReader,
    line: bytes,
    step: str,
    expect: tuple[int, ...],
    timeout: float,
) -> None:
    writer.write(line)
    try:
        await asyncio.wait_for(writer.drain(), timeout)
    except asyncio.TimeoutError:
        raise SmtpError("timeout", f"cannot send {step} within {timeout:g}s") from None
    code, text = await _reply(reader, timeout, step)
    if code not in expect:
        raise SmtpError("reply", f"{step} refused: {code} {text[:120]}", permanent=code >= 500)


async def deliver(server: SmtpServer, mail: Envelope, timeout: float) -> None:
    """Send `mail` in one SMTP session (RFC 5321, keepalived's steps: greeting,
    HELO, MAIL, RCPT per recipient, DATA, QUIT). Every step, the connection
    included, has `timeout` seconds (keepalived's smtp_connect_timeout, which it
    also applies to each read). Raises SmtpError (or OSError: refused, unreachable)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(server.host, server.port), timeout
        )
    except asyncio.TimeoutError:
        raise SmtpError("timeout", f"cannot connect within {timeout:g}s") from None
    except OSError as err:
        raise SmtpError("connect", f"cannot connect: {err.strerror or err}") from None
    try:
        code, text = await _reply(reader, timeout, "the greeting")
        if code != 220:
            raise SmtpError("reply", f"greeting {code} {text[:120]}", permanent=code >= 500)
        await _command(writer, reader, f"HELO {mail.helo}\r\n".encode(), "HELO", (250,), timeout)
        await _command(writer, reader, f"MAIL FROM:<{mail.sender}>\r\n".encode(), "MAIL FROM",
                       (250,), timeout)  # fmt: skip
        accepted = 0
        for rcpt in mail.recipients:
            # One refused recipient does not cost the others their mail
            # (keepalived gives up on the whole mail).
            try:
                await _command(writer, reader, f"RCPT TO:<{rcpt}>\r\n".encode(),
                               f"RCPT TO:<{rcpt}>", (250, 251), timeout)  # fmt: skip
                accepted += 1
            except SmtpError as err:
                if not err.permanent:
                    raise
                log.warning("smtp: %s", err)
        if not accepted:
            raise SmtpError("reply", "every recipient was refused", permanent=True)
        await _command(writer, reader, b"DATA\r\n", "DATA", (354,), timeout)
        await _command(writer, reader, mail.data + b".\r\n", "the message", (250,), timeout)
        # The mail is accepted; a QUIT that fails changes nothing.
        with contextlib.suppress(SmtpError, OSError):
            await _command(writer, reader, b"QUIT\r\n", "QUIT", (221,), timeout)
    except OSError as err:
        raise SmtpError("connect", f"connection failed: {err.strerror or err}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


# --- the queue ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Queued:
    alert: Alert
    when: float  # wall clock, for the Date header
    at: float  # the mailer's clock, for MAX_AGE


Deliver = Callable[[SmtpServer, Envelope, float], Awaitable[None]]


class Mailer:
    """A bounded queue of alert mails and the one task that sends them.

    `submit` never waits; the worker retries the mail at the head of the queue
    with backoff while the server fails (the server is down, not the mail),
    drops mails older than `max_age`, and sends the next one at once after a
    success. `deliver`, `clock` and `sleep` are the seams the tests use."""

    def __init__(
        self,
        settings: MailSettings,
        *,
        queue_size: int = QUEUE_SIZE,
        max_age: float = MAX_AGE,
        deliver: Deliver = deliver,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        log_every: float = 60.0,
    ) -> None:
        self.settings = settings
        self.queue_size = queue_size
        self.max_age = max_age
        self._deliver = deliver
        self._clock = clock
        self._sleep = sleep or self._backoff_sleep
        self._queue: deque[_Queued] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._limited = LogLimiter(log, every=log_every)
        self._local_name: str | None = None
        self._sending: _Queued | None = None
        self.failures = 0  # consecutive failed attempts
        self.sent = 0
        self.failed = 0  # failed attempts (a retried mail counts once per attempt)
        self.dropped = 0  # never sent: queue full, too old, refused (5xx), shutdown
        self.last_error: str | None = None
        self.retry_at: float | None = None

    def submit(self, alert: Alert) -> None:
        """Queue `alert`; returns at once. Beyond queue_size the oldest is dropped."""
        if self._closing.is_set():
            log.debug("smtp: %r after shutdown, not sent", alert.subject)
            return
        self._queue.append(_Queued(alert, time.time(), self._clock()))
        self._trim()
        if self._worker is None or self._worker.done():
            loop = asyncio.get_running_loop()
            self._worker = loop.create_task(self._work(), name="smtp alerts")
            self._worker.add_done_callback(self._worker_done)

    def _trim(self) -> None:
        # The mail being sent is not in the queue: it is never dropped mid-dialogue.
        while len(self._queue) > self.queue_size:
            old = self._queue.popleft()
            self.dropped += 1
            self._limited.warning("overflow", "smtp: %d mails waiting, dropped the oldest (%r)",
                                  self.queue_size, old.alert.subject)  # fmt: skip

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """At shutdown: what is queued gets `timeout` seconds and no retries
        (keepalived's "Stopping" mails go out if the server answers)."""
        self._closing.set()
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except asyncio.TimeoutError:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
        left = len(self._queue) + (self._sending is not None)  # cut off mid-dialogue
        if left:
            log.warning("smtp: shutting down with %d alert mail(s) unsent", left)
            self.dropped += left
            self._queue.clear()
            self._sending = None

    async def _backoff_sleep(self, delay: float) -> None:
        # A shutdown ends the wait: drain() tries once more, then gives up.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    async def _work(self) -> None:
        while self._queue:
            head = self._queue.popleft()
            if self._clock() - head.at > self.max_age:
                self.dropped += 1
                self._limited.warning("expired", "smtp: %r not sent within %gs, dropped",
                                      head.alert.subject, self.max_age)  # fmt: skip
                continue
            self._sending = head
            try:
                await self._attempt(head)
            except SmtpError as err:
                self._sending = None
                self.failed += 1
                self.last_error = str(err)
                s = self.settings
                if err.permanent:
                    # The server answers, and refuses this mail: the next one may pass.
                    self.dropped += 1
                    self._limited.warning("refused", "smtp: %s: %s; %r not sent",
                                          s.server, err, head.alert.subject)  # fmt: skip
                    continue
                self.failures += 1
                # Back at the head: the server is down, not the mail.
                self._queue.appendleft(head)
                self._trim()
                if self._closing.is_set():
                    return  # drain() counts what is left
                delay = backoff(self.failures)
                self.retry_at = self._clock() + delay
                self._limited.warning(err.condition, "smtp: %s: %s; %d mail(s) waiting, retrying",
                                      s.server, err, len(self._queue))  # fmt: skip
                await self._sleep(delay)
                self.retry_at = None
                continue
            finally:
                self._sending = None
            self.sent += 1
            if self.failures:
                log.info("smtp: %s reachable again after %d failed attempt(s)",
                         self.settings.server, self.failures)  # fmt: skip
            self.failures = 0
            self.last_error = None
            log.info("smtp: sent %r to %d recipient(s)", head.alert.subject,
                     len(self.settings.recipients))  # fmt: skip

    async def _attempt(self, item: _Queued) -> None:
        # Settings are read per attempt: a reload that fixes the server heals queued mail.
        s = self.settings
        local = await self._local()
        sender = s.sender or f"{_user()}@{local}"
        envelope = Envelope(
            helo=s.helo or local,
            sender=address_of(sender),
            recipients=tuple(address_of(r) for r in s.recipients),
            data=render(item.alert, sender=sender, recipients=s.recipients, when=item.when),
        )
        await self._deliver(s.server, envelope, s.timeout)

    async def _local(self) -> str:
        """keepalived's LOCAL_NAME: the host's canonical name (getaddrinfo with
        AI_CANONNAME on the node name), resolved off the loop, once."""
        if self._local_name is None:
            name = socket.gethostname()
            try:
                infos = await asyncio.wait_for(
                    asyncio.get_running_loop().getaddrinfo(name, None, flags=socket.AI_CANONNAME),
                    self.settings.timeout,
                )
                name = next((i[3] for i in infos if i[3]), name)
            except (OSError, asyncio.TimeoutError):
                pass  # the node name, as keepalived when resolution fails
            self._local_name = name
        return self._local_name

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("smtp: worker crashed", exc_info=task.exception())

    def status(self) -> dict[str, object]:
        now = self._clock()
        return {
            "server": str(self.settings.server),
            "queued": len(self._queue) + (self._sending is not None),
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "last_error": self.last_error,
            "retry_in": None if self.retry_at is None else round(max(self.retry_at - now, 0), 3),
        }


@functools.lru_cache(maxsize=1)
def _user() -> str:
    # keepalived: getpwuid(getuid()); the agent may run as its own user. Once:
    # the uid does not change, and an NSS lookup (LDAP, sssd) can be slow.
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


# --- what is mailed ----------------------------------------------------------------


class Alerts:
    """The daemon's one handle: transitions in, mails queued (or not).

    Every method returns at once. Nothing is sent without smtp_server and
    notification_email (as keepalived); the configuration's smtp_warnings()
    says so at validate, start and reload."""

    def __init__(self, cfg: Config, mailer: Callable[[MailSettings], Mailer] = Mailer) -> None:
        self._make = mailer
        self.g: GlobalDefs = cfg.global_defs
        self.mailer: Mailer | None = None
        # (kind, name) -> the state last mailed: keepalived's last_email_state,
        # so a report of the same state twice (a reload) is one mail.
        self._last: dict[tuple[str, str], str] = {}
        self.reconfigure(cfg)

    def reconfigure(self, cfg: Config) -> None:
        self.g = cfg.global_defs
        settings = MailSettings.of(self.g)
        if settings is None:
            # Mail switched off: what is queued still goes, with the settings it had.
            return
        if self.mailer is None:
            self.mailer = self._make(settings)
        else:
            self.mailer.settings = settings

    def _send(self, key: tuple[str, str], state: str, alert: Alert | None) -> None:
        if alert is None or self._last.get(key) == state:
            return
        self._last[key] = state
        if MailSettings.of(self.g) is not None and self.mailer is not None:
            self.mailer.submit(alert)

    def instance_changed(self, inst: Instance, state: str) -> None:
        if not self._wanted(alerts_instance(self.g, inst), state):
            return
        self._send(
            ("INSTANCE", inst.name), state, instance_alert(self.g.router_id, inst.name, state)
        )

    def group_changed(self, group: SyncGroup, state: str) -> None:
        if not self._wanted(alerts_instance(self.g, group), state):
            return
        self._send(("GROUP", group.name), state, group_alert(self.g.router_id, group.name, state))

    def real_server_changed(self, vs: VirtualServer, rs: RealServer, up: bool) -> None:
        """A checker's verdict flipped (keepalived mails every checker change)."""
        if not alerts_real_server(self.g, rs):
            return
        key = ("RS", f"{vs.ip}:{vs.port}/{vs.protocol}/{rs.ip}:{rs.port}")
        state = "UP" if up else "DOWN"
        self._send(key, state, real_server_alert(self.g.router_id, vs, rs, up))

    def _wanted(self, on: bool, state: str) -> bool:
        return on and not (self.g.no_email_faults and state == "FAULT")

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        if self.mailer is not None:
            await self.mailer.drain(timeout)

    def status(self) -> dict[str, object] | None:
        return self.mailer.status() if self.mailer is not None else None
