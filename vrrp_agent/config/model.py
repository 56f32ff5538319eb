"""The validated configuration as frozen dataclasses.

Every setting is a field with its default filled in, because the daemon compares
``Instance`` objects with ``==`` on SIGHUP to decide which instances changed; a
setting hidden anywhere else would make a changed instance look unchanged.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import TypeVar

IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface

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


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    # default_factory rather than a plain default: a hostname read at import time
    # would go stale in long-lived test processes and is I/O at import.
    router_id: str = field(default_factory=socket.gethostname)
    control_socket: str = "/run/vrrp-agent/agent.sock"
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    script_user: str = "vrrp_script"
    enable_script_security: bool = True
    lvs_backend: str = "auto"
    # keepalived's notify_fifo: every transition as one line, for a reader
    # that wants the stream rather than a process per event.
    notify_fifo: str | None = None


@dataclass(frozen=True, slots=True)
class VirtualAddress:
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


@dataclass(frozen=True, slots=True)
class TrackRef:
    name: str
    weight: int | None = None  # None = the script's weight / the default


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    script: str
    interval: float = 1.0
    timeout: float | None = None  # None = interval, as in keepalived
    weight: int = 0
    fall: int = 1
    rise: int = 1
    user: str | None = None  # None = global_defs.script_user


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    interface: str
    virtual_router_id: int
    priority: int = 100
    advert_int: float = 1.0
    version: int = 3
    state: str = "BACKUP"
    nopreempt: bool = False
    preempt_delay: float = 0.0
    accept: bool = True
    unicast_src_ip: IPAddr | None = None
    unicast_peer: tuple[IPAddr, ...] = ()
    auth_type: str | None = None
    auth_pass: str | None = None
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
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

    @property
    def family(self) -> int:
        """4 or 6: the family of the first VIP (validation makes them all agree)."""
        return self.virtual_ipaddress[0].address.version


@dataclass(frozen=True, slots=True)
class SyncGroup:
    name: str
    group: tuple[str, ...]
    # keepalived: without it, track weights of members count as 0 (FAULT on
    # failure), because a lowered priority on one member cannot move the group.
    sync_group_tracking_weight: bool = False
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None


@dataclass(frozen=True, slots=True)
class Arbiter:
    """Split-brain arbitration: reference addresses this node must reach to hold a VIP."""

    addresses: tuple[IPAddr, ...]
    method: str = "icmp"  # icmp (echo request) | arp (ARP probe, IPv4 only)
    interface: str | None = None  # required for arp; icmp follows the routing table
    interval: float = 1.0
    timeout: float = 0.5
    fall: int = 2
    rise: int = 2


@dataclass(frozen=True, slots=True)
class Url:
    path: str
    status_code: int | None = None  # None = any 2xx, as keepalived does
    digest: str | None = None  # lower-case hex MD5 of the body


@dataclass(frozen=True, slots=True)
class Checker:
    kind: str  # TCP_CHECK | HTTP_GET | SSL_GET | MISC_CHECK
    connect_timeout: float = 5.0
    connect_port: int | None = None  # None = the real server's port
    # None = keepalived's default for the kind (retry: 1, MISC_CHECK 0;
    # delay_before_retry: 1 s, HTTP_GET/SSL_GET 3 s): see vrrp_agent.lvs.health.
    retry: int | None = None
    delay_before_retry: float | None = None
    url: tuple[Url, ...] = ()
    misc_path: str | None = None
    misc_timeout: float | None = None  # None = the virtual server's delay_loop


@dataclass(frozen=True, slots=True)
class RealServer:
    ip: IPAddr
    port: int
    weight: int = 1
    inhibit_on_failure: bool = False
    checker: Checker | None = None


@dataclass(frozen=True, slots=True)
class SorryServer:
    ip: IPAddr
    port: int


@dataclass(frozen=True, slots=True)
class VirtualServer:
    ip: IPAddr
    port: int
    protocol: str = "TCP"
    lb_algo: str = "rr"
    lb_kind: str = "NAT"
    delay_loop: float = 60.0
    persistence_timeout: int = 0
    sorry_server: SorryServer | None = None
    real_servers: tuple[RealServer, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    global_defs: GlobalDefs
    vrrp_scripts: Mapping[str, Script] = field(default_factory=FrozenMap)
    vrrp_instances: Mapping[str, Instance] = field(default_factory=FrozenMap)
    vrrp_sync_groups: Mapping[str, SyncGroup] = field(default_factory=FrozenMap)
    virtual_servers: tuple[VirtualServer, ...] = ()
    arbiter: Arbiter | None = None


@dataclass(frozen=True, slots=True)
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
