"""bench/starvation.py: what counts as a spurious transition, and the verdict."""

from __future__ import annotations

import os

from bench.recorder import Event
from bench.starvation import policy_name, spurious, verdict


def state(t: float, host: str, st: str) -> Event:
    return Event(t, "state", host, {"type": "INSTANCE", "name": "VI_1", "state": st})


def test_only_state_changes_inside_the_window_count() -> None:
    events = [
        state(0.5, "n1", "MASTER"),  # the election, before the window
        state(1.5, "n2", "MASTER"),
        state(1.6, "n1", "BACKUP"),
        Event(1.7, "state", "n1", {"name": "VI_1", "state": "MASTER_RX_LOWER_PRI"}),
        Event(1.8, "advert", "n1", {"vrid": 1, "priority": 200}),
        state(2.5, "n2", "BACKUP"),  # after the window
    ]
    assert spurious(events, 1.0, 2.0) == {"n2": 1, "n1": 1}
    assert spurious(events, 3.0, 4.0) == {}


def test_verdict_needs_zero_and_never_more_than_keepalived() -> None:
    assert verdict(0, 5) == "met (none)"
    assert verdict(0, 0) == "met (none)"
    assert verdict(2, 3).startswith("not met: 2, though no more")
    assert verdict(4, 3).startswith("not met: 4, more than")


def test_policy_name_reads_the_reset_on_fork_flag() -> None:
    assert policy_name(os.SCHED_OTHER) == "SCHED_OTHER"
    assert policy_name(os.SCHED_RR | 0x40000000) == "SCHED_RR (reset on fork)"
