"""An in-memory multicast segment for the sans-I/O core: routers exchange
Advertisement objects over a fake clock. No sockets, no sleeping."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, ip_address

from vrrp_agent.core import (
    Action,
    AddVips,
    Announce,
    RemoveVips,
    Router,
    RouterParams,
    SendAdvert,
    StateChanged,
)
from vrrp_agent.wire import Advertisement

VIP = IPv4Address("192.0.2.100")
PROPAGATION = 0.001  # one millisecond on the wire


def params(name: str, priority: int, ip: str, **kw: object) -> RouterParams:
    base = RouterParams(
        name=name,
        vrid=51,
        version=3,
        priority=priority,
        advert_int=1.0,
        addresses=(VIP,),
        local_ip=ip_address(ip),
    )
    return replace(base, **kw)


@dataclass
class Node:
    router: Router
    frozen: bool = False
    holds_vips: bool = False
    log: list[tuple[float, Action]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.router.state.value


class Segment:
    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self._wire: list[tuple[float, int, str, Advertisement]] = []
        self._seq = itertools.count()
        self.sent: list[tuple[float, str, Advertisement]] = []

    def add(self, p: RouterParams) -> Node:
        node = Node(Router(p))
        self.nodes[p.name] = node
        return node

    def start(self, name: str) -> None:
        node = self.nodes[name]
        self._apply(node, node.router.start(self.now))

    def restart(self, name: str, p: RouterParams | None = None) -> None:
        old = self.nodes[name]
        self.nodes[name] = Node(Router(p or old.router.params), holds_vips=old.holds_vips)
        self.start(name)

    def stop(self, name: str) -> None:
        node = self.nodes[name]
        self._apply(node, node.router.shutdown(self.now))

    def _apply(self, node: Node, actions: list[Action]) -> None:
        for a in actions:
            node.log.append((self.now, a))
            if isinstance(a, SendAdvert):
                self.sent.append((self.now, node.router.params.name, a.advert))
                heapq.heappush(
                    self._wire,
                    (self.now + PROPAGATION, next(self._seq), node.router.params.name, a.advert),
                )
            elif isinstance(a, AddVips):
                node.holds_vips = True
            elif isinstance(a, RemoveVips):
                node.holds_vips = False

    def run_until(self, t_end: float) -> None:
        while True:
            deadlines = [
                (d, name)
                for name, n in self.nodes.items()
                if not n.frozen and (d := n.router.next_deadline()) is not None
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
                src = self.nodes[sender].router.params.local_ip
                for name, n in self.nodes.items():
                    if name != sender and not n.frozen:
                        self._apply(n, n.router.receive(adv, src, self.now))
            else:
                for _, name in sorted(deadlines):
                    n = self.nodes[name]
                    d = n.router.next_deadline()
                    if d is not None and d <= self.now:
                        self._apply(n, n.router.on_timer(self.now))

    def masters(self) -> list[str]:
        return [name for name, n in self.nodes.items() if n.state == "MASTER"]

    def vip_holders(self) -> list[str]:
        return [name for name, n in self.nodes.items() if n.holds_vips]

    def transitions(self, name: str) -> list[tuple[float, StateChanged]]:
        return [(t, a) for t, a in self.nodes[name].log if isinstance(a, StateChanged)]

    def became_master_at(self, name: str) -> float:
        return [t for t, a in self.transitions(name) if a.new == "MASTER"][-1]

    def announces(self, name: str) -> list[tuple[float, int]]:
        return [(t, a.count) for t, a in self.nodes[name].log if isinstance(a, Announce)]
