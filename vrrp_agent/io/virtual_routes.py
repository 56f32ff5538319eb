"""An instance's virtual_routes in the kernel: added after its VIPs (so that
`src VIP` finds the address), removed before them.

Failures are reported the way a VIP's are (route text -> why), into the same
errors the router retries on and faults by (core/vip_retry.py). keepalived
only logs a route it could not add.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

from vrrp_agent.config import VirtualRoute
from vrrp_agent.io.netlink import RT_TABLE_MAIN, RouteSpec, Rtnl, add_route, del_route


def _ifindex(dev: str) -> int:
    try:
        return socket.if_nametoindex(dev)
    except OSError as err:
        if err.errno is None:  # Python's if_nametoindex raises one without an errno
            raise OSError(errno.ENODEV, "No such device") from None
        raise


def spec(route: VirtualRoute) -> RouteSpec:
    """The kernel's view of `route`, its device resolved by name now (a
    device made again has a new index; the route belongs on the new one)."""
    return RouteSpec(
        dst=route.to,
        src=route.src,
        gateway=route.via,
        oif=_ifindex(route.dev) if route.dev is not None else None,
        metric=route.metric,
        table=route.table or RT_TABLE_MAIN,
        scope=route.scope,
        type=route.type,
    )


def why(err: OSError, route: VirtualRoute) -> str:
    name = errno.errorcode.get(err.errno or 0, "error")
    if err.errno in (errno.ENODEV, errno.ENXIO) and route.dev is not None:
        return f"{name} no such device {route.dev}"
    return f"{name} {err.strerror or err}"


def set_routes(
    rtnl: Rtnl, routes: Sequence[VirtualRoute], present: bool
) -> tuple[list[str], dict[str, str]]:
    """Add or remove every route; one failing never stops the others.
    Returns the routes changed and those that failed (route -> why)."""
    changed: list[str] = []
    errors: dict[str, str] = {}
    for route in routes:
        try:
            done = add_route(rtnl, spec(route)) if present else del_route(rtnl, spec(route))
        except OSError as err:
            if not present and err.errno in (errno.ENODEV, errno.ENXIO):
                continue  # the device is gone, and its routes with it
            errors[str(route)] = why(err, route)
            continue
        if done:
            changed.append(str(route))
    return changed, errors


def probe_routes(routes: Sequence[VirtualRoute]) -> dict[str, str]:
    """Whether every route's device exists now (an add would find it)."""
    errors = {}
    for route in routes:
        if route.dev is not None:
            try:
                _ifindex(route.dev)
            except OSError as err:
                errors[str(route)] = why(err, route)
    return errors
