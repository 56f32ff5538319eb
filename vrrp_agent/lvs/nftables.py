"""The nftables data plane: keepalived's `virtual_server` without IPVS.

The whole ruleset is built by `ruleset()`, a pure function returning nft's JSON
document, and `NftablesPlane.apply()` loads it with `nft -j -f -` as one
transaction. Every table of ours is named, added, deleted and added again in
that batch ("add" first makes the "delete" valid whether or not the table
existed), so the replacement is atomic and nothing outside our tables changes:

- `inet vrrp_agent_lvs`: lb_kind NAT, DNAT in prerouting. conntrack keeps a
  connection on its real server; replies are un-NATed on their way back, which
  needs the real servers to route through the director, as in keepalived's NAT.
  The agent does not turn on forwarding (`net.ipv4.ip_forward`,
  `net.ipv6.conf.all.forwarding`): that is the host's configuration.
- `netdev vrrp_agent_lvs_<ifname>`: lb_kind DR, an ingress chain on the
  interface holding the VIP. Frames to VIP:port get the chosen real server's
  MAC as destination and ours as source (or the bridge learns the client's MAC
  on our port) and go back out with `fwd`. The real servers hold the VIP on lo
  with arp_ignore=1/arp_announce=2 and answer the client directly. A netdev
  chain has no conntrack, so each backend has a set of the connections
  (source address . source port) it carries, checked before scheduling; that
  is what keeps a TCP connection on one server with rr.

lb_kind TUN needs ipip, which these kernels lack: it is refused.

Schedulers (`SCHEDULERS`): rr is `numgen inc` over the scheduled backends;
wrr is `numgen inc` over IPVS's own wrr sequence, each backend appearing
weight/gcd times; sh is `jhash` of the source address with a fixed seed over
the same weighted slots, so a source stays on one server while the set does not
change. Both wrr and sh cost one map entry per slot, at most `MAX_SLOTS` per
service; weights beyond that are scaled down (and the plane warns). lc, wlc and
the other IPVS schedulers need connection counts that nftables does not keep.

persistence_timeout: one dynamic set of source addresses per scheduled backend
(`stick_*`), looked up before scheduling and refreshed with that timeout by
every packet the client sends to that backend (NAT: a filter chain right after
DNAT sees every packet, the nat chain only a connection's first), so a client
keeps its server until it has been silent that long.

The per-backend sets are named from a hash of (service, backend), and their
elements are carried over from the running ruleset into the new one, so a
replace keeps stickiness and DR connections for backends that stay; a backend
that leaves the plan takes its sets, and with them its clients, along.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import shutil
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from vrrp_agent.config.model import VirtualServer
from vrrp_agent.io.tool import run_tool
from vrrp_agent.lvs.plan import Backend, ServicePlan
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

NAT_TABLE_FAMILY, NAT_TABLE = "inet", "vrrp_agent_lvs"
DR_TABLE_PREFIX = "vrrp_agent_lvs_"  # + ifname; netdev chains hook one device each
SCHEDULERS = frozenset({"rr", "wrr", "sh"})
KINDS = frozenset({"NAT", "DR"})

# Map entries per service for wrr/sh (one per weight unit after dividing by
# the gcd). IPVS's sh uses a 256-bucket table; four times that keeps weights
# like 1..100 exact for ten servers and the map still small.
MAX_SLOTS = 1024
# Fixed so that re-applying the ruleset does not reshuffle sources (a jhash
# without a seed gets a random one from the kernel).
SH_SEED = 0x564C5653
# DR connection idle timeouts, IPVS's defaults (`ipvsadm -l --timeout`).
CONN_TIMEOUT = {"TCP": 900, "UDP": 300, "SCTP": 900}
# Per backend. A full set makes the update fail; forwarding still happens
# (the update is a rule of its own), the connection is just not remembered.
CONN_SET_SIZE = 1 << 20
STICK_SET_SIZE = 1 << 18
NAT_PRIORITY = -100  # dstnat
REFRESH_PRIORITY = -99  # dstnat + 1: after DNAT, so `ip daddr` is the real server
DR_PRIORITY = 0
# How long apply() waits for the neighbour entries it asked the kernel to resolve.
RESOLVE_WAIT = 0.2
_UNUSABLE_NUD = {"INCOMPLETE", "FAILED", "NONE"}


class Unsupported(ValueError):
    """A virtual server this plane cannot run (TUN, or a scheduler it lacks)."""


def check(vs: VirtualServer) -> None:
    where = f"virtual server {_addr(vs.ip)}:{vs.port}"
    if vs.lb_kind == "TUN":
        raise Unsupported(
            f"{where}: lb_kind TUN is not supported by the nftables data plane"
            " (this kernel has no ipip tunnels); use NAT or DR"
        )
    if vs.lb_kind not in KINDS:
        raise Unsupported(f"{where}: unknown lb_kind '{vs.lb_kind}'")
    if vs.lb_algo not in SCHEDULERS:
        raise Unsupported(
            f"{where}: lb_algo {vs.lb_algo} is not available with nftables"
            f" (it has {', '.join(sorted(SCHEDULERS))})"
        )
    if vs.protocol not in CONN_TIMEOUT:
        raise Unsupported(f"{where}: protocol {vs.protocol} is not supported")


def wrr_slots(weights: Sequence[int], limit: int = MAX_SLOTS) -> list[int]:
    """IPVS's weighted round-robin sequence, as indexes into `weights` (all > 0).

    Backend i appears weights[i]/gcd times, the heaviest first in each round
    (IPVS: lower the current weight by the gcd each pass, take everyone at or
    above it). Totals above `limit` are scaled down, each backend keeping at
    least one slot.
    """
    if not weights:
        return []
    if any(w <= 0 for w in weights):
        raise ValueError(f"weights must be positive, got {list(weights)}")
    w = list(weights)
    if sum(w) // math.gcd(*w) > limit:
        total = sum(w)
        w = [max(1, w_i * limit // total) for w_i in w]
    g = math.gcd(*w)
    w = [w_i // g for w_i in w]
    return [i for cw in range(max(w), 0, -1) for i, w_i in enumerate(w) if w_i >= cw]


def slots_exact(weights: Sequence[int], limit: int = MAX_SLOTS) -> bool:
    """False when `wrr_slots` had to scale these weights."""
    return not weights or sum(weights) // math.gcd(*weights) <= limit


# --- names ------------------------------------------------------------------


def _addr(ip: IPAddr) -> str:
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _tag(*parts: object) -> str:
    # Stable across applies (set contents are carried over by name) and short:
    # chain and set names are limited, and an IPv6 address is not an identifier.
    text = "|".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def service_tag(vs: VirtualServer) -> str:
    return _tag(vs.ip, vs.port, vs.protocol)


def backend_tag(vs: VirtualServer, b: Backend) -> str:
    return _tag(vs.ip, vs.port, vs.protocol, b.ip, b.port)


def dr_table(ifname: str) -> str:
    return DR_TABLE_PREFIX + ifname


def is_ours(family: str, name: str) -> bool:
    return (family == "inet" and name == NAT_TABLE) or (
        family == "netdev" and name.startswith(DR_TABLE_PREFIX)
    )


# --- JSON building blocks -----------------------------------------------------


def _ipfam(ip: IPAddr) -> str:
    return "ip" if ip.version == 4 else "ip6"


def _addr_type(ip: IPAddr) -> str:
    return "ipv4_addr" if ip.version == 4 else "ipv6_addr"


def _payload(protocol: str, field_: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field_}}


def _match(left: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


def _l4(vs: VirtualServer) -> str:
    return vs.protocol.lower()


def _update(set_name: str, key: dict[str, Any], timeout: int) -> dict[str, Any]:
    return {
        "set": {
            "op": "update",
            "elem": {"elem": {"val": key, "timeout": timeout}},
            "set": "@" + set_name,
        }
    }


def _jump(chain: str) -> dict[str, Any]:
    return {"jump": {"target": chain}}


def _vmap(key: dict[str, Any], targets: Sequence[str]) -> dict[str, Any]:
    return {"vmap": {"key": key, "data": {"set": [[i, _jump(t)] for i, t in enumerate(targets)]}}}


@dataclass
class _Table:
    """One of our nftables tables being assembled for a single transaction."""

    family: str
    name: str
    sets: list[dict[str, Any]] = field(default_factory=list)
    chains: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    elements: list[dict[str, Any]] = field(default_factory=list)

    def chain(self, name: str, **hook: Any) -> str:
        self.chains.append({"family": self.family, "table": self.name, "name": name, **hook})
        return name

    def rule(self, chain: str, *expr: dict[str, Any], comment: str | None = None) -> None:
        rule: dict[str, Any] = {
            "family": self.family,
            "table": self.name,
            "chain": chain,
            "expr": list(expr),
        }
        if comment:
            rule["comment"] = comment
        self.rules.append(rule)

    def timeout_set(
        self,
        name: str,
        type_: str | list[str],
        timeout: int,
        size: int,
        keep: Mapping[tuple[str, str, str], Sequence[Any]],
    ) -> str:
        # No "dynamic" flag: nft 1.0.6's JSON parser rejects it, and nft sets
        # it by itself for a set that a rule updates.
        self.sets.append(
            {
                "family": self.family,
                "table": self.name,
                "name": name,
                "type": type_,
                "flags": ["timeout"],
                "timeout": timeout,
                "size": size,
            }
        )
        carried = [_carry(e, timeout) for e in keep.get((self.family, self.name, name), ())]
        carried = [e for e in carried if e is not None][:size]
        if carried:
            self.elements.append(
                {"family": self.family, "table": self.name, "name": name, "elem": carried}
            )
        return name

    def commands(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"add": {"table": {"family": self.family, "name": self.name}}}]
        out += [{"add": {"set": s}} for s in self.sets]
        out += [{"add": {"chain": c}} for c in self.chains]
        out += [{"add": {"rule": r}} for r in self.rules]
        out += [{"add": {"element": e}} for e in self.elements]
        return out


def _carry(elem: Any, timeout: int) -> dict[str, Any] | None:
    """An element as `nft -j list` shows it -> one to add with what is left of its time.

    The listing rounds `expires` down to whole seconds, so one second is added:
    a carried client may stay up to a second longer, never shorter.
    """
    body = elem.get("elem") if isinstance(elem, dict) else None
    if not isinstance(body, dict) or "val" not in body:
        return None
    expires = body.get("expires")
    left = timeout if not isinstance(expires, int) else min(timeout, expires + 1)
    return {"elem": {"val": body["val"], "timeout": max(1, left)}}


# --- services -----------------------------------------------------------------


def _schedule(vs: VirtualServer, scheduled: Sequence[Backend]) -> tuple[dict[str, Any], list[int]]:
    """The expression choosing a slot, and slot -> index into `scheduled`."""
    if vs.lb_algo == "rr":
        slots = list(range(len(scheduled)))
    else:
        slots = wrr_slots([b.weight for b in scheduled])
    if vs.lb_algo == "sh":
        key: dict[str, Any] = {
            "jhash": {"mod": len(slots), "seed": SH_SEED, "expr": _payload(_ipfam(vs.ip), "saddr")}
        }
    else:
        key = {"numgen": {"mode": "inc", "mod": len(slots), "offset": 0}}
    return key, slots


def _describe(vs: VirtualServer) -> str:
    text = f"virtual server {_addr(vs.ip)}:{vs.port} {vs.protocol} {vs.lb_algo} {vs.lb_kind}"
    return text + (f" persistence {vs.persistence_timeout}s" if vs.persistence_timeout else "")


def _describe_backend(b: Backend) -> str:
    what = "sorry server" if b.sorry else "real server"
    return f"{what} {_addr(b.ip)}:{b.port} weight {b.weight}"


def _service_head(
    t: _Table,
    plan: ServicePlan,
    backends: Sequence[Backend],
    keep: Mapping[tuple[str, str, str], Sequence[Any]],
) -> tuple[str, dict[Backend, str], dict[Backend, str]]:
    """Chains and persistence sets every kind has: (the service's chain,
    backend -> its chain, backend -> its set of sticky clients)."""
    vs = plan.vs
    svc = t.chain("svc_" + service_tag(vs))
    chains = {b: t.chain("be_" + backend_tag(vs, b)) for b in backends}
    sticks: dict[Backend, str] = {}
    if vs.persistence_timeout > 0:
        for b in backends:
            if b.weight <= 0:
                continue  # not scheduled: its clients choose again
            sticks[b] = t.timeout_set(
                "stick_" + backend_tag(vs, b),
                _addr_type(vs.ip),
                vs.persistence_timeout,
                STICK_SET_SIZE,
                keep,
            )
    return svc, chains, sticks


def _nat_service(
    t: _Table, plan: ServicePlan, keep: Mapping[tuple[str, str, str], Sequence[Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Adds the service's own chains and sets; returns the rules it needs in
    the base chains ("prerouting", "refresh") as (base chain, rule) pairs."""
    vs = plan.vs
    fam = _ipfam(vs.ip)
    scheduled = list(plan.scheduled)
    if not scheduled:
        # Nothing to forward to: the packet reaches the director's own stack,
        # which refuses it at once (IPVS answers ICMP unreachable; a client
        # should fail fast, not hang).
        return []
    svc, chains, sticks = _service_head(t, plan, scheduled, keep)
    for b, chain in chains.items():
        t.rule(
            chain,
            _match({"meta": {"key": "l4proto"}}, _l4(vs)),
            {"dnat": {"family": fam, "addr": str(b.ip), "port": b.port}},
            comment=_describe_backend(b),
        )
    for b, stick in sticks.items():
        t.rule(svc, _match(_payload(fam, "saddr"), "@" + stick), _jump(chains[b]))
    key, slots = _schedule(vs, scheduled)
    t.rule(svc, _vmap(key, [chains[scheduled[i]] for i in slots]))
    entry = [
        _match(_payload(fam, "daddr"), str(vs.ip)),
        _match(_payload(_l4(vs), "dport"), vs.port),
        _jump(svc),
    ]
    out = [("prerouting", {"expr": entry, "comment": _describe(vs)})]
    if sticks:
        keep_chain = t.chain("keep_" + service_tag(vs))
        for b, stick in sticks.items():
            t.rule(
                keep_chain,
                _match(_payload(fam, "daddr"), str(b.ip)),
                _match(_payload(_l4(vs), "dport"), b.port),
                _update(stick, _payload(fam, "saddr"), vs.persistence_timeout),
            )
        refresh = [
            _match({"ct": {"key": "direction"}}, "original"),
            _match({"ct": {"key": f"{fam} daddr", "dir": "original"}}, str(vs.ip)),
            _match({"meta": {"key": "l4proto"}}, _l4(vs)),
            _match({"ct": {"key": "proto-dst", "dir": "original"}}, vs.port),
            _jump(keep_chain),
        ]
        out.append(("refresh", {"expr": refresh, "comment": _describe(vs)}))
    return out


def _dr_service(
    t: _Table,
    plan: ServicePlan,
    ifname: str,
    macs: Mapping[IPAddr, str],
    own: str,
    keep: Mapping[tuple[str, str, str], Sequence[Any]],
) -> dict[str, Any] | None:
    """Adds the service's chains and sets; returns the ingress entry rule."""
    vs = plan.vs
    fam = _ipfam(vs.ip)
    # DR cannot change the port (the frame goes unchanged); a backend without a
    # known MAC cannot be reached at all.
    backends = [b for b in plan.backends if b.ip in macs]
    scheduled = [b for b in backends if b.weight > 0]
    if not backends:
        return None
    svc, chains, sticks = _service_head(t, plan, backends, keep)
    conn_key = {"concat": [_payload(fam, "saddr"), _payload(_l4(vs), "sport")]}
    timeout = CONN_TIMEOUT[vs.protocol]
    for b, chain in chains.items():
        conn = t.timeout_set(
            "conn_" + backend_tag(vs, b),
            [_addr_type(vs.ip), "inet_service"],
            timeout,
            CONN_SET_SIZE,
            keep,
        )
        # Connections first, even to an inhibited (weight 0) backend: like IPVS,
        # what it already carries may finish there.
        t.rule(svc, _match(conn_key, "@" + conn), _jump(chain))
        t.rule(chain, _update(conn, conn_key, timeout))
        if b in sticks:
            t.rule(chain, _update(sticks[b], _payload(fam, "saddr"), vs.persistence_timeout))
        t.rule(
            chain,
            {"mangle": {"key": _payload("ether", "saddr"), "value": own}},
            {"mangle": {"key": _payload("ether", "daddr"), "value": macs[b.ip]}},
            {"fwd": {"dev": ifname}},
            comment=_describe_backend(b),
        )
    for b, stick in sticks.items():
        t.rule(svc, _match(_payload(fam, "saddr"), "@" + stick), _jump(chains[b]))
    if scheduled:
        key, slots = _schedule(vs, scheduled)
        t.rule(svc, _vmap(key, [chains[scheduled[i]] for i in slots]))
    # Only frames sent to us: a flooded copy of a frame meant for another host
    # (another director's forward, a stale ARP cache) must not be forwarded again.
    return {
        "expr": [
            _match(_payload("ether", "daddr"), own),
            _match(_payload(fam, "daddr"), str(vs.ip)),
            _match(_payload(_l4(vs), "dport"), vs.port),
            _jump(svc),
        ],
        "comment": _describe(vs),
    }


def ruleset(
    services: Sequence[tuple[ServicePlan, str]],
    macs: Mapping[IPAddr, str],
    own_mac: Mapping[str, str],
    *,
    present: Iterable[tuple[str, str]] = (),
    keep: Mapping[tuple[str, str, str], Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """The JSON document replacing everything of ours with `services`.

    `macs`: real server address -> MAC (DR; backends without one are left
    out). `own_mac`: ifname -> this director's MAC there (DR). `present`: our
    tables the kernel holds now, (family, name), deleted unless rebuilt.
    `keep`: (family, table, set) -> elements as `nft -j list` shows them, put
    back into the set of that name if it is still part of the ruleset.
    """
    keep = keep or {}
    for plan, _ in services:
        check(plan.vs)
    nat = _Table("inet", NAT_TABLE)
    nat_entries: list[tuple[str, dict[str, Any]]] = []
    dr: dict[str, _Table] = {}
    dr_entries: dict[str, list[dict[str, Any]]] = {}
    for plan, ifname in services:
        if plan.vs.lb_kind == "NAT":
            nat_entries += _nat_service(nat, plan, keep)
            continue
        t = dr.setdefault(ifname, _Table("netdev", dr_table(ifname)))
        entry = _dr_service(t, plan, ifname, macs, own_mac[ifname], keep)
        if entry is not None:
            dr_entries.setdefault(ifname, []).append(entry)
    tables: list[_Table] = []
    if any(plan.vs.lb_kind == "NAT" for plan, _ in services):
        # Base chains are added before the rules that jump out of them.
        nat.chains[:0] = [
            {
                "family": "inet",
                "table": NAT_TABLE,
                "name": "prerouting",
                "type": "nat",
                "hook": "prerouting",
                "prio": NAT_PRIORITY,
                "policy": "accept",
            },
        ]
        if any(chain == "refresh" for chain, _ in nat_entries):
            nat.chains.insert(
                1,
                {
                    "family": "inet",
                    "table": NAT_TABLE,
                    "name": "refresh",
                    "type": "filter",
                    "hook": "prerouting",
                    "prio": REFRESH_PRIORITY,
                    "policy": "accept",
                },
            )
        for chain, rule in nat_entries:
            nat.rule(chain, *rule["expr"], comment=rule["comment"])
        tables.append(nat)
    for ifname, t in dr.items():
        t.chains.insert(
            0,
            {
                "family": "netdev",
                "table": t.name,
                "name": "ingress",
                "type": "filter",
                "hook": "ingress",
                "dev": ifname,
                "prio": DR_PRIORITY,
                "policy": "accept",
            },
        )
        for rule in dr_entries.get(ifname, []):
            t.rule("ingress", *rule["expr"], comment=rule["comment"])
        tables.append(t)
    # "add" then "delete": valid whether or not the table exists, so the whole
    # replacement is one transaction that either happens or does not.
    gone = {(t.family, t.name) for t in tables} | {(NAT_TABLE_FAMILY, NAT_TABLE)}
    gone |= {(f, n) for f, n in present if is_ours(f, n)}
    commands: list[dict[str, Any]] = []
    for family, name in sorted(gone):
        commands.append({"add": {"table": {"family": family, "name": name}}})
        commands.append({"delete": {"table": {"family": family, "name": name}}})
    for t in tables:
        commands += t.commands()
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}


def carried(listing: Mapping[str, Any]) -> dict[tuple[str, str, str], list[Any]]:
    """Set elements worth keeping from `nft -j list table ...` output."""
    out: dict[tuple[str, str, str], list[Any]] = {}
    for item in listing.get("nftables", []):
        s = item.get("set") if isinstance(item, dict) else None
        if not s or not is_ours(s.get("family", ""), s.get("table", "")):
            continue
        if s.get("elem") and str(s.get("name", "")).startswith(("conn_", "stick_")):
            out[(s["family"], s["table"], s["name"])] = list(s["elem"])
    return out


# --- I/O ----------------------------------------------------------------------


def parse_neighbours(data: Sequence[Mapping[str, Any]]) -> dict[IPAddr, str]:
    """`ip -j neigh show dev IF` -> address -> MAC, for entries that have a usable one.

    STALE counts: the MAC is still the best we know, and our own traffic to it
    makes the kernel confirm it.
    """
    out: dict[IPAddr, str] = {}
    for entry in data:
        mac = entry.get("lladdr")
        states = set(entry.get("state", []))
        if not mac or states & _UNUSABLE_NUD:
            continue
        try:
            out[ip_address(str(entry["dst"]))] = str(mac).lower()
        except (KeyError, ValueError):
            continue
    return out


def _interface_mac(ifname: str) -> str:
    # An ioctl on a socket rather than /sys/class/net: it answers for the
    # network namespace we run in, whatever sysfs was mounted for.
    siocgifhwaddr = 0x8927
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), siocgifhwaddr, struct.pack("256s", ifname.encode()[:15]))
        except OSError as err:
            raise OSError(f"interface {ifname}: cannot read its MAC address: {err}") from err
    return ":".join(f"{b:02x}" for b in raw[18:24])


def _probe(ip: IPAddr, ifname: str) -> None:
    """Make the kernel resolve `ip` on `ifname`: a datagram to the discard port.

    The neighbour entry is created for the datagram; the datagram itself is
    harmless (discarded, or answered with port unreachable).
    """
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
        with contextlib.suppress(OSError):  # needs CAP_NET_RAW; the route usually agrees
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.sendto(b"", (str(ip), 9))


class NftablesPlane:
    """The nftables data plane: our own tables only, replaced in one atomic
    transaction per apply()."""

    name = "nftables"

    def __init__(self, nft: str | None = None, ip: str | None = None) -> None:
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self.ip = ip or shutil.which("ip") or "/usr/sbin/ip"
        # DR backends left out of the last apply() because their MAC is not
        # known yet: (ifname, address). The caller applies again while non-empty.
        self.unresolved: frozenset[tuple[str, IPAddr]] = frozenset()

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        return run_tool(args, stdin)

    def _nft_json(self, *args: str) -> dict[str, Any]:
        out = self._run([self.nft, "-j", *args])
        return json.loads(out) if out.strip() else {}

    def tables(self) -> list[tuple[str, str]]:
        """Our tables in the kernel now."""
        listing = self._nft_json("list", "tables")
        found = [item["table"] for item in listing.get("nftables", []) if "table" in item]
        return [(t["family"], t["name"]) for t in found if is_ours(t["family"], t["name"])]

    def _load(self, doc: dict[str, Any]) -> None:
        self._run([self.nft, "-j", "-f", "-"], json.dumps(doc))

    def neighbours(self, ifname: str) -> dict[IPAddr, str]:
        out = self._run([self.ip, "-j", "neigh", "show", "dev", ifname])
        return parse_neighbours(json.loads(out) if out.strip() else [])

    def _macs(self, services: Sequence[tuple[ServicePlan, str]]) -> dict[IPAddr, str]:
        wanted: dict[str, set[IPAddr]] = {}
        for plan, ifname in services:
            if plan.vs.lb_kind == "DR":
                wanted.setdefault(ifname, set()).update(b.ip for b in plan.backends)
        macs: dict[IPAddr, str] = {}
        missing: set[tuple[str, IPAddr]] = set()
        for ifname, ips in wanted.items():
            known = self.neighbours(ifname)
            macs.update({ip: known[ip] for ip in ips if ip in known})
            missing |= {(ifname, ip) for ip in ips if ip not in known}
        if missing:
            # Health checkers normally made these entries already; a real
            # server nobody talked to yet resolves in a millisecond on a LAN.
            for ifname, ip in missing:
                _probe(ip, ifname)
            deadline = time.monotonic() + RESOLVE_WAIT
            while missing and time.monotonic() < deadline:
                time.sleep(0.01)
                for ifname in {i for i, _ in missing}:
                    known = self.neighbours(ifname)
                    found = {(i, ip) for i, ip in missing if i == ifname and ip in known}
                    macs.update({ip: known[ip] for _, ip in found})
                    missing -= found
        self.unresolved = frozenset(missing)
        for ifname, ip in sorted(missing, key=str):
            log.warning(
                "lvs (nftables): no MAC address for real server %s on %s yet;"
                " left out until it resolves",
                ip,
                ifname,
            )
        return macs

    def apply(self, services: Sequence[tuple[ServicePlan, str]]) -> None:
        if not services:
            self.clear()
            return
        for plan, _ in services:
            check(plan.vs)
            scheduled = [b.weight for b in plan.scheduled]
            if plan.vs.lb_algo in ("wrr", "sh") and not slots_exact(scheduled):
                log.warning(
                    "lvs (nftables): virtual server %s:%d: weights %s need more than %d map"
                    " entries; using them scaled down",
                    plan.vs.ip,
                    plan.vs.port,
                    scheduled,
                    MAX_SLOTS,
                )
        present = self.tables()
        keep: dict[tuple[str, str, str], list[Any]] = {}
        for family, name in present:
            keep.update(carried(self._nft_json("list", "table", family, name)))
        macs = self._macs(services)
        own = {ifname: _interface_mac(ifname) for p, ifname in services if p.vs.lb_kind == "DR"}
        self._load(ruleset(services, macs, own, present=present, keep=keep))

    def clear(self) -> None:
        """Delete our tables (and only ours); nothing to do when there are none."""
        self.unresolved = frozenset()
        present = self.tables()
        if not present:
            return
        commands: list[dict[str, Any]] = []
        for family, name in present:
            commands.append({"add": {"table": {"family": family, "name": name}}})
            commands.append({"delete": {"table": {"family": family, "name": name}}})
        self._load({"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]})
