"""keepalived's real-server checker timing, on a fake clock (vrrp_agent.lvs.health)."""

from __future__ import annotations

import itertools
from ipaddress import ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrp_agent.config.model import Checker, VirtualServer
from vrrp_agent.lvs.health import CheckTiming, RealServerHealth, RsState, timing

VS = VirtualServer(ip_address("192.0.2.1"), 80, delay_loop=6)


def drive(
    h: RealServerHealth,
    until: float,
    answers: object,
    duration: object = None,
) -> list[tuple[float, float, bool]]:
    """Run attempts from t=0 on until `until`: `answers(start)` says whether
    the attempt starting then succeeds, `duration(start, ok)` how long it takes
    (default: 0 for a success, the whole timeout for a failure). Returns
    (start, end, ok) per attempt."""
    log = []
    now = 0.0
    while True:
        start = h.next_attempt_at(now)
        if start >= until:
            return log
        deadline = h.begin(start)
        ok = answers(start)  # type: ignore[operator]
        took = duration(start, ok) if duration else (0.0 if ok else h.timing.timeout)  # type: ignore[operator]
        end = min(start + took, deadline)
        h.record(ok, end)
        log.append((start, end, ok))
        now = end


# --------------------------------------------------------------- defaults


def test_defaults_follow_keepalived_where_the_config_leaves_none() -> None:
    # config/model.py fills in defaults itself; None only reaches here from
    # hand-made objects, and then keepalived's per-kind defaults apply.
    none = {"connect_timeout": None, "retry": None, "delay_before_retry": None}
    assert timing(VS, Checker("TCP_CHECK", **none)) == CheckTiming(6, 5.0, 1, 1.0)  # type: ignore[arg-type]
    assert timing(VS, Checker("HTTP_GET", **none)) == CheckTiming(6, 5.0, 1, 3.0)  # type: ignore[arg-type]
    assert timing(VS, Checker("SSL_GET", **none)) == CheckTiming(6, 5.0, 1, 3.0)  # type: ignore[arg-type]
    assert timing(VS, Checker("MISC_CHECK", retry=None, delay_before_retry=None)) == CheckTiming(  # type: ignore[arg-type]
        6, 6.0, 0, 1.0
    )


def test_configured_values_win_and_misc_timeout_defaults_to_delay_loop() -> None:
    c = Checker("TCP_CHECK", connect_timeout=2, retry=3, delay_before_retry=0.5)
    assert timing(VS, c) == CheckTiming(6, 2, 3, 0.5)
    assert timing(VS, Checker("MISC_CHECK", misc_path="/x")).timeout == 6
    assert timing(VS, Checker("MISC_CHECK", misc_path="/x", misc_timeout=2.5)).timeout == 2.5
    # keepalived's delay_loop default, through the model's own default
    assert timing(VirtualServer(ip_address("192.0.2.1"), 80), c).delay_loop == 60


@pytest.mark.parametrize(
    "kw",
    [
        {"delay_loop": 0, "timeout": 1, "retry": 0, "delay_before_retry": 0},
        {"delay_loop": 1, "timeout": 0, "retry": 0, "delay_before_retry": 0},
        {"delay_loop": 1, "timeout": 1, "retry": -1, "delay_before_retry": 0},
        {"delay_loop": 1, "timeout": 1, "retry": 0, "delay_before_retry": -1},
    ],
)
def test_nonsense_timing_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CheckTiming(**kw)  # type: ignore[arg-type]


# ------------------------------------------------------------ the schedule


def test_starts_up_and_checks_at_once() -> None:
    h = RealServerHealth(CheckTiming(6, 2, 1, 1))
    assert h.up and h.state is RsState.UP
    assert h.next_attempt_at(100.0) == 100.0
    assert h.last_change is None and h.last_ok is None


def test_successes_repeat_every_delay_loop_after_the_attempt_ended() -> None:
    h = RealServerHealth(CheckTiming(6, 2, 1, 1))
    log = drive(h, 20, lambda t: True, lambda t, ok: 0.5)
    assert [start for start, _, _ in log] == [0, 6.5, 13, 19.5]
    assert h.up and h.failures == 0 and h.attempts == 4


def test_down_only_when_all_retry_plus_one_attempts_of_a_cycle_fail() -> None:
    t = CheckTiming(delay_loop=10, timeout=2, retry=2, delay_before_retry=1)
    h = RealServerHealth(t)
    h.begin(0)
    assert not h.record(False, 2)  # 1st attempt failed
    assert h.next_attempt_at(2) == 3  # retry delay_before_retry after it ended
    h.begin(3)
    assert not h.record(False, 5)
    assert h.failures == 2 and h.up
    assert h.next_attempt_at(5) == 6
    h.begin(6)
    assert h.record(False, 8)  # 3rd of retry+1 = 3: DOWN
    assert not h.up and h.last_change == 8 and h.failures == 3
    assert h.next_attempt_at(8) == 18  # next cycle delay_loop later


def test_a_success_within_the_cycle_resets_the_count() -> None:
    h = RealServerHealth(CheckTiming(delay_loop=10, timeout=2, retry=1, delay_before_retry=1))
    h.begin(0)
    h.record(False, 2)
    h.begin(3)
    assert not h.record(True, 3.1)
    assert h.up and h.failures == 0
    assert h.next_attempt_at(3.1) == pytest.approx(13.1)
    # a new cycle counts from zero again: one failure is not enough
    h.begin(13.1)
    assert not h.record(False, 15.1)
    assert h.up and h.failures == 1


def test_retry_zero_means_one_failed_attempt_is_down() -> None:
    h = RealServerHealth(CheckTiming(delay_loop=5, timeout=1, retry=0, delay_before_retry=9))
    h.begin(0)
    assert h.record(False, 1)
    assert not h.up and h.next_attempt_at(1) == 6  # delay_before_retry unused


def test_down_server_is_not_retried_and_one_success_brings_it_up() -> None:
    h = RealServerHealth(CheckTiming(delay_loop=10, timeout=2, retry=3, delay_before_retry=1))
    for start in (0, 3, 6, 9):
        h.begin(start)
        h.record(False, start + 2)
    assert not h.up
    h.begin(21)
    assert not h.record(False, 23)
    assert h.next_attempt_at(23) == 33  # a full delay_loop, no retry
    assert h.failures == 1  # one attempt per cycle while DOWN
    h.begin(33)
    assert h.record(True, 33.5)  # one success is enough
    assert h.up and h.last_change == 33.5 and h.failures == 0
    assert h.next_attempt_at(33.5) == 43.5


def test_flapping_within_retries_never_goes_down() -> None:
    h = RealServerHealth(CheckTiming(delay_loop=3, timeout=1, retry=1, delay_before_retry=0.5))
    # fails every first attempt of a cycle, answers every retry
    flips = itertools.cycle([False, True])
    log = drive(h, 100, lambda t: next(flips))
    assert h.up and h.last_change is None
    assert [ok for _, _, ok in log[:4]] == [False, True, False, True]
    # a cycle: fail (1 s), retry 0.5 s later, answer, delay_loop 3 s
    assert [start for start, _, _ in log[:4]] == [0, 1.5, 4.5, 6]


def test_record_without_begin_is_a_bug() -> None:
    h = RealServerHealth(CheckTiming(1, 1, 0, 0))
    with pytest.raises(RuntimeError):
        h.record(True, 0)


def test_begin_returns_the_deadline_and_marks_the_attempt_running() -> None:
    h = RealServerHealth(CheckTiming(delay_loop=10, timeout=2.5, retry=1, delay_before_retry=1))
    assert h.begin(7) == 9.5 and h.running_since == 7
    h.record(True, 8)
    assert h.running_since is None


# ---------------------------------------------------------------- bounds


def test_the_issue_formula_holds_for_retry_at_most_one() -> None:
    for retry in (0, 1):
        t = CheckTiming(delay_loop=6, timeout=3, retry=retry, delay_before_retry=3)
        issue = t.delay_loop + (retry + 1) * t.timeout + t.delay_before_retry
        assert t.down_bound <= issue
    t = CheckTiming(delay_loop=6, timeout=3, retry=3, delay_before_retry=3)
    assert t.down_bound == 6 + 4 * 3 + 3 * 3  # the general formula
    assert t.down_bound - (6 + 4 * 3 + 3) == 2 * 3  # (retry-1)*delay_before_retry over


def test_the_bound_is_reached_in_the_worst_case() -> None:
    """Dead right after a success, every attempt running to its deadline."""
    t = CheckTiming(delay_loop=6, timeout=3, retry=3, delay_before_retry=2)
    h = RealServerHealth(t)
    h.begin(0)
    h.record(True, 0.25)  # the last success
    drive_from = 0.25
    now = drive_from
    while h.up:
        start = h.next_attempt_at(now)
        deadline = h.begin(start)
        h.record(False, deadline)
        now = deadline
    assert h.last_change == pytest.approx(drive_from + t.down_bound)


timings = st.builds(
    CheckTiming,
    delay_loop=st.floats(0.1, 100),
    timeout=st.floats(0.01, 30),
    retry=st.integers(0, 6),
    delay_before_retry=st.floats(0, 30),
)


@settings(max_examples=300, deadline=None)
@given(
    t=timings,
    death=st.floats(0, 500),
    fractions=st.lists(st.floats(0, 1), min_size=1, max_size=50),
    answers=st.lists(st.booleans(), min_size=1, max_size=50),
)
def test_every_down_is_within_the_bound_of_the_last_success(
    t: CheckTiming, death: float, fractions: list[float], answers: list[bool]
) -> None:
    """Random answers (flapping included) until `death`, none after; each
    attempt takes anything up to its deadline. Every UP -> DOWN comes after
    retry+1 consecutive failures and within down_bound of the end of the last
    success (or of the start); every DOWN -> UP is a success; and the dead
    server does go DOWN."""
    h = RealServerHealth(t)
    now, i = 0.0, 0
    seen_alive = 0.0  # the first attempt is due at once
    streak = 0  # consecutive failed attempts
    while True:
        start = h.next_attempt_at(now)
        if start > death and not h.up:
            break
        assert start <= death + 2 * t.down_bound, "a dead server never went DOWN"
        deadline = h.begin(start)
        ok = start < death and answers[i % len(answers)]
        end = min(start + fractions[i % len(fractions)] * t.timeout, deadline)
        was_up = h.up
        changed = h.record(ok, end)
        streak = 0 if ok else streak + 1
        if changed and was_up:
            assert streak >= t.retry + 1
            assert end <= seen_alive + t.down_bound + 1e-9
        if changed and not was_up:
            assert ok
        if ok:
            seen_alive = end
        now, i = end, i + 1


@settings(max_examples=300, deadline=None)
@given(t=timings, revival=st.floats(0, 500), fractions=st.lists(st.floats(0, 1), min_size=1))
def test_a_revived_server_is_up_within_the_bound(
    t: CheckTiming, revival: float, fractions: list[float]
) -> None:
    """Dead from the start until `revival`, then answering every attempt
    that starts from then on."""
    h = RealServerHealth(t)
    now, i = 0.0, 0
    while True:
        start = h.next_attempt_at(now)
        deadline = h.begin(start)
        ok = start >= revival
        end = min(start + fractions[i % len(fractions)] * t.timeout, deadline)
        h.record(ok, end)
        now, i = end, i + 1
        if ok:
            break
    assert h.up
    if h.last_change is not None:  # it had gone DOWN: back UP in time
        assert h.last_change <= revival + t.up_bound + 1e-9
