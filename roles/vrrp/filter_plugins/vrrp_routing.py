"""VIPs announced by a routing protocol (FRR): the preflight rules and the
plan changes, as two pure filters beside vrrp_topology's.

- ``vrrp_routing_problems(nodes, me, settings)``: what cannot work with
  ``vrrp_vip_routing`` (and, with routing off too, nodes in different subnets
  without unicast), each problem naming the inventory variable and the host.
- ``vrrp_routed(plan, nodes, me, settings)``: ``vrrp_plan``'s output with the
  VIPs moved to ``lo`` as host routes and a ``routing`` entry for the frr role
  (None when routing is off).

The layout (README, "Nodes in different subnets"): each VIP is a /32 in a
subnet of its own, on no physical interface. The agent adds it to ``lo``
while the node holds it; FRR redistributes connected routes through a
route-map that matches the VIPs only, so zebra's view of the address *is* the
announcement: there is no script between the agent and FRR that could fall
out of step. ``vrrp`` mode: the VRRP master holds it (by unicast between the
nodes, which may be subnets apart). ``anycast`` mode: every node holds it
while its health check passes; each node's instance is alone (no peers, no
election), and a failing check (weight 0) puts it in FAULT, which removes the
address and so withdraws the route.

``nodes`` entries carry ``network`` (the node's vrrp_interface subnet,
"ADDR/PREFIX", or None when unknown) besides vrrp_topology's fields.
"""

from __future__ import annotations

import ipaddress
from typing import Any

ROUTING = ("ospf", "bgp")
AS_MAX = 4294967295


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _vip(text: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    try:
        return ipaddress.ip_interface(str(text).strip())
    except ValueError:
        return None


def _ipv4(text: Any) -> ipaddress.IPv4Address | None:
    try:
        addr = ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None
    return addr if addr.version == 4 else None


def _network(node: dict[str, Any]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(node.get("network") or "", strict=False)
    except ValueError:
        return None


def _area(value: Any) -> str | None:
    """An OSPF area as FRR writes it: dotted quad, or a number 0..2^32-1."""
    if _is_int(value) and 0 <= value <= AS_MAX:
        return str(ipaddress.IPv4Address(value))
    if isinstance(value, str) and _ipv4(value) is not None:
        return str(_ipv4(value))
    if isinstance(value, str) and value.isdigit() and int(value) <= AS_MAX:
        return str(ipaddress.IPv4Address(int(value)))
    return None


def _router_id(node: dict[str, Any], settings: dict[str, Any]) -> str | None:
    """Never the VIP (FRR's default is the highest loopback address, and two
    nodes holding the VIP in a split brain would share it): the host override,
    else the node's own address."""
    given = settings["vip_routing_router_id"]
    if given:
        return str(given)
    return node.get("unicast_src_ip") or node.get("address")


def vrrp_routing_problems(
    nodes: list[dict[str, Any]], me: str, settings: dict[str, Any]
) -> list[str]:
    p: list[str] = []
    at = f"(host {me})"
    routing = settings["vip_routing"]
    mode = settings["vip_routing_mode"]
    anycast = mode == "anycast"
    names = [n["name"] for n in nodes]

    subnets = {n["name"]: _network(n) for n in nodes}
    distinct = {str(net) for net in subnets.values() if net is not None}
    if len(distinct) > 1 and not settings["unicast"] and not anycast:
        where = ", ".join(f"{k} {v}" for k, v in subnets.items() if v is not None)
        p.append(
            f"vrrp_unicast: the nodes are in different subnets ({where}) and multicast VRRP "
            f"does not cross a router; set vrrp_unicast: true {at}"
        )

    if anycast and routing == "none":
        p.append(
            "vrrp_vip_routing_mode: anycast needs a routing protocol to announce the VIP "
            f"from every healthy node (set vrrp_vip_routing: ospf or bgp) {at}"
        )
    if routing == "none" or me not in names:
        return p

    topology = settings["topology"]
    if topology == "lvs_nginx":
        p.append(
            "vrrp_vip_routing: not available with lvs_nginx (the directors forward to real "
            f"servers on their own segment); use master_backup or dual_master {at}"
        )
    if anycast and topology != "master_backup":
        p.append(
            "vrrp_vip_routing_mode: anycast announces one VIP from every node; set "
            f"vrrp_topology: master_backup (got {topology!r}) {at}"
        )
    for k, text in enumerate(settings["vips"] if isinstance(settings["vips"], list) else []):
        vip = _vip(text)
        if vip is None:
            continue  # vrrp_problems names it
        if vip.version != 4:
            p.append(
                f"vrrp_vips[{k}]: {text} is IPv6; vrrp_vip_routing announces IPv4 VIPs only {at}"
            )
            continue
        if "/" in str(text) and vip.network.prefixlen != 32:
            p.append(
                f"vrrp_vips[{k}]: {text}: a routed VIP is announced as a host route; write "
                f"{vip.ip} or {vip.ip}/32 {at}"
            )
        for node, net in subnets.items():
            if net is not None and vip.ip in net:
                p.append(
                    f"vrrp_vips[{k}]: {vip.ip} is inside {node}'s subnet {net}; with "
                    f"vrrp_vip_routing the VIP needs a subnet of its own, configured on no "
                    f"interface (e.g. a /32 from a range the routers know nothing else of) {at}"
                )

    if anycast:
        checks = settings["health_checks"]
        if not checks:
            p.append(
                "vrrp_health_checks: anycast withdraws a node only when its check fails; "
                f"with no check a node whose service is down keeps attracting clients {at}"
            )
        weight = settings["check_weight"]
        if _is_int(weight) and weight != 0:
            p.append(
                f"vrrp_check_weight: anycast nodes are alone in their VRID, so only a check "
                f"that puts the node in FAULT (weight 0) withdraws it; got {weight} {at}"
            )

    rid = settings["vip_routing_router_id"]
    if rid and _ipv4(rid) is None:
        p.append(f"vrrp_vip_routing_router_id: must be an IPv4 address, got {rid!r} {at}")

    if routing == "ospf":
        if _area(settings["vip_routing_ospf_area"]) is None:
            got = settings["vip_routing_ospf_area"]
            p.append(
                "vrrp_vip_routing_ospf_area: vrrp_vip_routing: ospf needs the area the "
                f"nodes' interfaces are in (e.g. 0.0.0.0), got {got!r} {at}"
            )
        hello = settings["vip_routing_ospf_hello_interval"]
        dead = settings["vip_routing_ospf_dead_interval"]
        if not _is_int(hello) or not 1 <= hello <= 65535:
            p.append(f"vrrp_vip_routing_ospf_hello_interval: 1..65535 seconds, got {hello!r} {at}")
        elif not _is_int(dead) or not hello < dead <= 65535:
            p.append(
                f"vrrp_vip_routing_ospf_dead_interval: must be above the hello interval "
                f"({hello}) and at most 65535 seconds, got {dead!r} {at}"
            )
    if routing == "bgp":
        asn = settings["vip_routing_bgp_asn"]
        if not _is_int(asn) or not 1 <= asn <= AS_MAX:
            p.append(
                "vrrp_vip_routing_bgp_asn: vrrp_vip_routing: bgp needs this node's AS number "
                f"(1..{AS_MAX}), got {asn!r} {at}"
            )
        peers = settings["vip_routing_bgp_peers"]
        if not isinstance(peers, list) or not peers:
            p.append(
                "vrrp_vip_routing_bgp_peers: vrrp_vip_routing: bgp needs the routers to "
                f"announce to, as [{{address: ADDR, asn: N}}], got {peers!r} {at}"
            )
            peers = []
        for k, peer in enumerate(peers):
            ok = (
                isinstance(peer, dict)
                and _ipv4(peer.get("address")) is not None
                and _is_int(peer.get("asn"))
                and 1 <= peer["asn"] <= AS_MAX
            )
            if not ok:
                p.append(
                    f"vrrp_vip_routing_bgp_peers[{k}]: must be {{address: IPv4, asn: "
                    f"1..{AS_MAX}}}, got {peer!r} {at}"
                )
        keep = settings["vip_routing_bgp_keepalive"]
        hold = settings["vip_routing_bgp_holdtime"]
        if not _is_int(keep) or not 1 <= keep <= 65535:
            p.append(f"vrrp_vip_routing_bgp_keepalive: 1..65535 seconds, got {keep!r} {at}")
        elif not _is_int(hold) or not (hold >= 3 and hold > keep) or hold > 65535:
            # RFC 4271 4.2: a hold time is 0 or at least 3 s; 0 would never notice a dead peer.
            p.append(
                f"vrrp_vip_routing_bgp_holdtime: must be at least 3 s and above the "
                f"keepalive ({keep}), got {hold!r} {at}"
            )
    if settings["vip_routing_bfd"]:
        interval = settings["vip_routing_bfd_interval"]
        mult = settings["vip_routing_bfd_multiplier"]
        if not _is_int(interval) or not 10 <= interval <= 60000:
            p.append(f"vrrp_vip_routing_bfd_interval: 10..60000 ms, got {interval!r} {at}")
        if not _is_int(mult) or not 2 <= mult <= 255:
            p.append(f"vrrp_vip_routing_bfd_multiplier: 2..255, got {mult!r} {at}")
    return p


def vrrp_routed(
    plan: dict[str, Any], nodes: list[dict[str, Any]], me: str, settings: dict[str, Any]
) -> dict[str, Any]:
    routing = settings["vip_routing"]
    if routing == "none":
        return {**plan, "routing": None}
    problems = vrrp_routing_problems(nodes, me, settings)
    if problems:
        raise ValueError("; ".join(problems))  # preflight runs first
    node = next(n for n in nodes if n["name"] == me)
    anycast = settings["vip_routing_mode"] == "anycast"
    prefixes = []
    instances = {}
    for name, inst in plan["instances"].items():
        inst = dict(inst)
        ips = [str(_vip(v.split()[0]).ip) for v in inst["virtual_ipaddress"]]  # type: ignore[union-attr]
        prefixes += [f"{ip}/32" for ip in ips]
        # On lo, as a host route: configured on no physical interface, announced by FRR.
        inst["virtual_ipaddress"] = [f"{ip}/32 dev lo" for ip in ips]
        if anycast:
            # Alone in its VRID: an explicit empty peer list sends nothing and hears
            # nothing, so the node holds the VIP whenever its check lets it.
            inst["unicast_src_ip"] = str(node.get("unicast_src_ip") or node.get("address"))
            inst["unicast_peer"] = []
            inst["state"] = "MASTER"
            inst.pop("nopreempt", None)
            inst.pop("preempt_delay", None)
        instances[name] = inst
    bfd = settings["vip_routing_bfd"]
    return {
        **plan,
        "instances": instances,
        "routing": {
            "protocol": routing,
            "mode": settings["vip_routing_mode"],
            "router_id": _router_id(node, settings),
            "interface": settings["interface"],
            "prefixes": prefixes,
            "ospf": {
                "area": _area(settings["vip_routing_ospf_area"]),
                "network": settings["vip_routing_ospf_network"],
                "hello_interval": settings["vip_routing_ospf_hello_interval"],
                "dead_interval": settings["vip_routing_ospf_dead_interval"],
            }
            if routing == "ospf"
            else None,
            "bgp": {
                "asn": settings["vip_routing_bgp_asn"],
                "peers": [
                    {"address": str(_ipv4(p["address"])), "asn": p["asn"]}
                    for p in settings["vip_routing_bgp_peers"]
                ],
                "keepalive": settings["vip_routing_bgp_keepalive"],
                "holdtime": settings["vip_routing_bgp_holdtime"],
            }
            if routing == "bgp"
            else None,
            "bfd": {
                "interval": settings["vip_routing_bfd_interval"],
                "multiplier": settings["vip_routing_bfd_multiplier"],
            }
            if bfd
            else None,
        },
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"vrrp_routing_problems": vrrp_routing_problems, "vrrp_routed": vrrp_routed}
