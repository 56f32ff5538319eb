"""One host's VRRP logic, sans I/O: every instance, and what ties them together.

`Node` owns the routers of a node, its `Coordinator` (sync groups, exclusive
pairs, the arbiter gate), the tracking inputs (script states, link states,
track file readings, the arbiter's last round) and the fault bookkeeping.
Like `Router`, it never touches a socket, a file or a clock: the caller
passes the time and what it read, and gets back a list of actions to carry
out, in order:

- `InstanceActions`: a router's own actions (send, add or remove VIPs,
  announce, log a transition), for the I/O of that instance;
- `NotifyInstance` / `NotifyGroup`: a transition to report, after
  coordination settled, in the order it happened;
- `ProbeArbiter`: a gated claim waits for a reference address to answer;
- `ProgramLvs`: the set of instances holding their VIPs changed;
- `UseConfig`: from here on the node runs this configuration (a reload's
  removed instances have been reported the old way before it).

One method per event: `receive`, `on_timer`, `script_changed`,
`links_changed`, `files_changed`, `arbiter_round`, `apply` (start and
reload), `drain` / `undrain` (node maintenance) and `shutdown`;
`next_deadline()` says when `on_timer` is due.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Union

from vrrp_agent.config.model import Config, Instance, SyncGroup
from vrrp_agent.core.actions import Action, AddVips, RemoveVips, StateChanged
from vrrp_agent.core.coordination import Coordinator
from vrrp_agent.core.faults import ARBITER_FAULT, TRACKING, FaultKey, FaultSource
from vrrp_agent.core.reload import ReloadPlan, diff
from vrrp_agent.core.router import Router, State
from vrrp_agent.core.tracking import (
    FileReading,
    LinkState,
    ScriptState,
    combine,
    file_effect,
    file_weight,
    iface_effect,
    track_effect,
)
from vrrp_agent.wire import DecodeError, decode
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

# RFC 9568 5.1.1.3 / 5.1.2.3: adverts are sent with TTL 255, anything else is dropped.
VRRP_TTL = 255


def ttl_ok(inst: Instance, src: IPAddr, ttl: int) -> bool:
    """keepalived's rule (vrrp.c: "MUST verify that the IPv4 TTL/IPv6 HL is 255
    (but not if unicast)"): multicast adverts arrive with 255 exactly; unicast
    ones may have crossed routers, and are checked only against the sending
    peer's min_ttl..max_ttl when it has one."""
    if not inst.unicast:
        return ttl == VRRP_TTL
    bounds = inst.unicast_peer_ttl.get(src)
    return bounds is None or bounds[0] <= ttl <= bounds[1]


# ------------------------------------------------------------------- actions


@dataclass(frozen=True)
class InstanceActions:
    """Router actions for the I/O of instance `instance`, in order."""

    instance: str
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class NotifyInstance:
    """An instance entered `state` (MASTER, BACKUP, FAULT, or STOP when it left)."""

    instance: Instance
    state: str
    priority: int


@dataclass(frozen=True)
class NotifyGroup:
    """A sync group entered `state` (STOP: none of its members runs any more)."""

    group: SyncGroup
    state: str


@dataclass(frozen=True)
class ProbeArbiter:
    """Run an arbiter round now: a gated claim waits for its answer."""


@dataclass(frozen=True)
class ProgramLvs:
    """The instances holding their VIPs are now `holding`: program the
    virtual servers of those VIPs, and only those."""

    holding: frozenset[str]


@dataclass(frozen=True)
class UseConfig:
    """The node runs `config` from here on (notify settings, control socket)."""

    config: Config


NodeAction = Union[
    InstanceActions, NotifyInstance, NotifyGroup, ProbeArbiter, ProgramLvs, UseConfig
]


# -------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ArbiterReading:
    """The arbiter prober after a round: its hysteresis state and the time
    anybody last answered."""

    addresses: tuple[IPAddr, ...]
    up: bool
    last_success: float | None


@dataclass(frozen=True)
class TrackingInputs:
    """Everything the instances of a configuration track, as read by the
    caller: the state of every running vrrp_script (a script not running is
    absent), of every watched interface, the interfaces present but not yet
    rebound to our socket (`unbound`), and every track file."""

    scripts: Mapping[str, ScriptState] = field(default_factory=dict)
    links: Mapping[str, LinkState] = field(default_factory=dict)
    unbound: frozenset[str] = frozenset()
    files: Mapping[str, FileReading] = field(default_factory=dict)


def coordinator_for(cfg: Config) -> Coordinator:
    """The coordinator `cfg`'s groups, exclusive pairs and arbiter ask for."""
    pairs: dict[str, str] = {}
    for inst in cfg.vrrp_instances.values():
        if inst.exclusive_with is not None and inst.exclusive_with not in pairs:
            pairs[inst.name] = inst.exclusive_with
    return Coordinator(
        {g.name: g.group for g in cfg.vrrp_sync_groups.values()},
        pairs,
        arbiter=cfg.arbiter is not None,
    )


def watched_links(cfg: Config) -> set[str]:
    """Interfaces `cfg`'s instances depend on: their own, every
    track_interface, and the devices of their VIPs."""
    insts = cfg.vrrp_instances.values()
    names = {inst.interface for inst in insts}
    names.update(inst.use_vmac for inst in insts if inst.use_vmac is not None)
    names.update(ref.name for inst in insts for ref in inst.track_interface)
    names.update(d for inst in insts for d in vip_devices(inst))
    return names


def vip_devices(inst: Instance) -> set[str]:
    """The other devices than its own interface that an instance's VIPs (and
    virtual routes) live on: a change there re-adds them (`Router.vips_lost`);
    the kernel takes a device's routes with it when it goes."""
    vips = (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
    devs = {v.dev for v in vips} | {r.dev for r in inst.virtual_routes}
    return {d for d in devs if d is not None and d != inst.interface}


def watched_files(cfg: Config) -> set[str]:
    return {ref.name for inst in cfg.vrrp_instances.values() for ref in inst.track_file}


# ---------------------------------------------------------------------- node


class Node:
    """The routers of one host and everything they depend on; see the module
    docstring. `config` is the configuration the node runs; no router runs
    until the first `apply`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.routers: dict[str, Router] = {}
        self.coordinator = coordinator_for(config)
        # The configuration the running routers were built from (None: none yet).
        self._running: Config | None = None
        self._by_vrid: dict[tuple[str, int, int], str] = {}
        self.scripts: dict[str, ScriptState] = {}
        self.links: dict[str, LinkState] = {}
        self.unbound: frozenset[str] = frozenset()
        self.files: dict[str, FileReading] = {}
        self.arbiter: ArbiterReading | None = None
        # Each instance's priority delta per tracker kind, for status and logs.
        self.track_deltas: dict[str, dict[str, int]] = {}
        self.group_states: dict[str, str] = {}
        # Every group reported and not stopped yet, as last configured.
        self._group_defs: dict[str, SyncGroup] = {}
        # Instances whose VIPs are configured (after their last AddVips).
        self.holding: set[str] = set()
        # Per instance, the VIPs its last add could not configure, and why.
        self.vip_errors: dict[str, dict[str, str]] = {}
        self._lvs_holding: frozenset[str] = frozenset()
        # Packets that could not be attributed to an instance.
        self.rx_dropped: Counter[str] = Counter()
        self._out: list[NodeAction] = []
        # Transitions not yet seen by the coordinator, with what reports them.
        self._transitions: list[tuple[Instance, Router, StateChanged]] = []
        # `drain`ed: no instance becomes master (fresh ones start drained).
        # `drained_since` is the caller's wall-clock time (None: unknown).
        self.drained = False
        self.drained_since: float | None = None

    # ---------------------------------------------------------------- events

    def apply(
        self,
        config: Config,
        now: float,
        routers: Mapping[str, Router],
        inputs: TrackingInputs,
    ) -> list[NodeAction]:
        """Start (the first call) or reload to `config`. `routers` holds a new
        router for each instance `plan(config).fresh` names; `inputs` what the
        new configuration tracks. Removed and changed instances stop first,
        reported under the old configuration; then the new one takes effect
        and the fresh instances start."""
        plan = self.plan(config)
        for name in plan.gone:
            self._remove(name, now)
        self._settle(now)
        self._out.append(UseConfig(config))
        self.config = self._running = config
        # Holds are recomputed from the new pairs; kept routers may change gating.
        self.coordinator = coordinator_for(config)
        for name, router in self.routers.items():
            router.gated = self.coordinator.gated(name)
        self.scripts = dict(inputs.scripts)
        self.links = dict(inputs.links)
        self.unbound = frozenset(inputs.unbound)
        self.files = dict(inputs.files)
        for name in plan.fresh:
            inst = config.vrrp_instances[name]
            router = routers[name]
            self.routers[name] = router
            self._by_vrid[(inst.advert_interface, inst.family, inst.virtual_router_id)] = name
            # Tracking first: a router told before start() begins in FAULT
            # or at its tracked priority instead of passing through BACKUP
            # with the wrong Master_Down (both calls yield no actions in INIT).
            self._track(name, now)
            router.gated = self.coordinator.gated(name)
            router.drained = self.drained
            self._arbiter_fault(name, now)
            self._exec(name, router.start(now))
        self._settle(now)
        # Kept instances may track a script that was restarted (back to UP)
        # or whose weight changed.
        for name in plan.kept:
            self._track(name, now)
        return self._finish(now)

    def plan(self, config: Config) -> ReloadPlan:
        """What `apply(config)` would keep, stop and start."""
        return diff(self._running, config)

    def shutdown(self, now: float) -> list[NodeAction]:
        """Stop every instance: a master sends priority 0 and removes its VIPs."""
        for name in list(self.routers):
            self._remove(name, now)
        return self._finish(now)

    def drain(self, now: float, since: float | None) -> list[NodeAction]:
        """Node maintenance: every master sends priority 0, removes its VIPs
        and becomes BACKUP ("drained"); from here on no instance becomes
        master (see `Router.drain`). `since` is the wall-clock time the
        caller reports. Already drained: nothing changes, no actions."""
        if self.drained:
            return []
        self.drained, self.drained_since = True, since
        # Every router first, then one settle: a sync group's members all
        # leave for "drained", none for a mate that "lost its election".
        for name in list(self.routers):
            self._exec(name, self.routers[name].drain(now))
        return self._finish(now)

    def undrain(self, now: float) -> list[NodeAction]:
        """End the maintenance: instances compete again from BACKUP (their
        Master_Down timers armed, preemption as configured)."""
        if not self.drained:
            return []
        self.drained, self.drained_since = False, None
        for name in list(self.routers):
            self._exec(name, self.routers[name].undrain(now))
        return self._finish(now)

    def receive(
        self,
        ifname: str,
        family: int,
        payload: bytes,
        src: IPAddr,
        dst: IPAddr,
        ttl: int,
        now: float,
    ) -> list[NodeAction]:
        """One VRRP packet (the IP payload) received on `ifname`; `family` 4 or 6."""
        return self.receive_many(ifname, family, [(payload, src, dst, ttl)], now)

    def receive_many(
        self,
        ifname: str,
        family: int,
        packets: Sequence[tuple[bytes, IPAddr, IPAddr, int]],
        now: float,
    ) -> list[NodeAction]:
        """Packets read from one socket in one go, each (payload, src, dst, ttl).
        Settled once for the batch: a master of 255 VRIDs sends its adverts
        within a few ms, and settling (which looks at every router) after each
        one would cost a backup O(n^2) per advert round."""
        for payload, src, dst, ttl in packets:
            self._receive_one(ifname, family, payload, src, dst, ttl, now)
        return self._finish(now)

    def _receive_one(
        self, ifname: str, family: int, payload: bytes, src: IPAddr, dst: IPAddr, ttl: int,
        now: float,
    ) -> None:  # fmt: skip
        if len(payload) < 8:
            self.rx_dropped["truncated"] += 1
            return
        name = self._by_vrid.get((ifname, family, payload[1]))
        if name is None:
            self.rx_dropped["unknown_vrid"] += 1
            return
        router = self.routers[name]
        inst = self.config.vrrp_instances[name]
        if not ttl_ok(inst, src, ttl):
            router.drop("ttl")
            return
        try:
            adv = decode(payload, src=src, dst=dst, pseudo_header=inst.v3_checksum_pseudo_header)
        except DecodeError as err:
            router.drop(err.reason)
            return
        self._exec(name, router.receive(adv, src, now, ttl))

    def drop(self, reason: str) -> None:
        """A packet that could not even be read as one of ours."""
        self.rx_dropped[reason] += 1

    def on_timer(self, now: float) -> list[NodeAction]:
        for name, router in list(self.routers.items()):
            deadline = router.next_deadline()
            if deadline is not None and deadline <= now:
                self._exec(name, router.on_timer(now))
        return self._finish(now)

    def script_changed(self, states: Mapping[str, ScriptState], now: float) -> list[NodeAction]:
        """Some vrrp_scripts went UP or DOWN."""
        self.scripts.update(states)
        for name in self._running_names():
            if any(ref.name in states for ref in self.config.vrrp_instances[name].track_script):
                self._track(name, now)
        return self._finish(now)

    def links_changed(
        self,
        links: Mapping[str, LinkState],
        now: float,
        unbound: Iterable[str] | None = None,
    ) -> list[NodeAction]:
        """Interfaces read (all watched ones, or only those that changed).
        `unbound`, when given, replaces the set of interfaces present under
        another index than the one our socket is bound to (deleted and
        created again, not rebound yet): their instances are faulted."""
        changed = {n for n, state in links.items() if self.links.get(n) != state}
        self.links.update(links)
        if unbound is not None:
            fresh = frozenset(unbound)
            changed |= fresh ^ self.unbound
            self.unbound = fresh
        for name in sorted(n for n in changed if n in links):
            level = logging.INFO if links[name] is LinkState.UP else logging.WARNING
            log.log(level, "interface %s is %s", name, links[name].value)
        for name in self._running_names():
            inst = self.config.vrrp_instances[name]
            own = {inst.interface, inst.use_vmac}
            if own & changed or any(r.name in changed for r in inst.track_interface):
                self._track(name, now)
            if vip_devices(inst) & changed:
                self._exec(name, self.routers[name].vips_lost(now))
        return self._finish(now)

    def files_changed(self, files: Mapping[str, FileReading], now: float) -> list[NodeAction]:
        """Track files whose value changed."""
        self.files.update(files)
        for name in self._running_names():
            if any(ref.name in files for ref in self.config.vrrp_instances[name].track_file):
                self._track(name, now)
        return self._finish(now)

    def arbiter_round(self, reading: ArbiterReading | None, now: float) -> list[NodeAction]:
        """The arbiter finished a round (None: no arbiter runs). Its state
        becomes a fault on every instance (DOWN faults them), and pending
        claims look at its latest answer."""
        self.arbiter = reading
        for name in self._running_names():
            self._arbiter_fault(name, now)
        return self._finish(now)

    def vips_result(self, name: str, errors: Mapping[str, str], now: float) -> list[NodeAction]:
        """The I/O layer carried out `name`'s AddVips or ProbeVips: `errors`
        maps each VIP it could not add (or could not add now) to why."""
        router = self.routers.get(name)
        if router is None:
            return self._finish(now)
        self.vip_errors[name] = dict(errors)
        if errors and name in self.holding:
            # Not held while a VIP is missing: status and LVS say the truth.
            self.holding.discard(name)
        elif not errors and router.state is State.MASTER:
            self.holding.add(name)
        summary = "; ".join(f"{vip}: {why}" for vip, why in sorted(errors.items()))
        self._exec(name, router.vips_result(summary, now))
        return self._finish(now)

    def next_deadline(self) -> float | None:
        deadlines = [d for r in self.routers.values() if (d := r.next_deadline()) is not None]
        return min(deadlines, default=None)

    # -------------------------------------------------------------- tracking

    def _running_names(self) -> list[str]:
        return list(self.routers)

    def _track(self, name: str, now: float) -> None:
        """Tell the router what everything it tracks means now: its scripts,
        interfaces and files as ONE summed priority delta plus the faults of
        weight-0 trackers, and its own interface as the link fault while gone
        or down (keepalived faults an instance whose interface is down,
        tracked or not).

        Faults are raised before the priority changes and cleared after it,
        so a master going to FAULT sends only its priority-0 advert, and a
        router leaving FAULT computes Master_Down with its new priority.
        """
        inst = self._tracked_as(self.config.vrrp_instances[name])
        values = {p: r.value for p, r in self.files.items()}
        weights = {
            n: self.config.vrrp_scripts[n].weight
            for n in self.scripts
            if n in self.config.vrrp_scripts
        }
        parts = {
            "track_script": track_effect(inst.track_script, weights, self.scripts),
            "track_interface": iface_effect(inst.track_interface, self.links),
            "track_file": file_effect(inst.track_file, values),
        }
        effect = combine(*parts.values())
        faults = {
            **effect.faults,
            FaultKey(FaultSource.LINK, inst.interface): self._own_link_fault(inst.interface),
        }
        if inst.use_vmac is not None:
            # The vmac carries the VIPs (and, unless vmac_xmit_base, the adverts).
            faults[FaultKey(FaultSource.LINK, inst.use_vmac)] = self._own_link_fault(inst.use_vmac)
        r = self.routers[name]
        # A fault no longer asked for (its weight changed from 0, its tracker
        # was removed by a reload) goes too; faults of others are left alone.
        wanted = {k: v for k, v in faults.items() if v is not None}
        stale = [k for k in r.faults if _source(k) in TRACKING and k not in wanted]
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
            old = self.track_deltas.get(name, {})
            why = [kind for kind, d in deltas.items() if d != old.get(kind, 0)]
            log.info(
                "(%s) effective priority %d -> %d (%s)",
                name,
                before,
                r.effective_priority,
                ", ".join(why),
            )
        self.track_deltas[name] = deltas
        self._exec(name, actions)

    def _tracked_as(self, inst: Instance) -> Instance:
        """keepalived: in a sync group (without sync_group_tracking_weight)
        every tracker counts with weight 0, so a failure is a FAULT, which
        the group propagates; a lowered priority on one member would move
        nothing, since the group only goes master together."""
        for group in self.config.vrrp_sync_groups.values():
            if inst.name in group.group and not group.sync_group_tracking_weight:
                zero = {
                    key: tuple(replace(ref, weight=0) for ref in getattr(inst, key))
                    for key in ("track_script", "track_interface", "track_file")
                }
                return replace(inst, **zero)
        return inst

    def _own_link_fault(self, ifname: str) -> str | None:
        # An interface never read (a caller that does not watch links) is no fault.
        state = self.links.get(ifname)
        if state is LinkState.GONE or ifname in self.unbound:
            # Also while it is back under a new index but not rebound yet.
            return f"interface {ifname} is gone"
        if state is LinkState.DOWN:
            return f"interface {ifname} is down"
        return None

    def _arbiter_fault(self, name: str, now: float) -> None:
        reason = None
        if self.arbiter is not None and not self.arbiter.up:
            refs = ", ".join(str(a) for a in self.arbiter.addresses)
            reason = f"arbiter: none of {refs} answers"
        router = self.routers[name]
        if router.faults.get(ARBITER_FAULT) != reason:
            self._exec(name, router.set_fault(ARBITER_FAULT, reason, now))

    # ---------------------------------------------------------- coordination

    def _remove(self, name: str, now: float) -> None:
        router = self.routers[name]
        self._exec(name, router.shutdown(now))
        del self.routers[name]
        self._by_vrid = {k: v for k, v in self._by_vrid.items() if v != name}
        self.track_deltas.pop(name, None)
        self.holding.discard(name)
        self.vip_errors.pop(name, None)

    def _exec(self, name: str, actions: list[Action]) -> None:
        if not actions:
            return
        self._out.append(InstanceActions(name, tuple(actions)))
        inst = self.config.vrrp_instances[name]
        router = self.routers[name]
        for action in actions:
            if isinstance(action, AddVips):
                self.holding.add(name)
            elif isinstance(action, RemoveVips):
                self.holding.discard(name)
                self.vip_errors.pop(name, None)
            elif isinstance(action, StateChanged):
                self._transitions.append((inst, router, action))

    def _finish(self, now: float) -> list[NodeAction]:
        self._settle(now)
        holding = frozenset(self.holding)
        if holding != self._lvs_holding:
            self._lvs_holding = holding
            self._out.append(ProgramLvs(holding))
        out, self._out = self._out, []
        return out

    def _settle(self, now: float) -> None:
        """Let the coordinator react to what just happened (sync groups,
        exclusive pairs, the arbiter gate) until nothing more follows, then
        report every transition in the order it happened."""
        reported: list[tuple[Instance, Router, StateChanged]] = []
        success = self.arbiter.last_success if self.arbiter is not None else None
        # Each pass can only move routers towards a fixed point; the bound is
        # a guard against a coordination bug turning into a busy loop.
        for _ in range(4 * len(self.routers) + 4):
            fresh, self._transitions = self._transitions, []
            reported += fresh
            outcome = self.coordinator.settle(
                self.routers,
                [(inst.name, change) for inst, _, change in fresh],
                success,
                now,
            )
            if outcome.probe_arbiter and ProbeArbiter() not in self._out:
                self._out.append(ProbeArbiter())
            acted = False
            for name, actions in outcome.actions:
                if actions:
                    acted = True
                    self._exec(name, actions)
            if not acted and not self._transitions:
                break
        else:
            log.error("coordination did not settle; continuing with the current states")
        for inst, router, change in reported:
            # INIT is only entered by shutdown(): keepalived calls that STOP, both
            # for the agent stopping and for an instance removed on reload.
            new = State(change.new).value
            state = "STOP" if new == State.INIT.value else new
            self._out.append(NotifyInstance(inst, state, router.effective_priority))
        self._report_groups()

    def _report_groups(self) -> None:
        """Log and report group state changes. A group none of whose members
        runs any more (agent stopping, group removed on reload) reports STOP,
        after its members' own STOP, as keepalived does."""
        self._group_defs.update(self.config.vrrp_sync_groups)
        for name, group in list(self._group_defs.items()):
            if any(m in self.routers for m in group.group) and name in self.coordinator.groups:
                state = self.coordinator.group_state(name, self.routers)
            else:
                state = "STOP"
            if self.group_states.get(name, "STOP") != state:
                # Logged by whoever carries it out, after the members' own transitions.
                self._out.append(NotifyGroup(group, state))
            if state == "STOP":
                self.group_states.pop(name, None)
                del self._group_defs[name]
            else:
                self.group_states[name] = state

    # ---------------------------------------------------------------- status

    def status(self, now: float) -> dict[str, object]:
        """The node's part of the `status` document."""
        return {
            "instances": {
                name: {
                    **self._instance_status(name, now),
                    **self._coordination_status(name, now),
                    **self._tracking_status(name),
                }
                for name in sorted(self.routers)
            },
            "vrrp_sync_groups": dict(sorted(self.group_states.items())),
            "rx_dropped": dict(self.rx_dropped),
            "drained": self.drained,
            "drained_since": self.drained_since,
        }

    def _instance_status(self, name: str, now: float) -> dict[str, object]:
        r = self.routers[name]
        inst = self.config.vrrp_instances[name]
        st = r.stats
        return {
            "state": r.state.value,
            "priority": r.params.priority,
            "effective_priority": r.effective_priority,
            "interface": inst.interface,
            # keepalived's use_vmac: the macvlan with the virtual MAC, or None
            "vmac_interface": inst.use_vmac,
            "vmac_address": inst.vmac_address.hex(":") if inst.vmac_address else None,
            "vmac_xmit_base": inst.vmac_xmit_base,
            "virtual_router_id": r.params.vrid,
            "version": r.params.version,
            "advert_int": r.params.advert_int,
            "source_ip": str(r.params.local_ip),
            # unicast (maybe without any peer: `unicast_peer: []`) or multicast
            "unicast": inst.unicast,
            "unicast_peer": [str(p) for p in inst.unicast_peer],
            **self._peer_ttl_status(inst),
            "virtual_ipaddress": [str(v.address) for v in inst.virtual_ipaddress],
            "virtual_ipaddress_excluded": [str(v.address) for v in inst.virtual_ipaddress_excluded],
            # The device each VIP (excluded ones too) lives on.
            "vip_dev": {
                str(v.address): v.dev or inst.vip_interface
                for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
            },
            "garp_master_delay": r.params.garp_master_delay,
            "holds_vips": name in self.holding,
            # Each configured VIP as the last add found it: "present" while
            # held, "configured, not present: <why>" when the add failed.
            "vips": self._vip_presence(name, inst),
            # Each virtual route, in keepalived's syntax: present while the VIPs
            # are held and its add succeeded (error: why it did not).
            "virtual_routes": self._route_presence(name, inst),
            "preempt": r.params.preempt,
            "preempt_delay": r.params.preempt_delay,
            "accept": inst.accept,
            "skip_check_adv_addr": r.params.skip_check_adv_addr,
            "master_ip": str(r.master_ip) if r.master_ip is not None else None,
            "master_priority": r.master_priority,
            "master_adver_interval": r.master_adver_interval,
            "last_transition_reason": r.last_reason,
            # Rendered as they always were: "script:chk_x", "arbiter".
            "faults": {str(k): v for k, v in r.faults.items()},
            "timers": {t: round(when - now, 3) for t, when in sorted(r.timers.items())},
            "stats": {
                "adverts_sent": st.adverts_sent,
                "adverts_received": st.adverts_received,
                "became_master": st.became_master,
                "released_master": st.released_master,
                "priority_zero_sent": st.priority_zero_sent,
                "priority_zero_received": st.priority_zero_received,
                # Adverts accepted although their address list differs from
                # ours (RFC 9568 7.1); address_list_mismatch is its older name.
                "rx_address_mismatch": st.rx_address_mismatch,
                "address_list_mismatch": st.rx_address_mismatch,
                "tx_errors": st.tx_errors,
                # TTL / hop limit of the last advert accepted: 255 minus the
                # routers it crossed (None: none accepted yet)
                "last_rx_ttl": st.last_rx_ttl,
            },
            "rx_dropped": dict(st.rx_dropped),
        }

    @staticmethod
    def _peer_ttl_status(inst: Instance) -> dict[str, object]:
        if not inst.unicast_peer_ttl:
            return {}
        ranges = {str(p): list(r) for p, r in inst.unicast_peer_ttl.items()}
        return {"unicast_peer_ttl": ranges}

    def _vip_presence(self, name: str, inst: Instance) -> dict[str, str]:
        errors = self.vip_errors.get(name, {})
        out = {}
        for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
            key = str(v.address)
            if key in errors:
                out[key] = f"configured, not present: {errors[key]}"
            else:
                out[key] = "present" if name in self.holding else "not held"
        return out

    def _route_presence(self, name: str, inst: Instance) -> list[dict[str, object]]:
        errors = self.vip_errors.get(name, {})
        # MASTER, not `holding`: one failing route un-holds the instance, the
        # other routes are in the kernel all the same.
        held = self.routers[name].state is State.MASTER
        return [
            {"route": str(r), "present": held and str(r) not in errors, "error": errors.get(str(r))}
            for r in inst.virtual_routes
        ]

    def _coordination_status(self, name: str, now: float) -> dict[str, object]:
        """A gated instance's pending claim and, for an exclusive pair, whether
        this node keeps it back (and why)."""
        c = self.coordinator
        r = self.routers[name]
        out: dict[str, object] = {}
        if r.want is not None:
            out["wants_master"] = {
                "kind": r.want.kind,
                "since": round(now - r.want.since, 3),
                "waiting_for": c.waiting.get(name),
            }
        partner = c.pairs.get(name)
        if partner is not None:
            # Held back: a claim this node would make by the protocol's rules is
            # refused because of the pair (not for a sync group or the arbiter).
            reason = c.waiting.get(name) if r.want is not None else None
            if reason is not None and "exclusive_with" not in reason:
                reason = None
            out["exclusive"] = {
                "with": partner,
                "held_back": reason is not None,
                "reason": reason,
                # Stepped down for its partner earlier; it competes again once the
                # peer that took its VIP degrades or the partner leaves MASTER.
                "displaced": name in c.holds,
            }
        return out

    def _tracking_status(self, name: str) -> dict[str, object]:
        """What the instance's interfaces and files read last, and what each
        kind of tracker adds to its priority."""
        inst = self.config.vrrp_instances[name]
        links, files = self.links, self.files
        return {
            "link": links[inst.interface].value if inst.interface in links else None,
            "track_interface": {
                ref.name: {
                    "state": links[ref.name].value if ref.name in links else None,
                    "weight": ref.weight or 0,
                }
                for ref in inst.track_interface
            },
            "track_file": {
                ref.name: {
                    "value": files[ref.name].value if ref.name in files else None,
                    "weight": file_weight(ref),
                    # How the content was read when it was not a plain integer.
                    "note": files[ref.name].note if ref.name in files else None,
                }
                for ref in inst.track_file
            },
            "track_delta": self.track_deltas.get(name, {}),
        }


def released(actions: Iterable[NodeAction]) -> list[str]:
    """The instances that left MASTER in `actions`, in order (once each)."""
    names: list[str] = []
    for batch in actions:
        if not isinstance(batch, InstanceActions):
            continue
        left = any(isinstance(a, StateChanged) and a.old is State.MASTER for a in batch.actions)
        if left and batch.instance not in names:
            names.append(batch.instance)
    return names


def _source(key: object) -> FaultSource | None:
    return key.source if isinstance(key, FaultKey) else None
