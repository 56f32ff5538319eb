"""Several hosts, each a `Node` with several VRIDs, on one fake segment: what
`sim.Segment` does for one VRID, for sync groups, exclusive pairs and the
arbiter gate. No sockets, no sleeping; the settle loop is the node's own.

Each host's configuration is built here: every instance tracks the host-wide
file DELTA_FILE (weight 1, so its value is the priority delta) and a file of
its own, FAULT_FILE (weight 0, non-zero means FAULT); `set_delta` and
`set_fault` feed readings of those files to the node, as the daemon's poll
does. Adverts travel encoded and are decoded by `Node.receive`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface

from vrrp_agent.config.model import (
    Arbiter,
    Config,
    FrozenMap,
    GlobalDefs,
    Instance,
    SyncGroup,
    TrackRef,
    VirtualAddress,
)
from vrrp_agent.core import AddVips, RemoveVips, Router, SendAdvert, StateChanged
from vrrp_agent.core.coordination import Coordinator
from vrrp_agent.core.node import (
    ArbiterReading,
    InstanceActions,
    Node,
    NodeAction,
    ProbeArbiter,
    TrackingInputs,
)
from vrrp_agent.core.tracking import FileReading
from vrrp_agent.wire import MCAST_V4, Advertisement, encode

from .sim import PROPAGATION, params

IFNAME = "eth0"
DELTA_FILE = "/run/fabric/delta"
ARBITER_REF = IPv4Address("192.0.2.254")


def fault_file(inst: str) -> str:
    return f"/run/fabric/fault-{inst}"


def reading(path: str, value: int) -> FileReading:
    r = FileReading(path)
    r.record(str(value))
    return r


@dataclass
class Host:
    """One fake host: its node, the routers it starts with, and what the
    fabric saw it do."""

    name: str
    node: Node
    fresh: dict[str, Router]
    frozen: bool = False
    # Reachability of the arbiter from this host, and when it last answered.
    arbiter_reachable: bool = True
    arbiter_success: float | None = 0.0
    vips: set[str] = field(default_factory=set)
    log: list[tuple[float, str, StateChanged]] = field(default_factory=list)

    @property
    def routers(self) -> dict[str, Router]:
        return self.node.routers

    @property
    def coordinator(self) -> Coordinator:
        return self.node.coordinator


def host_config(
    name: str,
    priorities: Mapping[str, tuple[int, int]],
    groups: Mapping[str, Sequence[str]],
    pairs: Mapping[str, str],
    arbiter: bool,
) -> Config:
    partner = {**pairs, **{b: a for a, b in pairs.items()}}
    instances = {
        inst: Instance(
            name=inst,
            interface=IFNAME,
            virtual_router_id=vrid,
            priority=prio,
            virtual_ipaddress=(VirtualAddress(IPv4Interface(f"192.0.2.{vrid}/24")),),
            track_file=(TrackRef(DELTA_FILE, 1), TrackRef(fault_file(inst), 0)),
            exclusive_with=partner.get(inst),
        )
        for inst, (vrid, prio) in priorities.items()
    }
    return Config(
        path=f"<{name}>",
        global_defs=GlobalDefs(router_id=name),
        vrrp_instances=FrozenMap(instances),
        vrrp_sync_groups=FrozenMap({g: SyncGroup(g, tuple(m)) for g, m in groups.items()}),
        arbiter=Arbiter(addresses=(ARBITER_REF,)) if arbiter else None,
    )


class Fabric:
    """The hosts, the wire between them and a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.hosts: dict[str, Host] = {}
        self._wire: list[tuple[float, int, str, Advertisement]] = []
        self._seq = itertools.count()
        # Pairs of hosts that cannot hear each other.
        self.cut: set[frozenset[str]] = set()
        # How long each VIP has been held by more than one host, and the
        # longest such stretch seen.
        self._overlap_since: dict[str, float] = {}
        self.longest_overlap = 0.0

    def add_host(
        self,
        name: str,
        ip: str,
        priorities: Mapping[str, tuple[int, int]],
        groups: Mapping[str, Sequence[str]] | None = None,
        pairs: Mapping[str, str] | None = None,
        arbiter: bool = False,
        **kw: object,
    ) -> Host:
        """priorities: instance name -> (vrid, priority)."""
        routers = {}
        for inst, (vrid, prio) in priorities.items():
            p = replace(
                params(inst, prio, ip, **kw),
                vrid=vrid,
                addresses=(IPv4Address(f"192.0.2.{vrid}"),),
            )
            routers[inst] = Router(p)
        cfg = host_config(name, priorities, groups or {}, pairs or {}, arbiter)
        host = Host(name, Node(cfg), routers)
        self.hosts[name] = host
        return host

    def start(self, host: str) -> None:
        h = self.hosts[host]
        cfg = h.node.config
        files = {DELTA_FILE: reading(DELTA_FILE, 0)}
        files.update({fault_file(n): reading(fault_file(n), 0) for n in cfg.vrrp_instances})
        self._run(h, h.node.apply(cfg, self.now, h.fresh, TrackingInputs(files=files)))

    def stop(self, host: str) -> None:
        h = self.hosts[host]
        self._run(h, h.node.shutdown(self.now))

    def drain(self, host: str) -> list[NodeAction]:
        h = self.hosts[host]
        out = h.node.drain(self.now, since=1000.0 + self.now)
        self._run(h, out)
        return out

    def undrain(self, host: str) -> list[NodeAction]:
        h = self.hosts[host]
        out = h.node.undrain(self.now)
        self._run(h, out)
        return out

    def set_delta(self, host: str, delta: int) -> None:
        """A tracked check on `host` moved every instance's priority by `delta`."""
        h = self.hosts[host]
        self._run(h, h.node.files_changed({DELTA_FILE: reading(DELTA_FILE, delta)}, self.now))

    def set_fault(self, host: str, inst: str, reason: str | None) -> None:
        h = self.hosts[host]
        path = fault_file(inst)
        self._run(h, h.node.files_changed({path: reading(path, 1 if reason else 0)}, self.now))

    # ------------------------------------------------------------------ engine

    def _run(self, h: Host, actions: list[NodeAction]) -> None:
        for a in actions:
            if isinstance(a, InstanceActions):
                self._apply(h, a)
            elif isinstance(a, ProbeArbiter) and h.arbiter_reachable:
                # The reference answers at once while this host reaches it.
                h.arbiter_success = self.now
                answer = ArbiterReading((ARBITER_REF,), up=True, last_success=self.now)
                self._run(h, h.node.arbiter_round(answer, self.now))

    def _apply(self, h: Host, batch: InstanceActions) -> None:
        name = batch.instance
        for a in batch.actions:
            if isinstance(a, SendAdvert):
                heapq.heappush(
                    self._wire, (self.now + PROPAGATION, next(self._seq), h.name, a.advert)
                )
            elif isinstance(a, AddVips):
                h.vips.add(name)
            elif isinstance(a, RemoveVips):
                h.vips.discard(name)
            elif isinstance(a, StateChanged):
                h.log.append((self.now, name, a))

    def _check_overlap(self) -> None:
        count = Counter(vip for h in self.hosts.values() for vip in h.vips)
        for vip, n in count.items():
            if n > 1:
                since = self._overlap_since.setdefault(vip, self.now)
                self.longest_overlap = max(self.longest_overlap, self.now - since)
            else:
                self._overlap_since.pop(vip, None)

    def _deliver(self, sender: str, adv: Advertisement) -> None:
        src = next(iter(self.hosts[sender].fresh.values())).params.local_ip
        payload = encode(adv, src=src, dst=MCAST_V4, pseudo_header=True)
        for hn, h in self.hosts.items():
            if hn == sender or h.frozen or frozenset((hn, sender)) in self.cut:
                continue
            self._run(h, h.node.receive(IFNAME, 4, payload, src, MCAST_V4, 255, self.now))

    def run_until(self, t_end: float) -> None:
        while True:
            deadlines = [
                (d, hn)
                for hn, h in self.hosts.items()
                if not h.frozen and (d := h.node.next_deadline()) is not None
            ]
            t_timer = min(deadlines, default=(float("inf"), ""))[0]
            t_wire = self._wire[0][0] if self._wire else float("inf")
            t = min(t_timer, t_wire)
            if t > t_end:
                self.now = t_end
                return
            # A thawed node's overdue deadline runs now, late: time never goes back.
            self.now = max(self.now, t)
            if t_wire <= t_timer:
                _, _, sender, adv = heapq.heappop(self._wire)
                self._deliver(sender, adv)
            else:
                for hn in sorted({hn for d, hn in deadlines if d <= self.now}):
                    h = self.hosts[hn]
                    self._run(h, h.node.on_timer(self.now))
            self._check_overlap()

    def holders(self) -> dict[str, list[str]]:
        """VIP (instance name) -> hosts holding it."""
        out: dict[str, list[str]] = {}
        for hn, h in self.hosts.items():
            for vip in sorted(h.vips):
                out.setdefault(vip, []).append(hn)
        return out

    def state(self, host: str, inst: str) -> str:
        return self.hosts[host].routers[inst].state.value
