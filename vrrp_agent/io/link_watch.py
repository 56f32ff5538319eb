"""When to look at the links: at once on a netlink link event, and on a
steady poll as the fallback (a lost event, and track files, which send none)."""

from __future__ import annotations

import asyncio
from typing import Callable

from vrrp_agent.io.link_monitor import LinkMonitor


class LinkWatch:
    """Calls `look()` on every link event (or after events were lost) and every
    `interval` seconds. The monitor is subscribed on construction, before the
    caller's first read of the links, so no change can fall in between."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, look: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.interval = interval
        self.look = look
        self.monitor = LinkMonitor()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._timer = self.loop.call_later(self.interval, self._on_timer)
        self.loop.add_reader(self.monitor.fileno(), self._on_events)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.loop.remove_reader(self.monitor.fileno())
        self.monitor.close()

    def _on_timer(self) -> None:
        try:
            self.look()
        finally:
            # Re-armed whatever happens: a bug must not end link tracking.
            self._timer = self.loop.call_later(self.interval, self._on_timer)

    def _on_events(self) -> None:
        # Which link changed does not matter: the caller reads them all, so a
        # master whose link drops releases its VIPs at once, as keepalived does.
        if self.monitor.read() or self.monitor.resync:
            self.look()
