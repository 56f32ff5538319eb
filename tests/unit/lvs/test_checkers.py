"""Real-server checkers against real servers on 127.0.0.1 (vrrp_agent.lvs.checkers).

Servers are asyncio servers in the test's own loop (plain and TLS, with a
self-signed certificate made by `cryptography`, or the openssl CLI if that
is missing). MISC_CHECK scripts live in a fresh root-owned 0755 directory
and run as `nobody`. Timings are a few tenths of a second so the whole file
stays short; the bound checks allow LOOP_SLACK for a loaded machine.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from tests import needs
from vrrp_agent.config.model import Checker, RealServer, Url, VirtualServer
from vrrp_agent.lvs.checkers import RealServerChecker

LOCAL = ip_address("127.0.0.1")
# How late the event loop may wake on a busy machine, on top of the bound.
LOOP_SLACK = 0.3


@pytest.fixture
def as_root() -> None:
    needs.root("running scripts as nobody")


root_only = pytest.mark.usefixtures("as_root")


@pytest.fixture(autouse=True)
def _fresh_child_watcher() -> Iterator[None]:
    # MISC_CHECK installs a pidfd child watcher bound to the test's loop.
    yield
    if sys.version_info < (3, 12):
        asyncio.set_child_watcher(None)


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def make(
    kind: str,
    port: int,
    *,
    delay_loop: float = 0.3,
    script_user: str = "nobody",
    on_change: Callable[[], None] | None = None,
    **checker: object,
) -> RealServerChecker:
    vs = VirtualServer(ip_address("192.0.2.10"), 80, delay_loop=delay_loop)
    rs = RealServer(LOCAL, port, checker=Checker(kind, **checker))  # type: ignore[arg-type]
    return RealServerChecker(vs, rs, script_user, on_change or (lambda: None))


async def attempt(chk: RealServerChecker) -> tuple[bool, str, float]:
    """One attempt by the deadline the schedule gives it: (ok, detail, seconds)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    outcome = await chk.run_once(start + chk.health.timing.timeout)
    return outcome.ok, outcome.detail, loop.time() - start


async def until(cond: Callable[[], bool], timeout: float) -> float:
    """Wait for `cond`; returns the loop time it held (fails after `timeout`)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)
    return loop.time()


# ------------------------------------------------------------------ servers


class Web:
    """A tiny HTTP/1.0 server: `routes[path] = (status, body)`; `hang` makes
    it accept and read but never answer; `raw` replaces the whole answer."""

    def __init__(self, routes: dict[str, tuple[int, bytes]], tls: ssl.SSLContext | None = None):
        self.routes = routes
        self.tls = tls
        self.hang = False
        self.raw: bytes | None = None
        self.requests: list[list[str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self.tls, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        # Connections first: from Python 3.12.1 on, wait_closed also waits for
        # every open connection, and a hanging one never ends by itself.
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.decode().split("\r\n")[:-2])
            if self.hang:
                await asyncio.sleep(3600)
            path = head.split()[1].decode()
            status, body = self.routes.get(path, (404, b"not found"))
            answer = (
                f"HTTP/1.0 {status} Whatever\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                if self.raw is None
                else self.raw
            )
            writer.write(answer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._conns.discard(task)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def tls_server_context() -> ssl.SSLContext:
    d = Path(tempfile.mkdtemp(prefix="vrrp-tls-"))
    try:
        cert, key = d / "cert.pem", d / "key.pem"
        try:
            _self_signed(cert, key)
        except ImportError:
            openssl = needs.tool("openssl", "cryptography is not installed to make a certificate")
            subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "2", "-subj", "/CN=rs.test", "-keyout", str(key), "-out", str(cert)],
                check=True, capture_output=True,
            )  # fmt: skip
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _self_signed(cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rs.test")])
    now = datetime.datetime.now(datetime.timezone.utc)  # datetime.UTC is 3.11+
    c = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(k, hashes.SHA256())
    )
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# ---------------------------------------------------------------- TCP_CHECK


def test_tcp_check_up_down_and_back_within_the_bounds() -> None:
    changes: list[tuple[float, bool]] = []

    async def go() -> tuple[float, float, float, float]:
        loop = asyncio.get_running_loop()

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        chk = make(
            "TCP_CHECK",
            port,
            connect_timeout=0.3,
            retry=1,
            delay_before_retry=0.2,
            on_change=lambda: changes.append((loop.time(), chk.up)),
        )
        chk.start()
        await until(lambda: chk.health.attempts >= 1, 2)
        assert chk.up and chk.status()["last_result"] == "ok"
        server.close()
        await server.wait_closed()
        killed = loop.time()
        down = await until(lambda: not chk.up, 5)
        assert chk.status()["detail"] == "connection refused"
        assert chk.health.failures == 2  # retry + 1 attempts failed
        server = await asyncio.start_server(accept, "127.0.0.1", port, reuse_address=True)
        revived = loop.time()
        up = await until(lambda: chk.up, 5)
        chk.stop()
        await chk.wait_closed()
        server.close()
        await server.wait_closed()
        t = chk.health.timing
        return down - killed, t.down_bound, up - revived, t.up_bound

    took_down, down_bound, took_up, up_bound = run(go())  # type: ignore[misc]
    print(f"TCP_CHECK: DOWN after {took_down:.3f}s (bound {down_bound:.3g}s),"
          f" UP after {took_up:.3f}s (bound {up_bound:.3g}s)")  # fmt: skip
    assert took_down <= down_bound + LOOP_SLACK
    assert took_up <= up_bound + LOOP_SLACK
    assert [up for _, up in changes] == [False, True]


def test_tcp_connect_that_hangs_ends_at_connect_timeout() -> None:
    """A listener whose accept queue is full drops SYNs: connect() hangs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        # fill the accept queue (never accepted), until a connect stalls
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        chk = make("TCP_CHECK", port, connect_timeout=0.4)
        ok, detail, took = run(attempt(chk))  # type: ignore[misc]
    finally:
        for s in fillers:
            s.close()
        listener.close()
    if ok:
        pytest.skip("this kernel completed the connection despite the full backlog")
    assert detail == "no connection within 0.4s"
    assert 0.4 <= took <= 0.4 + LOOP_SLACK


def test_tcp_check_uses_connect_port() -> None:
    async def go() -> tuple[bool, str, float]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # the real server's own port (1) has nothing; connect_port has
        chk = make("TCP_CHECK", 1, connect_port=port, connect_timeout=1)
        try:
            return await attempt(chk)
        finally:
            server.close()
            await server.wait_closed()

    ok, detail, _ = run(go())  # type: ignore[misc]
    assert (ok, detail) == (True, "connected")
    assert make("TCP_CHECK", 1, connect_port=2).status()["target"] == "127.0.0.1:2"


# ----------------------------------------------------------------- HTTP_GET


def http(routes: dict[str, tuple[int, bytes]], tls: ssl.SSLContext | None = None) -> Web:
    return Web(routes, tls)


async def one(web: Web, kind: str = "HTTP_GET", **kw: object) -> tuple[bool, str, float]:
    await web.start()
    try:
        kw.setdefault("connect_timeout", 1.0)
        return await attempt(make(kind, web.port, **kw))
    finally:
        await web.stop()


def test_http_get_sends_keepalived_request_and_checks_every_url() -> None:
    web = http({"/": (200, b"hello"), "/health": (204, b"")})
    urls = (Url("/", digest=md5(b"hello")), Url("/health"))
    ok, detail, _ = run(one(web, url=urls))  # type: ignore[misc]
    assert ok, detail
    assert detail == "GET / 200, digest ok, /health 204"
    first = sorted(web.requests)[0]
    assert first == [
        "GET / HTTP/1.0",
        "User-Agent: KeepAliveClient",
        f"Host: 127.0.0.1:{web.port}",
    ]


@pytest.mark.parametrize(
    ("served", "url", "ok", "detail"),
    [
        (200, Url("/"), True, "GET / 200"),
        (299, Url("/"), True, "GET / 299"),
        (301, Url("/"), False, "GET /: status 301, expected 2xx"),
        (500, Url("/"), False, "GET /: status 500, expected 2xx"),
        (301, Url("/", status_code=301), True, "GET / 301"),
        (200, Url("/", status_code=301), False, "GET /: status 200, expected 301"),
    ],
)
def test_http_get_status(served: int, url: Url, ok: bool, detail: str) -> None:
    got = run(one(http({"/": (served, b"x")}), url=(url,)))
    assert got[:2] == (ok, detail)  # type: ignore[index]


def test_http_get_wrong_digest_fails() -> None:
    web = http({"/": (200, b"changed page")})
    ok, detail, _ = run(one(web, url=(Url("/", digest=md5(b"page")),)))  # type: ignore[misc]
    assert not ok
    assert detail == (
        f"GET /: status 200, body MD5 {md5(b'changed page')}, expected {md5(b'page')}"
    )


def test_http_get_fails_when_any_url_fails() -> None:
    web = http({"/": (200, b"ok")})  # /missing is a 404
    ok, detail, _ = run(one(web, url=(Url("/"), Url("/missing"))))  # type: ignore[misc]
    assert (ok, detail) == (False, "GET /missing: status 404, expected 2xx")


def test_http_get_digest_stops_at_content_length() -> None:
    web = http({})
    web.raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyEXTRA"
    ok, detail, _ = run(one(web, url=(Url("/", digest=md5(b"body")),)))  # type: ignore[misc]
    assert ok, detail


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"hello\r\n\r\n", "GET /: bad response: status line b'hello\\r\\n'"),
        (b"", "GET /: connection closed before a complete response"),
        (b"HTTP/1.0 200 OK\r\nServer: x", "GET /: connection closed before a complete response"),
    ],
)
def test_http_get_bad_answers_fail(raw: bytes, detail: str) -> None:
    web = http({})
    web.raw = raw  # b"": closes without a word
    got = run(one(web, url=(Url("/"),)))
    assert got[:2] == (False, detail)  # type: ignore[index]


def test_http_get_refused() -> None:
    web = http({})

    async def go() -> tuple[bool, str, float]:
        await web.start()
        await web.stop()  # the port is free again: nothing listens
        return await attempt(make("HTTP_GET", web.port, connect_timeout=1, url=(Url("/"),)))

    ok, detail, _ = run(go())  # type: ignore[misc]
    assert (ok, detail) == (False, "GET /: connection refused")


def test_http_get_server_that_never_answers_times_out_at_connect_timeout() -> None:
    web = http({"/": (200, b"x")})
    web.hang = True
    ok, detail, took = run(one(web, url=(Url("/"), Url("/")), connect_timeout=0.4))  # type: ignore[misc]
    assert (ok, detail) == (False, "GET /: no answer within 0.4s")
    assert 0.4 <= took <= 0.4 + LOOP_SLACK
    assert len(web.requests) == 2  # both urls were asked, concurrently


def test_http_get_hanging_server_is_down_within_the_bound() -> None:
    """The worst case: every attempt runs to its deadline."""

    async def go() -> tuple[float, float, float, float]:
        loop = asyncio.get_running_loop()
        web = http({"/": (200, b"x")})
        await web.start()
        chk = make(
            "HTTP_GET",
            web.port,
            delay_loop=0.3,
            connect_timeout=0.25,
            retry=1,
            delay_before_retry=0.1,
            url=(Url("/"),),
        )
        chk.start()
        await until(lambda: chk.health.attempts >= 1, 2)
        # the last success ended now (attempts are instant on loopback)
        last_ok = loop.time()
        web.hang = True
        down = await until(lambda: not chk.up, 5)
        web.hang = False
        revived = loop.time()
        up = await until(lambda: chk.up, 5)
        chk.stop()
        await chk.wait_closed()
        await web.stop()
        t = chk.health.timing
        return down - last_ok, t.down_bound, up - revived, t.up_bound

    took_down, down_bound, took_up, up_bound = run(go())  # type: ignore[misc]
    print(f"HTTP_GET hanging: DOWN after {took_down:.3f}s (bound {down_bound:.3g}s),"
          f" UP after {took_up:.3f}s (bound {up_bound:.3g}s)")  # fmt: skip
    assert took_down <= down_bound + LOOP_SLACK
    # it really waited for the deadlines: at least both timeouts and the retry gap
    assert took_down >= 2 * 0.25 + 0.1
    assert took_up <= up_bound + LOOP_SLACK


# ------------------------------------------------------------------ SSL_GET


def test_ssl_get_self_signed_certificate_is_accepted(tls_server_context: ssl.SSLContext) -> None:
    web = http({"/": (200, b"secure")}, tls=tls_server_context)
    ok, detail, _ = run(one(web, "SSL_GET", url=(Url("/", digest=md5(b"secure")),)))  # type: ignore[misc]
    assert (ok, detail) == (True, "GET / 200, digest ok")
    assert web.requests[0][2] == f"Host: 127.0.0.1:{web.port}"


def test_ssl_get_checks_status_too(tls_server_context: ssl.SSLContext) -> None:
    web = http({"/": (503, b"")}, tls=tls_server_context)
    ok, detail, _ = run(one(web, "SSL_GET", url=(Url("/"),)))  # type: ignore[misc]
    assert (ok, detail) == (False, "GET /: status 503, expected 2xx")


def test_ssl_get_against_plain_http_fails() -> None:
    web = http({"/": (200, b"plain")})
    ok, detail, took = run(one(web, "SSL_GET", url=(Url("/"),)))  # type: ignore[misc]
    assert not ok
    assert detail.startswith("GET /: ") and took < 1.0 + LOOP_SLACK


def test_ssl_get_down_and_back(tls_server_context: ssl.SSLContext) -> None:
    async def go() -> list[bool]:
        web = http({"/": (200, b"x")}, tls=tls_server_context)
        await web.start()
        seen: list[bool] = []
        chk = make(
            "SSL_GET",
            web.port,
            connect_timeout=0.5,
            retry=0,
            url=(Url("/"),),
            on_change=lambda: seen.append(chk.up),
        )
        chk.start()
        await until(lambda: chk.health.attempts >= 1, 2)
        await web.stop()
        await until(lambda: not chk.up, 3)
        await web.start()
        await until(lambda: chk.up, 3)
        chk.stop()
        await chk.wait_closed()
        await web.stop()
        return seen

    assert run(go()) == [False, True]


# --------------------------------------------------------------- MISC_CHECK


@pytest.fixture
def scripts() -> Iterator[Path]:
    # Not tmp_path: a fresh root-owned 0755 directory below /tmp, so that
    # `nobody` can run what is in it and change nothing.
    d = Path(tempfile.mkdtemp(prefix="vrrp-misc-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def script(d: Path, name: str, body: str) -> str:
    p = d / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return str(p)


def pgrep(*args: str) -> list[str]:
    out = subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout
    return out.split()


@root_only
@pytest.mark.parametrize(("code", "ok"), [(0, True), (1, False), (3, False)])
def test_misc_check_exit_status(scripts: Path, code: int, ok: bool) -> None:
    path = script(scripts, "chk", f"exit {code}")
    got = run(attempt(make("MISC_CHECK", 0, misc_path=f"{path} arg", misc_timeout=2)))
    assert got[:2] == (ok, f"exit {code}")  # type: ignore[index]


@root_only
def test_misc_check_runs_as_the_script_user_with_arguments(scripts: Path) -> None:
    # exits 0 only as nobody, and only when its quoted argument arrived whole
    path = script(scripts, "who", '[ "$(id -u)" = 65534 ] && [ "$1" = "a b" ]')
    chk = make("MISC_CHECK", 0, misc_path=f"{path} 'a b'", misc_timeout=2)
    assert run(attempt(chk))[:2] == (True, "exit 0")  # type: ignore[index]
    as_root = make("MISC_CHECK", 0, misc_path=f"{path} 'a b'", misc_timeout=2, script_user="root")
    assert run(attempt(as_root))[:2] == (False, "exit 1")  # type: ignore[index]


@root_only
def test_misc_check_hanging_script_is_killed_with_its_children(scripts: Path) -> None:
    marker = "987.125"  # a sleep length nothing else on the machine uses
    path = script(scripts, "hang", f"sleep {marker} & sleep {marker}; wait")

    async def go() -> tuple[bool, str, float, list[str], list[str]]:
        chk = make("MISC_CHECK", 0, misc_path=path, misc_timeout=0.5)
        task = asyncio.create_task(attempt(chk))
        await asyncio.sleep(0.3)
        running = pgrep("-u", "nobody", "-f", f"sleep {marker}")
        ok, detail, took = await task
        await chk.wait_closed()  # reaps the killed leader
        await asyncio.sleep(0.05)
        return ok, detail, took, running, pgrep("-f", f"sleep {marker}")

    ok, detail, took, running, left = run(go())  # type: ignore[misc]
    assert len(running) == 2  # the script's two sleeps, as nobody
    assert (ok, detail) == (False, "timed out after 0.5s, killed")
    assert 0.5 <= took <= 0.5 + LOOP_SLACK
    assert left == []


@root_only
def test_misc_check_down_and_back_and_stop_kills_the_script(scripts: Path) -> None:
    flag = scripts / "healthy"
    flag.touch()
    path = script(scripts, "flag", f"[ -e {flag} ]")
    hang = script(scripts, "slow", "sleep 876.5")

    async def go() -> tuple[list[bool], list[str]]:
        seen: list[bool] = []
        chk = make(
            "MISC_CHECK",
            0,
            misc_path=path,
            misc_timeout=1,
            retry=0,
            on_change=lambda: seen.append(chk.up),
        )
        chk.start()
        await until(lambda: chk.health.attempts >= 1, 3)
        assert chk.up
        flag.unlink()
        await until(lambda: not chk.up, 3)
        flag.touch()
        await until(lambda: chk.up, 3)
        chk.stop()
        await chk.wait_closed()
        # stop() while a script runs: killed, reaped, nothing left
        slow = make("MISC_CHECK", 0, misc_path=hang, misc_timeout=30)
        slow.start()
        await until(lambda: slow.health.running_since is not None, 3)
        await asyncio.sleep(0.2)
        slow.stop()
        await slow.wait_closed()
        return seen, pgrep("-f", "sleep 876.5")

    seen, left = run(go())  # type: ignore[misc]
    assert seen == [False, True]
    assert left == []


@root_only
def test_misc_check_that_cannot_run_fails_and_says_why(
    scripts: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="vrrp_agent")
    missing = make("MISC_CHECK", 0, misc_path=str(scripts / "nope"), misc_timeout=1)
    ok, detail, _ = run(attempt(missing))  # type: ignore[misc]
    assert not ok and detail.startswith(f"cannot execute {scripts / 'nope'}:")
    path = script(scripts, "ok", "exit 0")
    nouser = make("MISC_CHECK", 0, misc_path=path, script_user="no-such-user-x")
    assert run(attempt(nouser))[:2] == (  # type: ignore[index]
        False,
        "not run: user 'no-such-user-x' does not exist",
    )
    unparsable = make("MISC_CHECK", 0, misc_path="'unclosed")
    assert not run(attempt(unparsable))[0]  # type: ignore[index]


def test_disabled_checker_fails_without_running() -> None:
    vs = VirtualServer(ip_address("192.0.2.10"), 80, delay_loop=0.3)
    rs = RealServer(LOCAL, 1, checker=Checker("MISC_CHECK", misc_path="/bin/true"))
    chk = RealServerChecker(vs, rs, "nobody", lambda: None, disabled="insecure misc_path")
    assert run(attempt(chk))[:2] == (False, "not run: insecure misc_path")  # type: ignore[index]


# ------------------------------------------------------------- robustness


def test_a_check_that_raises_is_a_failure_and_checking_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="vrrp_agent")

    async def go() -> tuple[dict[str, object], int]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        chk = make("TCP_CHECK", port, delay_loop=0.05, connect_timeout=0.5, retry=0)
        real = chk._tcp
        calls = 0

        async def flaky(deadline: float) -> object:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return await real(deadline)

        chk._tcp = flaky  # type: ignore[method-assign,assignment]
        chk.start()
        await until(lambda: calls >= 1 and chk.health.attempts >= 1, 2)
        first = chk.status()
        await until(lambda: chk.up and chk.health.attempts >= 3, 3)
        chk.stop()
        await chk.wait_closed()
        server.close()
        await server.wait_closed()
        return first, chk.health.attempts

    first, attempts = run(go())  # type: ignore[misc]
    assert first["last_result"] == "failed"
    assert first["detail"] == "internal error: RuntimeError('boom')"
    assert attempts >= 3
    bug = [r for r in caplog.records if "check raised (a bug)" in r.getMessage()]
    assert bug and bug[0].exc_info is not None


def test_a_crashed_checker_task_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="vrrp_agent")

    async def go() -> int:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        changes = 0

        def on_change() -> None:
            nonlocal changes
            changes += 1
            raise ValueError("owner bug")  # must not stop the checker either

        chk = make(
            "TCP_CHECK", port, delay_loop=0.1, connect_timeout=0.5, retry=0, on_change=on_change
        )
        real_record = chk._record
        crashed = False

        def record_once_broken(outcome: object, now: float) -> None:
            nonlocal crashed
            if not crashed:
                crashed = True
                raise RuntimeError("record bug")
            real_record(outcome, now)  # type: ignore[arg-type]

        chk._record = record_once_broken  # type: ignore[method-assign,assignment]
        chk.start()
        await until(lambda: crashed, 2)
        await until(lambda: chk.health.attempts >= 2, 3)  # running again
        server.close()
        await server.wait_closed()
        await until(lambda: not chk.up, 3)
        chk.stop()
        await chk.wait_closed()
        return changes

    assert run(go()) == 1
    text = [r.getMessage() for r in caplog.records]
    assert any("checker crashed (a bug)" in m for m in text)
    assert any("on_change raised (a bug)" in m for m in text)


def test_status_document() -> None:
    chk = make("HTTP_GET", 8080, connect_timeout=2, retry=1, delay_before_retry=3, url=(Url("/"),))
    st = chk.status()
    assert st == {
        "state": "UP",
        "checker": "HTTP_GET",
        "target": "127.0.0.1:8080",
        "last_result": None,
        "detail": None,
        "failures": 0,
        "attempts_per_cycle": 2,
        "attempts": 0,
        "checking": False,
        "last_change": None,
        "next_attempt_in": None,
        "down_within": 0.3 + 2 * 2 + 3,
    }


def test_a_real_server_without_checker_is_refused() -> None:
    vs = VirtualServer(ip_address("192.0.2.10"), 80)
    with pytest.raises(ValueError):
        RealServerChecker(vs, RealServer(LOCAL, 80), "nobody", lambda: None)
