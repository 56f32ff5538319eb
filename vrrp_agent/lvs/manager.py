"""The daemon's side of virtual servers: checkers in, data plane out.

Real servers are checked on every director, master or backup, so a backup
that takes over forwards at once to the servers known to be healthy. The
data plane is programmed only while this node holds a virtual server's VIP
(keepalived installs IPVS rules on both directors and lets the VIP decide;
with nftables DR a backup's ingress rule would forward frames meant for the
VIP's own MAC elsewhere, so ours are simply absent where the VIP is not),
and everything of ours is removed on stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from vrrp_agent.config.model import RealServer, VirtualServer
from vrrp_agent.lvs.checkers import RealServerChecker
from vrrp_agent.lvs.plan import ServicePlan, plan_service
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

RsKey = tuple[int, IPAddr, int]  # (virtual server index, real server ip, port)
# Told of every checker verdict change: (virtual server, real server, up); the alert mail.
RsChange = Callable[[VirtualServer, RealServer, bool], None]


class DataPlane(Protocol):
    """Where virtual servers are programmed: nftables or IPVS."""

    name: str

    def apply(self, services: Sequence[tuple[ServicePlan, str]]) -> None: ...

    def clear(self) -> None: ...


class LvsManager:
    """The real-server checkers of every virtual server and the data plane they feed; programs only
    the services whose VIP this node holds."""

    def __init__(
        self,
        servers: Sequence[VirtualServer],
        plane: DataPlane,
        script_user: str,
        on_change: Callable[[], None],
        disabled: frozenset[str] = frozenset(),
        on_rs_change: RsChange | None = None,
    ) -> None:
        self.servers = tuple(servers)
        # Key paths of MISC_CHECK scripts that failed the security check: they
        # never run and their real servers count as failed.
        self.disabled = disabled
        self.plane = plane
        self.script_user = script_user
        self._on_change = on_change
        self._on_rs_change = on_rs_change
        self.checkers: dict[RsKey, RealServerChecker] = {}
        for i, vs in enumerate(self.servers):
            for rs in vs.real_servers:
                if rs.checker is not None:
                    self.checkers[(i, rs.ip, rs.port)] = self._checker((i, rs.ip, rs.port), vs, rs)
        # What the plane holds now: (plan, ifname) per active virtual server.
        self.applied: list[tuple[ServicePlan, str]] = []
        self.last_error: str | None = None

    def _checker(self, key: RsKey, vs: VirtualServer, rs: RealServer) -> RealServerChecker:
        # The checker logs the change with its reason; the daemon re-plans.
        i, _, _ = key
        j = vs.real_servers.index(rs)
        path = f"virtual_servers[{i}].real_servers[{j}].MISC_CHECK.misc_path"
        why = "insecure (enable_script_security)" if path in self.disabled else None

        def changed() -> None:
            # Only when the verdict flipped, as keepalived's smtp_alert per checker.
            if self._on_rs_change is not None:
                self._on_rs_change(vs, rs, self.checkers[key].up)
            self._on_change()

        return RealServerChecker(vs, rs, self.script_user, changed, disabled=why)

    def start(self) -> None:
        for checker in self.checkers.values():
            checker.start()

    def stop(self) -> None:
        """Checkers stopped and our rules gone: nothing of ours forwards."""
        for checker in self.checkers.values():
            checker.stop()
        try:
            self.plane.clear()
        except (OSError, RuntimeError) as err:
            log.error("lvs (%s): removing our rules failed: %s", self.plane.name, err)
        self.applied = []

    async def wait_closed(self) -> None:
        for checker in self.checkers.values():
            await checker.wait_closed()

    def plans(self) -> list[ServicePlan]:
        out = []
        for i, vs in enumerate(self.servers):
            healthy = {
                (rs.ip, rs.port): self.checkers[(i, rs.ip, rs.port)].up
                for rs in vs.real_servers
                if (i, rs.ip, rs.port) in self.checkers
            }
            out.append(plan_service(vs, healthy))
        return out

    def sync(self, held: Mapping[IPAddr, str]) -> None:
        """Program the plane for the virtual servers whose VIP this node holds
        (`held`: VIP -> the interface it is on); only when that changed."""
        wanted = [(p, held[p.vs.ip]) for p in self.plans() if p.vs.ip in held]
        # A DR backend whose MAC was not known yet was left out: try again
        # (each call is one neighbour lookup) until it is resolved.
        if wanted == self.applied and not getattr(self.plane, "unresolved", None):
            return
        try:
            self.plane.apply(wanted)
        except (OSError, RuntimeError, ValueError) as err:
            # Logged once per distinct failure; the next change tries again.
            message = str(err)
            if message != self.last_error:
                log.error("lvs (%s): applying the rules failed: %s", self.plane.name, message)
            self.last_error = message
            return
        self.last_error = None
        self.applied = wanted
        for plan, ifname in wanted:
            vs = plan.vs
            to = ", ".join(f"{b.ip}:{b.port}{'(sorry)' if b.sorry else ''}" for b in plan.scheduled)
            log.info("virtual server %s:%d %s on %s -> %s", vs.ip, vs.port, vs.lb_kind,
                     ifname, to or "nothing")  # fmt: skip
        if not wanted:
            log.info("lvs (%s): no virtual server is active on this node", self.plane.name)

    def status(self) -> list[dict[str, object]]:
        active = {id(p.vs) for p, _ in self.applied}
        out: list[dict[str, object]] = []
        for i, (vs, plan) in enumerate(zip(self.servers, self.plans())):
            out.append(
                {
                    "virtual_server": f"{vs.ip}:{vs.port}/{vs.protocol}",
                    "lb_algo": vs.lb_algo,
                    "lb_kind": vs.lb_kind,
                    "data_plane": self.plane.name,
                    "active": id(vs) in active,
                    "scheduled": [f"{b.ip}:{b.port}" for b in plan.scheduled],
                    "on_sorry_server": plan.on_sorry_server,
                    "real_servers": {
                        f"{rs.ip}:{rs.port}": (
                            self.checkers[(i, rs.ip, rs.port)].status()
                            if (i, rs.ip, rs.port) in self.checkers
                            else {"state": "UP", "checker": None}
                        )
                        for rs in vs.real_servers
                    },
                }
            )
        return out


def make_plane(lvs_backend: str, servers: Sequence[VirtualServer]) -> DataPlane:
    """The data plane `global_defs.lvs_backend` asks for; auto: IPVS when the
    kernel has it, else nftables (validate has checked the choice)."""
    from vrrp_agent.lvs.capabilities import choose, detect

    backend = choose(lvs_backend, detect())
    if backend == "ipvs":
        from vrrp_agent.lvs.ipvs import IpvsPlane

        # Knowing every configured service lets it clean up, at start, ours
        # left by a crash on a VIP this node does not hold.
        return IpvsPlane(virtual_servers=servers)
    from vrrp_agent.lvs.nftables import NftablesPlane

    return NftablesPlane()
