"""The control socket against hostile or careless clients: a flood of idle
connections, a request line over 64 KiB, a reader that goes away
(`vrrp-agent status | head -1`). Before: every idle connection held a
descriptor for 5 s with no cap (a flood could use up the agent's), the long
line ended in an asyncio traceback, the closed pipe in a BrokenPipeError
traceback and exit 1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vrrp_agent.io import control


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "agent.sock")


def test_idle_clients_hold_at_most_the_cap(path: str) -> None:
    async def flood() -> tuple[int, dict[str, object]]:
        server = await control.serve(path, lambda: {"ok": True})
        before = fds()
        clients = []
        for _ in range(60):  # within the listen backlog, so every connect succeeds
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            clients.append(s)
        await asyncio.sleep(0.5)  # every connection accepted and handled by now
        held = fds() - before - len(clients)
        for s in clients:
            s.close()
        await asyncio.sleep(0.3)  # the held ones see EOF and finish
        answer = await asyncio.to_thread(control.request, path)
        server.close()
        await server.wait_closed()
        return held, answer

    held, answer = asyncio.run(flood())
    assert held <= control.MAX_CLIENTS, f"{held} server-side descriptors for 60 idle clients"
    assert answer == {"ok": True}


def test_a_client_that_sends_nothing_is_dropped_after_the_timeout(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "IO_TIMEOUT", 0.2)

    async def idle() -> bytes:
        server = await control.serve(path, dict)
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            return await asyncio.wait_for(reader.read(), timeout=3)  # EOF: closed by the agent
        finally:
            writer.close()
            server.close()

    assert asyncio.run(idle()) == b""


def test_a_line_over_64_kib_gets_a_one_line_error_and_no_traceback(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def long_line() -> dict[str, object]:
        server = await control.serve(path, dict)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"s" * (70 * 1024) + b"\n")
        answer = json.loads(await asyncio.wait_for(reader.read(), timeout=3))
        writer.close()
        server.close()
        return answer

    with caplog.at_level(logging.DEBUG):
        answer = asyncio.run(long_line())
    assert answer == {"error": "request line longer than 65536 bytes"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "control socket: a request line over 65536 bytes; refused"
    ]
    assert not any(r.exc_info for r in caplog.records)


@pytest.fixture
def big_agent(path: str, tmp_path: Path) -> Iterator[Path]:
    """A control socket answering with a status far larger than a pipe holds."""
    loop = asyncio.new_event_loop()
    status = {"instances": {}, "note": ["x" * 100] * 5000}
    server = loop.run_until_complete(control.serve(path, lambda: status))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cfg = tmp_path / "agent.yml"
    cfg.write_text(f"global_defs: {{control_socket: {path}}}\nvrrp_instances: {{}}\n")
    yield cfg
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_status_into_head_exits_quietly(big_agent: Path) -> None:
    out = subprocess.run(
        ["bash", "-c", '"$0" -m vrrp_agent.cli status --json -c "$1" | head -1;'
         ' echo "rc=${PIPESTATUS[0]}" >&2', sys.executable, str(big_agent)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.stdout == "{\n"
    # Only the note that the file has problems (it names no instance), then rc.
    assert out.stderr.splitlines()[-1] == "rc=0", out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def _ask(path: str, commands: dict[str, control.Answer], *lines: str) -> list[dict[str, object]]:
    async def ask() -> list[dict[str, object]]:
        server = await control.serve(path, lambda: {"status": True}, commands)
        try:
            return [await asyncio.to_thread(control.request, path, line) for line in lines]
        finally:
            server.close()

    return asyncio.run(ask())


def test_drain_and_undrain_run_for_root_and_status_stays_for_everyone(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    commands: dict[str, control.Answer] = {
        "drain": lambda: calls.append("drain") or {"drained": True},
        "undrain": lambda: calls.append("undrain") or {"drained": False},
    }
    monkeypatch.setattr(control, "_peer_uid", lambda writer: 0)
    assert _ask(path, commands, "drain", "undrain", "status") == [
        {"drained": True},
        {"drained": False},
        {"status": True},
    ]
    assert calls == ["drain", "undrain"]


def test_drain_from_a_non_root_peer_is_refused_and_runs_nothing(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    commands: dict[str, control.Answer] = {"drain": lambda: calls.append("drain") or {}}
    monkeypatch.setattr(control, "_peer_uid", lambda writer: 65534)
    with caplog.at_level(logging.WARNING):
        answers = _ask(path, commands, "drain", "status")
    assert answers == [{"error": "drain needs root (peer uid 65534)"}, {"status": True}]
    assert calls == []
    assert "drain refused, peer uid 65534 is not root" in caplog.text


def test_the_peer_uid_is_read_from_the_socket(path: str) -> None:
    seen: list[int | None] = []

    async def ask() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(control._peer_uid(writer))
            writer.close()

        server = await asyncio.start_unix_server(handle, path)
        _, writer = await asyncio.open_unix_connection(path)
        await asyncio.sleep(0.1)
        writer.close()
        server.close()

    asyncio.run(ask())
    assert seen == [os.getuid()]
