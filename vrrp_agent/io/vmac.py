"""keepalived's use_vmac: a macvlan interface that carries the virtual router
MAC (RFC 9568 7.3: 00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID) and the
VIPs, so that clients keep the same neighbour entry whichever router is master.

What keepalived does (keepalived/vrrp/vrrp_vmac.c netlink_link_add_vmac,
vrrp_if_config.c, vrrp.c vrrp_complete_instance, 2.2.7), and so do we:

- the macvlan is made at start, not on becoming master: in private mode the
  kernel hands a multicast frame whose source MAC is one of its macvlans'
  MACs to that macvlan *only*, so a backup hears the master's adverts (sent
  from the same virtual MAC) on its own vmac, and nowhere else;
- mode private, for that reason (VEPA and bridge drop a frame whose source
  is the receiving macvlan's own MAC: the master's adverts would be lost);
- IPv4 devconf on the vmac: arp_ignore=1 (answer only for its own addresses,
  the VIPs), accept_local=1, rp_filter=0 (a backup's vmac has no address, and
  a reverse-path check of the adverts' source would then drop them),
  promote_secondaries=1; on the base: arp_ignore=1 (it must not answer for
  the VIPs with its own MAC) and arp_filter=1, put back at stop when the last
  vmac on it goes; and, unlike keepalived, arp_announce=2 (see BASE_CONF);
- IPv6: no address generated on the vmac (IFLA_INET6_ADDR_GEN_MODE none, RFC
  5798 7.4: every router's vmac would otherwise make the same link-local from
  the shared MAC); an IPv6 instance sending from its vmac gets the base's
  link-local address added to it, its adverts' source;
- an existing private macvlan of the right name, base and MAC (left by a run
  that crashed) is reused; one of the name but another base, MAC or mode is
  removed and made again; an interface of the name that is no macvlan is
  never touched.

The devconf is set through rtnetlink (RTM_NEWLINK with IFLA_AF_SPEC / AF_INET
/ IFLA_INET_CONF), not /proc/sys, which the unit mounts read-only
(ProtectKernelTunables=yes). pyroute2 0.9.7 decodes IFLA_INET_CONF as one
fixed struct and cannot encode the nested per-option form the kernel's
inet_set_link_af() reads, so these messages are plain struct work.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Interface

from vrrp_agent.io.netlink import Rtnl

log = logging.getLogger(__name__)

# <linux/rtnetlink.h>, <linux/netlink.h>, <linux/if_link.h>, <linux/ip.h>, <linux/if.h>
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK = 1, 3, 5
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC = 18, 20, 26
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_MACVLAN_MODE = 1
MACVLAN_MODE_PRIVATE = 1
IFLA_INET_CONF = 1
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1
IFF_UP = 0x1
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# IPV4_DEVCONF_* (1-based indexes into the kernel's devconf array)
RP_FILTER, ARPFILTER, ARP_ANNOUNCE, ARP_IGNORE = 8, 13, 18, 19
PROMOTE_SECONDARIES, ACCEPT_LOCAL = 20, 23
VMAC_CONF = {ARP_IGNORE: 1, ACCEPT_LOCAL: 1, RP_FILTER: 0, PROMOTE_SECONDARIES: 1}
# arp_announce=2 is ours, not keepalived's: a master answering a client from
# the VIP over the base asks the client's MAC with the VIP as sender, and the
# client then learns the VIP at the base's MAC (seen in tests/netns/test_vmac.py);
# with 2 the base asks from its own address.
BASE_CONF = {ARP_IGNORE: 1, ARPFILTER: 1, ARP_ANNOUNCE: 2}
CONF_NAMES = {
    RP_FILTER: "rp_filter",
    ARPFILTER: "arp_filter",
    ARP_ANNOUNCE: "arp_announce",
    ARP_IGNORE: "arp_ignore",
    PROMOTE_SECONDARIES: "promote_secondaries",
    ACCEPT_LOCAL: "accept_local",
}

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_NLA = struct.Struct("=HH")


class VmacError(Exception):
    """The vmac cannot be made or used; the message says why in one line."""


def mac_text(mac: bytes) -> str:
    return mac.hex(":")


# --- messages -----------------------------------------------------------------


def nla(kind: int, payload: bytes) -> bytes:
    data = _NLA.pack(_NLA.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def nest(kind: int, *parts: bytes) -> bytes:
    return nla(kind | NLA_F_NESTED, b"".join(parts))


def u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def ipv4_conf_attr(values: dict[int, int]) -> bytes:
    """IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { option: u32 ... } } }"""
    conf = b"".join(u32(k, v) for k, v in sorted(values.items()))
    return nest(IFLA_AF_SPEC, nest(socket.AF_INET, nest(IFLA_INET_CONF, conf)))


def addr_gen_none_attr() -> bytes:
    gen = nla(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
    return nest(IFLA_AF_SPEC, nest(socket.AF_INET6, gen))


def macvlan_attrs(name: str, base_index: int, mac: bytes, alias: str) -> bytes:
    data = nest(IFLA_INFO_DATA, u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_PRIVATE))
    return b"".join(
        (
            nla(IFLA_IFNAME, name.encode() + b"\0"),
            u32(IFLA_LINK, base_index),
            nla(IFLA_ADDRESS, mac),
            nla(IFLA_IFALIAS, alias.encode() + b"\0"),
            nest(IFLA_LINKINFO, nla(IFLA_INFO_KIND, b"macvlan\0"), data),
        )
    )


class LinkRequest:
    """An ifinfomsg with raw attributes, shaped for nlexchange.exchange()
    (which fills in the header and calls encode())."""

    def __init__(self, index: int = 0, attrs: bytes = b"", flags: int = 0, change: int = 0) -> None:
        self.header: dict[str, int] = {}
        self.body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change) + attrs
        self.data = b""

    def __getitem__(self, key: str) -> dict[str, int]:
        if key != "header":
            raise KeyError(key)
        return self.header

    def encode(self) -> None:
        h = self.header
        size = _NLMSG.size + len(self.body)
        hdr = _NLMSG.pack(size, h["type"], h["flags"], h["sequence_number"], 0)
        self.data = hdr + self.body


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size or offset + length > len(data):
            return
        yield kind & NLA_TYPE_MASK, data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3


@dataclass(frozen=True)
class LinkInfo:
    """What RTM_GETLINK says about one interface, as far as vmacs care."""

    index: int
    name: str
    flags: int
    mac: bytes = b""
    kind: str | None = None
    link: int | None = None  # the lower device's index (IFLA_LINK)
    macvlan_mode: int | None = None
    ipv4_conf: dict[int, int] = field(default_factory=dict)


def parse_link(raw: bytes) -> LinkInfo:
    """One RTM_NEWLINK message (header included)."""
    body = raw[_NLMSG.size :]
    _family, _type, index, flags, _change = _IFINFO.unpack_from(body)
    info: dict[str, object] = {"index": index, "flags": flags, "name": ""}
    conf: dict[int, int] = {}
    for kind, payload in _attrs(body[_IFINFO.size :]):
        if kind == IFLA_IFNAME:
            info["name"] = os.fsdecode(payload.split(b"\0", 1)[0])
        elif kind == IFLA_ADDRESS:
            info["mac"] = bytes(payload)
        elif kind == IFLA_LINK and len(payload) >= 4:
            info["link"] = struct.unpack_from("=I", payload)[0]
        elif kind == IFLA_LINKINFO:
            for k, v in _attrs(payload):
                if k == IFLA_INFO_KIND:
                    info["kind"] = v.split(b"\0", 1)[0].decode(errors="replace")
                elif k == IFLA_INFO_DATA:
                    for dk, dv in _attrs(v):
                        if dk == IFLA_MACVLAN_MODE and len(dv) >= 4:
                            info["macvlan_mode"] = struct.unpack_from("=I", dv)[0]
        elif kind == IFLA_AF_SPEC:
            for fam, spec in _attrs(payload):
                if fam != socket.AF_INET:
                    continue
                for k, v in _attrs(spec):
                    if k == IFLA_INET_CONF:
                        values = struct.unpack_from(f"={len(v) // 4}I", v)
                        conf = {i + 1: val for i, val in enumerate(values)}
    return LinkInfo(ipv4_conf=conf, **info)  # type: ignore[arg-type]


class Links:
    """Link requests over the agent's rtnetlink socket."""

    def __init__(self, rtnl: Rtnl) -> None:
        self.rtnl = rtnl

    def get(self, name: str) -> LinkInfo | None:
        try:
            replies = self.rtnl.request(
                RTM_GETLINK,
                NLM_F_REQUEST | NLM_F_ACK,
                LinkRequest(attrs=nla(IFLA_IFNAME, name.encode() + b"\0")),
            )
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        for raw in replies:
            if _NLMSG.unpack_from(raw)[1] == RTM_NEWLINK:
                return parse_link(raw)
        return None

    def dump(self) -> list[LinkInfo]:
        replies = self.rtnl.request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, LinkRequest())
        return [parse_link(r) for r in replies if _NLMSG.unpack_from(r)[1] == RTM_NEWLINK]

    def _set(self, index: int, attrs: bytes = b"", flags: int = 0, change: int = 0) -> None:
        self.rtnl.request(
            RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, LinkRequest(index, attrs, flags, change)
        )

    def create_macvlan(self, name: str, base_index: int, mac: bytes, alias: str) -> None:
        self.rtnl.request(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            LinkRequest(attrs=macvlan_attrs(name, base_index, mac, alias)),
        )

    def delete(self, index: int) -> None:
        try:
            self.rtnl.request(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, LinkRequest(index))
        except OSError as err:
            if err.errno not in (errno.ENODEV, errno.ENOENT):
                raise

    def set_ipv4_conf(self, index: int, values: dict[int, int]) -> None:
        self._set(index, ipv4_conf_attr(values))

    def set_addr_gen_none(self, index: int) -> None:
        self._set(index, addr_gen_none_attr())

    def set_up(self, index: int) -> None:
        self._set(index, flags=IFF_UP, change=IFF_UP)


# --- the agent's vmacs --------------------------------------------------------


@dataclass(frozen=True)
class VmacSpec:
    """One instance's vmac as the configuration asks for it."""

    name: str
    base: str
    mac: bytes
    family: int  # 4 or 6
    xmit_base: bool
    instance: str


@dataclass
class _Base:
    """A base interface under our vmacs: its arp settings before we changed
    them (None: they were as we want them, nothing to put back)."""

    users: set[str] = field(default_factory=set)
    saved: dict[int, int] | None = None


def all_rp_filter() -> int | None:
    """net.ipv4.conf.all.rp_filter of the agent's network namespace (reading
    /proc/sys is allowed under ProtectKernelTunables; writing is not)."""
    try:
        with open("/proc/sys/net/ipv4/conf/all/rp_filter") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Vmacs:
    """The vmac interfaces of an agent, shared by name: a reload that
    rebuilds an instance builds the new one before the old one closes, so a
    vmac is removed only when its last user releases it."""

    def __init__(self, rtnl: Rtnl) -> None:
        self.links = Links(rtnl)
        self.rtnl = rtnl
        self._specs: dict[str, VmacSpec] = {}
        self._users: dict[str, int] = {}
        self._bases: dict[str, _Base] = {}

    def acquire(self, spec: VmacSpec) -> None:
        """Make (or reuse) the vmac and configure it; raises VmacError."""
        if spec.family == 4 and not spec.xmit_base:
            rp = all_rp_filter()
            if rp:
                raise VmacError(
                    f"net.ipv4.conf.all.rp_filter is {rp}: the kernel would drop the adverts"
                    f" arriving on {spec.name} (it has no address while backup), so a backup"
                    " could not hear its master; set it to 0 (keepalived lowers it itself,"
                    " /proc/sys is read-only to the agent) or use vmac_xmit_base"
                )
        have = self._specs.get(spec.name)
        if have is not None and have == spec:
            self._users[spec.name] += 1
            return
        self._make(spec, replace_ours=have is not None)
        self._specs[spec.name] = spec
        self._users[spec.name] = self._users.get(spec.name, 0) + 1

    def release(self, name: str) -> None:
        """One user less; the last one removes the vmac (its VIPs go with it)."""
        if name not in self._users:
            return
        self._users[name] -= 1
        if self._users[name] > 0:
            return
        del self._users[name]
        spec = self._specs.pop(name)
        try:
            current = self.links.get(name)
            if current is not None and current.kind == "macvlan":
                self.links.delete(current.index)
                log.info("(%s) removed vmac interface %s", spec.instance, name)
        except OSError as err:
            log.error("(%s) removing vmac interface %s failed: %s", spec.instance, name, err)
        self._leave_base(spec)

    def close(self) -> None:
        for name in list(self._users):
            self._users[name] = 1
            self.release(name)

    def names(self) -> list[str]:
        return list(self._specs)

    def ensure(self) -> list[str]:
        """Make again every vmac that vanished (deleted by hand, or with its
        base) once its base is back; the names made again."""
        made = []
        for name, spec in list(self._specs.items()):
            try:
                if self.links.get(name) is not None or self.links.get(spec.base) is None:
                    continue
                self._make(spec, replace_ours=False)
            except (OSError, VmacError) as err:
                log.warning("(%s) vmac %s is gone and cannot be made again yet: %s",
                            spec.instance, name, err)  # fmt: skip
                continue
            log.warning("(%s) vmac interface %s was gone: made it again", spec.instance, name)
            made.append(name)
        return made

    # ------------------------------------------------------------------ host

    def _make(self, spec: VmacSpec, *, replace_ours: bool) -> None:
        try:
            base = self.links.get(spec.base)
            if base is None:
                raise VmacError(f"base interface {spec.base} not found on this host")
            current = self._existing(spec, base, replace_ours)
            if current is None:
                self.links.create_macvlan(
                    spec.name, base.index, spec.mac, f"vrrp-agent {spec.instance}"
                )
                current = self.links.get(spec.name)
                if current is None:
                    raise VmacError(f"{spec.name} vanished right after it was made")
                log.info(
                    "(%s) created vmac interface %s on %s with MAC %s",
                    spec.instance, spec.name, spec.base, mac_text(spec.mac),
                )  # fmt: skip
            self._configure(spec, base, current)
        except OSError as err:
            raise VmacError(f"{spec.name}: {err.strerror or err}") from None

    def _existing(self, spec: VmacSpec, base: LinkInfo, replace_ours: bool) -> LinkInfo | None:
        """The interface of the name if it can be reused as it is; clears
        out what stands in the way of making it (a stale macvlan of the name,
        or one on the base with the same MAC: the kernel keeps one MAC per
        macvlan port)."""
        current = self.links.get(spec.name)
        if current is not None and current.kind != "macvlan":
            raise VmacError(
                f"interface {spec.name} exists and is not a macvlan"
                f" ({current.kind or 'a physical or plain device'}); the agent leaves it alone"
            )
        fits = (
            current is not None
            and current.link == base.index
            and current.mac == spec.mac
            and current.macvlan_mode == MACVLAN_MODE_PRIVATE
        )
        if fits and not replace_ours:
            log.info(
                "(%s) reusing vmac interface %s (left by an earlier run)", spec.instance, spec.name
            )
            return current
        if current is not None:
            log.info(
                "(%s) removing vmac interface %s: another base, MAC or mode than configured",
                spec.instance, spec.name,
            )  # fmt: skip
            self.links.delete(current.index)
        for other in self.links.dump():
            if other.kind == "macvlan" and other.link == base.index and other.mac == spec.mac:
                log.info(
                    "(%s) removing macvlan %s on %s: it holds the virtual MAC %s",
                    spec.instance, other.name, spec.base, mac_text(spec.mac),
                )  # fmt: skip
                self.links.delete(other.index)
        return None

    def _configure(self, spec: VmacSpec, base: LinkInfo, vmac: LinkInfo) -> None:
        if spec.family == 4:
            self.links.set_ipv4_conf(vmac.index, VMAC_CONF)
            self._join_base(spec, base)
            _disable_ipv6(spec)
        # Before the link goes up: an address generated from the shared MAC
        # would be the same on every router.
        self.links.set_addr_gen_none(vmac.index)
        if not vmac.flags & IFF_UP:
            self.links.set_up(vmac.index)
        if spec.family == 6 and not spec.xmit_base:
            source = _link_local(self.rtnl, base.index)
            if source is None:
                raise VmacError(f"{spec.base} has no IPv6 link-local address for {spec.name}")
            self.rtnl.add_address(vmac.index, IPv6Interface(f"{source}/64"))

    def _join_base(self, spec: VmacSpec, base: LinkInfo) -> None:
        state = self._bases.setdefault(spec.base, _Base())
        now = {k: base.ipv4_conf.get(k, 0) for k in BASE_CONF}
        if now != BASE_CONF:
            # Checked on every make: a base made again (replugged) starts over.
            if state.saved is None:
                state.saved = now
            self.links.set_ipv4_conf(base.index, BASE_CONF)
            log.info(
                "set %s on %s for its vmacs (was %s)",
                _conf_text(BASE_CONF), spec.base, _conf_text(now),
            )  # fmt: skip
        state.users.add(spec.name)

    def _leave_base(self, spec: VmacSpec) -> None:
        state = self._bases.get(spec.base)
        if state is None:
            return
        state.users.discard(spec.name)
        if state.users:
            return
        del self._bases[spec.base]
        if state.saved is None:
            return
        try:
            base = self.links.get(spec.base)
            if base is not None:
                self.links.set_ipv4_conf(base.index, state.saved)
                log.info("put back %s on %s", _conf_text(state.saved), spec.base)
        except OSError as err:
            log.error("putting back arp settings on %s failed: %s", spec.base, err)


def _conf_text(values: dict[int, int]) -> str:
    return " ".join(f"{CONF_NAMES[k]}={v}" for k, v in values.items())


def _link_local(rtnl: Rtnl, index: int) -> IPv6Address | None:
    for addr in rtnl.addresses(index, socket.AF_INET6):
        if isinstance(addr.ip, IPv6Address) and addr.ip.is_link_local:
            return addr.ip
    return None


def _disable_ipv6(spec: VmacSpec) -> None:
    """keepalived turns IPv6 off on an IPv4 vmac. Only /proc/sys can (the
    kernel takes no IPv6 devconf over netlink); under the unit it is
    read-only, and addr_gen_mode none already keeps the vmac without an IPv6
    address of its own."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{spec.name}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError as err:
        log.debug("(%s) cannot disable IPv6 on %s: %s", spec.instance, spec.name, err)
