"""arbiter: the reference addresses that settle split brain."""

from __future__ import annotations

from typing import Any

from ._reader import Problems, Section, choice, describe, floats, ifname, ints, ip_addr
from .enums import ArbiterMethod
from .model import Arbiter


def parse_arbiter(problems: Problems, data: Any) -> Arbiter | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.add("arbiter", f"expected a mapping, got {describe(data)}")
        return None
    start = len(problems)
    s = Section(problems, data, "arbiter", cls=Arbiter)
    addresses = s.checked_items("addresses", ip_addr, required=True)
    settings: dict[str, Any] = {
        "method": s.get("method", choice(ArbiterMethod, upper=False)),
        "interface": s.get("interface", ifname),
        "interval": s.get("interval", floats(lo_open=True)),
        "timeout": s.get("timeout", floats(lo_open=True)),
        "fall": s.get("fall", ints(1)),
        "rise": s.get("rise", ints(1)),
    }
    if s.ok("interval", "timeout") and settings["timeout"] > settings["interval"]:
        s.error("timeout", "timeout must not exceed interval (one probe round at a time)")
    if s.ok("method") and settings["method"] == ArbiterMethod.ARP:
        if settings["interface"] is None and s.ok("interface"):
            s.error("interface", "method arp needs the interface to probe on")
        for keypath, address in addresses:
            if address.version != 4:
                s.error("addresses", "ARP probes are IPv4 only; use method icmp", keypath)
    seen: set[Any] = set()
    for keypath, address in addresses:
        if address in seen:
            s.error("addresses", f"{address} is listed twice", keypath)
        seen.add(address)
    if len(problems) != start or not addresses:
        return None
    return Arbiter(addresses=tuple(a for _, a in addresses), **settings)
