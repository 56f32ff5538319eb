"""One log line per condition, not one per occurrence.

When the host runs short of something (descriptors, memory), every poll hits
the same error; a line each time would bury the log and cost the very
resources that are short. The first occurrence is logged at once, then at
most one line per `every` seconds, with how many were not logged in between.
"""

from __future__ import annotations

import logging
import time


class LogLimiter:
    def __init__(self, log: logging.Logger, every: float = 60.0) -> None:
        self.log = log
        self.every = every
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        # The clock read is for the log only; no protocol decision depends on it.
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        quiet = self._quiet.pop(key, 0)
        self._last[key] = now
        if quiet:
            msg += " (and %d more times in the last %.0f s)"
            args = (*args, quiet, now - last if last is not None else 0.0)
        self.log.warning(msg, *args)
