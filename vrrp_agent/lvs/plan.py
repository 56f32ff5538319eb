"""What a virtual server forwards to now: pure, from its configuration and
its real servers' health.

keepalived's rules: a healthy real server with weight > 0 is scheduled; a
failed one is removed, or kept with weight 0 when `inhibit_on_failure` (IPVS
then lets its established connections finish; nftables, which keeps no
per-backend connection table of its own, schedules nothing to it either way).
With no backend scheduled and a `sorry_server` set, everything goes there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vrrp_agent.config.model import VirtualServer
from vrrp_agent.wire.addresses import IPAddr


@dataclass(frozen=True)
class Backend:
    """One real server (or the sorry server) as the data plane should schedule it."""

    ip: IPAddr
    port: int
    weight: int  # 0: kept but not scheduled (inhibit_on_failure)
    sorry: bool = False


@dataclass(frozen=True)
class ServicePlan:
    """One virtual server and its backends, as the data plane should program it now."""

    vs: VirtualServer
    backends: tuple[Backend, ...]

    @property
    def scheduled(self) -> tuple[Backend, ...]:
        return tuple(b for b in self.backends if b.weight > 0)

    @property
    def on_sorry_server(self) -> bool:
        return any(b.sorry for b in self.backends)


def plan_service(vs: VirtualServer, healthy: Mapping[tuple[IPAddr, int], bool]) -> ServicePlan:
    """`healthy[(ip, port)]`: the checker's verdict; a real server without a
    checker, or not checked yet, counts as healthy (keepalived adds them at start)."""
    backends: list[Backend] = []
    for rs in vs.real_servers:
        up = healthy.get((rs.ip, rs.port), True)
        if up:
            backends.append(Backend(rs.ip, rs.port, rs.weight))
        elif rs.inhibit_on_failure:
            backends.append(Backend(rs.ip, rs.port, 0))
    if not any(b.weight > 0 for b in backends) and vs.sorry_server is not None:
        sorry = vs.sorry_server
        backends = [b for b in backends if b.weight > 0]
        backends.append(Backend(sorry.ip, sorry.port, 1, sorry=True))
    return ServicePlan(vs, tuple(backends))
