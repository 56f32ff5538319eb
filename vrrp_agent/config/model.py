"""The validated configuration as frozen dataclasses.

Every setting is a field with its default filled in, because the daemon compares
``Instance`` objects with ``==`` on SIGHUP to decide which instances changed; a
setting hidden anywhere else would make a changed instance look unchanged.
The same fields also say which keys each YAML section allows (``config_keys``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from typing import Any, TypeVar, Union

from vrrp_agent.wire.addresses import IPAddr

from .enums import (
    ArbiterMethod,
    AuthType,
    CheckerKind,
    InitialState,
    LbAlgo,
    LbKind,
    LvsBackend,
    TransportProtocol,
)

# Union, not `|`: an alias is evaluated at run time, and the agent runs on Python 3.9.
IPIface = Union[IPv4Interface, IPv6Interface]
IPNet = Union[IPv4Network, IPv6Network]

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """A read-only, insertion-ordered mapping that compares (and hashes) by value.

    ``types.MappingProxyType`` would do for read-only, but it is not hashable and
    would let the frozen ``Config`` be mutated through the dict it wraps.
    """

    __slots__ = ("_d",)

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._d: dict[K, V] = dict(items or {})

    def __getitem__(self, key: K) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._d == other._d
        if isinstance(other, Mapping):
            return self._d == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._d.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"


# --- which YAML keys a field is read from -------------------------------------------
#
# The validator takes the keys a section allows from these dataclasses, so a new
# setting is one new field, not a field plus an entry in a list of keys. A field is
# the key of its own name unless its metadata says otherwise. Field order is the
# order messages list the keys in ("expected one of: ...").

_KEYS = "config_keys"
_INSIDE = "config_inside"
_KINDS = "config_kinds"


def yaml_keys(*keys: str) -> dict[str, Any]:
    """Field metadata: the YAML keys a field is read from (none: it is not a key)."""
    return {_KEYS: keys}


# e.g. a block's name, which is the key above the block rather than one inside it
NOT_A_KEY = yaml_keys()


def inside(block: str) -> dict[str, Any]:
    """Field metadata: the field is a key of the nested mapping ``block``."""
    return {_INSIDE: block}


def for_kinds(*kinds: CheckerKind) -> dict[str, Any]:
    """Field metadata: a Checker setting only these kinds of checker accept."""
    return {_KINDS: frozenset(kinds)}


@cache
def config_keys(cls: type, kind: CheckerKind | None = None) -> tuple[str, ...]:
    """The keys a YAML block read into ``cls`` may hold, in field order.

    ``kind`` picks the keys of one kind of Checker. A nested block counts as one
    key of its own name; ``block_keys`` gives what it holds.
    """
    out: list[str] = []
    for f in fields(cls):
        if kind is not None and kind not in f.metadata.get(_KINDS, (kind,)):
            continue
        keys = f.metadata.get(_KEYS, (f.name,))
        if _INSIDE in f.metadata:
            keys = (f.metadata[_INSIDE],)
        for key in keys:
            # str(): plain words, so that messages quote 'TCP_CHECK', not an enum repr
            if str(key) not in out:
                out.append(str(key))
    return tuple(out)


@cache
def block_keys(cls: type, block: str) -> tuple[str, ...]:
    """The keys of the nested mapping ``block`` of a ``cls`` block, in field order."""
    return tuple(f.name for f in fields(cls) if f.metadata.get(_INSIDE) == block)


# --- the model --------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """global_defs.smtp_server: "ADDR [PORT]", an IP address or a host name."""

    host: str
    port: int = 25

    def __str__(self) -> str:
        # keepalived's FMT_SMTP_HOST: [host]:port
        return f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class ListenAddress:
    """global_defs.metrics_listen: where /metrics is served (an IP literal)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class GlobalDefs:
    """global_defs: settings of the whole node."""

    # default_factory rather than a plain default: a hostname read at import time
    # would go stale in long-lived test processes and is I/O at import.
    router_id: str = field(default_factory=socket.gethostname)
    control_socket: str = "/run/vrrp-agent/agent.sock"
    # Where `vrrp-agent drain` records the drain (JSON {"since": unix time}):
    # present at start, the agent starts drained. Under /run it lasts until
    # reboot (the unit keeps its RuntimeDirectory across restarts).
    drain_file: str = "/run/vrrp-agent/drained"
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    # Default of every instance's skip_check_adv_addr (keepalived's name).
    vrrp_skip_check_adv_addr: bool = False
    script_user: str = "vrrp_script"
    enable_script_security: bool = True
    lvs_backend: LvsBackend = LvsBackend.AUTO
    # keepalived's notify_fifo: every transition as one line, for a reader
    # that wants the stream rather than a process per event.
    notify_fifo: str | None = None
    # keepalived's alert mail (see vrrp_agent/io/smtp_alert.py). Addresses are
    # kept as keepalived formats them: "addr" or "Display Name <addr>".
    notification_email: tuple[str, ...] = ()
    # None: keepalived's default, USER@LOCAL_NAME (the agent's user, the
    # host's canonical name), found when a mail is sent.
    notification_email_from: str | None = None
    smtp_server: SmtpServer | None = None
    smtp_helo_name: str | None = None  # None: the host's canonical name, as keepalived
    smtp_connect_timeout: float = 30.0
    # Defaults for the objects' own smtp_alert (None: unset); see smtp_alert_on.
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False  # no mail for FAULT transitions
    # Prometheus /metrics (keepalived-exporter's names); None: not served.
    metrics_listen: ListenAddress | None = None


@dataclass(frozen=True)
class VirtualAddress:
    """One entry of virtual_ipaddress[_excluded]: an address, where and how it is added."""

    address: IPIface
    dev: str | None = None  # None = the instance's interface
    label: str | None = None

    def __str__(self) -> str:
        # keepalived's own syntax, so logs read like a keepalived config line
        text = str(self.address)
        if self.dev is not None:
            text += f" dev {self.dev}"
        if self.label is not None:
            text += f" label {self.label}"
        return text


# The route types virtual_routes accepts besides a plain unicast route
# (keepalived knows more: local, broadcast, nat... which make no sense here).
ROUTE_TYPES = ("blackhole", "unreachable", "prohibit")
ROUTE_SCOPES = ("host", "link", "global")
# The kernel's own names for its two standard tables.
ROUTE_TABLES = {"main": 254, "local": 255}


@dataclass(frozen=True)
class VirtualRoute:
    """One entry of virtual_routes: a route that exists while the instance is MASTER."""

    to: IPNet
    src: IPAddr | None = None
    via: IPAddr | None = None
    dev: str | None = None
    metric: int | None = None
    table: int | None = None  # None = main
    scope: str | None = None  # None = the kernel's choice (link without via, else global)
    type: str | None = None  # None = unicast; else one of ROUTE_TYPES

    @property
    def family(self) -> int:
        return self.to.version

    def __str__(self) -> str:
        # keepalived's syntax (type first), as status and the log show it
        words = [self.type] if self.type else []
        if self.src is not None:
            words += ["src", str(self.src)]
        words.append(str(self.to))
        for key in ("via", "dev", "metric", "table", "scope"):
            value = getattr(self, key)
            if value is not None:
                words += [key, str(value)]
        return " ".join(words)


@dataclass(frozen=True)
class TrackRef:
    """One entry of track_script / track_interface / track_file, with its own weight."""

    name: str
    weight: int | None = None  # None = the script's weight / the default


@dataclass(frozen=True)
class Script:
    """One vrrp_scripts block: a command run periodically to track a service."""

    name: str = field(metadata=NOT_A_KEY)
    script: str
    interval: float = 1.0
    timeout: float | None = None  # None = interval, as in keepalived
    weight: int = 0
    fall: int = 1
    rise: int = 1
    user: str | None = None  # None = global_defs.script_user


@dataclass(frozen=True)
class Instance:
    """One vrrp_instances block: a virtual router and what it tracks and notifies."""

    name: str = field(metadata=NOT_A_KEY)
    interface: str
    virtual_router_id: int
    priority: int = 100
    advert_int: float = 1.0
    version: int = 3
    state: InitialState = InitialState.BACKUP
    nopreempt: bool = False
    preempt_delay: float = 0.0
    accept: bool = True
    unicast_src_ip: IPAddr | None = None
    unicast_peer: tuple[IPAddr, ...] = ()
    # keepalived's per-peer `min_ttl N max_ttl N`: the TTL / hop limit range an
    # advert from that peer must arrive with; peers without a range are absent.
    unicast_peer_ttl: Mapping[IPAddr, tuple[int, int]] = field(
        default_factory=FrozenMap, metadata=NOT_A_KEY
    )
    # `unicast_peer: []` written out: unicast with no peer at all (anycast: a
    # node alone in its VRID sends nothing and hears nothing). Absent = multicast.
    unicast_no_peer: bool = field(default=False, metadata=NOT_A_KEY)
    # keepalived's unicast_ttl: the TTL / hop limit of unicast adverts we send.
    unicast_ttl: int = 255
    auth_type: AuthType | None = field(default=None, metadata=inside("authentication"))
    auth_pass: str | None = field(default=None, metadata=inside("authentication"))
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[VirtualRoute, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_interface: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()  # name = path of the file to watch
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    # The other instance of an exclusive dual-master pair: this node never
    # holds both (see core/coordination.py).
    exclusive_with: str | None = None
    v3_checksum_pseudo_header: bool = True
    garp_master_delay: float | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: float | None = None
    garp_master_refresh_repeat: int | None = None
    # keepalived's use_vmac: the name of the macvlan interface that carries the
    # RFC's virtual MAC (00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID) and the
    # VIPs; None = no vmac. YAML `true` is resolved to keepalived's default name
    # (vrrp.VRID, see config/_vrrp.py:resolve_vmac_names).
    use_vmac: str | None = None
    # Adverts go out (and come in) on `interface` with its own MAC; the VIPs
    # still live on the vmac.
    vmac_xmit_base: bool = False
    # None = global_defs.vrrp_skip_check_adv_addr (see core.router._check_addresses).
    skip_check_adv_addr: bool | None = None
    smtp_alert: bool | None = None  # None: global_defs.smtp_alert_vrrp, then smtp_alert

    @property
    def family(self) -> int:
        """4 or 6: the family of the first VIP (validation makes them all agree)."""
        return self.virtual_ipaddress[0].address.version

    @property
    def unicast(self) -> bool:
        """Adverts go to unicast_peer (maybe nobody), not to the multicast group."""
        return bool(self.unicast_peer) or self.unicast_no_peer

    @property
    def vip_interface(self) -> str:
        """Where VIPs without their own `dev` live: the vmac, else `interface`."""
        return self.use_vmac or self.interface

    @property
    def advert_interface(self) -> str:
        """Where adverts are sent and heard: the vmac unless vmac_xmit_base."""
        if self.use_vmac is not None and not self.vmac_xmit_base:
            return self.use_vmac
        return self.interface

    @property
    def vmac_address(self) -> bytes | None:
        """The virtual router MAC of RFC 9568 7.3 (None without use_vmac)."""
        if self.use_vmac is None:
            return None
        return bytes((0, 0, 0x5E, 0, 1 if self.family == 4 else 2, self.virtual_router_id))


@dataclass(frozen=True)
class SyncGroup:
    """One vrrp_sync_groups block: instances that change state together."""

    name: str = field(metadata=NOT_A_KEY)
    group: tuple[str, ...]
    # keepalived: without it, track weights of members count as 0 (FAULT on
    # failure), because a lowered priority on one member cannot move the group.
    sync_group_tracking_weight: bool = False
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    smtp_alert: bool | None = None  # None: global_defs.smtp_alert_vrrp, then smtp_alert


@dataclass(frozen=True)
class Arbiter:
    """Split-brain arbitration: reference addresses this node must reach to hold a VIP."""

    addresses: tuple[IPAddr, ...]
    method: ArbiterMethod = ArbiterMethod.ICMP
    interface: str | None = None  # required for arp; icmp follows the routing table
    interval: float = 1.0
    timeout: float = 0.5
    fall: int = 2
    rise: int = 2


@dataclass(frozen=True)
class Url:
    """One url of an HTTP_GET / SSL_GET checker: what a healthy answer looks like."""

    path: str
    status_code: int | None = None  # None = any 2xx, as keepalived does
    digest: str | None = None  # lower-case hex MD5 of the body


_NET = (CheckerKind.TCP_CHECK, CheckerKind.HTTP_GET, CheckerKind.SSL_GET)
_WEB = (CheckerKind.HTTP_GET, CheckerKind.SSL_GET)
_MISC = (CheckerKind.MISC_CHECK,)


@dataclass(frozen=True)
class Checker:
    """The health checker of one real server; which settings apply depends on ``kind``."""

    # The key the checker's block sits under in its real server, not a key inside it.
    kind: CheckerKind = field(metadata=NOT_A_KEY)
    connect_timeout: float = field(default=5.0, metadata=for_kinds(*_NET))
    connect_port: int | None = field(default=None, metadata=for_kinds(*_NET))
    misc_path: str | None = field(default=None, metadata=for_kinds(*_MISC))
    # None = the virtual server's delay_loop
    misc_timeout: float | None = field(default=None, metadata=for_kinds(*_MISC))
    # None = keepalived's default for the kind (retry: 1, MISC_CHECK 0;
    # delay_before_retry: 1 s, HTTP_GET/SSL_GET 3 s): see vrrp_agent.lvs.health.
    # nb_get_retry is keepalived's older name for retry, still in many configurations.
    retry: int | None = field(default=None, metadata=yaml_keys("retry", "nb_get_retry"))
    delay_before_retry: float | None = None
    url: tuple[Url, ...] = field(default=(), metadata=for_kinds(*_WEB))


@dataclass(frozen=True)
class RealServer:
    """One real_servers entry of a virtual server."""

    ip: IPAddr
    port: int
    weight: int = 1
    inhibit_on_failure: bool = False
    # None: global_defs.smtp_alert_checker, then smtp_alert, else on (keepalived)
    smtp_alert: bool | None = None
    # read from the one TCP_CHECK / HTTP_GET / SSL_GET / MISC_CHECK block present
    checker: Checker | None = field(default=None, metadata=yaml_keys(*CheckerKind))


@dataclass(frozen=True)
class SorryServer:
    """The server a virtual server sends to when no real server is up."""

    ip: IPAddr
    port: int


@dataclass(frozen=True)
class VirtualServer:
    """One virtual_servers entry: a load-balanced service and its real servers."""

    ip: IPAddr
    port: int
    protocol: TransportProtocol = TransportProtocol.TCP
    lb_algo: LbAlgo = LbAlgo.RR
    lb_kind: LbKind = LbKind.NAT
    delay_loop: float = 60.0
    persistence_timeout: int = 0
    sorry_server: SorryServer | None = None
    # Quorum mails (every real server down / one back); None: global_defs.smtp_alert_checker,
    # then smtp_alert, else off. Not inherited by the real servers (keepalived).
    smtp_alert: bool | None = None
    real_servers: tuple[RealServer, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole validated configuration file."""

    path: str = field(metadata=NOT_A_KEY)  # where it was read from, for messages
    global_defs: GlobalDefs
    vrrp_scripts: Mapping[str, Script] = field(default_factory=FrozenMap)
    vrrp_instances: Mapping[str, Instance] = field(default_factory=FrozenMap)
    vrrp_sync_groups: Mapping[str, SyncGroup] = field(default_factory=FrozenMap)
    virtual_servers: tuple[VirtualServer, ...] = ()
    arbiter: Arbiter | None = None


@dataclass(frozen=True)
class GarpSettings:
    """What one instance does about gratuitous ARP / unsolicited NA on becoming master."""

    master_delay: float
    master_repeat: int
    master_refresh: float
    master_refresh_repeat: int
    interval: float  # vrrp_garp_interval for IPv4, vrrp_gna_interval for IPv6


def garp_settings(cfg: Config, inst: Instance) -> GarpSettings:
    """Resolve an instance's garp_* overrides over the global vrrp_garp_* values."""
    g = cfg.global_defs

    def pick(own: float | None, default: float) -> float:
        return default if own is None else own

    return GarpSettings(
        master_delay=pick(inst.garp_master_delay, g.vrrp_garp_master_delay),
        master_repeat=int(pick(inst.garp_master_repeat, g.vrrp_garp_master_repeat)),
        master_refresh=pick(inst.garp_master_refresh, g.vrrp_garp_master_refresh),
        master_refresh_repeat=int(
            pick(inst.garp_master_refresh_repeat, g.vrrp_garp_master_refresh_repeat)
        ),
        interval=g.vrrp_garp_interval if inst.family == 4 else g.vrrp_gna_interval,
    )


def skip_check_adv_addr(cfg: Config, inst: Instance) -> bool:
    """The instance's skip_check_adv_addr, else the global vrrp_skip_check_adv_addr.

    The instance's value wins both ways. (keepalived, 2.2.7 and 2.3.3 alike,
    means the same but its instance handler sets the flag for any valid value,
    so there `skip_check_adv_addr false` cannot undo a global
    `vrrp_skip_check_adv_addr`.)
    """
    own = inst.skip_check_adv_addr
    return cfg.global_defs.vrrp_skip_check_adv_addr if own is None else own


# --- alert mail: which objects send it ---------------------------------------------


def smtp_alert_on(
    own: bool | None, category: bool | None, global_default: bool | None, fallback: bool
) -> bool:
    """keepalived's rule for whether an object sends alert mail: its own
    smtp_alert, else global_defs.smtp_alert_vrrp (instances and sync groups)
    or smtp_alert_checker (virtual and real servers), else the global
    smtp_alert, else `fallback`: off, except for real servers, which
    keepalived alerts for by default (backwards compatibility).
    keepalived: vrrp/vrrp.c (instances, sync groups), check/check_data.c
    (virtual servers, real servers)."""
    for setting in (own, category, global_default):
        if setting is not None:
            return setting
    return fallback


def alerts_instance(g: GlobalDefs, inst: Instance | SyncGroup) -> bool:
    return smtp_alert_on(inst.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert, False)


def alerts_virtual_server(g: GlobalDefs, vs: VirtualServer) -> bool:
    return smtp_alert_on(vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, False)


def alerts_real_server(g: GlobalDefs, rs: RealServer) -> bool:
    return smtp_alert_on(rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, True)


def alerting(cfg: Config, *, asked: bool = False) -> list[str]:
    """The key paths of the objects that would send alert mail, in file order;
    with `asked`, only those whose configuration says so (not the real servers
    that alert by keepalived's default alone)."""
    g = cfg.global_defs
    out = [f"vrrp_instances.{n}" for n, i in cfg.vrrp_instances.items() if alerts_instance(g, i)]
    out += [f"vrrp_sync_groups.{n}" for n, s in cfg.vrrp_sync_groups.items()
            if alerts_instance(g, s)]  # fmt: skip
    for i, vs in enumerate(cfg.virtual_servers):
        if alerts_virtual_server(g, vs):
            out.append(f"virtual_servers[{i}]")
        for j, rs in enumerate(vs.real_servers):
            on = smtp_alert_on(rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, not asked)
            if rs.checker is not None and on:  # only checked real servers ever change state
                out.append(f"virtual_servers[{i}].real_servers[{j}]")
    return out


def smtp_warnings(cfg: Config) -> list[tuple[str, str]]:
    """(key path, message) when alert mail is asked for but cannot be sent.

    keepalived sends nothing then, without a word (core/smtp.c: no
    notification_email or no smtp_server, no mail); we send nothing either
    and say so, at validate, start and reload. Only for mail asked for: a
    virtual server's real servers alert by default, and most configurations
    without mail have them."""
    who = alerting(cfg, asked=True)
    if not who:
        return []
    g = cfg.global_defs
    shown = ", ".join(who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
    out = []
    for key, missing in (
        ("smtp_server", g.smtp_server is None),
        ("notification_email", not g.notification_email),
    ):
        if missing:
            out.append((
                f"global_defs.{key}",
                f"not set, so no alert mail is sent (smtp_alert is on for {shown});"
                " keepalived skips it silently",
            ))  # fmt: skip
    return out
