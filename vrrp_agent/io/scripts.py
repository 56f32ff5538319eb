"""Runs keepalived-style `vrrp_scripts`: one asyncio task per script.

Every `interval` seconds the task executes the command directly (shlex-split,
no shell) as the script's user, in a session of its own so that a timeout
can kill everything the script started, not just the first process. The
fall/rise logic lives in the sans-I/O `ScriptTracker`; this module only turns
process outcomes into ok/failed and tells the agent when the UP/DOWN state
changed. It never blocks the loop: exit statuses arrive through a pidfd, not
a thread per child and not polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import grp
import logging
import os
import pwd
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from vrrp_agent.config.model import Script
from vrrp_agent.core.tracking import ScriptState, ScriptTracker
from vrrp_agent.io import privileges
from vrrp_agent.io.host_errors import CANNOT_LOOK

log = logging.getLogger(__name__)

# A killed script gets this long to be reaped before we stop waiting for it;
# SIGKILL cannot be caught, so only a process stuck in the kernel takes longer.
REAP_GRACE = 5.0


@dataclass(frozen=True)
class Credentials:
    """Whom a script runs as. Resolved per run until it works, so creating
    a missing user heals the script without a reload."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]


@dataclass(frozen=True)
class RunResult:
    """One run of a vrrp_script."""

    ok: bool | None  # None: not run for want of resources, which is no news
    exit: int | None  # None: no exit status (timed out, could not be started)
    detail: str  # for the logs: "exit 1", "timed out after 2s", ...
    # Set when the script did not get to decide (not started, killed by us):
    # the level to log that at, once until the outcome changes.
    report: int | None = None


# global_defs.script_user's default; keepalived's is keepalived_script.
DEFAULT_SCRIPT_USER = "vrrp_script"


def effective_user(spec: str) -> tuple[str, bool]:
    """(the "USER [GROUP]" scripts run as, whether that is the root fallback).

    keepalived's rule for its default user: that user where it exists, else
    root (with a warning, given by script_security). Only the bare default
    name falls back; a user named with a group, or any other user, that does
    not exist stays an error, as keepalived reports for `script_user`."""
    if spec.split() == [DEFAULT_SCRIPT_USER]:
        try:
            pwd.getpwnam(DEFAULT_SCRIPT_USER)
        except KeyError:
            return "root", True
    return spec, False


def resolve_user(spec: str) -> Credentials:
    """keepalived's `USER [GROUP]`; the group defaults to the user's primary one.

    Supplementary groups are the user's own (initgroups), never the agent's:
    a script dropped to `nobody` must not keep root's groups.
    """
    parts = effective_user(spec)[0].split()
    if not parts or len(parts) > 2:
        raise LookupError(f"user {spec!r} is not of the form 'USER [GROUP]'")
    try:
        pw = pwd.getpwnam(parts[0])
    except KeyError:
        raise LookupError(f"user {parts[0]!r} does not exist") from None
    gid = pw.pw_gid
    if len(parts) == 2:
        try:
            gid = grp.getgrnam(parts[1]).gr_gid
        except KeyError:
            raise LookupError(f"group {parts[1]!r} does not exist") from None
    groups = tuple(os.getgrouplist(pw.pw_name, gid))
    return Credentials(pw.pw_name, pw.pw_uid, gid, groups)


def run_identity(script: Script, script_user: str) -> tuple[object, ...]:
    """What makes a runner a different one on reload.

    The weight is left out on purpose: it only matters to the instances, and
    restarting the runner would reset a DOWN script to UP, flapping the VIP
    for `fall` intervals just because a weight was edited.
    """
    return (dataclasses.replace(script, weight=0), user_spec(script, script_user))


def user_spec(script: Script, script_user: str) -> str:
    return script.user if script.user is not None else script_user


def _plural(n: int, word: str, plural: str) -> str:
    return f"{n} {word if n == 1 else plural}"


async def spawn(argv: list[str], creds: Credentials | None) -> asyncio.subprocess.Process:
    """Start `argv` (no shell) as `creds`' user, in a session of its own so
    that `kill_group` reaches everything it starts, stdio on /dev/null.

    `creds` None: the agent's own identity (it cannot switch users). Root's
    when the agent is root: nothing to switch. Shared by vrrp_scripts and
    notify hooks, which keepalived also runs the same way.
    """
    kwargs: dict[str, object] = {}
    if creds is not None:
        kwargs = privileges.as_user(creds.uid, creds.gid, list(creds.groups))
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group: on timeout we kill the whole tree.
        start_new_session=True,
        # The script's user may not be able to enter the agent's cwd.
        cwd="/",
        **kwargs,  # type: ignore[arg-type]
    )


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group of a child started by `spawn`."""
    # returncode None: not reaped yet, so its pid (= the process group id,
    # thanks to start_new_session) still names this script's group.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def kill_leftovers(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL what a finished check left in its process group.

    `sleep 100000 & exit 0` as a check, once a second, left a hundred orphans
    alive after the agent stopped. A check's work ends when it exits: what it
    started in its group is killed then. The group id stays reserved while
    a member lives, so it cannot name anyone else's processes. A child that
    made a session of its own escapes this; under systemd, KillMode=mixed
    still ends it with the agent's cgroup at stop."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class ScriptRunner:
    """Runs one vrrp_script every interval and keeps its fall/rise state; reports UP/DOWN changes
    through a callback."""

    def __init__(self, script: Script, script_user: str, on_change: Callable[[str], None]) -> None:
        self.script = script
        self.name = script.name
        self.user = user_spec(script, script_user)
        self.identity = run_identity(script, script_user)
        self.tracker = ScriptTracker(fall=script.fall, rise=script.rise)
        self.last_exit: int | None = None
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        # A timed-out run being killed (keepalived's "forcing termination").
        self._killing = False
        self._creds: Credentials | None = None
        # The last abnormal outcome logged, so a missing file or a hanging
        # script is reported once, not every interval.
        self._reported: str | None = None
        self._argv: list[str] = []
        self._argv_error: str | None = None
        try:
            self._argv = shlex.split(script.script)
        except ValueError as err:
            self._argv_error = f"cannot parse the command line: {err}"
        if not self._argv and self._argv_error is None:
            self._argv_error = "the command line is empty"

    @property
    def state(self) -> ScriptState:
        return self.tracker.state

    @property
    def run_state(self) -> str:
        """keepalived's script state: idle, running, or forcing termination
        (killed after its timeout, not reaped yet)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return "idle"
        return "forcing_termination" if self._killing else "running"

    @property
    def timeout(self) -> float:
        return self.script.timeout if self.script.timeout is not None else self.script.interval

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        use_pidfd_child_watcher()
        if not privileges.can_switch_user():
            log.info(
                "vrrp_script %s: cannot switch users, so it runs as uid %d, not as %r",
                self.name,
                os.geteuid(),
                self.user,
            )
        self._task = asyncio.get_running_loop().create_task(
            self._run_forever(), name=f"vrrp_script {self.name}"
        )
        self._task.add_done_callback(self._task_done)

    def stop(self) -> None:
        """Kill a running check and stop scheduling; synchronous so that the
        agent can be sure no script outlives it (or its instances)."""
        self._kill_group()
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait for the task to end and the killed process to be reaped."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), REAP_GRACE)
            except asyncio.TimeoutError:  # not the builtin before 3.11
                log.error("vrrp_script %s: pid %d survives SIGKILL", self.name, proc.pid)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a failing check: say so loudly; the state freezes.
            log.error(
                "vrrp_script %s: runner crashed; state stays %s",
                self.name,
                self.state.value,
                exc_info=task.exception(),
            )

    # -------------------------------------------------------------------- runs

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._record(await self.run_once())
            # A fixed cadence from the start times, as keepalived has; a run
            # that outlasts the interval is followed at once, without a burst
            # of catch-up runs.
            due += self.script.interval
            now = loop.time()
            due = max(due, now)
            await asyncio.sleep(due - now)

    async def run_once(self) -> RunResult:
        if self._argv_error is not None:
            return RunResult(False, None, self._argv_error, report=logging.ERROR)
        if privileges.can_switch_user() and self._creds is None:
            try:
                self._creds = resolve_user(self.user)
            except LookupError as err:
                # keepalived refuses such a script too; failing it (rather
                # than running it as root) keeps the instance honest.
                return RunResult(False, None, f"not run: {err}", report=logging.ERROR)
        try:
            self._proc = proc = await spawn(self._argv, self._creds)
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            if isinstance(err, OSError) and err.errno in (*CANNOT_LOOK, errno.EAGAIN):
                # As keepalived when fork fails: the result stays, retried
                # next interval. The script is fine; the agent is short.
                detail = f"not run this time, result kept: {err}"
                return RunResult(None, None, detail, report=logging.WARNING)
            detail = f"cannot execute {self._argv[0]}: {err}"
            return RunResult(False, None, detail, report=logging.ERROR)
        try:
            rc = await asyncio.wait_for(proc.wait(), self.timeout)
        except asyncio.TimeoutError:
            self._kill_group()
            self._killing = True
            try:
                await asyncio.wait_for(proc.wait(), REAP_GRACE)
            except asyncio.TimeoutError:
                log.error("vrrp_script %s: pid %d survives SIGKILL", self.name, proc.pid)
            finally:
                self._killing = False
            # A hanging check is a failing check, not a configuration error.
            detail = f"timed out after {self.timeout:g}s, killed"
            return RunResult(False, None, detail, report=logging.WARNING)
        kill_leftovers(proc)
        if rc < 0:
            return RunResult(False, rc, f"killed by {signame(-rc)}")
        return RunResult(rc == 0, rc, f"exit {rc}")

    def _kill_group(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)

    def _record(self, result: RunResult) -> None:
        if result.ok is not None:
            self.last_exit = result.exit
        if result.report is not None:
            if result.detail != self._reported:
                self._reported = result.detail
                log.log(result.report, "vrrp_script %s: %s", self.name, result.detail)
        else:
            self._reported = None
            log.debug("vrrp_script %s: %s", self.name, result.detail)
        if result.ok is None or not self.tracker.record(result.ok):
            return
        t = self.tracker
        if t.up:
            log.info(
                "vrrp_script %s: UP after %s",
                self.name,
                _plural(t.successes, "success", "successes"),
            )
        else:
            log.warning(
                "vrrp_script %s: DOWN after %s (%s)",
                self.name,
                _plural(t.failures, "failure", "failures"),
                result.detail,
            )
        self._on_change(self.name)


def signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def use_pidfd_child_watcher() -> None:
    """Python 3.11's default child watcher starts a thread per child to block
    in waitpid; a pidfd in the event loop costs nothing beyond the spawn.
    Python 3.12 picks pidfds by itself (and deprecates watchers)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    current = asyncio.get_child_watcher()
    if isinstance(current, asyncio.PidfdChildWatcher) and current.is_active():
        return  # attached to the running loop (the only one in this thread)
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return  # kernel before 5.3: keep the default watcher
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)
