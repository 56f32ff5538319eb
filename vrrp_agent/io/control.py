"""The control socket: `vrrp-agent status` asks the running agent here.

Protocol: the client sends one line (a command word), the agent answers one
JSON document and closes. Root-only (0600): status shows peers and counters.
The commands that change the node (`drain`, `undrain`) also check the peer's
uid (SO_PEERCRED), so a socket made reachable to others still answers only
`status` to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from vrrp_agent.io.client_limit import at_most
from vrrp_agent.io.log_limit import LogLimiter

if TYPE_CHECKING:
    from vrrp_agent.config import Config

log = logging.getLogger("vrrp_agent")

COMMANDS = ("status", "drain", "undrain")
# Commands only a peer with uid 0 may give (the others get an error).
ROOT_COMMANDS = frozenset({"drain", "undrain"})
Answer = Callable[[], dict[str, object]]
MAX_CLIENTS = 16  # `status` from a few terminals and a monitoring poller
MAX_LINE = 64 * 1024  # asyncio's default stream limit: a command is one short word
IO_TIMEOUT = 5.0  # to send the request, and to take the answer
_limited = LogLimiter(log)


class ControlSocketError(OSError):
    """The control socket's path is taken by something that is not a socket."""


async def serve(
    path: str, status: Answer, commands: Mapping[str, Answer] | None = None
) -> asyncio.AbstractServer:
    """Listen on `path`: `status` answers the status command, `commands` the
    root-only ones (a command without an entry there is unknown)."""
    actions = dict(commands or {})
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    _refuse_non_socket(path)
    remove(path)  # a stale socket from a crashed run

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await _answer(reader, status, actions, _peer_uid(writer))
            writer.write(json.dumps(answer).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), timeout=IO_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):  # asyncio's: not the builtin before 3.11
            pass

    guarded = at_most(MAX_CLIENTS, "control socket", _limited, handle)
    old_umask = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(guarded, path, limit=MAX_LINE)
    finally:
        os.umask(old_umask)


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The uid of the client process (None: the kernel would not say)."""
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    return int(struct.unpack("3i", creds)[1])


async def _answer(
    reader: asyncio.StreamReader,
    status: Answer,
    commands: Mapping[str, Answer],
    uid: int | None,
) -> dict[str, object]:
    try:
        line = await asyncio.wait_for(reader.readline(), timeout=IO_TIMEOUT)
    except ValueError:  # asyncio: the line is over the reader's limit
        _limited.warning("long", "control socket: a request line over %d bytes; refused", MAX_LINE)
        return {"error": f"request line longer than {MAX_LINE} bytes"}
    cmd = line.decode(errors="replace").strip() or "status"
    if cmd == "status":
        return status()
    if cmd in commands:
        if uid != 0:
            log.warning("control socket: %s refused, peer uid %s is not root", cmd, uid)
            return {"error": f"{cmd} needs root (peer uid {uid})"}
        return commands[cmd]()
    return {"error": f"unknown command {cmd[:64]!r}; known: {', '.join(COMMANDS)}"}


async def move(
    server: asyncio.AbstractServer | None, old_path: str, new: Config,
    status: Answer, commands: Mapping[str, Answer] | None = None,
) -> asyncio.AbstractServer | None:  # fmt: skip
    """A reload that names another control_socket: listen there first, so a
    bad path costs nothing and the old socket keeps answering."""
    try:
        fresh = await serve(new.global_defs.control_socket, status, commands)
    except OSError as err:
        log.error("reload: %s; still listening on %s", err, old_path)
        return server
    if server is not None:
        server.close()
        remove(old_path)
    return fresh


def path_of(server: asyncio.AbstractServer) -> str:
    """The path a unix server listens on, whatever the configuration says now."""
    return str(server.sockets[0].getsockname()) if server.sockets else ""


def remove(path: str) -> None:
    """Remove our (or a crashed run's) socket at `path`, and nothing else: a
    typo in control_socket must never delete somebody's file."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def _refuse_non_socket(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ControlSocketError(f"control_socket {path} exists and is not a socket")


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
