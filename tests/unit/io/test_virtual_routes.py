"""virtual_routes as rtnetlink requests: what each route asks the kernel
for, and how failures are reported (no root: a fake Rtnl records them)."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

from vrrp_agent.config import VirtualRoute
from vrrp_agent.io import netlink
from vrrp_agent.io.nlexchange import NetlinkError
from vrrp_agent.io.virtual_routes import probe_routes, set_routes


class FakeRtnl:
    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.sent: list[tuple[int, int, Any]] = []
        self.fail = fail or {}

    def request(self, msg_type: int, flags: int, msg: Any) -> list[bytes]:
        self.sent.append((msg_type, flags, msg))
        dst = dict(msg["attrs"]).get("RTA_DST")
        if dst in self.fail:
            raise NetlinkError(self.fail[dst], "refused")
        return []


GW = VirtualRoute(IPv4Network("10.98.0.0/24"), src=IPv4Address("10.99.9.1"),
                  via=IPv4Address("10.99.1.254"), dev="lo", metric=7, table=1000)  # fmt: skip
HOLE = VirtualRoute(IPv4Network("10.97.0.0/16"), type="blackhole")
LINK6 = VirtualRoute(IPv6Network("fd00:9::/64"), dev="lo", table=100)


def test_each_route_becomes_one_tagged_request() -> None:
    rtnl = FakeRtnl()
    changed, errors = set_routes(rtnl, [GW, HOLE, LINK6], present=True)  # type: ignore[arg-type]
    assert errors == {} and changed == [str(GW), str(HOLE), str(LINK6)]
    (t1, f1, m1), (_, _, m2), (_, _, m3) = rtnl.sent
    assert t1 == netlink.RTM_NEWROUTE and f1 & netlink.NLM_F_EXCL
    assert all(m["proto"] == 112 for m in (m1, m2, m3))
    attrs = dict(m1["attrs"])
    assert attrs == {"RTA_TABLE": 1000, "RTA_DST": "10.98.0.0", "RTA_PREFSRC": "10.99.9.1",
                     "RTA_GATEWAY": "10.99.1.254", "RTA_OIF": 1, "RTA_PRIORITY": 7}  # fmt: skip
    assert (m1["table"], m1["dst_len"], m1["type"], m1["scope"]) == (0, 24, 1, 0)
    assert (m2["table"], m2["type"], m2["scope"]) == (254, 6, 0)
    # no gateway: a link-scope route, as `ip route add` makes it
    assert (m3["family"], m3["table"], m3["scope"]) == (10, 100, 253)


def test_removal_matches_any_scope_and_a_missing_route_is_not_an_error() -> None:
    rtnl = FakeRtnl(fail={"10.97.0.0": errno.ESRCH})
    changed, errors = set_routes(rtnl, [GW, HOLE], present=False)  # type: ignore[arg-type]
    assert changed == [str(GW)] and errors == {}
    assert [m["scope"] for _, _, m in rtnl.sent] == [255, 255]
    assert {t for t, _, _ in rtnl.sent} == {netlink.RTM_DELROUTE}


def test_a_failed_add_is_reported_by_route_and_the_others_still_go_in() -> None:
    rtnl = FakeRtnl(fail={"10.98.0.0": errno.EINVAL})
    missing = VirtualRoute(IPv4Network("10.96.0.0/16"), dev="nosuchdev0")
    changed, errors = set_routes(rtnl, [GW, missing, HOLE], present=True)  # type: ignore[arg-type]
    assert changed == [str(HOLE)]
    assert errors[str(GW)].startswith("EINVAL")
    assert errors[str(missing)] == "ENODEV no such device nosuchdev0"
    assert probe_routes([GW, missing]) == {str(missing): "ENODEV no such device nosuchdev0"}
    # EEXIST: already there, not an error and not a change
    rtnl = FakeRtnl(fail={"10.97.0.0": errno.EEXIST})
    assert set_routes(rtnl, [HOLE], present=True) == ([], {})  # type: ignore[arg-type]
