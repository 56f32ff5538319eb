"""keepalived's notify hooks and notify_fifo.

Every state transition of an instance (or sync group) is one event:

- its `notify_fifo` line (`INSTANCE "VI_1" MASTER 100`) is written at once,
  non-blocking, so a reader sees transitions as they happen and in order;
- its hooks (the state's own `notify_master`/`_backup`/`_fault`/`_stop`, then
  the generic `notify` with `TYPE NAME STATE PRIORITY` appended) go into one
  queue per agent, which one worker task runs one hook at a time.

keepalived forks every hook at once and lets them race, so a quick
MASTER -> BACKUP -> MASTER flap can end with notify_backup's effect; one queue
makes the last transition's hooks the last ones run. At most four transitions
of one source wait; older ones are dropped unrun (see Notifier._bound), so a
storm behind a hung hook cannot queue hours of hooks. The protocol loop only
appends to the queue and never waits for a hook: a slow hook delays the hooks
behind it, never a failover. The hooks run like vrrp_scripts (shared helpers
in io/scripts.py): no shell, as `script_user`, in a session of their own so a
hook that hangs is killed with everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import shlex
import stat
import subprocess
import time
from collections import Counter, deque
from dataclasses import dataclass

from vrrp_agent.config.model import Instance, SyncGroup
from vrrp_agent.io import privileges
from vrrp_agent.io.log_limit import LogLimiter
from vrrp_agent.io.scripts import (
    REAP_GRACE,
    Credentials,
    kill_group,
    resolve_user,
    signame,
    spawn,
    use_pidfd_child_watcher,
)

log = logging.getLogger(__name__)

# A hook still running after SLOW_AFTER seconds is logged as slow: hooks are
# meant to take moments (a mail, a service reload), and every later hook is
# waiting behind it. After HOOK_TIMEOUT it is killed with its process group,
# because a hook that never ends would silence all later ones for good.
SLOW_AFTER = 10.0
HOOK_TIMEOUT = 30.0
# Outcomes kept for `status`: enough to see the last flap's hooks.
RECENT = 10
# Transitions of one instance (or group) that may wait for their hooks.
WAITING_PER_SOURCE = 4
# What the agent gives the hooks still queued at shutdown (notify_stop among
# them) before it exits anyway: keepalived gives its stop hooks 1 s; 5 s lets
# a stop hook do real work and stays far inside systemd's stop timeout.
DRAIN_TIMEOUT = 5.0

# The hook that belongs to each state. keepalived has no INIT hook: an
# instance leaving for good is reported as STOP by the agent.
STATE_HOOKS = {
    "MASTER": "notify_master",
    "BACKUP": "notify_backup",
    "FAULT": "notify_fault",
    "STOP": "notify_stop",
}
HOOK_KEYS = (*STATE_HOOKS.values(), "notify")


@dataclass(frozen=True)
class Job:
    """One hook run, with everything fixed when the transition happened: a
    reload while it waits in the queue changes neither its command nor its user."""

    hook: str  # the configuration key: notify_master, ..., notify
    command: str  # as configured, shlex-split at run time
    args: tuple[str, ...]  # appended to the command (the generic notify only)
    kind: str  # INSTANCE | GROUP
    name: str
    state: str
    user: str  # script_user, "USER [GROUP]"
    transition: int = 0  # which event queued it: a state's hook and `notify` share one

    @property
    def label(self) -> str:
        return f"{self.hook} {self.kind} {self.name} {self.state}"


@dataclass(frozen=True)
class Outcome:
    """How one notify hook run ended."""

    job: Job
    exit: int | None  # None: timed out or could not start; negative: killed by that signal
    detail: str  # "exit 0", "timed out after 30s, killed", "could not start: ..."
    duration: float

    @property
    def kind(self) -> str:
        """ok, failed (a non-zero exit or a signal), timed_out or not_started."""
        if self.exit == 0:
            return "ok"
        if self.exit is not None:
            return "failed"
        return "timed_out" if self.detail.startswith("timed out") else "not_started"

    def as_dict(self) -> dict[str, object]:
        return {
            "hook": self.job.hook,
            "type": self.job.kind,
            "name": self.job.name,
            "state": self.job.state,
            "exit": self.exit,
            "detail": self.detail,
            "duration": round(self.duration, 3),
        }


def fifo_line(kind: str, name: str, state: str, priority: int) -> str:
    """keepalived's notify_fifo format, byte for byte."""
    return f'{kind} "{name}" {state} {priority}\n'


def jobs_for(
    source: Instance | SyncGroup, kind: str, state: str, priority: int, user: str
) -> list[Job]:
    """The state's own hook (no arguments), then the generic one (with them),
    in keepalived's order."""
    jobs: list[Job] = []
    key = STATE_HOOKS[state]
    specific: str | None = getattr(source, key)
    if specific:
        jobs.append(Job(key, specific, (), kind, source.name, state, user))
    if source.notify:
        args = (kind, source.name, state, str(priority))
        jobs.append(Job("notify", source.notify, args, kind, source.name, state, user))
    return jobs


class Fifo:
    """The write end of `notify_fifo`, opened lazily and never blocking.

    Opened O_WRONLY|O_NONBLOCK: with no reader the open fails (ENXIO) and the
    line is dropped; keepalived opens it read-write instead, which lets lines
    pile up for a reader that comes hours later and reads them as news. Each
    line is shorter than PIPE_BUF, so it is written whole or not at all.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.dropped = 0
        # The problem last logged, so a missing reader is reported once, not
        # per transition, and again only after a reader came and went.
        self._reported: str | None = None
        self._create()

    def _create(self) -> None:
        # keepalived creates a missing fifo; 0600 because the lines are the
        # agent's business (root's) until an operator opens them up.
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            return
        except OSError as err:
            self._report(logging.ERROR, f"cannot create it: {err}")
            return
        log.info("notify_fifo %s: created", self.path)

    def _report(self, level: int, problem: str) -> None:
        if problem != self._reported:
            self._reported = problem
            log.log(level, "notify_fifo %s: %s", self.path, problem)

    def _open(self) -> bool:
        flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            try:
                fd = os.open(self.path, flags)
            except FileNotFoundError:
                self._create()
                fd = os.open(self.path, flags)
        except OSError as err:
            if err.errno == errno.ENXIO:
                self._report(logging.WARNING, "no reader attached; dropping lines until one is")
            else:
                self._report(logging.ERROR, f"cannot open it: {err}")
            return False
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            # Never append transitions to somebody's regular file.
            os.close(fd)
            self._report(logging.ERROR, "exists and is not a fifo; not written")
            return False
        self.fd = fd
        if self._reported is not None:
            log.info("notify_fifo %s: reader attached", self.path)
            self._reported = None
        return True

    def write(self, line: str) -> None:
        if self.fd is None and not self._open():
            self.dropped += 1
            return
        assert self.fd is not None
        data = line.encode()
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            # The pipe is full: the reader is not keeping up. Dropping beats
            # stalling the protocol loop.
            self.dropped += 1
            self._report(logging.WARNING, "reader is not keeping up; dropping lines")
            return
        except OSError as err:
            # EPIPE: the reader went away (SIGPIPE is ignored in Python). Reopen
            # next time: a new reader may have attached by then.
            self.close()
            self.dropped += 1
            if err.errno == errno.EPIPE:
                self._report(logging.WARNING, "reader went away; dropping lines until one is back")
            else:
                self._report(logging.ERROR, f"write failed: {err}")
            return
        if written != len(data):  # cannot happen below PIPE_BUF; say so if it does
            self._report(logging.ERROR, f"short write ({written} of {len(data)} bytes)")

    def status(self) -> dict[str, object]:
        return {"path": self.path, "reader": self.fd is not None, "dropped": self.dropped}

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class Notifier:
    """Runs the notify hooks and writes notify_fifo lines, in order and never blocking the protocol;
    keeps the last outcomes for status."""

    def __init__(
        self,
        script_user: str,
        fifo: str | None,
        *,
        slow_after: float = SLOW_AFTER,
        timeout: float = HOOK_TIMEOUT,
    ) -> None:
        self.script_user = script_user
        # Hooks that failed the script security check, by key path
        # (vrrp_instances.VI_1.notify_master): never run, like keepalived.
        self.disabled: frozenset[str] = frozenset()
        self.slow_after = slow_after
        self.timeout = timeout
        self.fifo = Fifo(fifo) if fifo is not None else None
        self._queue: deque[Job] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._running: Job | None = None
        self._running_since = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._recent: deque[Outcome] = deque(maxlen=RECENT)
        self._closed = False
        self._told_not_root = False
        self.coalesced = 0  # transitions whose hooks were superseded before they ran
        # Hook runs since start by how they ended (ok, failed, timed_out, not_started).
        self.outcomes: Counter[str] = Counter()
        self._transitions = 0
        self._limited = LogLimiter(log)

    # ------------------------------------------------------------------ events

    def instance_changed(self, inst: Instance, state: str, priority: int) -> None:
        """An instance entered `state` (MASTER/BACKUP/FAULT/STOP). Returns at once."""
        if state not in STATE_HOOKS:
            return  # INIT: the agent reports an instance that leaves as STOP
        self._event(inst, "INSTANCE", state, priority)

    def group_changed(self, group: SyncGroup, state: str) -> None:
        """A sync group entered `state`; priority 0, as keepalived reports groups."""
        if state not in STATE_HOOKS:
            return
        self._event(group, "GROUP", state, 0)

    def _event(self, source: Instance | SyncGroup, kind: str, state: str, priority: int) -> None:
        if self._closed:
            log.debug("notify: %s %s %s after shutdown, not delivered", kind, source.name, state)
            return
        if self.fifo is not None:
            self.fifo.write(fifo_line(kind, source.name, state, priority))
        section = "vrrp_instances" if kind == "INSTANCE" else "vrrp_sync_groups"
        self._transitions += 1
        jobs = [
            dataclasses.replace(job, transition=self._transitions)
            for job in jobs_for(source, kind, state, priority, self.script_user)
            if f"{section}.{job.name}.{job.hook}" not in self.disabled
        ]
        if not jobs:
            return
        self._queue.extend(jobs)
        self._bound(kind, source.name)
        if self._worker is None or self._worker.done():
            use_pidfd_child_watcher()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="notify hooks")
            self._worker.add_done_callback(self._worker_done)

    def _bound(self, kind: str, name: str) -> None:
        """At most WAITING_PER_SOURCE transitions of one instance (or group)
        wait; beyond that the oldest waiting ones are dropped, their states
        being history. A short flap keeps all its hooks, in order; a storm
        behind a hung hook keeps only its last transitions, so the queue is
        bounded by the configuration and the final state's hooks run within
        one hook timeout, not hours later. The fifo got every line."""
        # A transition whose first hook has started runs to its end: its state's
        # hook and `notify` stay consistent with each other.
        started = self._running.transition if self._running is not None else None
        mine = [
            j for j in self._queue if (j.kind, j.name) == (kind, name) and j.transition != started
        ]
        states = list(dict.fromkeys(j.transition for j in mine))
        stale = set(states[:-WAITING_PER_SOURCE])
        if not stale:
            return
        self._queue = deque(j for j in self._queue if j.transition not in stale)
        self.coalesced += len(stale)
        self._limited.warning(
            f"{kind}:{name}", "notify: %s %s: %d transition(s) behind, their hooks superseded by"
            " the latest states", kind, name, len(stale),
        )  # fmt: skip

    def reconfigure(self, script_user: str, fifo: str | None) -> None:
        """On reload. Hooks already queued keep the user they were queued with."""
        self.script_user = script_user
        old = self.fifo.path if self.fifo is not None else None
        if fifo == old:
            return  # keep the open fd: the reader stays attached
        if self.fifo is not None:
            self.fifo.close()
        self.fifo = Fifo(fifo) if fifo is not None else None

    async def drain(self, timeout: float) -> None:
        """Deliver what is queued within `timeout` seconds, then stop: hooks
        still waiting are dropped and a running one is killed (logged)."""
        self._closed = True
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except asyncio.TimeoutError:  # not the builtin before 3.11
                cut = [self._running] if self._running is not None else []
                left = cut + list(self._queue)
                self._queue.clear()
                log.warning(
                    "notify: shutting down after %gs with %d hook(s) undelivered: %s",
                    timeout,
                    len(left),
                    ", ".join(j.label for j in left),
                )
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
                await self._reap()
        if self.fifo is not None:
            self.fifo.close()

    # ------------------------------------------------------------------ worker

    async def _work(self) -> None:
        # Ends when the queue is empty; the next event starts a new one.
        while self._queue:
            job = self._queue.popleft()
            self._running, self._running_since = job, time.monotonic()
            try:
                outcome = await self._run(job)
            except Exception:
                # A bug here must not silence every later hook.
                log.exception("notify: %s: crashed", job.label)
                continue
            finally:
                # _proc stays: drain() reaps a hook it had to kill.
                self._running = None
            self._recent.append(outcome)
            self.outcomes[outcome.kind] += 1
            level = logging.INFO if outcome.exit == 0 else logging.WARNING
            log.log(level, "notify: %s: %s (%.3fs)", job.label, outcome.detail, outcome.duration)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("notify: worker crashed", exc_info=task.exception())

    async def _run(self, job: Job) -> Outcome:
        start = time.monotonic()
        self._proc = None

        def done(exit: int | None, detail: str) -> Outcome:
            return Outcome(job, exit, detail, time.monotonic() - start)

        try:
            argv = shlex.split(job.command) + list(job.args)
        except ValueError as err:
            return done(None, f"could not start: cannot parse the command line: {err}")
        if not argv:
            return done(None, "could not start: the command line is empty")
        creds: Credentials | None = None
        if privileges.can_switch_user():
            # Resolved per run: creating a missing user heals the hooks
            # without a reload, and a lookup costs nothing next to a fork.
            try:
                creds = resolve_user(job.user)
            except LookupError as err:
                # Never fall back to root, as keepalived refuses too.
                return done(None, f"could not start: {err}")
        elif not self._told_not_root:
            self._told_not_root = True
            log.info("notify: cannot switch users, so hooks run as uid %d, not as %r",
                     os.geteuid(), job.user)  # fmt: skip
        log.debug("notify: %s: running %s", job.label, shlex.join(argv))
        try:
            self._proc = proc = await spawn(argv, creds)
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            return done(None, f"could not start: {err}")
        waiter = asyncio.ensure_future(proc.wait())
        try:
            finished, _ = await asyncio.wait({waiter}, timeout=min(self.slow_after, self.timeout))
            if not finished and self.slow_after < self.timeout:
                log.warning(
                    "notify: %s: still running after %gs (pid %d); later hooks wait, "
                    "it is killed at %gs",
                    job.label,
                    self.slow_after,
                    proc.pid,
                    self.timeout,
                )
                finished, _ = await asyncio.wait({waiter}, timeout=self.timeout - self.slow_after)
        except asyncio.CancelledError:
            # Shutdown gave up on it: nothing we started outlives the agent.
            kill_group(proc)
            waiter.cancel()
            raise
        if not finished:
            kill_group(proc)
            try:
                await asyncio.wait_for(waiter, REAP_GRACE)
            except asyncio.TimeoutError:
                log.error("notify: %s: pid %d survives SIGKILL", job.label, proc.pid)
            return done(None, f"timed out after {self.timeout:g}s, killed")
        rc = waiter.result()
        if rc < 0:
            return done(rc, f"killed by {signame(-rc)}")
        return done(rc, f"exit {rc}")

    async def _reap(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), REAP_GRACE)
            except asyncio.TimeoutError:
                log.error("notify: pid %d survives SIGKILL", proc.pid)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, object]:
        running = None
        if self._running is not None:
            running = {
                "hook": self._running.hook,
                "type": self._running.kind,
                "name": self._running.name,
                "state": self._running.state,
                "for": round(time.monotonic() - self._running_since, 3),
            }
        return {
            "queued": len(self._queue),
            "coalesced": self.coalesced,
            "outcomes": dict(self.outcomes),
            "running": running,
            "recent": [o.as_dict() for o in self._recent],
            "fifo": self.fifo.status() if self.fifo is not None else None,
        }
