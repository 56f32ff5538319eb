"""The LVS manager tells the alert mail of each checker verdict change."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address

from vrrp_agent.config.enums import CheckerKind
from vrrp_agent.config.model import Checker, RealServer, VirtualServer
from vrrp_agent.lvs.manager import LvsManager
from vrrp_agent.lvs.plan import ServicePlan


class Plane:
    name = "fake"

    def apply(self, services: Sequence[tuple[ServicePlan, str]]) -> None:
        pass

    def clear(self) -> None:
        pass


def test_a_verdict_change_reaches_on_rs_change_then_on_change() -> None:
    rs = RealServer(ip_address("10.0.0.1"), 80, checker=Checker(kind=CheckerKind.TCP_CHECK))
    vs = VirtualServer(ip_address("192.168.1.100"), 80, real_servers=(rs,))
    calls: list[object] = []
    mgr = LvsManager([vs], Plane(), "nobody", lambda: calls.append("replan"),
                     on_rs_change=lambda v, r, up: calls.append((v, r, up)))  # fmt: skip
    checker = mgr.checkers[(0, rs.ip, rs.port)]
    # what the checker does after RealServerHealth flipped its verdict
    checker._on_change()
    assert calls == [(vs, rs, True), "replan"]


def test_without_on_rs_change_only_replans() -> None:
    rs = RealServer(ip_address("10.0.0.1"), 80, checker=Checker(kind=CheckerKind.TCP_CHECK))
    vs = VirtualServer(ip_address("192.168.1.100"), 80, real_servers=(rs,))
    calls: list[str] = []
    mgr = LvsManager([vs], Plane(), "nobody", lambda: calls.append("replan"))
    mgr.checkers[(0, rs.ip, rs.port)]._on_change()
    assert calls == ["replan"]
