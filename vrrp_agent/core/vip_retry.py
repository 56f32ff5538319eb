"""When to try adding a master's virtual addresses again, and when to give up.

A failed add (the VIP's device is gone, the kernel refuses the address) is
retried from 0.1 s, doubling up to one advertisement interval. A master
that still cannot add its VIPs after one Master_Down_Interval since the
first failure goes to FAULT: by then a backup would have taken over from a
dead master, and a master that serves no VIP is worse than a dead one (it
keeps the backups quiet). One attempt lands exactly at that bound. In FAULT
the same backoff paces the probes that look whether the add has become
possible again.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_DELAY = 0.1


@dataclass
class VipRetry:
    """The failures of one router's VIP adds since the last success."""

    failing_since: float | None = None
    delay: float = FIRST_DELAY
    attempts: int = 0

    def reset(self) -> None:
        self.failing_since = None
        self.delay = FIRST_DELAY
        self.attempts = 0

    def failed(self, now: float, bound: float, cap: float) -> float | None:
        """An add failed at `now`: when to try again, or None to give up
        (failing for `bound` seconds already)."""
        if self.failing_since is None:
            self.failing_since = now
        self.attempts += 1
        give_up_at = self.failing_since + bound
        if now >= give_up_at:
            return None
        return min(now + self._next_delay(cap), give_up_at)

    def next_probe(self, now: float, cap: float) -> float:
        """A probe in FAULT failed (or FAULT was just entered): the next one."""
        self.attempts += 1
        return now + self._next_delay(cap)

    def _next_delay(self, cap: float) -> float:
        delay = min(self.delay, max(cap, FIRST_DELAY))
        self.delay = min(self.delay * 2, max(cap, FIRST_DELAY))
        return delay
