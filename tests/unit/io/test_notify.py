"""Notify hooks and notify_fifo with real processes and real fifos.

Hooks are `/bin/sh -c '...' TAG`: the generic hook's appended arguments
arrive as $1..$4, so each hook can write its tag and arguments to a log file
without helper scripts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import needs
from vrrp_agent.config.model import Instance, SyncGroup
from vrrp_agent.io.notify import Notifier, fifo_line


@pytest.fixture(autouse=True)
def _fresh_child_watcher() -> Iterator[None]:
    # The notifier installs a pidfd child watcher bound to the test's loop.
    yield
    if sys.version_info < (3, 12):
        asyncio.set_child_watcher(None)


def hook(log: Path, tag: str, before: str = "", exit: int = 0) -> str:
    """A command line that appends `TAG ARGS...` to `log`."""
    body = f'{before} echo $0 "$@" >> {shlex.quote(str(log))}; exit {exit}'
    return f"/bin/sh -c {shlex.quote(body)} {tag}"


def inst(log: Path, **kw: str) -> Instance:
    hooks = {
        "notify_master": hook(log, "master"),
        "notify_backup": hook(log, "backup"),
        "notify_fault": hook(log, "fault"),
        "notify_stop": hook(log, "stop"),
        "notify": hook(log, "notify"),
    }
    hooks.update(kw)
    return Instance(name="VI_1", interface="eth0", virtual_router_id=51, **hooks)  # type: ignore[arg-type]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def pgrep(marker: str) -> str:
    return subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout


# ----------------------------------------------------------------- hooks


def test_hooks_run_one_at_a_time_in_transition_order(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    # The first hook is the slowest: run in parallel, it would finish last.
    i = inst(log, notify_master=hook(log, "master", before="sleep 0.3;"))

    async def go() -> None:
        n = Notifier("root", None)
        for state, prio in [("MASTER", 100), ("BACKUP", 90), ("FAULT", 90), ("STOP", 100)]:
            n.instance_changed(i, state, prio)
        await n.drain(10)

    run(go())
    assert lines(log) == [
        "master",  # the state's own hook gets no arguments
        "notify INSTANCE VI_1 MASTER 100",
        "backup",
        "notify INSTANCE VI_1 BACKUP 90",
        "fault",
        "notify INSTANCE VI_1 FAULT 90",
        "stop",
        "notify INSTANCE VI_1 STOP 100",
    ]


def test_only_configured_hooks_run_and_init_is_not_a_transition(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    i = Instance(name="VI_2", interface="eth0", virtual_router_id=52, notify=hook(log, "notify"))

    async def go() -> None:
        n = Notifier("root", None)
        n.instance_changed(i, "INIT", 100)
        n.instance_changed(i, "MASTER", 254)
        await n.drain(10)

    run(go())
    assert lines(log) == ["notify INSTANCE VI_2 MASTER 254"]


def test_group_hooks_get_type_group_and_priority_zero(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    g = SyncGroup(
        name="VG1",
        group=("VI_1", "VI_2"),
        notify_backup=hook(log, "gbackup"),
        notify=hook(log, "gnotify"),
    )

    async def go() -> None:
        n = Notifier("root", None)
        n.group_changed(g, "BACKUP")
        n.group_changed(g, "MASTER")  # no notify_master: only the generic hook
        await n.drain(10)

    run(go())
    assert lines(log) == ["gbackup", "gnotify GROUP VG1 BACKUP 0", "gnotify GROUP VG1 MASTER 0"]


def test_enqueueing_returns_at_once_while_a_hook_runs(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    i = inst(log, notify_master=hook(log, "master", before="sleep 1;"))

    async def go() -> tuple[float, dict, dict]:
        n = Notifier("root", None)
        start = time.monotonic()
        n.instance_changed(i, "MASTER", 100)
        n.instance_changed(i, "BACKUP", 100)
        took = time.monotonic() - start
        await asyncio.sleep(0.3)
        during = n.status()
        await n.drain(10)
        return took, during, n.status()

    took, during, after = run(go())  # type: ignore[misc]
    assert took < 0.05
    # master runs; its generic hook and BACKUP's two wait.
    assert during["queued"] == 3
    assert during["running"]["hook"] == "notify_master"
    assert during["running"]["for"] >= 0.2
    assert after["queued"] == 0 and after["running"] is None
    recent = after["recent"]
    assert [(o["hook"], o["state"], o["exit"]) for o in recent] == [
        ("notify_master", "MASTER", 0),
        ("notify", "MASTER", 0),
        ("notify_backup", "BACKUP", 0),
        ("notify", "BACKUP", 0),
    ]
    assert recent[0]["duration"] >= 1.0


def test_outcomes_are_logged_with_exit_codes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "hooks.log"
    i = inst(
        log,
        notify_master=hook(log, "master", exit=3),
        notify_backup="/nonexistent/hook --flag",
        notify_fault="/bin/echo 'unterminated",
    )

    async def go() -> dict:
        n = Notifier("root", None)
        for state in ("MASTER", "BACKUP", "FAULT", "STOP"):
            n.instance_changed(i, state, 100)
        await n.drain(10)
        return n.status()

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        status = run(go())
    warnings = messages(caplog, logging.WARNING)
    infos = messages(caplog, logging.INFO)
    assert any(
        m.startswith("notify: notify_master INSTANCE VI_1 MASTER: exit 3 (") for m in warnings
    )
    assert any(
        m.startswith("notify: notify_backup INSTANCE VI_1 BACKUP: could not start: [Errno 2]")
        and "/nonexistent/hook" in m
        for m in warnings
    )
    assert any(
        m.startswith("notify: notify_fault INSTANCE VI_1 FAULT: could not start: cannot parse")
        for m in warnings
    )
    assert any(m.startswith("notify: notify_stop INSTANCE VI_1 STOP: exit 0 (") for m in infos)
    assert any(m.startswith("notify: notify INSTANCE VI_1 STOP: exit 0 (") for m in infos)
    # A failing hook stops nothing: every later one ran.
    assert lines(log) == [
        "master",
        "notify INSTANCE VI_1 MASTER 100",
        "notify INSTANCE VI_1 BACKUP 100",
        "notify INSTANCE VI_1 FAULT 100",
        "stop",
        "notify INSTANCE VI_1 STOP 100",
    ]
    exits = {(o["hook"], o["state"]): o["exit"] for o in status["recent"]}  # type: ignore[index]
    assert exits[("notify_master", "MASTER")] == 3
    assert exits[("notify_backup", "BACKUP")] is None
    assert exits[("notify_stop", "STOP")] == 0
    # Counted since start, for /metrics (vrrp_agent_notify_hooks_total{outcome}).
    assert status["outcomes"] == {"ok": 5, "failed": 1, "not_started": 2}


def test_outcome_kinds() -> None:
    from vrrp_agent.io.notify import Job, Outcome

    job = Job("notify", "/bin/true", (), "INSTANCE", "VI_1", "MASTER", "root")
    kinds = [Outcome(job, exit, detail, 0.0).kind for exit, detail in (
        (0, "exit 0"), (1, "exit 1"), (-9, "killed by SIGKILL"),
        (None, "timed out after 30s, killed"), (None, "could not start: no such file"))]  # fmt: skip
    assert kinds == ["ok", "failed", "failed", "timed_out", "not_started"]


def test_hook_killed_by_a_signal_is_reported_so(caplog: pytest.LogCaptureFixture) -> None:
    i = Instance(name="VI_1", interface="eth0", virtual_router_id=51,
                 notify_master="/bin/sh -c 'kill -TERM $$'")  # fmt: skip

    async def go() -> dict:
        n = Notifier("root", None)
        n.instance_changed(i, "MASTER", 100)
        await n.drain(10)
        return n.status()

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        status = run(go())
    assert any("MASTER: killed by SIGTERM (" in m for m in messages(caplog, logging.WARNING))
    assert status["recent"][0]["exit"] == -15  # type: ignore[index]


def test_unknown_script_user_is_not_replaced_by_root(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    needs.root("as non-root the configured user is not used")
    log = tmp_path / "hooks.log"

    async def go() -> None:
        n = Notifier("no-such-user-xyz", None)
        n.instance_changed(inst(log), "MASTER", 100)
        await n.drain(10)

    with caplog.at_level(logging.WARNING, logger="vrrp_agent"):
        run(go())
    assert not log.exists()
    assert (
        "notify: notify_master INSTANCE VI_1 MASTER: could not start: "
        "user 'no-such-user-xyz' does not exist"
    ) in " ".join(messages(caplog, logging.WARNING))


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory the unprivileged script user can write to: pytest's
    tmp_path sits below a 0700 directory owned by root."""
    d = Path(tempfile.mkdtemp(prefix="vrrp-notify-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_hooks_run_as_the_script_user_in_a_session_of_their_own(open_dir: Path) -> None:
    needs.root("to switch users")
    log = open_dir / "ids.log"
    record = f'echo "$(id -u) $(id -G) $(ps -o sid= -p $$) $$" >> {log}'
    i = Instance(name="VI_1", interface="eth0", virtual_router_id=51,
                 notify_master=f"/bin/sh -c {shlex.quote(record)}")  # fmt: skip

    async def go() -> None:
        n = Notifier("nobody", None)
        n.instance_changed(i, "MASTER", 100)
        await n.drain(10)

    run(go())
    uid, *rest = lines(log)[0].split()
    groups, sid, pid = rest[:-2], rest[-2], rest[-1]
    assert int(uid) == pwd.getpwnam("nobody").pw_uid
    assert "0" not in groups  # root's groups are dropped
    assert sid == pid  # session leader: killpg reaches all it starts


# ---------------------------------------------------------- slow and hung


def test_slow_hook_is_logged_then_finishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "hooks.log"
    i = Instance(name="VI_1", interface="eth0", virtual_router_id=51,
                 notify_master=hook(log, "master", before="sleep 0.6;"))  # fmt: skip

    async def go() -> None:
        n = Notifier("root", None, slow_after=0.2, timeout=5)
        n.instance_changed(i, "MASTER", 100)
        await n.drain(10)

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        run(go())
    warnings = messages(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "notify: notify_master INSTANCE VI_1 MASTER: still running after 0.2s (pid "
    )
    assert warnings[0].endswith("later hooks wait, it is killed at 5s")
    assert any(m.startswith("notify: notify_master INSTANCE VI_1 MASTER: exit 0 (0.6") for m in
               messages(caplog, logging.INFO))  # fmt: skip
    assert lines(log) == ["master"]


def hang_script(d: Path, marker: str) -> Path:
    script = d / "hang.sh"
    # A background child in the same group, which killing only the first
    # process would leave behind.
    script.write_text(f"#!/bin/sh\n/bin/sleep 600.{marker} &\n/bin/sleep 601.{marker}\n")
    script.chmod(0o755)
    return script


def test_timeout_kills_the_process_group_and_the_queue_moves_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    log = tmp_path / "hooks.log"
    i = inst(log, notify_master=str(hang_script(tmp_path, marker)))

    async def go() -> tuple[float, str]:
        n = Notifier("root", None, slow_after=0.1, timeout=0.4)
        start = time.monotonic()
        n.instance_changed(i, "MASTER", 100)
        await asyncio.sleep(0.2)
        running = pgrep(marker)
        await n.drain(10)
        return time.monotonic() - start, running

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        took, running = run(go())  # type: ignore[misc]
    assert f"600.{marker}" in running and f"601.{marker}" in running
    assert took < 2
    assert pgrep(marker) == "", "the timed-out hook left processes behind"
    assert any(
        m.startswith("notify: notify_master INSTANCE VI_1 MASTER: timed out after 0.4s, killed (")
        for m in messages(caplog, logging.WARNING)
    )
    assert lines(log) == ["notify INSTANCE VI_1 MASTER 100"]


def test_drain_gives_up_after_its_timeout_and_kills_the_running_hook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = f"{os.getpid()}{time.monotonic_ns() % 100000}"
    log = tmp_path / "hooks.log"
    i = inst(log, notify_stop=str(hang_script(tmp_path, marker)))

    async def go() -> float:
        n = Notifier("root", None)
        n.instance_changed(i, "MASTER", 100)
        n.instance_changed(i, "STOP", 100)
        start = time.monotonic()
        await n.drain(0.5)
        took = time.monotonic() - start
        n.instance_changed(i, "BACKUP", 100)  # after shutdown: nothing runs
        await asyncio.sleep(0.2)
        return took

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        took = run(go())
    assert 0.5 <= took < 1.5  # type: ignore[operator]
    assert pgrep(marker) == "", "a hook outlived drain()"
    assert lines(log) == ["master", "notify INSTANCE VI_1 MASTER 100"]
    assert (
        "notify: shutting down after 0.5s with 2 hook(s) undelivered: "
        "notify_stop INSTANCE VI_1 STOP, notify INSTANCE VI_1 STOP"
    ) in messages(caplog, logging.WARNING)


def test_reconfigure_applies_the_new_user_to_later_events(open_dir: Path) -> None:
    needs.root("to switch users")
    log = open_dir / "ids.log"
    log.touch(mode=0o666)
    log.chmod(0o666)  # written by root, then by nobody
    record = f'echo "$0 $(id -u)" >> {log}'
    i = Instance(name="VI_1", interface="eth0", virtual_router_id=51,
                 notify_master=f"/bin/sh -c {shlex.quote(record)} master",
                 notify_backup=f"/bin/sh -c {shlex.quote(record)} backup")  # fmt: skip

    async def go() -> None:
        n = Notifier("root", None)
        n.instance_changed(i, "MASTER", 100)
        n.reconfigure("nobody", None)
        n.instance_changed(i, "BACKUP", 100)
        await n.drain(10)

    run(go())
    # Queued before the reload: still root's.
    assert lines(log) == ["master 0", f"backup {pwd.getpwnam('nobody').pw_uid}"]


# ------------------------------------------------------------------- fifo


def read_nonblocking(fd: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode()


def test_fifo_line_format() -> None:
    assert fifo_line("INSTANCE", "VI_1", "MASTER", 100) == 'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line("GROUP", "VG1", "STOP", 0) == 'GROUP "VG1" STOP 0\n'


def test_fifo_gets_every_transition_in_order_hooks_or_not(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    os.mkfifo(path, 0o600)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    bare = Instance(name="VI_9", interface="eth0", virtual_router_id=9)  # no hooks at all
    g = SyncGroup(name="VG1", group=("VI_9",))

    async def go() -> None:
        n = Notifier("root", str(path))
        n.instance_changed(bare, "BACKUP", 100)
        n.instance_changed(bare, "MASTER", 90)
        n.instance_changed(bare, "INIT", 90)  # not a keepalived state: no line
        n.group_changed(g, "MASTER")
        n.instance_changed(bare, "STOP", 90)
        assert n.status()["fifo"] == {"path": str(path), "reader": True, "dropped": 0}
        await n.drain(1)

    try:
        run(go())
        assert read_nonblocking(reader) == (
            'INSTANCE "VI_9" BACKUP 100\n'
            'INSTANCE "VI_9" MASTER 90\n'
            'GROUP "VG1" MASTER 0\n'
            'INSTANCE "VI_9" STOP 90\n'
        )
    finally:
        os.close(reader)


def test_missing_fifo_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    Notifier("root", str(path))
    st = path.stat()
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_fifo_without_reader_drops_lines_logged_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "notify.fifo"
    bare = Instance(name="VI_1", interface="eth0", virtual_router_id=51)

    async def go() -> list[str]:
        got = []
        n = Notifier("root", str(path))
        start = time.monotonic()
        for prio in (1, 2, 3):
            n.instance_changed(bare, "BACKUP", prio)
        assert time.monotonic() - start < 0.05  # never blocks
        assert n.status()["fifo"]["dropped"] == 3  # type: ignore[index]
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        n.instance_changed(bare, "MASTER", 4)
        got.append(read_nonblocking(reader))
        os.close(reader)  # the reader goes away: the next write sees EPIPE
        n.instance_changed(bare, "BACKUP", 5)
        n.instance_changed(bare, "BACKUP", 6)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        n.instance_changed(bare, "MASTER", 7)
        got.append(read_nonblocking(reader))
        os.close(reader)
        assert n.status()["fifo"]["dropped"] == 5  # type: ignore[index]
        await n.drain(1)
        return got

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        got = run(go())
    assert got == ['INSTANCE "VI_1" MASTER 4\n', 'INSTANCE "VI_1" MASTER 7\n']
    fifo_msgs = [m for m in caplog.messages if m.startswith(f"notify_fifo {path}")]
    assert fifo_msgs == [
        f"notify_fifo {path}: created",
        f"notify_fifo {path}: no reader attached; dropping lines until one is",
        f"notify_fifo {path}: reader attached",
        f"notify_fifo {path}: reader went away; dropping lines until one is back",
        # BACKUP 6 finds no reader (ENXIO) again
        f"notify_fifo {path}: no reader attached; dropping lines until one is",
        f"notify_fifo {path}: reader attached",
    ]


def test_fifo_reader_that_does_not_read_never_blocks_the_agent(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    os.mkfifo(path, 0o600)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    bare = Instance(name="VI_1", interface="eth0", virtual_router_id=51)

    async def go() -> tuple[float, int]:
        n = Notifier("root", str(path))
        start = time.monotonic()
        # ~27 bytes a line: far more than a 64 KiB pipe holds.
        for _ in range(5000):
            n.instance_changed(bare, "MASTER", 100)
        took = time.monotonic() - start
        await n.drain(1)
        return took, n.status()["fifo"]["dropped"]  # type: ignore[index,return-value]

    try:
        took, dropped = run(go())  # type: ignore[misc]
        data = read_nonblocking(reader)
    finally:
        os.close(reader)
    assert took < 2
    assert dropped > 0
    # What got through is whole lines only.
    assert data and data.endswith("\n")
    assert set(data.splitlines()) == {'INSTANCE "VI_1" MASTER 100'}
    assert len(data.splitlines()) + dropped == 5000


def test_a_regular_file_at_the_fifo_path_is_never_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "not-a-fifo"
    path.write_text("precious\n")
    bare = Instance(name="VI_1", interface="eth0", virtual_router_id=51)

    async def go() -> None:
        n = Notifier("root", str(path))
        n.instance_changed(bare, "MASTER", 100)
        n.instance_changed(bare, "BACKUP", 100)
        await n.drain(1)

    with caplog.at_level(logging.INFO, logger="vrrp_agent"):
        run(go())
    assert path.read_text() == "precious\n"
    assert messages(caplog, logging.ERROR) == [
        f"notify_fifo {path}: exists and is not a fifo; not written"
    ]


def test_reconfigure_moves_to_a_new_fifo(tmp_path: Path) -> None:
    old, new = tmp_path / "old.fifo", tmp_path / "new.fifo"
    bare = Instance(name="VI_1", interface="eth0", virtual_router_id=51)

    async def go() -> str:
        n = Notifier("root", str(old))
        n.reconfigure("root", str(new))
        assert stat.S_ISFIFO(new.stat().st_mode)
        reader = os.open(new, os.O_RDONLY | os.O_NONBLOCK)
        try:
            n.instance_changed(bare, "MASTER", 100)
            n.reconfigure("root", None)
            n.instance_changed(bare, "BACKUP", 100)
            await n.drain(1)
            return read_nonblocking(reader)
        finally:
            os.close(reader)

    assert run(go()) == 'INSTANCE "VI_1" MASTER 100\n'


def test_a_storm_behind_a_hung_hook_keeps_only_the_latest_transitions(tmp_path: Path) -> None:
    """Before: 1000 transitions behind a hung hook queued 2000 hooks, each to
    run in turn (up to 30 s apiece). Now at most 4 transitions per instance
    wait; the last hooks run name the final state, in transition order."""
    log = tmp_path / "hooks.log"
    gate = tmp_path / "hang"
    gate.touch()
    # notify_master hangs while the gate file exists; everything logs its args.
    i = inst(
        log, notify_master=hook(log, "master", before=f"while [ -e {gate} ]; do sleep 0.05; done;")
    )

    async def go() -> tuple[dict, dict, float]:
        n = Notifier("root", None)
        n.instance_changed(i, "MASTER", 100)
        await asyncio.sleep(0.3)  # the master hook is running, and hangs
        for k in range(1000):
            n.instance_changed(i, "BACKUP" if k % 2 == 0 else "MASTER", 90 + k % 2)
        during = n.status()
        gate.unlink()
        t0 = time.monotonic()
        await n.drain(10)
        return during, n.status(), time.monotonic() - t0

    during, after, took = run(go())
    # The running transition's `notify`, then 4 transitions of a hook and `notify` each.
    assert during["queued"] <= 1 + 8
    assert during["coalesced"] == 996
    assert took < 5
    assert lines(log)[-2:] == ["master", "notify INSTANCE VI_1 MASTER 91"]
    states = [ln.split()[3] for ln in lines(log) if ln.startswith("notify ")]
    assert states == ["MASTER", "BACKUP", "MASTER", "BACKUP", "MASTER"]
    assert after["queued"] == 0
