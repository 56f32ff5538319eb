"""The /metrics HTTP server on 127.0.0.1: the answers a scraper and a
careless client get, the bounds (size, time, clients), busy addresses at start
and the rebinding on reload."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vrrp_agent.config.model import ListenAddress
from vrrp_agent.io import metrics_server

DOC: dict[str, Any] = {"instances": {"VI_1": {"state": "MASTER", "interface": "eth0",
                                               "virtual_router_id": 51,
                                               "virtual_ipaddress": ["10.0.0.100/32"]}}}  # fmt: skip
ANY = ListenAddress("127.0.0.1", 0)  # port 0: the kernel picks one (validate never allows it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_of(server: asyncio.AbstractServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def run(body: Callable[[asyncio.AbstractServer], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = await metrics_server.serve(ANY, lambda: DOC)
        try:
            return await body(server)
        finally:
            server.close()

    return asyncio.run(main())


def split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


def test_get_metrics() -> None:
    answer = run(lambda s: ask(port_of(s), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
    status, headers, body = split(answer)
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert int(headers["Content-Length"]) == len(body)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (sample,) = fams["keepalived_vrrp_state"].samples
    assert sample.value == 2 and sample.labels["ip_address"] == "10.0.0.100"


def test_http10_query_string_and_head() -> None:
    async def body(s: asyncio.AbstractServer) -> tuple[bytes, bytes]:
        return (await ask(port_of(s), b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
                await ask(port_of(s), b"HEAD /metrics HTTP/1.1\r\n\r\n"))  # fmt: skip

    get, head = run(body)
    assert split(get)[0] == "HTTP/1.1 200 OK"
    status, headers, rest = split(head)
    assert status == "HTTP/1.1 200 OK" and rest == b"" and int(headers["Content-Length"]) > 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
         "HTTP/1.1 431 Request Header Fields Too Large"),
    ],
)  # fmt: skip
def test_other_requests(request_bytes: bytes, status: str) -> None:
    answer = run(lambda s: ask(port_of(s), request_bytes))
    assert split(answer)[0] == status
    if "405" in status:
        assert split(answer)[1]["Allow"] == "GET, HEAD"


def test_slow_and_surplus_clients_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_server, "IO_TIMEOUT", 0.2)
    monkeypatch.setattr(metrics_server, "MAX_CLIENTS", 2)

    async def body(s: asyncio.AbstractServer) -> tuple[list[bytes], bytes, bytes]:
        port = port_of(s)
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        # The third idle one is over the cap: closed at once.
        third = await asyncio.wait_for(idle[2][0].read(), 1)
        # The first two are cut off after the read timeout, unanswered.
        cut = [await asyncio.wait_for(r.read(), 1) for r, _ in idle[:2]]
        for _, w in idle:
            w.close()
        # Afterwards a scrape is answered again.
        return cut, third, await ask(port, b"GET /metrics HTTP/1.1\r\n\r\n")

    cut, third, after = run(body)
    assert cut == [b"", b""] and third == b""
    assert split(after)[0] == "HTTP/1.1 200 OK"


def test_a_busy_address_names_the_key_and_the_address() -> None:
    async def main() -> str:
        held = await metrics_server.serve(ANY, lambda: DOC)
        busy = ListenAddress("127.0.0.1", port_of(held))
        try:
            with pytest.raises(metrics_server.MetricsListenError) as info:
                await metrics_server.serve(busy, lambda: DOC)
            return str(info.value)
        finally:
            held.close()

    text = asyncio.run(main())
    assert text.startswith("global_defs.metrics_listen: cannot listen on 127.0.0.1:")
    assert text.endswith(": the address is in use")
    assert "\n" not in text


def test_an_address_not_on_this_host() -> None:
    with pytest.raises(metrics_server.MetricsListenError, match="192.0.2.77:9165: no interface"):
        asyncio.run(metrics_server.serve(ListenAddress("192.0.2.77", 9165), lambda: DOC))


def test_reload_rebinds_and_a_failure_keeps_the_old_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = ListenAddress("127.0.0.1", free_port()), ListenAddress("127.0.0.1", free_port())

    async def main() -> None:
        server = await metrics_server.serve(first, lambda: DOC)
        moved = await metrics_server.move(server, first, second, lambda: DOC)
        assert moved is not server and port_of(moved) == second.port
        assert split(await ask(second.port, b"GET /metrics HTTP/1.1\r\n\r\n"))[0].endswith("200 OK")
        with pytest.raises(OSError):
            await ask(first.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        # An address that cannot be had: the old listener stays and answers.
        kept = await metrics_server.move(
            moved, second, ListenAddress("192.0.2.77", 9165), lambda: DOC
        )
        assert kept is moved
        assert split(await ask(second.port, b"GET /metrics HTTP/1.1\r\n\r\n"))[0].endswith("200 OK")
        # Same port, another address of the host: the old one must go first.
        wildcard = ListenAddress("0.0.0.0", second.port)
        again = await metrics_server.move(kept, second, wildcard, lambda: DOC)
        assert again is not None and again.sockets[0].getsockname()[0] == "0.0.0.0"
        # Removed from the configuration: closed.
        assert await metrics_server.move(again, wildcard, None, lambda: DOC) is None
        with pytest.raises(OSError):
            await ask(second.port, b"GET /metrics HTTP/1.1\r\n\r\n")

    with caplog.at_level(logging.ERROR, logger="vrrp_agent"):
        asyncio.run(main())
    assert "still serving 127.0.0.1:" in caplog.text
    assert "global_defs.metrics_listen: cannot listen on 192.0.2.77:9165" in caplog.text
