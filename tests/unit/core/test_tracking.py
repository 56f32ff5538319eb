"""track_script: fall/rise counting, weight rules, what the router does with
them, and the script runner against real (tiny, local) processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.core.sim import Segment, params
from vrrp_agent.config.model import Script, TrackRef
from vrrp_agent.core import SendAdvert, State
from vrrp_agent.core.faults import FaultSource
from vrrp_agent.core.timers import master_down_interval
from vrrp_agent.core.tracking import (
    FileReading,
    LinkState,
    ScriptState,
    ScriptTracker,
    TrackEffect,
    combine,
    effective_weight,
    fault_key,
    file_effect,
    iface_effect,
    parse_file_value,
    track_effect,
)
from vrrp_agent.io.iface import link_state
from vrrp_agent.io.scripts import ScriptRunner, resolve_user, run_identity
from vrrp_agent.io.track_files import read_track_file

UP, DOWN = ScriptState.UP, ScriptState.DOWN


# ------------------------------------------------------------------ tracker


def feed(t: ScriptTracker, results: str) -> str:
    """Feed 'o'/'x' results; return the state after each as 'U'/'D'."""
    out = ""
    for ch in results:
        t.record(ch == "o")
        out += t.state.value[0]
    return out


def test_tracker_starts_up_with_no_counts() -> None:
    t = ScriptTracker(fall=2, rise=3)
    assert t.state is UP and t.up
    assert (t.failures, t.successes) == (0, 0)


@pytest.mark.parametrize(
    ("fall", "rise", "results", "states"),
    [
        (1, 1, "xoxo", "DUDU"),
        (2, 1, "xoxxo", "UUUDU"),  # a success in between resets the failure count
        (3, 1, "xxxo", "UUDU"),
        (2, 2, "xxoxoo", "UDDDDU"),  # a failure in between resets the success count
        (1, 3, "xooxooo", "DDDDDDU"),
        (2, 2, "oooo", "UUUU"),  # successes while UP change nothing
        (2, 2, "xxxxxx", "UDDDDD"),  # failures while DOWN change nothing
    ],
)
def test_fall_and_rise_sequences(fall: int, rise: int, results: str, states: str) -> None:
    assert feed(ScriptTracker(fall=fall, rise=rise), results) == states


def test_record_reports_exactly_the_transitions() -> None:
    t = ScriptTracker(fall=2, rise=2)
    changed = [t.record(ok) for ok in (False, False, False, True, True, True, False)]
    assert changed == [False, True, False, False, True, False, False]


def test_counts_are_consecutive_and_one_is_always_zero() -> None:
    t = ScriptTracker(fall=5, rise=5)
    for ok in (False, False, False):
        t.record(ok)
    assert (t.failures, t.successes) == (3, 0)
    t.record(True)
    assert (t.failures, t.successes) == (0, 1)
    t.record(True)
    assert (t.failures, t.successes) == (0, 2)


def test_down_state_reports_the_failures_that_caused_it() -> None:
    t = ScriptTracker(fall=2, rise=1)
    t.record(False)
    assert t.record(False)
    assert t.failures == 2  # what "DOWN after 2 failures" is logged from


@pytest.mark.parametrize(("fall", "rise"), [(0, 1), (1, 0)])
def test_fall_and_rise_must_be_positive(fall: int, rise: int) -> None:
    with pytest.raises(ValueError):
        ScriptTracker(fall=fall, rise=rise)


# ------------------------------------------------------------------ weights


def test_ref_weight_overrides_the_scripts_weight_even_when_zero() -> None:
    assert effective_weight(TrackRef("a"), -20) == -20
    assert effective_weight(TrackRef("a", -30), -20) == -30
    assert effective_weight(TrackRef("a", 0), -20) == 0
    assert effective_weight(TrackRef("a", 10), 0) == 10


@pytest.mark.parametrize(
    ("weight", "state", "delta"),
    [
        (-60, UP, 0),
        (-60, DOWN, -60),
        (25, UP, 25),
        (25, DOWN, 0),
    ],
)
def test_weight_sign_decides_when_it_counts(weight: int, state: ScriptState, delta: int) -> None:
    effect = track_effect([TrackRef("chk")], {"chk": weight}, {"chk": state})
    assert effect == TrackEffect(delta, {})


def test_weight_zero_is_a_fault_while_down_and_cleared_while_up() -> None:
    down = track_effect([TrackRef("chk")], {"chk": 0}, {"chk": DOWN})
    assert down.delta == 0
    assert down.faults == {"script:chk": "vrrp_script chk failed"}
    up = track_effect([TrackRef("chk")], {"chk": 0}, {"chk": UP})
    assert up.faults == {"script:chk": None}  # listed, so the caller can clear it
    assert fault_key("chk").source is FaultSource.SCRIPT


def test_effects_of_several_scripts_add_up() -> None:
    refs = [TrackRef("a"), TrackRef("b"), TrackRef("c", weight=-5), TrackRef("d"), TrackRef("e")]
    weights = {"a": -20, "b": 10, "c": 50, "d": 0, "e": 7}
    states = {"a": DOWN, "b": UP, "c": DOWN, "d": DOWN, "e": DOWN}
    effect = track_effect(refs, weights, states)
    assert effect.delta == -20 + 10 - 5  # c's ref weight wins; e is DOWN with w > 0
    assert effect.faults == {"script:d": "vrrp_script d failed"}


def test_only_the_instances_own_refs_count_and_unknown_names_are_ignored() -> None:
    weights = {"a": -20, "b": -30}
    states = {"a": DOWN, "b": DOWN}
    assert track_effect([TrackRef("a")], weights, states).delta == -20
    assert track_effect([TrackRef("zz")], weights, states) == TrackEffect(0, {})
    assert track_effect([], weights, states) == TrackEffect(0, {})


# ---------------------------------------------------------- track_interface

L_UP, L_DOWN, L_GONE = LinkState.UP, LinkState.DOWN, LinkState.GONE


@pytest.mark.parametrize(
    ("weight", "state", "delta", "fault"),
    [
        # keepalived 2.x: no weight (or 0) means FAULT while not up ...
        (None, L_UP, 0, None),
        (None, L_DOWN, 0, "tracked interface eth1 is down"),
        (0, L_GONE, 0, "tracked interface eth1 is gone"),
        # ... a positive weight counts while up, a negative one while down.
        (10, L_UP, 10, "-"),
        (10, L_DOWN, 0, "-"),
        (-30, L_UP, 0, "-"),
        (-30, L_DOWN, -30, "-"),
        (-30, L_GONE, -30, "-"),
    ],
)
def test_track_interface_weights(
    weight: int | None, state: LinkState, delta: int, fault: str | None
) -> None:
    effect = iface_effect([TrackRef("eth1", weight)], {"eth1": state})
    assert effect.delta == delta
    if fault == "-":  # weighted: never a fault
        assert effect.faults == {}
    else:
        assert effect.faults == {"iface:eth1": fault}


def test_an_interface_nobody_read_counts_as_gone() -> None:
    effect = iface_effect([TrackRef("eth9")], {})
    assert effect.faults == {"iface:eth9": "tracked interface eth9 is gone"}


def test_link_state_reads_the_kernel() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert link_state(sock, "lo") is L_UP
        assert link_state(sock, "nosuchif0") is L_GONE


# --------------------------------------------------------------- track_file


@pytest.mark.parametrize(
    ("text", "value", "note"),
    [
        ("", 0, None),
        ("\n", 0, None),
        ("5\n", 5, None),
        ("  -7  ", -7, None),
        ("+4", 4, None),
        # C's strtol(text, NULL, 0), as keepalived reads it, with a note for the log:
        ("0x10", 16, "'0x10' is hexadecimal for 16"),
        ("010", 8, "'010' is octal for 8"),
        ("12abc", 12, "only the leading '12' of '12abc' is read"),
        ("3.7", 3, "only the leading '3' of '3.7' is read"),
        ("abc", 0, "'abc' is not a number; it counts as 0"),
        ("999", 254, "999 is clamped to 254"),
        ("-999", -254, "-999 is clamped to -254"),
    ],
)
def test_file_value_is_read_like_keepalived(text: str, value: int, note: str | None) -> None:
    assert parse_file_value(text) == (value, note)


@pytest.mark.parametrize(
    ("weight", "value", "delta", "fault"),
    [
        # No weight: keepalived's track_file default of 1, value added as is.
        (None, 0, 0, None),
        (None, -40, -40, None),
        (None, 30, 30, None),
        (-2, 30, -60, None),
        # Weight 0: any non-zero value is a FAULT, 0 is fine.
        (0, 0, 0, None),
        (0, 1, 0, "track_file /run/f holds 1"),
        (0, -3, 0, "track_file /run/f holds -3"),
        # Weighted results are clamped to -254..253; -254 means FAULT instead.
        (10, 200, 253, None),
        (-1, 253, -253, None),
        (-1, 254, 0, "track_file /run/f holds 254 (x weight -1 <= -254)"),
        (254, -1, 0, "track_file /run/f holds -1 (x weight 254 <= -254)"),
    ],
)
def test_track_file_weights(weight: int | None, value: int, delta: int, fault: str | None) -> None:
    effect = file_effect([TrackRef("/run/f", weight)], {"/run/f": value})
    assert effect == TrackEffect(delta, {"file:/run/f": fault})


def test_a_file_nobody_read_counts_as_zero() -> None:
    assert file_effect([TrackRef("/run/f", 0)], {}) == TrackEffect(0, {"file:/run/f": None})


def test_an_emptied_file_is_believed_on_the_second_poll_only() -> None:
    f = FileReading("/run/f")
    assert f.record("7\n") and f.value == 7
    # `echo 0 > f` truncates before it writes: one empty read is not news ...
    assert not f.record("") and f.value == 7
    assert f.record("0\n") and f.value == 0
    # ... but a file that stays empty holds 0.
    f.record("5")
    assert not f.record("")
    assert f.record("") and f.value == 0
    # Empty from the start, or after a missing file: believed at once.
    g = FileReading("/run/g")
    assert not g.record("") and g.value == 0
    g.record(None, "missing")
    assert (g.value, g.note) == (0, "missing; it counts as 0")
    g.record("3")
    assert (g.value, g.note) == (3, None)


def test_missing_file_counts_as_zero_at_once() -> None:
    f = FileReading("/run/f")
    f.record("9")
    assert f.record(None, "missing") and f.value == 0


def test_reading_track_files(tmp_path: Path) -> None:
    (tmp_path / "v").write_text("42\n")
    assert read_track_file(str(tmp_path / "v")) == ("42\n", None)
    assert read_track_file(str(tmp_path / "nope")) == (None, "missing")
    text, why = read_track_file(str(tmp_path))
    assert text is None and why is not None and why.startswith("unreadable")
    # A FIFO with no writer must not block the agent's loop.
    os.mkfifo(tmp_path / "fifo")
    assert read_track_file(str(tmp_path / "fifo")) == ("", None)


# ------------------------------------------------------ all trackers at once


def test_every_kind_of_tracker_adds_to_one_delta_and_one_fault_table() -> None:
    scripts = track_effect(
        [TrackRef("chk"), TrackRef("z")], {"chk": -20, "z": 0}, {"chk": DOWN, "z": UP}
    )
    ifaces = iface_effect([TrackRef("eth1", 15), TrackRef("eth2")], {"eth1": L_UP, "eth2": L_DOWN})
    files = file_effect([TrackRef("/run/f", -3)], {"/run/f": 10})
    total = combine(scripts, ifaces, files)
    assert total.delta == -20 + 15 - 30
    assert total.faults == {
        "script:z": None,
        "iface:eth2": "tracked interface eth2 is down",
        "file:/run/f": None,
    }
    assert combine() == TrackEffect(0, {})


def test_summed_delta_moves_the_master_once() -> None:
    # One set_priority_delta with the sum: a file's +5 and an interface's
    # -60 land together, not one overwriting the other.
    seg = pair()
    a = seg.nodes["A"]
    total = combine(
        iface_effect([TrackRef("eth1", -60)], {"eth1": L_DOWN}),
        file_effect([TrackRef("/run/f")], {"/run/f": 5}),
    )
    sent_before = len(seg.sent)
    seg._apply(a, a.router.set_priority_delta(total.delta, seg.now))
    assert [adv.priority for _, name, adv in seg.sent[sent_before:] if name == "A"] == [95]
    seg.run_until(20)
    assert seg.masters() == ["B"]


# ------------------------------------------- what the router does with them


def pair(p1: int = 150, p2: int = 100) -> Segment:
    seg = Segment()
    seg.add(params("A", p1, "10.0.0.1"))
    seg.add(params("B", p2, "10.0.0.2"))
    seg.start("A")
    seg.start("B")
    seg.run_until(10.5)
    assert seg.masters() == ["A"]
    return seg


def test_master_advertises_a_lowered_priority_at_once_and_the_backup_preempts() -> None:
    seg = pair()
    a = seg.nodes["A"]
    sent_before = len(seg.sent)
    seg._apply(a, a.router.set_priority_delta(-60, seg.now))
    assert [adv.priority for _, name, adv in seg.sent[sent_before:] if name == "A"] == [90]
    t = seg.now
    seg.run_until(20)
    # B drops the lower advert and takes over when its Master_Down runs out.
    assert seg.masters() == ["B"]
    assert seg.became_master_at("B") <= t + master_down_interval(3, 100, 1.0) + 0.01
    # Restoring the priority: A preempts the lower-priority master.
    seg._apply(a, a.router.set_priority_delta(0, seg.now))
    seg.run_until(40)
    assert seg.masters() == ["A"]


def test_unchanged_priority_sends_nothing() -> None:
    seg = pair()
    a = seg.nodes["A"].router
    assert a.set_priority_delta(0, seg.now) == []
    # Clamped: 150 - 200 and 150 - 300 are both priority 1, so no new advert.
    assert len(a.set_priority_delta(-200, seg.now)) == 1
    assert a.set_priority_delta(-300, seg.now) == []


def test_backup_changes_priority_silently() -> None:
    seg = pair()
    b = seg.nodes["B"].router
    assert b.set_priority_delta(-60, seg.now) == []
    assert b.effective_priority == 40


def test_tracking_set_before_start_applies_at_start() -> None:
    # What the agent does for every instance it starts: tell the router first.
    seg = Segment()
    node = seg.add(params("A", 100, "10.0.0.1"))
    r = node.router
    assert r.set_priority_delta(+50, 0.0) == []
    assert r.set_fault("script:chk", "vrrp_script chk failed", 0.0) == []
    assert r.state is State.INIT
    seg.start("A")
    assert r.state is State.FAULT
    # Leaving FAULT waits Master_Down computed with the tracked priority.
    seg._apply(node, r.set_fault("script:chk", None, seg.now))
    assert r.state is State.BACKUP
    assert r.timers["master_down"] == pytest.approx(master_down_interval(3, 150, 1.0))


def test_fault_stays_while_any_fault_key_remains() -> None:
    seg = pair()
    a = seg.nodes["A"]
    seg._apply(a, a.router.set_fault("script:x", "vrrp_script x failed", seg.now))
    seg._apply(a, a.router.set_fault("script:y", "vrrp_script y failed", seg.now))
    seg._apply(a, a.router.set_fault("script:x", None, seg.now))
    assert a.state == "FAULT"
    # No advert from a router in FAULT, whatever its priority does.
    assert a.router.set_priority_delta(-10, seg.now) == []
    seg._apply(a, a.router.set_fault("script:y", None, seg.now))
    assert a.state == "BACKUP"


def test_master_to_fault_sends_priority_zero_only() -> None:
    seg = pair()
    a = seg.nodes["A"].router
    actions = a.set_fault("script:chk", "vrrp_script chk failed", seg.now)
    adverts = [x.advert.priority for x in actions if isinstance(x, SendAdvert)]
    assert adverts == [0]


# ------------------------------------------------------------------ runner
# Real processes, but local and short: /bin/true, /bin/false, sleep.


@pytest.fixture(autouse=True)
def _fresh_child_watcher() -> Iterator[None]:
    # The runner installs a pidfd child watcher bound to the test's loop;
    # leave the default to whatever runs next in this process.
    yield
    if sys.version_info < (3, 12):
        asyncio.set_child_watcher(None)


def runner(cmd: str, user: str = "root", **kw: object) -> tuple[ScriptRunner, list[str]]:
    changes: list[str] = []
    script = Script(name="chk", script=cmd, **kw)  # type: ignore[arg-type]
    return ScriptRunner(script, user, changes.append), changes


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def results(r: ScriptRunner, n: int) -> list[tuple[bool, int | None]]:
    out = []
    for _ in range(n):
        res = await r.run_once()
        r._record(res)
        out.append((res.ok, res.exit))
    return out


def test_exit_status_decides_and_the_state_follows() -> None:
    ok, changes = runner("/bin/true", fall=1)
    assert run(results(ok, 1)) == [(True, 0)]
    bad, changes = runner("/bin/sh -c 'exit 3'", fall=2)
    assert run(results(bad, 2)) == [(False, 3), (False, 3)]
    assert bad.state is DOWN and bad.last_exit == 3
    assert changes == ["chk"]  # one transition, reported once


def test_command_is_not_run_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "made"
    r, _ = runner(f"/bin/echo hi > {marker}")
    assert run(results(r, 1)) == [(True, 0)]
    assert not marker.exists()


def test_missing_program_is_a_failure_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    r, changes = runner("/nonexistent/check --flag", fall=2)
    with caplog.at_level("DEBUG", logger="vrrp_agent"):
        assert run(results(r, 4)) == [(False, None)] * 4
    errors = [m for m in caplog.messages if "cannot execute /nonexistent/check" in m]
    assert len(errors) == 2  # once as the problem, once in the DOWN line
    assert any("DOWN after 2 failures (cannot execute" in m for m in caplog.messages)
    assert r.state is DOWN and changes == ["chk"]


def test_unknown_user_fails_every_run_without_crashing(caplog: pytest.LogCaptureFixture) -> None:
    if os.geteuid() != 0:
        pytest.skip("as non-root the configured user is not used")
    r, _ = runner("/bin/true", user="no-such-user-xyz", fall=1)
    with caplog.at_level("ERROR", logger="vrrp_agent"):
        assert run(results(r, 3)) == [(False, None)] * 3
    assert (
        caplog.messages.count("vrrp_script chk: not run: user 'no-such-user-xyz' does not exist")
        == 1
    )


def test_script_runs_as_the_configured_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    creds = resolve_user("nobody")
    assert creds.uid != 0 and 0 not in creds.groups  # root's groups are dropped
    r, _ = runner("/usr/bin/test -w /root/.", user="nobody")
    assert run(results(r, 1)) == [(False, 1)]
    r, _ = runner("/usr/bin/test -w /root/.", user="root")
    assert run(results(r, 1)) == [(True, 0)]


def test_user_group_form_and_bad_forms() -> None:
    creds = resolve_user("nobody nogroup")
    assert creds.user == "nobody"
    with pytest.raises(LookupError, match="group 'no-such-group-xyz' does not exist"):
        resolve_user("nobody no-such-group-xyz")
    with pytest.raises(LookupError, match="USER \\[GROUP\\]"):
        resolve_user("a b c")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    script = tmp_path / "hang.sh"
    # A background child in the same group, which killing only the first
    # process would leave behind.
    script.write_text(f"#!/bin/sh\n/bin/sleep 600.{marker} &\n/bin/sleep 601.{marker}\n")
    script.chmod(0o755)
    r, _ = runner(str(script), interval=5, timeout=0.3)

    async def go() -> tuple[list[tuple[bool, int | None]], float]:
        start = time.monotonic()
        res = await results(r, 1)
        return res, time.monotonic() - start

    res, took = run(go())  # type: ignore[misc]
    assert res == [(False, None)]
    assert took < 2
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == "", f"leftover processes: {left.stdout}"


def test_runner_keeps_a_cadence_and_stop_kills_a_running_check(tmp_path: Path) -> None:
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"

    async def go() -> tuple[int, int]:
        fast, _ = runner("/bin/true", interval=0.05)
        fast.start()
        await asyncio.sleep(0.5)
        fast.stop()
        await fast.wait_closed()
        runs = fast.tracker.successes
        slow, _ = runner(f"/bin/sleep 602.{marker}", interval=10)
        slow.start()
        await asyncio.sleep(0.2)
        slow.stop()
        await slow.wait_closed()
        return runs, slow.tracker.failures

    runs, _ = run(go())  # type: ignore[misc]
    assert 6 <= runs <= 12  # 0.5 s at 0.05 s: ~10, generous for a loaded machine
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == ""


def test_identity_ignores_the_weight_only() -> None:
    s = Script(name="chk", script="/bin/true", weight=-20)
    same = run_identity(s, "u")
    assert run_identity(Script(name="chk", script="/bin/true", weight=-50), "u") == same
    assert run_identity(Script(name="chk", script="/bin/true", weight=-20, fall=3), "u") != same
    assert run_identity(s, "other") != same  # script_user applies to user-less scripts
    with_user = Script(name="chk", script="/bin/true", user="x")
    assert run_identity(with_user, "u") == run_identity(with_user, "other")
