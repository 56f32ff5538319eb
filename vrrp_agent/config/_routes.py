"""An instance's unicast_peer (with keepalived's per-peer TTL range) and virtual_routes.

Both take keepalived's one-line syntax or a mapping of the same names, as
virtual_ipaddress does (see _vrrp._vips).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

from vrrp_agent.wire.addresses import IPAddr

from ._reader import (
    Invalid,
    Section,
    describe,
    family_name,
    ifname,
    ints,
    ip_addr,
    text,
    word_options,
)  # fmt: skip
from .model import ROUTE_SCOPES, ROUTE_TABLES, ROUTE_TYPES, IPNet, VirtualRoute, config_keys

TtlRange = tuple[int, int]
_TTL = ints(0, 255)
_PEER_KEYS = ("address", "min_ttl", "max_ttl")

# --- unicast_peer ---------------------------------------------------------------


def _ttl_range(min_ttl: int | None, max_ttl: int | None) -> TtlRange | None:
    # keepalived: one bound given, the other stays open (0 or 255)
    if min_ttl is None and max_ttl is None:
        return None
    lo, hi = 0 if min_ttl is None else min_ttl, 255 if max_ttl is None else max_ttl
    if lo > hi:
        raise Invalid(f"min_ttl {lo} is greater than max_ttl {hi}")
    return lo, hi


def peer_from_string(item: str) -> tuple[IPAddr, TtlRange | None]:
    # keepalived's syntax: "ADDR [min_ttl N] [max_ttl N]"
    words = item.split()
    if not words:
        raise Invalid("must not be empty")
    address = ip_addr(words[0])
    options = word_options(item, words[1:], ("min_ttl", "max_ttl"), "min_ttl N, max_ttl N")
    bounds: dict[str, int] = {}
    for option, word in options.items():
        if not word.isdigit():
            raise Invalid(f"{option} must be an integer 0..255, got {word!r}")
        bounds[option] = _TTL(int(word))
    return address, _ttl_range(bounds.get("min_ttl"), bounds.get("max_ttl"))


def parse_peers(s: Section) -> list[tuple[str, IPAddr, TtlRange | None]]:
    """(keypath, address, TTL range or None) for each valid unicast_peer entry."""
    out: list[tuple[str, IPAddr, TtlRange | None]] = []
    for keypath, item in s.items("unicast_peer"):
        try:
            if isinstance(item, dict):
                start = len(s.problems)
                sub = Section(s.problems, item, keypath, _PEER_KEYS)
                address = sub.need("address", ip_addr)
                lo = sub.get("min_ttl", _TTL, None)
                hi = sub.get("max_ttl", _TTL, None)
                if address is None or len(s.problems) != start:
                    s.bad.add("unicast_peer")
                    continue
                out.append((keypath, address, _ttl_range(lo, hi)))
            elif isinstance(item, str):
                out.append((keypath, *peer_from_string(item)))
            else:
                raise Invalid(
                    f"expected 'ADDR [min_ttl N] [max_ttl N]' or a mapping, got {describe(item)}"
                )
        except Invalid as err:
            s.error("unicast_peer", str(err), keypath)
    return out


# --- virtual_routes ---------------------------------------------------------------

_SUPPORTED = "src ADDR, [to] ADDR/LEN, via GW, dev IF, metric N, table T, scope S, " + "|".join(
    ROUTE_TYPES
)


def _network(value: Any) -> IPNet:
    word = text(value).strip()
    try:
        net = ip_network(word)
    except ValueError as err:
        raise Invalid(f"{word!r} is not a destination ADDR[/LEN] ({err})") from None
    return net


def _table(value: Any) -> int:
    if isinstance(value, str) and not value.isdigit():
        if value not in ROUTE_TABLES:
            raise Invalid(f"table must be a number 1..4294967295, main or local, got {value!r}")
        return ROUTE_TABLES[value]
    number = int(value) if isinstance(value, str) else value
    return ints(1, 2**32 - 1)(number)


def _metric(value: Any) -> int:
    return ints(0, 2**32 - 1)(int(value) if isinstance(value, str) and value.isdigit() else value)


def _word_of(options: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        word = text(value).strip().lower()
        if word not in options:
            raise Invalid(f"{what} must be one of {', '.join(options)}, got {value!r}")
        return word

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "to": _network,
    "src": ip_addr,
    "via": ip_addr,
    "dev": ifname,
    "metric": _metric,
    "table": _table,
    "scope": _word_of(ROUTE_SCOPES, "scope"),
    "type": _word_of(ROUTE_TYPES, "type"),
}
# keepalived writes the gateway as `via` or `gw`
_ALIASES = {"gw": "via"}


def _route_from_string(item: str) -> dict[str, Any]:
    # keepalived: "[TYPE] [src ADDR] [to] ADDR/LEN [via GW] [dev IF] ...", and
    # "ADDR/LEN blackhole" is seen too.
    words = item.split()
    if not words:
        raise Invalid("must not be empty")
    values: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in values:
            raise Invalid(f"{key!r} given twice in {item!r}")
        values[key] = _CHECKS[key](value)

    while words:
        word = words.pop(0)
        key = _ALIASES.get(word, word)
        if key in ROUTE_TYPES:
            put("type", key)
        elif key in _CHECKS and key != "type":
            if not words:
                raise Invalid(f"{word!r} needs a value in {item!r}")
            put(key, words.pop(0))
        elif "to" not in values and (word[0].isdigit() or ":" in word):
            put("to", word)
        else:
            raise Invalid(f"unsupported option {word!r} in {item!r} (supported: {_SUPPORTED})")
    return values


def _route_from_mapping(s: Section, keypath: str, item: dict[Any, Any]) -> dict[str, Any] | None:
    start = len(s.problems)
    sub = Section(s.problems, item, keypath, config_keys(VirtualRoute))
    values = {"to": sub.need("to", _network)}
    for key, check in _CHECKS.items():
        if key != "to" and key in item:
            values[key] = sub.get(key, check, None)
    return values if len(s.problems) == start else None


def _route(values: dict[str, Any]) -> VirtualRoute:
    if values.get("to") is None:
        raise Invalid("no destination ADDR/LEN")
    route = VirtualRoute(**values)
    fam = route.family
    for key in ("src", "via"):
        addr = getattr(route, key)
        if addr is not None and addr.version != fam:
            raise Invalid(f"{key} {addr} is {family_name(addr.version)}, the destination is not")
    if route.type is not None and (route.via is not None or route.dev is not None):
        # the kernel refuses them too ("Gateway, device ... can not be specified")
        raise Invalid(f"a {route.type} route takes neither via nor dev")
    if route.type is None and route.via is None and route.dev is None:
        raise Invalid("a route needs via GW or dev IF (or a type: " + ", ".join(ROUTE_TYPES) + ")")
    return route


def route_from_string(item: str) -> VirtualRoute:
    """One route in keepalived's syntax, checked; raises Invalid."""
    return _route(_route_from_string(item))


def parse_routes(s: Section) -> list[tuple[str, VirtualRoute]]:
    """(keypath, route) for each valid virtual_routes entry. Each route has its
    own family, as in keepalived: an IPv4 instance may carry IPv6 routes."""
    out: list[tuple[str, VirtualRoute]] = []
    seen: dict[tuple[object, ...], str] = {}
    for keypath, item in s.items("virtual_routes"):
        try:
            if isinstance(item, dict):
                values = _route_from_mapping(s, keypath, item)
                if values is None:
                    s.bad.add("virtual_routes")
                    continue
            elif isinstance(item, str):
                values = _route_from_string(item)
            else:
                raise Invalid(
                    f"expected a route in keepalived's syntax or a mapping, got {describe(item)}"
                )
            route = _route(values)
        except Invalid as err:
            s.error("virtual_routes", str(err), keypath)
            continue
        # what the kernel tells routes apart by: table, destination, metric
        key = (route.to, route.table or ROUTE_TABLES["main"], route.metric or 0)
        if key in seen:
            s.error(
                "virtual_routes",
                f"duplicate of {seen[key]} (same destination, table and metric)",
                keypath,
            )
            continue
        seen[key] = keypath
        out.append((keypath, route))
    return out
