"""Derive every node's VRRP instances from the inventory, and check it first.

Two filters, both pure functions of plain data so they are unit-tested
without Ansible (tests/roles/test_topology_filter.py):

- ``vrrp_problems(nodes, me, settings, real_servers)``: every cross-field
  problem, each naming the inventory variable and the host.
- ``vrrp_plan(nodes, me, settings, real_servers)``: this host's instances,
  health checks and virtual servers, in the agent's configuration schema.

``nodes`` is the ordered list of the VRRP group's hosts as
``{"name", "address", "priority", "state", "master_of", "unicast_src_ip"}``
(host overrides are None when unset); ``real_servers`` likewise
``{"name", "address"}``. The order of ``nodes`` is the inventory order: the
first host is master of a single VIP; in dual_master, host i masters VIP i.

``settings`` holds every role variable without its ``vrrp_`` prefix
(vars/main.yml), already checked against meta/argument_specs.yml: the role's
argument validation refuses a wrong type or a value that is not among an
option's choices, naming the variable, before these filters run. So they
check only what one variable's spec cannot say (ranges, formats, and rules
between variables, hosts and facts), and read each setting without a
fallback: every default lives in defaults/main.yml.

dual_master comes in two modes (``vrrp_dual_master_mode``): ``shared``, where
a node that loses its peer holds both VIPs, and ``exclusive``, where the two
instances name each other in ``exclusive_with`` and a node never holds both.
Exclusive mode relies on the health check to *swap* the VIPs: both instances
track it, so one failing check lowers the node's priority in both, its peer
takes the node's VIP and hands over its own, and preemption swaps them back.
"""

from __future__ import annotations

import ipaddress
from typing import Any

# The topologies, dual-master modes, checks, arbiter methods and LVS kinds are
# the `choices:` of their options in meta/argument_specs.yml.
VIP_COUNT = {"master_backup": (1, 1), "dual_master": (2, 2), "lvs_nginx": (1, 255)}
# vrrp_state is one value or a mapping per instance, so its spec is `raw`.
STATES = ("MASTER", "BACKUP")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_vip(text: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_interface(text.strip())
    except ValueError:
        return None


def _parse_ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def instance_names(settings: dict[str, Any]) -> list[str]:
    vips = settings["vips"] or []
    return [f"VI_{i + 1}" for i in range(len(vips) if isinstance(vips, list) else 0)]


def _vrids(settings: dict[str, Any]) -> list[Any]:
    given = settings["vrids"]
    if given:
        return list(given)
    base = settings["vrid_base"]
    return [base + i for i in range(len(instance_names(settings)))]


def _per_instance(value: Any, name: str) -> Any:
    """A host override is either one value for all instances or {VI_n: value}."""
    if isinstance(value, dict):
        return value.get(name)
    return value


def _master_index(nodes: list[dict[str, Any]], j: int, name: str, topology: str) -> int:
    for i, node in enumerate(nodes):
        if name in (node.get("master_of") or []):
            return i
    return j % len(nodes) if topology == "dual_master" else 0


def _priorities(nodes: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, list[Any]]:
    top, step = settings["priority_top"], settings["priority_step"]
    out: dict[str, list[Any]] = {}
    for j, name in enumerate(instance_names(settings)):
        m = _master_index(nodes, j, name, settings["topology"])
        row = []
        for i, node in enumerate(nodes):
            own = _per_instance(node.get("priority"), name)
            rank = (i - m) % len(nodes)
            row.append(own if own is not None else top - rank * step)
        out[name] = row
    return out


def vrrp_problems(
    nodes: list[dict[str, Any]],
    me: str,
    settings: dict[str, Any],
    real_servers: list[dict[str, Any]] | None = None,
) -> list[str]:
    p: list[str] = []
    at = f"(host {me})"
    topology = settings["topology"]
    group = settings["nodes_group"]
    rs_group = settings["real_servers_group"]
    if not nodes:
        p.append(f"vrrp_nodes_group: group {group!r} is missing or empty {at}")
        return p
    if topology == "dual_master" and len(nodes) != 2:
        p.append(
            f"vrrp_topology: dual_master needs exactly two hosts in group {group!r}, "
            f"found {len(nodes)} {at}"
        )
    elif len(nodes) < 2:
        p.append(f"vrrp_nodes_group: {topology} needs at least two hosts in group {group!r} {at}")
    if topology == "lvs_nginx" and not real_servers:
        p.append(
            f"vrrp_real_servers_group: lvs_nginx needs hosts in group {rs_group!r}, "
            f"which is missing or empty {at}"
        )

    interface = settings["interface"]
    if not isinstance(interface, str) or not interface:
        p.append(f"vrrp_interface: must be an interface name, got {interface!r} {at}")
    elif (
        settings.get("host_interfaces") is not None and interface not in settings["host_interfaces"]
    ):
        p.append(f"vrrp_interface: {interface!r} does not exist {at}")

    vips = settings["vips"]
    parsed = []
    # Ansible's `list` type splits a string on commas rather than refuse it, and
    # the filter sees the inventory's value, not the split one: refuse it here.
    if not isinstance(vips, list):
        p.append(f"vrrp_vips: must be a list of addresses, got {vips!r} {at}")
        vips = []
    lo, hi = VIP_COUNT[topology]
    if not lo <= len(vips) <= hi:
        want = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
        p.append(f"vrrp_vips: {topology} takes {want} address(es), got {len(vips)} {at}")
    for k, vip in enumerate(vips):
        iface = _parse_vip(vip)
        if iface is None:
            p.append(f"vrrp_vips[{k}]: {vip!r} is not an IP address (ADDR or ADDR/PREFIX) {at}")
        else:
            parsed.append(iface)
    if len({v.ip for v in parsed}) != len(parsed):
        p.append(f"vrrp_vips: lists the same address twice {at}")
    if len({v.version for v in parsed}) > 1:
        p.append(f"vrrp_vips: mixes IPv4 and IPv6; use one family per deployment {at}")

    version = settings["version"]
    if version == 2 and any(v.version == 6 for v in parsed):
        p.append(f"vrrp_version: VRRPv2 is IPv4 only, but vrrp_vips has IPv6 {at}")
    advert = settings["advert_int"]
    if not _is_number(advert) or advert <= 0:
        p.append(f"vrrp_advert_int: must be a positive number of seconds, got {advert!r} {at}")
    elif version == 2 and (advert != int(advert) or not 1 <= advert <= 255):
        p.append(f"vrrp_advert_int: VRRPv2 takes whole seconds 1..255, got {advert!r} {at}")
    elif version == 3 and not 0.01 <= advert <= 40.95:
        p.append(f"vrrp_advert_int: VRRPv3 takes 0.01..40.95 seconds, got {advert!r} {at}")
    auth = settings["auth_pass"] or ""
    if auth and version != 2:
        p.append(f"vrrp_auth_pass: authentication is VRRPv2 only (set vrrp_version: 2) {at}")
    if auth and (not isinstance(auth, str) or len(auth) > 8):
        p.append(f"vrrp_auth_pass: must be a string of at most 8 characters {at}")

    nopreempt = settings["nopreempt"]
    delay = settings["preempt_delay"]
    if not _is_number(delay) or not 0 <= delay <= 1000:
        p.append(f"vrrp_preempt_delay: must be 0..1000 seconds, got {delay!r} {at}")
    elif nopreempt and delay > 0:
        p.append(f"vrrp_preempt_delay: has no effect with vrrp_nopreempt: true {at}")

    checks = settings["health_checks"]
    if not isinstance(checks, list):
        p.append(f"vrrp_health_checks: must be a list of check names, got {checks!r} {at}")

    names = instance_names(settings)
    vrids = _vrids(settings)
    if settings["vrids"] and len(vrids) != len(names):
        p.append(f"vrrp_vrids: needs one VRID per VIP ({len(names)}), got {len(vrids)} {at}")
    for k, vrid in enumerate(vrids):
        if not _is_int(vrid) or not 1 <= vrid <= 255:
            p.append(f"vrrp_vrids[{k}]: a VRID is 1..255, got {vrid!r} {at}")
    seen: dict[Any, int] = {}
    for k, vrid in enumerate(vrids):
        if vrid in seen:
            p.append(
                f"vrrp_vrids[{k}]: VRID {vrid} is already used by VI_{seen[vrid] + 1} on "
                f"{interface}; one VRID per interface {at}"
            )
        seen.setdefault(vrid, k)

    node_names = [n["name"] for n in nodes]
    for node in nodes:
        who = f"(host {node['name']})"
        mo = node.get("master_of")
        if mo is not None and (not isinstance(mo, list) or any(m not in names for m in mo)):
            known = ", ".join(names)
            p.append(f"vrrp_master_of: must list instances among {known}, got {mo!r} {who}")
        for name in names:
            state = _per_instance(node.get("state"), name)
            if state is not None and state not in STATES:
                p.append(f"vrrp_state: must be MASTER or BACKUP, got {state!r} {who}")
                break
        if settings["unicast"] and not (node.get("unicast_src_ip") or node.get("address")):
            p.append(
                f"vrrp_unicast_src_ip: unicast mode needs an address of {interface} on every node; "
                f"none known {who}"
            )
    claimed: dict[str, str] = {}
    for node in nodes:
        mo = node.get("master_of")
        for name in mo if isinstance(mo, list) else []:
            if name in claimed and claimed[name] != node["name"]:
                both = f"{claimed[name]} and {node['name']}"
                p.append(f"vrrp_master_of: {name} is claimed by both {both} {at}")
            claimed[name] = node["name"]

    exclusive = _dual_master_problems(p, settings, at)
    _arbiter_problems(p, nodes, settings, parsed, at)

    if len(p) == 0 and nodes:
        for name, row in _priorities(nodes, settings).items():
            for who, prio in zip(node_names, row, strict=True):
                if not _is_int(prio) or not 1 <= prio <= 255:
                    p.append(f"vrrp_priority: {name} on {who} must be 1..255, got {prio!r} {at}")
            if len(set(row)) != len(row):
                pairs = ", ".join(f"{w}={v}" for w, v in zip(node_names, row, strict=True))
                p.append(f"vrrp_priority: {name} needs distinct priorities, got {pairs} {at}")
    if len(p) == 0 and exclusive:
        _exclusive_problems(p, nodes, settings, at)
    if topology == "lvs_nginx":
        for rs in real_servers or []:
            if not rs.get("address"):
                p.append(
                    f"vrrp_real_servers_group: real server {rs['name']} has no address on "
                    f"{interface} (set vrrp_real_server_ip) {at}"
                )
        _lvs_problems(p, settings, at)
    return p


def _lvs_problems(p: list[str], settings: dict[str, Any], at: str) -> None:
    """The virtual server's settings (lvs_nginx only: elsewhere they are unused)."""
    url = settings["lvs_check_url"]
    if settings["lvs_check"] == "HTTP_GET" and (
        not isinstance(url, str) or not url.startswith("/")
    ):
        p.append(f"vrrp_lvs_check_url: must be a path starting with '/', got {url!r} {at}")
    status = settings["lvs_check_status_code"]
    if not _is_int(status) or not 100 <= status <= 599:
        p.append(
            f"vrrp_lvs_check_status_code: must be an HTTP status 100..599, got {status!r} {at}"
        )
    for key in ("lvs_delay_loop", "lvs_connect_timeout"):
        value = settings[key]
        if not _is_number(value) or value <= 0:
            p.append(f"vrrp_{key}: must be a positive number of seconds, got {value!r} {at}")
    retry = settings["lvs_retry"]
    if not _is_int(retry) or retry < 0:
        p.append(f"vrrp_lvs_retry: must be a whole number 0 or more, got {retry!r} {at}")
    delay = settings["lvs_delay_before_retry"]
    if not _is_number(delay) or delay < 0:
        p.append(f"vrrp_lvs_delay_before_retry: must be 0 or more seconds, got {delay!r} {at}")


def _lvs_checker(settings: dict[str, Any]) -> dict[str, Any]:
    """One real server's checker, keepalived's keywords. A real server is DOWN
    at most delay_loop + (retry + 1) * connect_timeout + retry * delay_before_retry
    after it stops answering, and UP again at the first check that passes."""
    kind = settings["lvs_check"]
    checker: dict[str, Any] = {}
    if kind == "HTTP_GET":
        checker["url"] = {
            "path": settings["lvs_check_url"],
            "status_code": settings["lvs_check_status_code"],
        }
    checker.update(
        connect_timeout=settings["lvs_connect_timeout"],
        retry=settings["lvs_retry"],
        delay_before_retry=settings["lvs_delay_before_retry"],
    )
    return {kind: checker}


def _dual_master_problems(p: list[str], settings: dict[str, Any], at: str) -> bool:
    """vrrp_dual_master_mode; True when the deployment is exclusive dual-master."""
    if settings["dual_master_mode"] != "exclusive":
        return False
    topology = settings["topology"]
    if topology != "dual_master":
        p.append(
            f"vrrp_dual_master_mode: exclusive keeps the two VIPs of dual_master apart, "
            f"but vrrp_topology is {topology!r} (set vrrp_topology: dual_master) {at}"
        )
        return False
    if settings["nopreempt"]:
        # Without preemption the VIPs never swap back after a failed check, and the
        # default weight would be 0 (FAULT), which leaves one VIP unserved instead
        # of swapping the two.
        p.append(
            "vrrp_nopreempt: exclusive dual-master needs preemption: the VIPs swap when "
            "a check fails and swap back when it recovers (set vrrp_nopreempt: false, "
            f"or vrrp_dual_master_mode: shared) {at}"
        )
    return True


def _exclusive_problems(
    p: list[str], nodes: list[dict[str, Any]], settings: dict[str, Any], at: str
) -> None:
    """Each node masters one instance, and a failing check must take each
    instance's master below its peer, or nothing swaps. Weight 0 (FAULT) drops
    both of the node's VIPs, and its peer may hold only one."""
    priorities = _priorities(nodes, settings)
    masters = {name: nodes[row.index(max(row))]["name"] for name, row in priorities.items()}
    if len(set(masters.values())) != len(masters):
        who = ", ".join(f"{name} on {m}" for name, m in masters.items())
        p.append(
            f"vrrp_master_of: exclusive dual-master needs each node to master one instance, "
            f"but the highest priorities put {who} (see vrrp_master_of, vrrp_priority) {at}"
        )
        return
    weight = settings["check_weight"]
    if not settings["health_checks"] or not _is_int(weight):
        return  # no check to swap on; or a weight the agent's validate will name
    for name, row in priorities.items():
        top, low = max(row), min(row)
        if weight == 0:
            p.append(
                "vrrp_check_weight: 0 (FAULT) drops both VIPs of a failing node, and with "
                "vrrp_dual_master_mode: exclusive its peer holds only one: use a negative "
                f"weight below {low - top} so that the VIPs swap {at}"
            )
            return
        if weight > 0 or top + weight >= low:
            master = nodes[row.index(top)]["name"]
            p.append(
                f"vrrp_check_weight: {weight} does not take {name}'s master {master} "
                f"({top}) below its peer ({low}), so a failing check would swap nothing; "
                f"exclusive dual-master needs a weight below {low - top} {at}"
            )
            return


def _arbiter_problems(
    p: list[str],
    nodes: list[dict[str, Any]],
    settings: dict[str, Any],
    vips: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
    at: str,
) -> None:
    method = settings["arbiter_method"]
    ips = settings["arbiter_ips"]
    if ips is None:
        return
    # As with vrrp_vips: the spec's `list` would take a string and split it.
    if not isinstance(ips, list):
        p.append(f"vrrp_arbiter_ips: must be a list of addresses, got {ips!r} {at}")
        return
    vip_set = {v.ip for v in vips}
    own = {
        str(n.get(k)): n["name"] for n in nodes for k in ("address", "unicast_src_ip") if n.get(k)
    }
    seen = set()
    for k, text in enumerate(ips):
        addr = _parse_ip(text)
        if addr is None:
            p.append(f"vrrp_arbiter_ips[{k}]: {text!r} is not an IP address (ADDR, no prefix) {at}")
            continue
        if addr in seen:
            p.append(f"vrrp_arbiter_ips[{k}]: {addr} is listed twice {at}")
        seen.add(addr)
        if addr in vip_set:
            p.append(
                f"vrrp_arbiter_ips[{k}]: {addr} is one of vrrp_vips; the arbiter must be a "
                f"third party that every node should reach, such as the gateway {at}"
            )
        elif str(addr) in own:
            p.append(
                f"vrrp_arbiter_ips[{k}]: {addr} is the address of node {own[str(addr)]}; the "
                f"arbiter must be a third party that every node should reach, such as the "
                f"gateway {at}"
            )
        if method == "arp" and addr.version != 4:
            p.append(
                f"vrrp_arbiter_ips[{k}]: {addr} is IPv6, and ARP probes are IPv4 only "
                f"(set vrrp_arbiter_method: icmp) {at}"
            )


def _arbiter(settings: dict[str, Any]) -> dict[str, Any]:
    """The agent's arbiter section; empty when there is none. The agent's own
    defaults (interval 1 s, timeout 0.5 s, fall 2, rise 2) apply."""
    ips = settings["arbiter_ips"] or []
    if not ips:
        return {}
    return {
        "addresses": [str(_parse_ip(a)) for a in ips],
        "method": settings["arbiter_method"],
        # The segment that VRRP runs on is the one whose partition matters.
        "interface": settings["interface"],
    }


def _check(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    args = {
        "http": settings["check_http_url"],
        "tcp": f"127.0.0.1 {settings['check_tcp_port']}",
        "process": settings["check_process"],
        "systemd": settings["check_systemd_unit"],
        "container": settings["check_container"],
    }[name]
    # Every field is set, from defaults/main.yml or the inventory: the agent
    # role renders what it is given and keeps no defaults of its own for them.
    return {
        "check": name,
        "args": str(args),
        **{
            key: settings[f"check_{key}"]
            for key in ("interval", "timeout", "weight", "fall", "rise")
        },
    }


def vrrp_plan(
    nodes: list[dict[str, Any]],
    me: str,
    settings: dict[str, Any],
    real_servers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    problems = vrrp_problems(nodes, me, settings, real_servers)
    if problems:
        # Preflight runs first; reaching this means a play skipped it.
        raise ValueError("; ".join(problems))
    topology = settings["topology"]
    index = [n["name"] for n in nodes].index(me)
    node = nodes[index]
    names = instance_names(settings)
    vrids = _vrids(settings)
    priorities = _priorities(nodes, settings)
    checks = [_check(c, settings) for c in settings["health_checks"]]
    exclusive = topology == "dual_master" and settings["dual_master_mode"] == "exclusive"

    def src(n: dict[str, Any]) -> str:
        return str(n.get("unicast_src_ip") or n.get("address"))

    instances: dict[str, Any] = {}
    for j, name in enumerate(names):
        vip = _parse_vip(settings["vips"][j])
        assert vip is not None
        prio = priorities[name][index]
        top = max(priorities[name])
        state = _per_instance(node.get("state"), name)
        if state is None:
            state = "MASTER" if prio == top and not settings["nopreempt"] else "BACKUP"
        inst: dict[str, Any] = {
            "interface": settings["interface"],
            "virtual_router_id": vrids[j],
            "priority": prio,
            "advert_int": settings["advert_int"],
            "version": settings["version"],
            "state": state,
            # keepalived's default prefix is the host route; keep what the user wrote.
            "virtual_ipaddress": [str(vip) if "/" in settings["vips"][j] else str(vip.ip)],
        }
        if settings["nopreempt"]:
            inst["nopreempt"] = True
        if settings["preempt_delay"]:
            inst["preempt_delay"] = settings["preempt_delay"]
        if settings["unicast"]:
            inst["unicast_src_ip"] = src(node)
            inst["unicast_peer"] = [src(n) for n in nodes if n["name"] != me]
        if settings["version"] == 2 and settings["auth_pass"]:
            inst["authentication"] = {"auth_type": "PASS", "auth_pass": settings["auth_pass"]}
        if checks:
            # Every instance tracks every check: in exclusive mode, too, one
            # failing check lowers both, so that one detection drives the swap.
            inst["track_script"] = [f"chk_{c['check']}" for c in checks]
        if exclusive:
            # Named on both sides (the agent needs one), so each file reads alone.
            (other,) = [n for n in names if n != name]
            inst["exclusive_with"] = other
        instances[name] = inst

    virtual_servers: list[dict[str, Any]] = []
    if topology == "lvs_nginx":
        port = settings["lvs_port"]
        checker = _lvs_checker(settings)
        for vip_text in settings["vips"]:
            vip = _parse_vip(vip_text)
            assert vip is not None
            virtual_servers.append(
                {
                    "ip": str(vip.ip),
                    "port": port,
                    "protocol": "TCP",
                    "lb_algo": settings["lvs_algo"],
                    "lb_kind": settings["lvs_kind"],
                    "delay_loop": settings["lvs_delay_loop"],
                    "persistence_timeout": settings["lvs_persistence_timeout"],
                    "real_servers": [
                        {"ip": str(rs["address"]), "port": port, "weight": 1, **checker}
                        for rs in real_servers or []
                    ],
                }
            )
    return {
        "instances": instances,
        "checks": checks,
        "virtual_servers": virtual_servers,
        "arbiter": _arbiter(settings),
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"vrrp_problems": vrrp_problems, "vrrp_plan": vrrp_plan}
