"""The one polling loop of the lab kit."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    what: str, predicate: Callable[[], bool], timeout: float, step: float = 0.005
) -> float:
    """Poll `predicate` every `step` seconds until it holds; return the seconds
    it took. AssertionError naming `what` once `timeout` has passed."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.2f}s waiting for {what}")
        time.sleep(step)
