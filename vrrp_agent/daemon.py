"""asyncio glue around `core.node.Node`: sockets, signals, scripts, the arbiter
and the link poll in, `loop.time()` into the node, one timer for its earliest
deadline, and the node's actions carried out.

Signal handlers only record the signal (as ExaBGP does), and so do script,
arbiter and real-server callbacks; the main coroutine acts between events, so
a reload never interleaves with a packet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

from vrrp_agent.config import Config, ConfigError, load
from vrrp_agent.config.acceptance import accept
from vrrp_agent.core import node as core
from vrrp_agent.core.reload import ReloadPlan
from vrrp_agent.core.tracking import LinkState
from vrrp_agent.io import control, metrics_server, systemd
from vrrp_agent.io.companions import Companions
from vrrp_agent.io.drain_file import Maintenance
from vrrp_agent.io.host_reads import TrackFiles, read_link
from vrrp_agent.io.instance_port import InstancePort, StartupError
from vrrp_agent.io.link_watch import LinkWatch
from vrrp_agent.io.notify import DRAIN_TIMEOUT, Notifier
from vrrp_agent.io.port_set import PortSet
from vrrp_agent.io.script_pool import ScriptPool, reap
from vrrp_agent.io.scripts import ScriptRunner
from vrrp_agent.io.smtp_alert import Alerts
from vrrp_agent.io.vrrp_socket import VrrpSocket
from vrrp_agent.status import agent_status
from vrrp_agent.wire import DecodeError

log = logging.getLogger(__name__)

# How often interfaces (own and tracked) and track files are polled: a cheap
# ioctl per interface and a small read per file. Interfaces are also read at
# once on a netlink link event; the poll is the fallback, and track files
# send no events.
LINK_CHECK_INTERVAL = 0.5


class Agent:
    """One running agent: the node and every resource its actions act on."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        self.node = core.Node(cfg)
        self.ports = PortSet(self.loop, self._on_readable)
        self.scripts = ScriptPool(self._record_script_change)
        self.notifier = Notifier(cfg.global_defs.script_user, cfg.global_defs.notify_fifo)
        self.mail = Alerts(cfg)  # keepalived's smtp_alert, beside the hooks as in vrrp_notify.c
        self.files = TrackFiles()
        self.link_watch = LinkWatch(self.loop, LINK_CHECK_INTERVAL, self._poll_links)
        self.side = Companions(lambda: self._record("arbiter"), lambda: self._record("lvs"),
                               self.mail.real_server_changed)  # fmt: skip
        self.reloads = 0
        self.maintenance = Maintenance(self.node, self._run, self.loop.time)  # drain / undrain
        # Recorded by callbacks, acted on by the main loop between events.
        self.signals: list[int] = []
        self._scripts_changed: set[str] = set()
        self._flags: set[str] = set()  # "arbiter" (a round ended), "lvs" (a check changed)
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._server: asyncio.AbstractServer | None = None
        self._metrics: asyncio.AbstractServer | None = None  # global_defs.metrics_listen
        self.transitions: dict[str, float] = {}  # instance: wall-clock time of its last change
        self._switch: tuple[ReloadPlan, dict[str, InstancePort]] | None = None  # a reload's ports

    async def run(self) -> int:
        plan = self.node.plan(self.cfg)
        built = self.ports.build(self.cfg, plan.fresh)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self.loop.add_signal_handler(sig, self._record_signal, sig)
        if (listen := self.cfg.global_defs.metrics_listen) is not None:
            # Before the control socket: a busy address leaves nothing behind.
            self._metrics = await metrics_server.serve(listen, self.status)
        self._server = await control.serve(self.cfg.global_defs.control_socket, self.status,
                                           self._commands())  # fmt: skip
        fresh = self.scripts.sync(self.cfg)
        # At start an insecure script is disabled rather than refused (as keepalived).
        verdict = accept(self.cfg)
        verdict.log(self.cfg.path)
        self.notifier.disabled = verdict.scripts.disabled
        self.scripts.disable_insecure(verdict.scripts.disabled)
        self.maintenance.start(self.cfg.global_defs.drain_file)  # before any instance starts
        self._apply(self.cfg, plan, built)
        # After the instances: a check's first result then has a router to act on.
        self.scripts.launch(fresh)
        self._sync_companions(self.cfg, plan.rebuild_lvs)
        self.link_watch.start()
        systemd.notify("READY=1")
        log.info("vrrp-agent ready: %d instance(s), pid %d", len(self.ports.ports), os.getpid())
        try:
            return await self._main_loop()
        finally:
            # Also on an unexpected error: no check may outlive the agent
            # (they run in sessions of their own, so nothing else kills them).
            self.scripts.stop_all()

    async def _main_loop(self) -> int:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.signals:
                sig = self.signals.pop(0)
                if sig == signal.SIGHUP:
                    await self._reload()
                    continue
                log.info("received %s: shutting down", signal.Signals(sig).name)
                systemd.notify("STOPPING=1")
                await reap(self._stop_all())
                await self.side.wait_closed()
                # The VIPs are gone already; now the STOP hooks and mails, bounded.
                await asyncio.gather(self.notifier.drain(DRAIN_TIMEOUT), self.mail.drain())
                return 0
            now = self.loop.time()
            if self._scripts_changed:
                changed, self._scripts_changed = self._scripts_changed, set()
                self._run(self.node.script_changed(self.scripts.states(changed), now))
            flags, self._flags = self._flags, set()
            if "arbiter" in flags:
                self._run(self.node.arbiter_round(self.side.arbiter_reading(), now))
            if "lvs" in flags:
                self._sync_lvs()

    def _record_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self._wake.set()

    def _record_script_change(self, name: str) -> None:
        self._scripts_changed.add(name)
        self._wake.set()

    def _record(self, flag: str) -> None:
        self._flags.add(flag)
        self._wake.set()

    def _inputs(self, cfg: Config) -> core.TrackingInputs:
        """What `cfg`'s instances track, as last polled; read now what was not."""
        links = {
            n: s for n in core.watched_links(cfg) if (s := self.node.links.get(n) or read_link(n))
        }
        files = self.files.read(core.watched_files(cfg))
        return core.TrackingInputs(self.scripts.states(), links, self.ports.unbound(), files)

    def _apply(self, cfg: Config, plan: ReloadPlan, built: dict[str, InstancePort]) -> None:
        self._switch = (plan, built)
        routers = {name: port.router for name, port in built.items()}
        self._run(self.node.apply(cfg, self.loop.time(), routers, self._inputs(cfg)))

    def _use_config(self, cfg: Config) -> None:
        """The node runs `cfg` now: gone ports close, built ones join, hooks follow."""
        if self._switch is not None:
            (plan, built), self._switch = self._switch, None
            self.ports.install(plan.gone, built)
        if cfg is not self.cfg:
            self.notifier.reconfigure(cfg.global_defs.script_user, cfg.global_defs.notify_fifo)
            self.mail.reconfigure(cfg)
        self.cfg = cfg

    async def _reload(self) -> None:
        systemd.notify("RELOADING=1")
        log.info("reloading %s", self.cfg.path)
        try:
            new = load(self.cfg.path)
            # What validate refuses, a reload refuses: the same gate.
            verdict = accept(new)
            verdict.log(new.path)
            if not verdict.accepted:
                raise ConfigError([])
            plan = self.node.plan(new)
            # Building opens sockets and reads addresses but configures nothing,
            # so a failure here leaves the running instances untouched.
            built = self.ports.build(new, plan.fresh)
        except (ConfigError, StartupError, OSError) as err:
            for problem in getattr(err, "problems", []):
                log.error("%s", problem)
            why = "" if isinstance(err, ConfigError) else f"{err}; "
            log.error("reload refused: %skeeping the running configuration", why)
            systemd.notify("READY=1")
            return
        stale = self.scripts.stop(self.scripts.stale(new))
        self.notifier.disabled = verdict.scripts.disabled
        old = self.cfg.global_defs
        fresh = self.scripts.sync(new)
        self._apply(new, plan, built)
        if new.global_defs.control_socket != old.control_socket:
            self._server = await control.move(self._server, old.control_socket, new, self.status,
                                              self._commands())  # fmt: skip
        self.maintenance.moved(old.drain_file, new.global_defs.drain_file)
        if new.global_defs.metrics_listen != old.metrics_listen:
            self._metrics = await metrics_server.move(
                self._metrics, old.metrics_listen, new.global_defs.metrics_listen, self.status
            )
        self.reloads += 1
        self.scripts.launch(fresh)
        self._sync_companions(new, plan.rebuild_lvs)
        self.ports.close_unused()
        log.info("reloaded: %d kept, %d stopped, %d started",
                 len(plan.kept), len(plan.gone), len(plan.fresh))  # fmt: skip
        await reap(stale)
        systemd.notify("READY=1")

    def _commands(self) -> dict[str, control.Answer]:
        # The drain file of the configuration running when the command comes.
        m = self.maintenance
        return {"drain": lambda: m.drain(self.cfg.global_defs.drain_file),
                "undrain": lambda: m.undrain(self.cfg.global_defs.drain_file)}  # fmt: skip

    def _sync_companions(self, cfg: Config, rebuild_lvs: bool) -> None:
        self.side.sync_arbiter(cfg)
        self._run(self.node.arbiter_round(self.side.arbiter_reading(), self.loop.time()))
        self.side.sync_lvs_config(cfg, rebuild_lvs, self.notifier.disabled)
        self._sync_lvs()

    def _stop_all(self) -> list[ScriptRunner]:
        # Scripts first: none may run (or change a priority) while instances
        # hand over, nor outlive the agent.
        stopped = self.scripts.stop_all()
        self.side.stop_arbiter()
        self.link_watch.stop()
        self._run(self.node.shutdown(self.loop.time()))
        self.ports.close_ports()
        # After the VIPs are gone: nothing of ours may forward any more.
        self.side.stop_lvs()
        if self._server is not None:
            self._server.close()
            control.remove(control.path_of(self._server))
        metrics_server.close(self._metrics)
        self.ports.close()
        return stopped

    def _poll_links(self) -> None:
        """Interfaces by ioctl, a vanished one's socket rebound once it is back
        under a new index, and track files."""
        now = self.loop.time()
        # A link the host cannot read now (descriptors short) is left out: no news.
        links = {n: s for n in core.watched_links(self.cfg) if (s := read_link(n)) is not None}
        for name in self.ports.rebind_all():
            # A vmac made again may have been deleted after `links` was read
            # (or between two polls): reported up, its instance would stay
            # MASTER without the VIPs that went with the old interface. It is
            # gone for this poll (FAULT), up at the next (BACKUP, MASTER).
            links[name] = LinkState.GONE
        self._run(self.node.links_changed(links, now, self.ports.unbound()))
        changed = self.files.poll(core.watched_files(self.cfg))
        if changed:
            self._run(self.node.files_changed(changed, now))
        # Also the poll for DR backends whose MAC was still unknown.
        self._sync_lvs()

    def _on_readable(self, sock: VrrpSocket) -> None:
        family = 4 if sock.family == socket.AF_INET else 6
        packets = []
        for _ in range(64):  # bounded, so a flood cannot starve timers
            try:
                pkt = sock.recv()
            except BlockingIOError:
                break
            except DecodeError as err:
                self.node.drop(err.reason)
                continue
            except OSError as err:
                log.warning("receive on %s failed: %s", sock.ifname, err)
                break
            packets.append((pkt.payload, pkt.src, pkt.dst, pkt.ttl))
        # One batch settled once (Node.receive_many); nothing to settle if none.
        if packets:
            self._run(self.node.receive_many(sock.ifname, family, packets, self.loop.time()))

    def _on_timer(self) -> None:
        self._timer = None
        # asyncio may run a handle up to one clock resolution early.
        self._run(self.node.on_timer(max(self.loop.time(), self._timer_when)))

    def _run(self, actions: list[core.NodeAction]) -> None:
        """Carry out the node's actions in order, then re-arm the timer."""
        for action in actions:
            if isinstance(action, core.InstanceActions):
                failed = self.ports.ports[action.instance].execute(list(action.actions))
                if failed is not None:  # an add or probe: the router decides what follows
                    self._run(self.node.vips_result(action.instance, failed, self.loop.time()))
            elif isinstance(action, core.NotifyInstance):
                self.transitions[action.instance.name] = time.time()  # for /metrics
                self.notifier.instance_changed(action.instance, action.state, action.priority)
                self.mail.instance_changed(action.instance, action.state)
            elif isinstance(action, core.NotifyGroup):
                log.info("(%s) sync group entering %s STATE", action.group.name, action.state)
                self.notifier.group_changed(action.group, action.state)
                self.mail.group_changed(action.group, action.state)
            elif isinstance(action, core.ProbeArbiter):
                self.side.probe_arbiter()
            elif isinstance(action, core.ProgramLvs):
                self._sync_lvs()
            elif isinstance(action, core.UseConfig):
                self._use_config(action.config)
        when = self.node.next_deadline()
        if self._timer is not None:
            if when == self._timer_when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer_when = when
            self._timer = self.loop.call_at(when, self._on_timer)

    def _sync_lvs(self) -> None:
        self.side.sync_lvs(self.ports.held_vips(self.node.holding))

    def status(self) -> dict[str, object]:
        now = self.loop.time()
        return agent_status(self.node, now, config=self.cfg, uptime=now - self.started_at,
                            reloads=self.reloads, scripts=self.scripts, notifier=self.notifier,
                            arbiter=self.side.arbiter, lvs=self.side.lvs,
                            mail=self.mail, transitions=self.transitions)  # fmt: skip


async def run(cfg: Config) -> int:
    try:
        return await Agent(cfg).run()
    except StartupError as err:
        log.error("%s", err)
        return 1
    except PermissionError:
        raise  # the CLI explains which capabilities are missing
    except OSError as err:
        log.error("start-up failed: %s", err)
        return 1
