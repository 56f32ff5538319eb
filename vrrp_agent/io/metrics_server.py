"""GET /metrics over HTTP, on the agent's own event loop.

No thread and no process of its own: a scrape renders the status document
between two events, so it never sees a half-updated state, and it costs the
protocol nothing while nobody asks. The HTTP is the least a Prometheus
scraper needs (one request per connection, HTTP/1.0 or 1.1, GET or HEAD),
bounded in size, time and clients so that a slow or hostile client can
neither block the loop nor hold descriptors the VRRP work needs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from vrrp_agent.config.model import ListenAddress
from vrrp_agent.io.client_limit import at_most
from vrrp_agent.io.instance_port import StartupError
from vrrp_agent.io.log_limit import LogLimiter

log = logging.getLogger("vrrp_agent")

KEY = "global_defs.metrics_listen"
PATH = "/metrics"
MAX_CLIENTS = 16  # a few Prometheus servers and someone with curl
MAX_HEAD = 8 * 1024  # request line and headers; a scrape sends a few hundred bytes
IO_TIMEOUT = 5.0  # to send the request, and to take the answer
# The classic text format, as keepalived-exporter's Go client answers. Newer
# prometheus-client releases call their CONTENT_TYPE_LATEST 1.0.0, which only
# differs for names outside [a-zA-Z_:][a-zA-Z0-9_:]*, and ours are all inside.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_limited = LogLimiter(log)

Status = Callable[[], Mapping[str, Any]]


class MetricsListenError(StartupError):
    """metrics_listen cannot be listened on (busy, not ours, not allowed)."""


async def serve(addr: ListenAddress, status: Status) -> asyncio.AbstractServer:
    """Listen on `addr`; raises MetricsListenError naming the key and the address."""
    # Imported here: prometheus_client costs ~50 ms of start-up, which an
    # agent without metrics_listen should not pay.
    from vrrp_agent.metrics import render

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=IO_TIMEOUT)
            writer.write(respond(head, lambda: render(status())))
            await asyncio.wait_for(writer.drain(), timeout=IO_TIMEOUT)
        except asyncio.LimitOverrunError:
            writer.write(_response(431, b"request header fields too large\n"))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # gone or too slow: nothing to answer

    try:
        sock = _bound(addr)
    except OSError as err:
        why = {errno.EADDRINUSE: "the address is in use",
               errno.EADDRNOTAVAIL: "no interface has this address"}.get(
                   err.errno or 0, err.strerror or str(err))  # fmt: skip
        raise MetricsListenError(f"{KEY}: cannot listen on {addr}: {why}") from err
    # limit bounds readuntil: a header block past it is refused, not buffered.
    guarded = at_most(MAX_CLIENTS, "metrics", _limited, handle)
    server = await asyncio.start_server(guarded, sock=sock, limit=MAX_HEAD)
    log.info("metrics: serving http://%s%s", addr, PATH)
    return server


def _bound(addr: ListenAddress) -> socket.socket:
    """The listening socket, bound here rather than by asyncio: Python 3.13's
    create_server reports a failed bind as "could not bind on any address",
    without the errno that tells a busy port from a foreign address."""
    family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # [::] means IPv6 only, as written; 0.0.0.0 is the IPv4 one.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((addr.host, addr.port))
        sock.listen(MAX_CLIENTS)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def respond(head: bytes, render: Callable[[], bytes]) -> bytes:
    """The whole response to one request head (request line and headers)."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return _response(400, b"bad request\n")
    method, target, _ = parts
    if method not in ("GET", "HEAD"):
        return _response(405, b"method not allowed\n", [("Allow", "GET, HEAD")])
    if target.split("?", 1)[0] != PATH:
        return _response(404, b"not found: try /metrics\n")
    body = render()
    return _response(200, body, content_type=CONTENT_TYPE, head_only=method == "HEAD")


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large"}  # fmt: skip


def _response(
    code: int,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head_only: bool = False,
) -> bytes:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("Connection", "close"), *(extra or [])]  # fmt: skip
    lines = [f"HTTP/1.1 {code} {_REASONS[code]}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head_only else body)


def close(server: asyncio.AbstractServer | None) -> None:
    if server is not None:
        server.close()


async def move(
    server: asyncio.AbstractServer | None,
    old: ListenAddress | None,
    new: ListenAddress | None,
    status: Status,
) -> asyncio.AbstractServer | None:
    """A reload that changes metrics_listen rebinds. The new address is
    listened on before the old one is let go, so a bad address costs nothing:
    the old listener stays, the error is logged, the VIPs never notice. The
    one exception, the same port on another address of the same family
    (0.0.0.0:9165 to 10.0.0.1:9165), must let the old one go first, and takes
    it back if the new one fails."""
    if new is None:
        close(server)
        if old is not None:
            log.info("reload: no metrics_listen any more; %s closed", old)
        return None
    try:
        fresh = await serve(new, status)
    except MetricsListenError as err:
        if server is None or old is None or old.port != new.port:
            log.error("reload: %s; %s", err, f"still serving {old}" if server else "not serving")
            return server
        # close() shuts the listening socket at once; wait_closed() would also
        # wait for the clients still connected (up to IO_TIMEOUT), for nothing.
        server.close()
        try:
            fresh = await serve(new, status)
        except MetricsListenError as again:
            log.error("reload: %s; back on %s", again, old)
            try:
                return await serve(old, status)
            except MetricsListenError as lost:
                log.error("reload: %s; /metrics is not served", lost)
                return None
    close(server)
    return fresh
