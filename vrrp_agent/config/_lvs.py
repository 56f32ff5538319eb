"""virtual_servers: LVS-style load balancing, validated here and run by vrrp_agent.lvs."""

from __future__ import annotations

from typing import Any

from vrrp_agent.wire.addresses import IPAddr

from ._reader import (
    Invalid,
    Problems,
    Section,
    abs_path,
    boolean,
    choice,
    describe,
    family_name,
    floats,
    index,
    ints,
    ip_addr,
    is_hex,
    join,
    text,
)
from .enums import CheckerKind, LbAlgo, LbKind, TransportProtocol
from .model import Checker, RealServer, SorryServer, Url, VirtualServer, config_keys

# Kept as words for the data planes' tests, which check they cover every one.
LB_ALGOS = tuple(algo.value for algo in LbAlgo)
_PORT = ints(1, 65535)
# IPVS weights are non-negative; the nftables data plane expands weights into map
# entries, so keep them small enough to stay cheap.
_RS_WEIGHT = ints(0, 65535)


def _sorry_server(value: Any) -> SorryServer:
    # keepalived writes "sorry_server IP PORT"; a mapping {ip, port} reads better in YAML
    if isinstance(value, dict):
        unknown = sorted(str(k) for k in value if k not in config_keys(SorryServer))
        if unknown:
            raise Invalid(f"unknown key {unknown[0]!r} (expected ip and port)")
        if "ip" not in value or "port" not in value:
            raise Invalid("needs both ip and port")
        return SorryServer(ip_addr(value["ip"]), _PORT(value["port"]))
    words = text(value).split()
    if len(words) != 2:
        raise Invalid(f"expected 'IP PORT' or {{ip: ..., port: ...}}, got {describe(value)}")
    try:
        port = int(words[1])
    except ValueError:
        raise Invalid(f"port {words[1]!r} is not a number") from None
    return SorryServer(ip_addr(words[0]), _PORT(port))


def _urls(problems: Problems, data: Any, keypath: str) -> tuple[Url, ...] | None:
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, (list, dict)) or not items:
        problems.add(keypath, "expected a mapping {path, status_code, digest} or a list of them")
        return None
    start = len(problems)
    urls: list[Url] = []
    for i, item in enumerate(items):
        item_keypath = index(keypath, i) if isinstance(data, list) else keypath
        if not isinstance(item, dict):
            problems.add(item_keypath, f"expected a mapping, got {describe(item)}")
            continue
        s = Section(problems, item, item_keypath, cls=Url)
        path = s.need("path", abs_path)
        status = s.get("status_code", ints(100, 599))
        digest = s.get("digest", text)
        if digest is not None and not (len(digest) == 32 and is_hex(digest)):
            s.error("digest", "expected an MD5 digest: 32 hexadecimal digits")
        if path is not None:
            urls.append(Url(path, status, digest.lower() if digest else None))
    return tuple(urls) if len(problems) == start else None


def _checker(problems: Problems, kind: CheckerKind, data: Any, keypath: str) -> Checker | None:
    if data is None:
        data = {}  # "TCP_CHECK:" alone means every default, like keepalived's TCP_CHECK {}
    if not isinstance(data, dict):
        problems.add(keypath, f"expected a mapping, got {describe(data)}")
        return None
    start = len(problems)
    s = Section(problems, data, keypath, config_keys(Checker, kind), cls=Checker)
    settings: dict[str, Any] = {
        "retry": s.get("retry", ints(0)),
        "delay_before_retry": s.get("delay_before_retry", floats()),
    }
    # keepalived's older name for retry (see Checker.retry)
    if s.has("nb_get_retry"):
        if s.has("retry"):
            s.error("nb_get_retry", "nb_get_retry is keepalived's old name for retry: set one")
        else:
            # an explicit default: Checker has no field of that name to take one from
            settings["retry"] = s.get("nb_get_retry", ints(0), None)
    if kind == CheckerKind.MISC_CHECK:
        settings["misc_path"] = s.need("misc_path", text)
        settings["misc_timeout"] = s.get("misc_timeout", floats(lo_open=True))
    else:
        settings["connect_timeout"] = s.get("connect_timeout", floats(lo_open=True))
        settings["connect_port"] = s.get("connect_port", _PORT)
    if kind in (CheckerKind.HTTP_GET, CheckerKind.SSL_GET):
        if "url" not in data:
            s.error("url", f"{kind} needs at least one url {{path: ..., status_code: ...}}")
        else:
            settings["url"] = _urls(problems, data["url"], s.at("url"))
    return Checker(kind=kind, **settings) if len(problems) == start else None


def _real_server(problems: Problems, data: Any, keypath: str) -> RealServer | None:
    if not isinstance(data, dict):
        problems.add(keypath, f"expected a mapping, got {describe(data)}")
        return None
    start = len(problems)
    kinds = [kind for kind in CheckerKind if kind.value in data]
    s = Section(problems, data, keypath, cls=RealServer)
    ip = s.need("ip", ip_addr)
    port = s.need("port", _PORT)
    weight = s.get("weight", _RS_WEIGHT)
    inhibit = s.get("inhibit_on_failure", boolean)
    alert = s.get("smtp_alert", boolean)
    checker = None
    if len(kinds) > 1:
        problems.add(
            keypath,
            "one health checker per real server is supported, got "
            + ", ".join(kind.value for kind in kinds),
        )
    elif kinds:
        kind = kinds[0]
        checker = _checker(problems, kind, data[kind.value], join(keypath, kind.value))
    if len(problems) != start or ip is None or port is None:
        return None
    return RealServer(ip, port, weight, inhibit, alert, checker)


def parse_virtual_servers(problems: Problems, data: Any) -> tuple[VirtualServer, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        problems.add("virtual_servers", f"expected a list, got {describe(data)}")
        return ()
    servers: list[VirtualServer] = []
    seen: dict[tuple[IPAddr, int, TransportProtocol], str] = {}
    for i, block in enumerate(data):
        keypath = index("virtual_servers", i)
        if not isinstance(block, dict):
            problems.add(keypath, f"expected a mapping, got {describe(block)}")
            continue
        start = len(problems)
        s = Section(problems, block, keypath, cls=VirtualServer)
        ip = s.need("ip", ip_addr)
        port = s.need("port", _PORT)
        settings: dict[str, Any] = {
            "protocol": s.get("protocol", choice(TransportProtocol)),
            "lb_algo": s.get("lb_algo", choice(LbAlgo, upper=False)),
            "lb_kind": s.get("lb_kind", choice(LbKind)),
            "delay_loop": s.get("delay_loop", floats(lo_open=True)),
            "persistence_timeout": s.get("persistence_timeout", ints(0)),
            "sorry_server": s.get("sorry_server", _sorry_server),
            "smtp_alert": s.get("smtp_alert", boolean),
        }
        if ip is not None and port is not None and s.ok("protocol"):
            slot = (ip, port, settings["protocol"])
            if slot in seen:
                problems.add(
                    keypath, f"{ip} port {port} {slot[2]} is already defined at {seen[slot]}"
                )
            seen.setdefault(slot, keypath)
        reals: list[RealServer] = []
        seen_reals: dict[tuple[IPAddr, int], str] = {}
        for rs_keypath, item in s.items("real_servers"):
            real = _real_server(problems, item, rs_keypath)
            if real is None:
                continue
            if (real.ip, real.port) in seen_reals:
                problems.add(rs_keypath, f"duplicate of {seen_reals[real.ip, real.port]}")
            seen_reals.setdefault((real.ip, real.port), rs_keypath)
            # NAT and DR forward the packet as it came; only a tunnel can change family
            if (
                ip is not None
                and real.ip.version != ip.version
                and settings["lb_kind"] != LbKind.TUN
            ):
                problems.add(
                    join(rs_keypath, "ip"),
                    f"{family_name(real.ip.version)} real server behind an"
                    f" {family_name(ip.version)} virtual server (only lb_kind TUN can mix)",
                )
            reals.append(real)
        if len(problems) == start and ip is not None and port is not None:
            servers.append(VirtualServer(ip, port, real_servers=tuple(reals), **settings))
    return tuple(servers)
