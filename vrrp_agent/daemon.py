"""asyncio glue: sockets and signals in, `loop.time()` into the core, one
timer handle for the core's earliest deadline.

Signal handlers only record the signal (as ExaBGP does); the main coroutine
acts on it between events, so a reload never interleaves with a packet.
vrrp_script runners report UP/DOWN changes the same way: recorded, then
turned into priority deltas and faults for the tracking instances by the
main coroutine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections import Counter
from dataclasses import replace
from weakref import WeakKeyDictionary

from vrrp_agent.config import Config, ConfigError, Instance, SyncGroup, garp_settings, load
from vrrp_agent.core import Action, StateChanged
from vrrp_agent.core.coordination import Coordinator
from vrrp_agent.core.tracking import (
    FAULT_PREFIX,
    FILE_PREFIX,
    IFACE_PREFIX,
    FileReading,
    LinkState,
    ScriptState,
    combine,
    file_effect,
    iface_effect,
    track_effect,
)
from vrrp_agent.io import control, systemd
from vrrp_agent.io.accept_filter import AcceptFilter
from vrrp_agent.io.arbiter import ArbiterProber
from vrrp_agent.io.executor import InstanceIO, StartupError, family_of
from vrrp_agent.io.iface import link_state
from vrrp_agent.io.link_monitor import LinkMonitor
from vrrp_agent.io.netlink import Rtnl
from vrrp_agent.io.notify import DRAIN_TIMEOUT, HOOK_KEYS, Notifier
from vrrp_agent.io.scripts import ScriptRunner, run_identity
from vrrp_agent.io.track_files import read_track_file
from vrrp_agent.io.vrrp_socket import TTL, Received, VrrpSocket
from vrrp_agent.lvs.manager import LvsManager, make_plane
from vrrp_agent.script_security import Report
from vrrp_agent.script_security import check as check_scripts
from vrrp_agent.status import agent_status
from vrrp_agent.wire import DecodeError, decode

log = logging.getLogger(__name__)

ARBITER_FAULT = "arbiter"

# How often interfaces (own and tracked) and track files are polled: a cheap
# ioctl per interface and a small read per file; the failback bounds in the
# tests allow a full second. Interfaces are also polled at once on a link event.
LINK_CHECK_INTERVAL = 0.5

# The fault an instance's own interface raises while gone or down, as keepalived.
LINK_PREFIX = "link:"
# Fault keys _apply_tracking owns: it raises and clears these, and only these.
_TRACK_PREFIXES = (FAULT_PREFIX, IFACE_PREFIX, FILE_PREFIX, LINK_PREFIX)


def _identity(cfg: Config, inst: Instance) -> tuple[object, ...]:
    """Everything that, if changed, makes an instance a different one on reload.

    Not its notify hooks: they are read at each transition, so editing one
    must not restart the instance (a master would hand its VIPs over)."""
    return (replace(inst, **dict.fromkeys(HOOK_KEYS)), garp_settings(cfg, inst))


def _tracked_scripts(cfg: Config) -> list[str]:
    """Scripts some instance tracks; like keepalived, the others are not run."""
    tracked = {ref.name for inst in cfg.vrrp_instances.values() for ref in inst.track_script}
    return [name for name in cfg.vrrp_scripts if name in tracked]


class Agent:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rtnl = Rtnl()
        self.accept_filter = AcceptFilter()
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.instances: dict[str, InstanceIO] = {}
        self.by_vrid: dict[tuple[str, int, int], InstanceIO] = {}
        self.scripts: dict[str, ScriptRunner] = {}
        # Scripts whose UP/DOWN state changed since the main loop last looked.
        self._scripts_changed: set[str] = set()
        self.rx_dropped: Counter[str] = Counter()
        self.signals: list[int] = []
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._server: asyncio.AbstractServer | None = None
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        self.reloads = 0
        self._link_timer: asyncio.TimerHandle | None = None
        # Subscribed before the first link poll, so no change falls between.
        self.link_monitor = LinkMonitor()
        self.coordinator = _coordinator(cfg)
        # Transitions not yet seen by the coordinator and the notifier.
        self._transitions: list[tuple[InstanceIO, StateChanged]] = []
        self.group_states: dict[str, str] = {}
        # Every group reported and not stopped yet, as last configured.
        self._group_defs: dict[str, SyncGroup] = {}
        self.arbiter: ArbiterProber | None = None
        self._arbiter_round = False
        self.lvs: LvsManager | None = None
        self._lvs_changed = False
        self.notifier = Notifier(cfg.global_defs.script_user, cfg.global_defs.notify_fifo)
        # What track_interface / track_file (and each instance's own interface)
        # read at the last poll; see _check_links.
        self.links: dict[str, LinkState] = {}
        self.files: dict[str, FileReading] = {}
        # Each instance's priority delta per tracker kind, for status and logs.
        # Keyed by the instance object: one restarted by a reload starts afresh.
        self.track_deltas: WeakKeyDictionary[InstanceIO, dict[str, int]] = WeakKeyDictionary()
        # enable_script_security's findings for the running configuration;
        # `disabled` holds the key paths of commands that must not run.
        self.script_report = Report()
        # vrrp_scripts never run because they are insecure (start only: a
        # reload with an insecure script is refused), with why.
        self.disabled_scripts: dict[str, str] = {}

    # --------------------------------------------------------------- lifecycle

    async def run(self) -> int:
        built = self._build(self.cfg, list(self.cfg.vrrp_instances.values()))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self.loop.add_signal_handler(sig, self._record_signal, sig)
        self._server = await control.serve(self.cfg.global_defs.control_socket, self.status)
        new_scripts = self._sync_scripts(self.cfg)
        self.script_report = self._check_scripts(self.cfg)
        self.notifier.disabled = self.script_report.disabled
        self._disable_insecure()
        self._start(built)
        # After the instances: a check's first result then has a router to act on.
        self._launch(new_scripts)
        self._sync_arbiter(self.cfg)
        self._sync_lvs_config(self.cfg)
        self._link_timer = self.loop.call_later(LINK_CHECK_INTERVAL, self._check_links)
        self.loop.add_reader(self.link_monitor.fileno(), self._on_link_events)
        systemd.notify("READY=1")
        log.info("vrrp-agent ready: %d instance(s), pid %d", len(self.instances), os.getpid())
        try:
            return await self._main_loop()
        finally:
            # Also on an unexpected error: no check may outlive the agent
            # (they run in sessions of their own, so nothing else kills them).
            self._stop_scripts(list(self.scripts))

    async def _main_loop(self) -> int:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.signals:
                sig = self.signals.pop(0)
                if sig == signal.SIGHUP:
                    await self._reload()
                else:
                    log.info("received %s: shutting down", signal.Signals(sig).name)
                    systemd.notify("STOPPING=1")
                    stopped = list(self.scripts.values())
                    self._stop_all()
                    await _reap(stopped)
                    if self.arbiter is not None:
                        await self.arbiter.wait_closed()
                    if self.lvs is not None:
                        await self.lvs.wait_closed()
                    # The VIPs are gone already; now the STOP hooks, bounded.
                    await self.notifier.drain(DRAIN_TIMEOUT)
                    return 0
            if self._scripts_changed:
                self._apply_script_changes()
            if self._arbiter_round:
                self._arbiter_round = False
                self._apply_arbiter()
            if self._lvs_changed:
                self._lvs_changed = False
                self._sync_lvs()

    def _record_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self._wake.set()

    def _record_script_change(self, name: str) -> None:
        # Like a signal: recorded here, acted on by the main loop, so a state
        # change never lands in the middle of a reload.
        self._scripts_changed.add(name)
        self._wake.set()

    def _build(self, cfg: Config, insts: list[Instance]) -> list[InstanceIO]:
        """Open what the instances need. All or nothing: on StartupError the
        instances built so far are closed and nothing has been configured."""
        built: list[InstanceIO] = []
        new_sockets: list[tuple[str, int]] = []
        try:
            for inst in insts:
                key = (inst.interface, family_of(inst))
                sock = self.sockets.get(key)
                if sock is None:
                    index = _ifindex(inst)
                    sock = VrrpSocket(key[1], inst.interface, index)
                    self.sockets[key] = sock
                    new_sockets.append(key)
                built.append(InstanceIO(cfg, inst, self.rtnl, sock, self.accept_filter))
        except (StartupError, OSError):
            for io in built:
                io.close()
            for key in new_sockets:
                self.sockets.pop(key).close()
            raise
        return built

    def _start(self, built: list[InstanceIO]) -> None:
        now = self.loop.time()
        for io in built:
            self.instances[io.inst.name] = io
            self.by_vrid[(io.inst.interface, io.sock.family, io.inst.virtual_router_id)] = io
            self.loop.add_reader(io.sock.fileno(), self._on_readable, io.sock)
            # Tracking first: a router told before start() begins in FAULT
            # or at its tracked priority instead of passing through BACKUP
            # with the wrong Master_Down (both calls yield no actions in INIT).
            self._apply_tracking(io, now)
            io.router.gated = self.coordinator.gated(io.inst.name)
            self._apply_arbiter_fault(io, now)
            self._exec(io, io.router.start(now))
        self._reschedule()

    def _stop(self, names: list[str]) -> None:
        now = self.loop.time()
        for name in names:
            io = self.instances.pop(name)
            self._exec(io, io.router.shutdown(now))
            io.close()
            del self.by_vrid[(io.inst.interface, io.sock.family, io.inst.virtual_router_id)]
        self._reschedule()

    def _close_unused_sockets(self) -> None:
        in_use = {(io.inst.interface, io.sock.family) for io in self.instances.values()}
        for key in [k for k in self.sockets if k not in in_use]:
            sock = self.sockets.pop(key)
            self.loop.remove_reader(sock.fileno())
            sock.close()

    def _stop_all(self) -> None:
        # Scripts first: none may run (or change a priority) while instances
        # hand over, nor outlive the agent.
        self._stop_scripts(list(self.scripts))
        if self.arbiter is not None:
            self.arbiter.stop()
        if self._link_timer is not None:
            self._link_timer.cancel()
        self.loop.remove_reader(self.link_monitor.fileno())
        self.link_monitor.close()
        self._stop(list(self.instances))
        # After the VIPs are gone: nothing of ours may forward any more.
        if self.lvs is not None:
            self.lvs.stop()
        self._close_unused_sockets()
        try:
            self.accept_filter.clear()
        except OSError as err:
            log.error("removing the accept-mode filter failed: %s", err)
        if self._server is not None:
            self._server.close()
            control.remove(self.cfg.global_defs.control_socket)
        self.rtnl.close()

    async def _reload(self) -> None:
        systemd.notify("RELOADING=1")
        log.info("reloading %s", self.cfg.path)
        try:
            new = load(self.cfg.path)
        except ConfigError as err:
            for problem in err.problems:
                log.error("%s", problem)
            log.error("reload refused: keeping the running configuration")
            systemd.notify("READY=1")
            return
        # Like an invalid file: what validate refuses, a reload refuses.
        report = self._check_scripts(new)
        if report.errors:
            log.error("reload refused: keeping the running configuration")
            systemd.notify("READY=1")
            return
        old_ids = {n: _identity(self.cfg, io.inst) for n, io in self.instances.items()}
        new_ids = {n: _identity(new, i) for n, i in new.vrrp_instances.items()}
        gone = [n for n in old_ids if old_ids[n] != new_ids.get(n)]
        fresh = [new.vrrp_instances[n] for n in new_ids if new_ids[n] != old_ids.get(n)]
        try:
            # Building opens sockets and reads addresses but configures nothing,
            # so a failure here leaves the running instances untouched.
            built = self._build(new, fresh)
        except (StartupError, OSError) as err:
            log.error("reload refused: %s; keeping the running configuration", err)
            systemd.notify("READY=1")
            return
        stale = self._stop_scripts(self._stale_scripts(new))
        # The new file passed the script checks: scripts disabled at start are
        # stale (above) and start afresh.
        self.script_report = report
        self.notifier.disabled = report.disabled
        self.disabled_scripts.clear()
        self._stop(gone)
        if new.global_defs.control_socket != self.cfg.global_defs.control_socket:
            if self._server is not None:
                self._server.close()
                control.remove(self.cfg.global_defs.control_socket)
            self._server = await control.serve(new.global_defs.control_socket, self.status)
        self.cfg = new
        self.reloads += 1
        # After _stop(gone): removed instances were reported the old way.
        self.notifier.reconfigure(new.global_defs.script_user, new.global_defs.notify_fifo)
        # Holds are recomputed from the new pairs; kept routers may change gating.
        self.coordinator = _coordinator(new)
        for io in self.instances.values():
            io.router.gated = self.coordinator.gated(io.inst.name)
        new_scripts = self._sync_scripts(new)
        self._start(built)
        kept = [n for n in new_ids if n in old_ids and old_ids[n] == new_ids[n]]
        # Kept instances may track a script that was restarted (back to UP)
        # or whose weight changed.
        now = self.loop.time()
        for name in kept:
            # Kept despite edited notify hooks (see _identity): use the new ones.
            self.instances[name].inst = new.vrrp_instances[name]
            self._apply_tracking(self.instances[name], now)
        self._reschedule()
        self._launch(new_scripts)
        self._sync_arbiter(new)
        self._sync_lvs_config(new)
        self._close_unused_sockets()
        log.info(
            "reloaded: %d kept, %d stopped, %d started",
            len(kept),
            len(gone),
            len(fresh),
        )
        await _reap(stale)
        systemd.notify("READY=1")

    # ----------------------------------------------------------------- scripts

    def _stale_scripts(self, cfg: Config) -> list[str]:
        """Running scripts that the new configuration drops, untracks or changes."""
        wanted = {
            name: run_identity(cfg.vrrp_scripts[name], cfg.global_defs.script_user)
            for name in _tracked_scripts(cfg)
        }
        return [
            n
            for n, r in self.scripts.items()
            if wanted.get(n) != r.identity or n in self.disabled_scripts
        ]

    def _stop_scripts(self, names: list[str]) -> list[ScriptRunner]:
        stopped = [self.scripts.pop(name) for name in names]
        for runner in stopped:
            runner.stop()
        return stopped

    def _sync_scripts(self, cfg: Config) -> list[ScriptRunner]:
        """Register a runner for every tracked script that has none, not yet
        launched, so that instances started next see their (initial UP)
        state. Kept runners take the new Script: only its weight can differ."""
        fresh: list[ScriptRunner] = []
        for name in _tracked_scripts(cfg):
            script = cfg.vrrp_scripts[name]
            runner = self.scripts.get(name)
            if runner is not None:
                runner.script = script
                continue
            runner = ScriptRunner(script, cfg.global_defs.script_user, self._record_script_change)
            self.scripts[name] = runner
            fresh.append(runner)
        for name in cfg.vrrp_scripts:
            if name not in self.scripts:
                log.info("vrrp_script %s: not tracked by any instance, not run", name)
        return fresh

    def _launch(self, runners: list[ScriptRunner]) -> None:
        for runner in runners:
            if runner.name not in self.disabled_scripts:
                runner.start()

    def _check_scripts(self, cfg: Config) -> Report:
        """enable_script_security on this host (see script_security), logged."""
        report = check_scripts(cfg)
        for line in report.lines(cfg.path, report.errors):
            log.error("%s", line)
        for line in report.lines(cfg.path, report.warnings):
            log.warning("%s", line)
        return report

    def _disable_insecure(self) -> None:
        """At start, as keepalived: an insecure vrrp_script is never run. It
        counts as DOWN for its instances (keepalived stops tracking it): a
        check that cannot run vouches for nothing."""
        for name, runner in self.scripts.items():
            if f"vrrp_scripts.{name}.script" in self.script_report.disabled:
                runner.tracker.state = ScriptState.DOWN
                self.disabled_scripts[name] = "insecure (enable_script_security)"
                log.error(
                    "vrrp_script %s: disabled, it counts as failed: fix the permissions"
                    " above, then reload",
                    name,
                )

    def _apply_script_changes(self) -> None:
        changed, self._scripts_changed = self._scripts_changed, set()
        now = self.loop.time()
        for io in self.instances.values():
            if any(ref.name in changed for ref in io.inst.track_script):
                self._apply_tracking(io, now)
        self._reschedule()

    def _apply_tracking(self, io: InstanceIO, now: float) -> None:
        """Tell the router what everything it tracks means now: its scripts,
        interfaces and files as ONE summed priority delta plus the faults of
        weight-0 trackers (`script:`, `iface:`, `file:`), and its own
        interface as the `link:` fault while gone or down (keepalived faults
        an instance whose interface is down, tracked or not).

        Faults are raised before the priority changes and cleared after it,
        so a master going to FAULT sends only its priority-0 advert, and a
        router leaving FAULT computes Master_Down with its new priority.
        """
        inst = self._tracked_as(io.inst)
        links = {ref.name: self._link(ref.name) for ref in inst.track_interface}
        values = {ref.name: self._file(ref.name).value for ref in inst.track_file}
        parts = {
            "track_script": track_effect(
                inst.track_script,
                {n: r.script.weight for n, r in self.scripts.items()},
                {n: r.state for n, r in self.scripts.items()},
            ),
            "track_interface": iface_effect(inst.track_interface, links),
            "track_file": file_effect(inst.track_file, values),
        }
        effect = combine(*parts.values())
        faults = {**effect.faults, f"{LINK_PREFIX}{inst.interface}": self._own_link_fault(io)}
        r = io.router
        # A fault no longer asked for (its weight changed from 0, its tracker
        # was removed by a reload) goes too; faults of others are left alone.
        wanted = {k: v for k, v in faults.items() if v is not None}
        stale = [k for k in r.faults if k.startswith(_TRACK_PREFIXES) and k not in wanted]
        before = r.effective_priority
        actions: list[Action] = []
        for key, reason in wanted.items():
            if r.faults.get(key) != reason:
                actions += r.set_fault(key, reason, now)
        if effect.delta != r.priority_delta:
            actions += r.set_priority_delta(effect.delta, now)
        for key in stale:
            actions += r.set_fault(key, None, now)
        deltas = {kind: e.delta for kind, e in parts.items()}
        if r.effective_priority != before:
            old = self.track_deltas.get(io, {})
            why = [kind for kind, d in deltas.items() if d != old.get(kind, 0)]
            log.info(
                "(%s) effective priority %d -> %d (%s)",
                inst.name,
                before,
                r.effective_priority,
                ", ".join(why),
            )
        self.track_deltas[io] = deltas
        self._exec(io, actions)

    def _tracked_as(self, inst: Instance) -> Instance:
        """keepalived: in a sync group (without sync_group_tracking_weight)
        every tracker counts with weight 0, so a failure is a FAULT, which
        the group propagates; a lowered priority on one member would move
        nothing, since the group only goes master together."""
        for group in self.cfg.vrrp_sync_groups.values():
            if inst.name in group.group and not group.sync_group_tracking_weight:
                zero = {
                    key: tuple(replace(ref, weight=0) for ref in getattr(inst, key))
                    for key in ("track_script", "track_interface", "track_file")
                }
                return replace(inst, **zero)
        return inst

    def _own_link_fault(self, io: InstanceIO) -> str | None:
        ifname = io.inst.interface
        state = self._link(ifname)
        if state is LinkState.GONE or _ifindex_now(ifname) != io.sock.ifindex:
            # Also while it is back under a new index but not rebound yet.
            return f"interface {ifname} is gone"
        if state is LinkState.DOWN:
            return f"interface {ifname} is down"
        return None

    def _link(self, name: str) -> LinkState:
        """The state the last poll saw; read now for a name not polled yet
        (at start, or newly tracked after a reload)."""
        state = self.links.get(name)
        if state is None:
            state = self.links[name] = _read_link(name)
        return state

    def _file(self, path: str) -> FileReading:
        reading = self.files.get(path)
        if reading is None:
            reading = self.files[path] = FileReading(path)
            self._poll_file(reading)
        return reading

    def _poll_file(self, reading: FileReading) -> bool:
        """Read one track file; True when its value changed."""
        before = reading.value
        text, why = read_track_file(reading.path)
        if reading.record(text, why) and reading.note is not None:
            # Said once per change, not every poll.
            log.warning("track_file %s: %s", reading.path, reading.note)
        if reading.value == before:
            return False
        log.info("track_file %s: %d -> %d", reading.path, before, reading.value)
        return True

    # ------------------------------------------------------------------ links

    def _check_links(self) -> None:
        """Poll, every LINK_CHECK_INTERVAL, what instances depend on here:

        - each instance's own interface and every track_interface, by ioctl
          (also at once on a netlink link event: see _on_link_events);
        - an interface that vanished (a cable pulled, `podman network
          disconnect`) took our socket's binding and the VIPs with it: its
          instances are faulted, and when it comes back under a new index the
          socket is rebound and they rejoin;
        - every track_file. Polled rather than watched with inotify (as
          keepalived does): a poll sees the file however it appears (created
          later, renamed over, its directory made after start, on a
          filesystem or bind mount inotify does not report), costs one small
          read per file per poll, and shares this timer, so a file moves a
          VIP within the same bound as a link. The price, a write caught
          half-done, is handled by FileReading.
        """
        try:
            self._poll_links(self.loop.time())
            # Also the poll for DR backends whose MAC was still unknown.
            self._sync_lvs()
        finally:
            # Re-armed whatever happens: a bug must not end link tracking.
            self._link_timer = self.loop.call_later(LINK_CHECK_INTERVAL, self._check_links)

    def _poll_links(self, now: float) -> None:
        insts = [io.inst for io in self.instances.values()]
        watched = {inst.interface for inst in insts}
        watched.update(ref.name for inst in insts for ref in inst.track_interface)
        links = {name: _read_link(name) for name in watched}
        changed = {name for name, state in links.items() if self.links.get(name) != state}
        for name in sorted(changed):
            level = logging.INFO if links[name] is LinkState.UP else logging.WARNING
            log.log(level, "interface %s is %s", name, links[name].value)
        self.links = links
        for (ifname, family), sock in list(self.sockets.items()):
            if self._rebind(ifname, family, sock):
                changed.add(ifname)
        paths = {ref.name for inst in insts for ref in inst.track_file}
        self.files = {p: self.files.get(p) or FileReading(p) for p in paths}
        files_changed = {p for p, reading in self.files.items() if self._poll_file(reading)}
        for io in list(self.instances.values()):
            inst = io.inst
            if (
                inst.interface in changed
                or any(ref.name in changed for ref in inst.track_interface)
                or any(ref.name in files_changed for ref in inst.track_file)
            ):
                self._apply_tracking(io, now)
        self._reschedule()

    def _on_link_events(self) -> None:
        """A link changed (or changes were lost): poll now instead of at the
        next LINK_CHECK_INTERVAL, so a master whose link drops releases its
        VIPs at once, as keepalived does. The timer stays: track files have
        no events, and it is the fallback should events ever be missed."""
        events = self.link_monitor.read()
        if events or self.link_monitor.resync:
            self._poll_links(self.loop.time())

    def _rebind(self, ifname: str, family: int, sock: VrrpSocket) -> bool:
        """True when the interface is back under a new index and its
        instances now use a fresh socket on it."""
        index = _ifindex_now(ifname)
        if index is None or index == sock.ifindex:
            return False
        users = [io for io in self.instances.values() if io.sock is sock]
        try:
            fresh = VrrpSocket(family, ifname, index)
        except OSError as err:
            log.warning("interface %s is back but not usable yet: %s", ifname, err)
            return False
        try:
            for io in users:
                io.rebind(fresh)
        except StartupError as err:
            # Typically the address is not configured yet: try again next time.
            log.warning("interface %s is back but not usable yet: %s", ifname, err)
            fresh.close()
            return False
        self.loop.remove_reader(sock.fileno())
        sock.close()
        self.sockets[(ifname, family)] = fresh
        self.loop.add_reader(fresh.fileno(), self._on_readable, fresh)
        log.info("interface %s is back (index %d)", ifname, index)
        return True

    # ------------------------------------------------------------------ events

    def _on_readable(self, sock: VrrpSocket) -> None:
        for _ in range(64):  # bounded, so a flood cannot starve timers
            try:
                pkt = sock.recv()
            except BlockingIOError:
                break
            except DecodeError as err:
                self.rx_dropped[err.reason] += 1
                continue
            except OSError as err:
                log.warning("receive on %s failed: %s", sock.ifname, err)
                break
            self._dispatch(sock, pkt)
        self._reschedule()

    def _dispatch(self, sock: VrrpSocket, pkt: Received) -> None:
        payload = pkt.payload
        if len(payload) < 8:
            self.rx_dropped["truncated"] += 1
            return
        io = self.by_vrid.get((sock.ifname, sock.family, payload[1]))
        if io is None:
            self.rx_dropped["unknown_vrid"] += 1
            return
        if pkt.ttl != TTL:
            io.router.drop("ttl")
            return
        try:
            adv = decode(
                payload,
                src=pkt.src,
                dst=pkt.dst,
                pseudo_header=io.inst.v3_checksum_pseudo_header,
            )
        except DecodeError as err:
            io.router.drop(err.reason)
            return
        self._exec(io, io.router.receive(adv, pkt.src, self.loop.time()))

    def _on_timer(self) -> None:
        self._timer = None
        # asyncio may run a handle up to one clock resolution early.
        now = max(self.loop.time(), self._timer_when)
        for io in list(self.instances.values()):
            deadline = io.router.next_deadline()
            if deadline is not None and deadline <= now:
                self._exec(io, io.router.on_timer(now))
        self._reschedule()

    # ------------------------------------------------------------ coordination

    def _exec(self, io: InstanceIO, actions: list[Action]) -> None:
        io.execute(actions)
        for action in actions:
            if isinstance(action, StateChanged):
                self._transitions.append((io, action))

    def _settle(self) -> None:
        """Let the coordinator react to what just happened (sync groups,
        exclusive pairs, the arbiter gate) until nothing more follows, then
        report every transition in the order it happened."""
        now = self.loop.time()
        reported: list[tuple[InstanceIO, StateChanged]] = []
        routers = {n: io.router for n, io in self.instances.items()}
        # Each pass can only move routers towards a fixed point; the bound is
        # a guard against a coordination bug turning into a busy loop.
        for _ in range(4 * len(routers) + 4):
            fresh, self._transitions = self._transitions, []
            reported += fresh
            outcome = self.coordinator.settle(
                routers,
                [(io.inst.name, change) for io, change in fresh],
                self._arbiter_success(),
                now,
            )
            if outcome.probe_arbiter:
                self._probe_arbiter()
            acted = False
            for name, actions in outcome.actions:
                if actions:
                    acted = True
                    self._exec(self.instances[name], actions)
            if not acted and not self._transitions:
                break
        else:
            log.error("coordination did not settle; continuing with the current states")
        for io, change in reported:
            self._on_transition(io, change)
        self._report_groups()

    def _on_transition(self, io: InstanceIO, change: StateChanged) -> None:
        """Every instance transition, in order, after coordination."""
        # INIT is only entered by shutdown(): keepalived calls that STOP, both
        # for the agent stopping and for an instance removed on reload.
        state = "STOP" if change.new == "INIT" else change.new
        self.notifier.instance_changed(io.inst, state, io.router.effective_priority)

    def _report_groups(self) -> None:
        """Log and notify group state changes. A group none of whose members
        runs any more (agent stopping, group removed on reload) reports STOP,
        after its members' own STOP, as keepalived does."""
        routers = {n: io.router for n, io in self.instances.items()}
        self._group_defs.update(self.cfg.vrrp_sync_groups)
        for name, group in list(self._group_defs.items()):
            if any(m in routers for m in group.group):
                state = self.coordinator.group_state(name, routers)
            else:
                state = "STOP"
            if self.group_states.get(name, "STOP") != state:
                log.info("(%s) sync group entering %s STATE", name, state)
                self.notifier.group_changed(group, state)
            if state == "STOP":
                self.group_states.pop(name, None)
                del self._group_defs[name]
            else:
                self.group_states[name] = state

    # ----------------------------------------------------------------- arbiter

    def _sync_arbiter(self, cfg: Config) -> None:
        """Start, replace or stop the prober to match `cfg.arbiter`."""
        if self.arbiter is not None and self.arbiter.arbiter == cfg.arbiter:
            return
        if self.arbiter is not None:
            # Stopped at once; its task ends on its own (cancelled, sockets closed).
            self.arbiter.stop()
            self.arbiter = None
        if cfg.arbiter is not None:
            self.arbiter = ArbiterProber(cfg.arbiter, self._record_arbiter_round)
            self.arbiter.start()
        self._apply_arbiter()

    def _record_arbiter_round(self) -> None:
        # Like a signal: acted on by the main loop, between events.
        self._arbiter_round = True
        self._wake.set()

    def _apply_arbiter(self) -> None:
        """The arbiter's state as a fault on every instance (no arbiter, or UP:
        no fault), then let pending claims look at its latest answer."""
        now = self.loop.time()
        for io in self.instances.values():
            self._apply_arbiter_fault(io, now)
        self._reschedule()

    def _apply_arbiter_fault(self, io: InstanceIO, now: float) -> None:
        reason = None
        if self.arbiter is not None and not self.arbiter.up:
            refs = ", ".join(str(a) for a in self.arbiter.arbiter.addresses)
            reason = f"arbiter: none of {refs} answers"
        if io.router.faults.get(ARBITER_FAULT) != reason:
            self._exec(io, io.router.set_fault(ARBITER_FAULT, reason, now))

    def _arbiter_success(self) -> float | None:
        return self.arbiter.last_success if self.arbiter is not None else None

    def _probe_arbiter(self) -> None:
        if self.arbiter is not None:
            self.arbiter.request_round()

    # -------------------------------------------------------- virtual servers

    def _sync_lvs_config(self, cfg: Config) -> None:
        """Start, replace or stop the checkers and data plane for `cfg`."""
        if self.lvs is not None and self.lvs.servers == cfg.virtual_servers:
            self.lvs.script_user = cfg.global_defs.script_user
            return
        if self.lvs is not None:
            self.lvs.stop()
            self.lvs = None
        if cfg.virtual_servers:
            plane = make_plane(cfg.global_defs.lvs_backend, cfg.virtual_servers)
            self.lvs = LvsManager(
                cfg.virtual_servers,
                plane,
                cfg.global_defs.script_user,
                self._record_lvs_change,
                disabled=self.script_report.disabled,
            )
            log.info("virtual servers: %d, data plane %s", len(cfg.virtual_servers), plane.name)
            self.lvs.start()
        self._sync_lvs()

    def _record_lvs_change(self) -> None:
        # A real server changed state: acted on by the main loop, between events.
        self._lvs_changed = True
        self._wake.set()

    def _sync_lvs(self) -> None:
        if self.lvs is None:
            return
        held = {
            v.ip: v.link.name for io in self.instances.values() if io.holds_vips for v in io.vips
        }
        self.lvs.sync(held)

    def _reschedule(self) -> None:
        # Every event path ends here: first let the instances settle, then
        # program the virtual servers whose VIPs this node holds now.
        self._settle()
        self._sync_lvs()
        deadlines = [
            d for io in self.instances.values() if (d := io.router.next_deadline()) is not None
        ]
        when = min(deadlines, default=None)
        if self._timer is not None:
            if when == self._timer_when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer_when = when
            self._timer = self.loop.call_at(when, self._on_timer)

    def status(self) -> dict[str, object]:
        return agent_status(self)


def _coordinator(cfg: Config) -> Coordinator:
    pairs: dict[str, str] = {}
    for inst in cfg.vrrp_instances.values():
        if inst.exclusive_with is not None and inst.exclusive_with not in pairs:
            pairs[inst.name] = inst.exclusive_with
    return Coordinator(
        {g.name: g.group for g in cfg.vrrp_sync_groups.values()},
        pairs,
        arbiter=cfg.arbiter is not None,
    )


async def _reap(runners: list[ScriptRunner]) -> None:
    """Wait for stopped runners (already killed) so no zombie or task is left."""
    if runners:
        await asyncio.gather(*(r.wait_closed() for r in runners))


def _ifindex_now(ifname: str) -> int | None:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def _read_link(name: str) -> LinkState:
    # A datagram socket per read: a few syscalls every poll, nothing to keep open.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            return link_state(sock, name)
    except OSError as err:
        # Not "no such interface" (that is GONE): unexpected; not up, then.
        log.warning("interface %s: cannot read its state: %s", name, err)
        return LinkState.DOWN


def _ifindex(inst: Instance) -> int:
    try:
        return socket.if_nametoindex(inst.interface)
    except OSError:
        raise StartupError(
            f"vrrp_instances.{inst.name}: interface {inst.interface} not found on this host"
        ) from None


async def run(cfg: Config) -> int:
    try:
        agent = Agent(cfg)
        return await agent.run()
    except StartupError as err:
        log.error("%s", err)
        return 1
    except PermissionError:
        raise  # the CLI explains which capabilities are missing
    except OSError as err:
        log.error("start-up failed: %s", err)
        return 1
