"""At most N clients at once on a stream server (the control socket, /metrics).

Each connection is a descriptor; a flood of them must not use up the ones
the agent needs for its VRRP work. A client past the limit is closed at
once, and said so in the log at most once a minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vrrp_agent.io.log_limit import LogLimiter

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def at_most(limit: int, what: str, limited: LogLimiter, handle: Handler) -> Handler:
    """`handle` for at most `limit` clients at once; every connection is
    closed when `handle` returns, whatever happened in it."""
    clients = 0

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal clients
        if clients >= limit:
            limited.warning("busy", "%s: %d clients already; refusing", what, clients)
            writer.close()
            return
        clients += 1
        try:
            await handle(reader, writer)
        finally:
            clients -= 1
            writer.close()

    return guarded
