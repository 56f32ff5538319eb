"""Real-server health checks on the network: keepalived's TCP_CHECK, HTTP_GET,
SSL_GET and MISC_CHECK, one asyncio task per checked real server.

When to check and when a server is UP or DOWN is decided by the sans-I/O
`RealServerHealth` (health.py, where the detection bounds are worked out);
this module only runs attempts, each ended by the deadline it is given, and
tells the owner (`on_change`) when the verdict flipped. Nothing here blocks
the loop: connections are asyncio's, script exits arrive through a pidfd.

What an attempt is, per kind (keepalived.conf(5) and keepalived's check_*.c):

- TCP_CHECK: a TCP connection to ip:connect_port (default: the real server's
  port) is established; it is closed at once, nothing is sent.
- HTTP_GET: for every url, ``GET path HTTP/1.0`` with ``User-Agent:
  KeepAliveClient`` (keepalived's, so existing log filters keep working) and
  ``Host: IP:PORT`` (keepalived's default without `virtualhost`; IPv6 in
  brackets). The status must be `status_code`, or 200-299 when unset
  (keepalived's default); with `digest`, the MD5 of the body (at most
  Content-Length bytes, else up to the end of the stream) must equal it.
  Every url must pass. The urls are fetched concurrently and the whole
  attempt, connection included, must end within connect_timeout: that keeps
  the bound in health.py independent of the number of urls. keepalived
  instead checks one url per delay_loop and gives every connect/read step its
  own connect_timeout, so a slow server here fails sooner than there.
- SSL_GET: the same over TLS, and like keepalived's auto-generated SSL
  context (no `SSL {}` block, which is not supported here) the certificate is
  not verified: keepalived never calls SSL_CTX_set_verify, so OpenSSL's
  client default SSL_VERIFY_NONE applies. No SNI is sent, as in keepalived
  without `enable_sni`. The check proves the server answers, not who it is.
- MISC_CHECK: misc_path, shlex-split and run without a shell as the script
  user, in a session of its own (`io.scripts.spawn`); exit 0 is a success,
  anything else (a signal included) a failure. After misc_timeout (default:
  the virtual server's delay_loop, as in keepalived) the whole process group
  is killed with SIGKILL (keepalived sends SIGTERM first and SIGKILL 2 s
  later; we kill at once, as vrrp_scripts do, so the deadline holds).
  keepalived's misc_dynamic (weight from the exit status) is not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shlex
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from vrrp_agent.config.model import RealServer, Url, VirtualServer
from vrrp_agent.io import privileges
from vrrp_agent.io.scripts import (
    REAP_GRACE,
    Credentials,
    kill_group,
    kill_leftovers,
    resolve_user,
    signame,
    spawn,
    use_pidfd_child_watcher,
)
from vrrp_agent.lvs.health import RealServerHealth, timing
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

# keepalived's User-Agent: web servers configured to keep its health checks
# out of their access logs match on it.
USER_AGENT = "KeepAliveClient"
# A status line or header longer than this is not a web server we understand.
MAX_LINE = 8192
MAX_HEADERS = 100
# A checker task that died of a bug is started again after this long (or
# delay_loop, if shorter): often enough to keep checking, rarely enough that a
# bug hit on every run does not flood the log.
RESTART_DELAY = 10.0


@dataclass(frozen=True)
class Outcome:
    """One check attempt's verdict."""

    ok: bool
    detail: str  # for the log and the status: "connection refused", "exit 1", ...
    # Set when the check could not run at all (not the server's fault): the
    # level to log that at, once until the outcome changes.
    report: int | None = None


def addr(ip: IPAddr, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _tls_context() -> ssl.SSLContext:
    # keepalived's auto-generated context: whatever TLS the system's OpenSSL
    # speaks, no certificate or name verification (see the module docstring).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _why(err: BaseException) -> str:
    """A short reason for a failed connection or exchange."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, asyncio.IncompleteReadError):
        return "connection closed before a complete response"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, OSError):
        return err.strerror or str(err) or type(err).__name__
    return str(err) or type(err).__name__


class _BadResponse(Exception):
    """The server answered something that is not an HTTP response."""


class RealServerChecker:
    """Checks one real server with its configured checker until stopped.

    `up` is the current verdict (it starts UP, as keepalived adds real servers
    at start); `on_change()` is called after every change. `disabled`, if set,
    is why the check must not run (e.g. an insecure misc_path under
    enable_script_security): every attempt then fails with that reason.
    """

    def __init__(
        self,
        vs: VirtualServer,
        rs: RealServer,
        script_user: str,
        on_change: Callable[[], None],
        *,
        disabled: str | None = None,
    ) -> None:
        if rs.checker is None:
            raise ValueError(f"real server {addr(rs.ip, rs.port)} has no checker")
        self.vs = vs
        self.rs = rs
        self.checker = rs.checker
        self.kind = rs.checker.kind
        self.user = script_user
        self.port = rs.checker.connect_port or rs.port
        self.health = RealServerHealth(timing(vs, rs.checker))
        self.name = (
            f"real_server {addr(rs.ip, rs.port)} of virtual_server"
            f" {addr(vs.ip, vs.port)} {vs.protocol} ({self.kind})"
        )
        self.last_detail: str | None = None
        self._on_change = on_change
        self._disabled = disabled
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._restart: asyncio.TimerHandle | None = None
        self._stopped = False
        # The last abnormal outcome logged, so a broken check is reported
        # once, not every delay_loop.
        self._reported: str | None = None
        self._tls = _tls_context() if self.kind == "SSL_GET" else None
        # MISC_CHECK: the running script, and killed ones not reaped yet
        self._proc: asyncio.subprocess.Process | None = None
        self._killed: set[asyncio.subprocess.Process] = set()
        self._reapers: set[asyncio.Task[None]] = set()
        self._creds: Credentials | None = None
        self._argv: list[str] = []
        self._argv_error: str | None = None
        if self.kind == "MISC_CHECK":
            try:
                self._argv = shlex.split(self.checker.misc_path or "")
            except ValueError as err:
                self._argv_error = f"cannot parse misc_path: {err}"
            if not self._argv and self._argv_error is None:
                self._argv_error = "misc_path is empty"
        elif self.kind not in ("TCP_CHECK", "HTTP_GET", "SSL_GET"):
            raise ValueError(f"unknown checker kind '{self.kind}'")

    @property
    def up(self) -> bool:
        return self.health.up

    def status(self) -> dict[str, object]:
        """For `vrrp-agent status`; times are seconds relative to now."""
        h = self.health
        now = self._loop.time() if self._loop is not None else None
        t = h.timing

        def ago(when: float | None) -> float | None:
            return None if when is None or now is None else round(now - when, 3)

        return {
            "state": h.state.value,
            "checker": self.kind,
            "target": addr(self.rs.ip, self.port),
            "last_result": None if h.last_ok is None else ("ok" if h.last_ok else "failed"),
            "detail": self.last_detail,
            "failures": h.failures,  # failed attempts in the current cycle
            "attempts_per_cycle": t.attempts_per_cycle,
            "attempts": h.attempts,
            "checking": h.running_since is not None,
            "last_change": ago(h.last_change),  # seconds ago; None: never changed
            "next_attempt_in": (
                None if now is None else round(max(h.next_attempt_at(now) - now, 0.0), 3)
            ),
            "down_within": t.down_bound,
        }

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.kind == "MISC_CHECK":
            use_pidfd_child_watcher()
            if not privileges.can_switch_user():
                log.info(
                    "%s: cannot switch users, so misc_path runs as uid %d, not as %r",
                    self.name,
                    os.geteuid(),
                    self.user,
                )
        self._stopped = False
        self._spawn_task()

    def stop(self) -> None:
        """Stop checking and kill a running script; synchronous, so the owner
        knows no check outlives it."""
        self._stopped = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        if self._proc is not None:
            kill_group(self._proc)
        for proc in self._killed:
            kill_group(proc)
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait for the task to end and every killed script to be reaped."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._proc is not None and self._proc.returncode is None:
            self._reap_later(self._proc)
        if self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)

    def _spawn_task(self) -> None:
        self._restart = None
        if self._stopped or self._loop is None:
            return
        self._task = self._loop.create_task(self._run_forever(), name=self.name)
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopped or self._loop is None:
            return
        # Only a bug ends the loop below; the verdict must not freeze on it.
        delay = min(RESTART_DELAY, self.health.timing.delay_loop)
        log.error(
            "%s: checker crashed (a bug); state stays %s, checking again in %gs",
            self.name,
            self.health.state.value,
            delay,
            exc_info=task.exception(),
        )
        self._restart = self._loop.call_later(delay, self._spawn_task)

    # -------------------------------------------------------------- attempts

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            due = self.health.next_attempt_at(now)
            if due > now:
                await asyncio.sleep(due - now)
            deadline = self.health.begin(loop.time())
            try:
                outcome = await self.run_once(deadline)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # A bug in an attempt: a failed attempt, never a dead checker.
                log.error("%s: check raised (a bug)", self.name, exc_info=True)
                outcome = Outcome(False, f"internal error: {err!r}")
            self._record(outcome, loop.time())

    async def run_once(self, deadline: float) -> Outcome:
        """One attempt, ended by `deadline` (loop time)."""
        if self._disabled is not None:
            return Outcome(False, f"not run: {self._disabled}", report=logging.ERROR)
        if self.kind == "TCP_CHECK":
            return await self._tcp(deadline)
        if self.kind == "MISC_CHECK":
            return await self._misc(deadline)
        return await self._http(deadline)

    def _record(self, outcome: Outcome, now: float) -> None:
        self.last_detail = outcome.detail
        if outcome.report is not None:
            if outcome.detail != self._reported:
                self._reported = outcome.detail
                log.log(outcome.report, "%s: %s", self.name, outcome.detail)
        else:
            self._reported = None
        h = self.health
        was_up = h.up
        changed = h.record(outcome.ok, now)
        if changed:
            if h.up:
                log.info("%s: UP (%s)", self.name, outcome.detail)
            else:
                log.warning(
                    "%s: DOWN after %d failed attempt%s (%s)",
                    self.name,
                    h.failures,
                    "" if h.failures == 1 else "s",
                    outcome.detail,
                )
            try:
                self._on_change()
            except Exception:
                log.error("%s: on_change raised (a bug)", self.name, exc_info=True)
        elif not outcome.ok and was_up:
            log.info(
                "%s: check failed (%s), retry %d of %d in %gs",
                self.name,
                outcome.detail,
                h.failures,
                h.timing.retry,
                h.timing.delay_before_retry,
            )
        else:
            log.debug("%s: %s", self.name, outcome.detail)

    # TCP_CHECK ----------------------------------------------------------------

    async def _tcp(self, deadline: float) -> Outcome:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if self.rs.ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            connect = loop.sock_connect(sock, (str(self.rs.ip), self.port))
            await asyncio.wait_for(connect, max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:  # not the builtin before 3.11
            return Outcome(False, f"no connection within {self.health.timing.timeout:g}s")
        except OSError as err:
            return Outcome(False, _why(err))
        finally:
            sock.close()
        return Outcome(True, "connected")

    # HTTP_GET, SSL_GET ----------------------------------------------------------

    async def _http(self, deadline: float) -> Outcome:
        urls = self.checker.url
        if not urls:
            return Outcome(True, "no url to check")  # keepalived: up without checking
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._get(url)) for url in urls]
        _, pending = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.0))
        for task in pending:
            task.cancel()
        # Let the cancelled ones close their connections before we go on.
        await asyncio.gather(*pending, return_exceptions=True)
        # _get turns every network failure into a result, so an exception is
        # a bug: raise it (see _run_forever), after marking all as retrieved.
        bugs = [e for t in tasks if t not in pending and (e := t.exception()) is not None]
        if bugs:
            raise bugs[0]
        answers = []
        for url, task in zip(urls, tasks):
            if task in pending:
                timeout = self.health.timing.timeout
                return Outcome(False, f"GET {url.path}: no answer within {timeout:g}s")
            ok, detail = task.result()
            if not ok:
                return Outcome(False, f"GET {url.path}: {detail}")
            answers.append(f"{url.path} {detail}")
        return Outcome(True, "GET " + ", ".join(answers))

    async def _get(self, url: Url) -> tuple[bool, str]:
        host = str(self.rs.ip)
        try:
            reader, writer = await asyncio.open_connection(
                host,
                self.port,
                ssl=self._tls,
                # "" = no SNI and no name check, as keepalived without enable_sni
                server_hostname="" if self._tls is not None else None,
                limit=MAX_LINE,
            )
        except OSError as err:  # ssl.SSLError is an OSError too
            return False, _why(err)
        try:
            request = (
                f"GET {url.path} HTTP/1.0\r\n"
                f"User-Agent: {USER_AGENT}\r\n"
                f"Host: {addr(self.rs.ip, self.port)}\r\n\r\n"
            )
            writer.write(request.encode("latin-1"))
            await writer.drain()
            code, length = await _read_head(reader)
            if url.status_code is None:
                if not 200 <= code <= 299:
                    return False, f"status {code}, expected 2xx"
            elif code != url.status_code:
                return False, f"status {code}, expected {url.status_code}"
            if url.digest is None:
                return True, str(code)
            digest = await _body_md5(reader, length)
            if digest != url.digest:
                return False, f"status {code}, body MD5 {digest}, expected {url.digest}"
            return True, f"{code}, digest ok"
        except (OSError, asyncio.IncompleteReadError) as err:
            return False, _why(err)
        except (_BadResponse, ValueError) as err:  # ValueError: a line over MAX_LINE
            return False, f"bad response: {err}"
        finally:
            writer.close()

    # MISC_CHECK -----------------------------------------------------------------

    async def _misc(self, deadline: float) -> Outcome:
        if self._argv_error is not None:
            return Outcome(False, self._argv_error, report=logging.ERROR)
        if privileges.can_switch_user() and self._creds is None:
            try:
                self._creds = resolve_user(self.user)
            except LookupError as err:
                # Never fall back to root: fail the check, as keepalived
                # refuses a script whose user does not exist.
                return Outcome(False, f"not run: {err}", report=logging.ERROR)
        try:
            self._proc = proc = await spawn(self._argv, self._creds)
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            return Outcome(False, f"cannot execute {self._argv[0]}: {err}", report=logging.ERROR)
        loop = asyncio.get_running_loop()
        try:
            rc = await asyncio.wait_for(proc.wait(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            kill_group(proc)
            # Reaped in the background: the verdict is due now, and a process
            # stuck in the kernel must not hold up the next cycles.
            self._reap_later(proc)
            timeout = self.health.timing.timeout
            return Outcome(False, f"timed out after {timeout:g}s, killed")
        # (Cancelled by stop(): _proc stays set, so that wait_closed reaps it.)
        self._proc = None
        kill_leftovers(proc)
        if rc < 0:
            return Outcome(False, f"killed by {signame(-rc)}")
        return Outcome(rc == 0, f"exit {rc}")

    def _reap_later(self, proc: asyncio.subprocess.Process) -> None:
        if self._proc is proc:
            self._proc = None
        self._killed.add(proc)
        task = asyncio.get_running_loop().create_task(self._reap(proc))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), REAP_GRACE)
        except asyncio.TimeoutError:
            log.error("%s: pid %d survives SIGKILL", self.name, proc.pid)
        finally:
            self._killed.discard(proc)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, int | None]:
    """The status code and Content-Length (None if absent) of a response."""
    line = await reader.readline()
    if not line:
        raise asyncio.IncompleteReadError(b"", None)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise _BadResponse(f"status line {line[:80]!r}")
    code = int(parts[1])
    length: int | None = None
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        if line in (b"\r\n", b"\n"):
            return code, length
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            with contextlib.suppress(ValueError):
                length = max(int(value.strip()), 0)
    raise _BadResponse(f"more than {MAX_HEADERS} header lines")


async def _body_md5(reader: asyncio.StreamReader, length: int | None) -> str:
    """keepalived's digest: MD5 over the body, at most Content-Length bytes."""
    md5 = hashlib.md5(usedforsecurity=False)
    left = length
    while left is None or left > 0:
        chunk = await reader.read(65536 if left is None else min(65536, left))
        if not chunk:
            break
        md5.update(chunk)
        if left is not None:
            left -= len(chunk)
    return md5.hexdigest()
