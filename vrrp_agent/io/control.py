"""The control socket: `vrrp-agent status` asks the running agent here.

Protocol: the client sends one line (a command word), the agent answers one
JSON document and closes. Root-only (0600): status shows peers and counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable

COMMANDS = ("status",)


async def serve(path: str, status: Callable[[], dict[str, object]]) -> asyncio.AbstractServer:
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    remove(path)  # a stale socket from a crashed run

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            cmd = line.decode(errors="replace").strip() or "status"
            if cmd == "status":
                answer: dict[str, object] = status()
            else:
                answer = {"error": f"unknown command {cmd!r}; known: {', '.join(COMMANDS)}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):  # asyncio's: not the builtin before 3.11
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(handle, path)
    finally:
        os.umask(old_umask)


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def request(path: str, command: str = "status", timeout: float = 5.0) -> dict[str, object]:
    """Client side, blocking. Raises OSError when no agent listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks))
    if not isinstance(answer, dict):
        raise ValueError("the agent answered something other than a JSON object")
    return answer
