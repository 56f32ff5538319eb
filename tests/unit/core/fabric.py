"""Several hosts, each with several VRIDs and its own Coordinator, on one fake
segment: what `sim.Segment` does for one VRID, for sync groups, exclusive
pairs and the arbiter gate. No sockets, no sleeping; the settle loop mirrors
`Agent._settle`."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, ip_address

from vrrp_agent.core import Action, AddVips, RemoveVips, Router, SendAdvert, StateChanged
from vrrp_agent.core.coordination import Coordinator
from vrrp_agent.wire import Advertisement

from .sim import PROPAGATION, params


@dataclass
class Host:
    name: str
    routers: dict[str, Router]
    coordinator: Coordinator
    frozen: bool = False
    # Reachability of the arbiter from this host, and when it last answered.
    arbiter_reachable: bool = True
    arbiter_success: float | None = 0.0
    vips: set[str] = field(default_factory=set)
    log: list[tuple[float, str, StateChanged]] = field(default_factory=list)


class Fabric:
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
        coord = Coordinator(groups or {}, pairs or {}, arbiter)
        for n, r in routers.items():
            r.gated = coord.gated(n)
        host = Host(name, routers, coord)
        self.hosts[name] = host
        return host

    def start(self, host: str) -> None:
        h = self.hosts[host]
        for name, r in h.routers.items():
            self._apply(h, name, r.start(self.now))
        self._settle(h)

    def stop(self, host: str) -> None:
        h = self.hosts[host]
        for name, r in h.routers.items():
            self._apply(h, name, r.shutdown(self.now))

    def set_delta(self, host: str, delta: int) -> None:
        """A tracked check on `host` moved every instance's priority by `delta`."""
        h = self.hosts[host]
        for name, r in h.routers.items():
            self._apply(h, name, r.set_priority_delta(delta, self.now))
        self._settle(h)

    def set_fault(self, host: str, inst: str, reason: str | None) -> None:
        h = self.hosts[host]
        self._apply(h, inst, h.routers[inst].set_fault("test", reason, self.now))
        self._settle(h)

    # ------------------------------------------------------------------ engine

    def _apply(self, h: Host, name: str, actions: list[Action]) -> list[StateChanged]:
        changes = []
        for a in actions:
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
                changes.append(a)
        return changes

    def _settle(self, h: Host, changes: list[tuple[str, StateChanged]] | None = None) -> None:
        pending = list(changes or [])
        for _ in range(50):
            if h.arbiter_reachable:
                h.arbiter_success = self.now
            out = h.coordinator.settle(h.routers, pending, h.arbiter_success, self.now)
            pending = []
            for name, actions in out.actions:
                pending += [(name, c) for c in self._apply(h, name, actions)]
            if not out.actions:
                return
        raise AssertionError(f"{h.name}: coordination did not settle")

    def _check_overlap(self) -> None:
        count = Counter(vip for h in self.hosts.values() for vip in h.vips)
        for vip, n in count.items():
            if n > 1:
                since = self._overlap_since.setdefault(vip, self.now)
                self.longest_overlap = max(self.longest_overlap, self.now - since)
            else:
                self._overlap_since.pop(vip, None)

    def run_until(self, t_end: float) -> None:
        while True:
            deadlines = [
                (d, hn)
                for hn, h in self.hosts.items()
                if not h.frozen
                for r in h.routers.values()
                if (d := r.next_deadline()) is not None
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
                src = ip_address(next(iter(self.hosts[sender].routers.values())).params.local_ip)
                for hn, h in self.hosts.items():
                    if hn == sender or h.frozen or frozenset((hn, sender)) in self.cut:
                        continue
                    changes = []
                    for name, r in h.routers.items():
                        if r.params.vrid == adv.vrid:
                            changes += [
                                (name, c)
                                for c in self._apply(h, name, r.receive(adv, src, self.now))
                            ]
                    self._settle(h, changes)
            else:
                for hn in sorted({hn for d, hn in deadlines if d <= self.now}):
                    h = self.hosts[hn]
                    changes = []
                    for name, r in h.routers.items():
                        d = r.next_deadline()
                        if d is not None and d <= self.now:
                            changes += [
                                (name, c) for c in self._apply(h, name, r.on_timer(self.now))
                            ]
                    self._settle(h, changes)
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
