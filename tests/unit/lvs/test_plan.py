"""plan_service: keepalived's rules for which backends a virtual server has."""

from __future__ import annotations

from ipaddress import ip_address

from vrrp_agent.config.model import RealServer, SorryServer, VirtualServer
from vrrp_agent.lvs.plan import Backend, plan_service

A, B = ip_address("10.0.0.1"), ip_address("10.0.0.2")
SORRY = SorryServer(ip_address("10.0.0.9"), 8080)


def vs(*reals: RealServer, sorry: SorryServer | None = None) -> VirtualServer:
    return VirtualServer(ip_address("10.0.0.100"), 80, real_servers=reals, sorry_server=sorry)


def test_healthy_and_unchecked_servers_are_scheduled_with_their_weights() -> None:
    plan = plan_service(vs(RealServer(A, 80, 3), RealServer(B, 80, 1)), {(A, 80): True})
    assert plan.scheduled == (Backend(A, 80, 3), Backend(B, 80, 1))
    assert not plan.on_sorry_server


def test_a_failed_server_is_removed_or_inhibited_with_weight_zero() -> None:
    reals = (RealServer(A, 80, 2), RealServer(B, 80, 2, inhibit_on_failure=True))
    plan = plan_service(vs(*reals), {(A, 80): False, (B, 80): False})
    assert plan.backends == (Backend(B, 80, 0),)
    assert plan.scheduled == ()


def test_weight_zero_is_kept_but_never_scheduled() -> None:
    plan = plan_service(vs(RealServer(A, 80, 0), RealServer(B, 80, 1)), {})
    assert plan.scheduled == (Backend(B, 80, 1),)


def test_everything_down_goes_to_the_sorry_server_and_back() -> None:
    reals = (RealServer(A, 80, 1), RealServer(B, 80, 1, inhibit_on_failure=True))
    down = plan_service(vs(*reals, sorry=SORRY), {(A, 80): False, (B, 80): False})
    assert down.backends == (Backend(SORRY.ip, SORRY.port, 1, sorry=True),)
    assert down.on_sorry_server
    one_back = plan_service(vs(*reals, sorry=SORRY), {(A, 80): True, (B, 80): False})
    assert one_back.scheduled == (Backend(A, 80, 1),)
    assert not one_back.on_sorry_server


def test_no_sorry_server_means_no_backend() -> None:
    plan = plan_service(vs(RealServer(A, 80, 1)), {(A, 80): False})
    assert plan.backends == ()
