"""Addresses and routes through rtnetlink, with pyroute2's message classes.

Only the message codecs are imported. `import pyroute2` runs a package
`__init__` that pulls in NDB, IPDB and every socket class (~0.13 s and
~10 MB here); the daemon must start within 0.5 s and stay small, so we load
the modules we use without running that `__init__`.
"""

from __future__ import annotations

import errno
import importlib.util
import itertools
import socket
import sys
import types
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network, ip_interface

from vrrp_agent.io.nlexchange import NetlinkError, exchange
from vrrp_agent.wire.addresses import IPAddr


def load_pyroute2_modules(*names: str) -> list[types.ModuleType]:
    """Import pyroute2 submodules without running pyroute2's package __init__
    (see above); also used by the IPVS data plane."""
    installed_stub = False
    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError("pyroute2 is not installed")
        stub = types.ModuleType("pyroute2")
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__spec__ = spec
        sys.modules["pyroute2"] = stub
        installed_stub = True
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        if installed_stub:
            # A later plain `import pyroute2` (tests do) then runs the real __init__,
            # reusing the submodules loaded here.
            del sys.modules["pyroute2"]


def _import_codecs() -> tuple[type, type, type]:
    netlink, ifaddr, rt = load_pyroute2_modules(
        "pyroute2.netlink", "pyroute2.netlink.rtnl.ifaddrmsg", "pyroute2.netlink.rtnl.rtmsg"
    )
    return ifaddr.ifaddrmsg, rt.rtmsg, netlink.nlmsgerr


_ifaddrmsg, _rtmsg, _nlmsgerr = _import_codecs()

RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
# Tag our addresses (IFA_PROTO, Linux 6.1+) so `ip -d addr` shows who put them there.
IFA_PROTO_VRRP_AGENT = 112
# The same tag on routes (rtm_protocol): `ip route show proto 112` lists ours,
# and a delete naming it never removes a route someone else added.
RTPROT_VRRP_AGENT = 112
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTN_UNICAST = 1
RTN_TYPES = {"blackhole": 6, "unreachable": 7, "prohibit": 8}
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 253, 254, 255
RT_SCOPES = {"global": RT_SCOPE_UNIVERSE, "link": RT_SCOPE_LINK, "host": RT_SCOPE_HOST}
RT_TABLE_MAIN = 254


@dataclass(frozen=True)
class Address:
    """One address the kernel reports on an interface."""

    ifindex: int
    interface: IPv4Interface | IPv6Interface
    flags: int
    label: str | None

    @property
    def ip(self) -> IPAddr:
        return self.interface.ip


class Rtnl:
    """A blocking rtnetlink socket. Kernel-local requests answer in microseconds,
    so the asyncio loop calls it directly."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def _request(self, msg_type: int, flags: int, msg: object) -> list[bytes]:
        return exchange(self.sock, msg, msg_type, flags, next(self._seq), _nlmsgerr)

    def request(self, msg_type: int, flags: int, msg: object) -> list[bytes]:
        """One request (a pyroute2 message or anything shaped like one, see
        nlexchange.exchange) and its raw replies; errors raise NetlinkError."""
        return self._request(msg_type, flags, msg)

    def addresses(
        self, ifindex: int | None = None, family: int = socket.AF_UNSPEC
    ) -> list[Address]:
        req = _ifaddrmsg()
        req["family"] = family
        out = []
        for raw in self._request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, req):
            m = _ifaddrmsg(raw)
            m.decode()
            if ifindex is not None and m["index"] != ifindex:
                continue
            local = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
            flags = m.get_attr("IFA_FLAGS") or m["flags"]
            iface = ip_interface(f"{local}/{m['prefixlen']}")
            out.append(Address(m["index"], iface, flags, m.get_attr("IFA_LABEL")))
        return out

    def _addr_msg(
        self, ifindex: int, iface: IPv4Interface | IPv6Interface, label: str | None
    ) -> object:
        m = _ifaddrmsg()
        m["index"] = ifindex
        m["prefixlen"] = iface.network.prefixlen
        ip = str(iface.ip)
        if iface.version == 4:
            m["family"] = socket.AF_INET
            attrs = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
            if iface.network.prefixlen < 31:
                attrs.append(("IFA_BROADCAST", str(iface.network.broadcast_address)))
            if label:
                attrs.append(("IFA_LABEL", label))
        else:
            m["family"] = socket.AF_INET6
            # No duplicate address detection: the address must answer the moment we are master.
            m["flags"] = IFA_F_NODAD
            attrs = [("IFA_ADDRESS", ip), ("IFA_FLAGS", IFA_F_NODAD)]
        attrs.append(("IFA_PROTO", IFA_PROTO_VRRP_AGENT))
        m["attrs"] = attrs
        return m

    def add_address(
        self, ifindex: int, iface: IPv4Interface | IPv6Interface, label: str | None = None
    ) -> bool:
        """Add an address; False if it was already there."""
        try:
            self._request(
                RTM_NEWADDR,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                self._addr_msg(ifindex, iface, label),
            )
        except NetlinkError as err:
            if err.errno == errno.EEXIST:
                return False
            raise
        return True

    def del_address(self, ifindex: int, iface: IPv4Interface | IPv6Interface) -> bool:
        """Remove an address; False if it was not there."""
        try:
            self._request(
                RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, self._addr_msg(ifindex, iface, None)
            )
        except NetlinkError as err:
            if err.errno in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                return False
            raise
        return True


@dataclass(frozen=True)
class RouteSpec:
    """What a route request carries: the kernel's fields, names resolved
    (the device to its index) by the caller."""

    dst: IPv4Network | IPv6Network
    src: IPAddr | None = None
    gateway: IPAddr | None = None
    oif: int | None = None
    metric: int | None = None
    table: int = RT_TABLE_MAIN
    scope: str | None = None
    type: str | None = None


def _route_msg(spec: RouteSpec, deleting: bool) -> object:
    m = _rtmsg()
    m["family"] = socket.AF_INET if spec.dst.version == 4 else socket.AF_INET6
    m["dst_len"] = spec.dst.prefixlen
    # The header's table is one octet; RTA_TABLE carries any table (as ip does).
    m["table"] = spec.table if spec.table < 256 else 0
    m["proto"] = RTPROT_VRRP_AGENT
    m["type"] = RTN_TYPES[spec.type] if spec.type else RTN_UNICAST
    if spec.scope is not None:
        m["scope"] = RT_SCOPES[spec.scope]
    elif deleting:
        m["scope"] = RT_SCOPE_NOWHERE  # any scope, as `ip route del` asks
    elif spec.type is None and spec.gateway is None:
        m["scope"] = RT_SCOPE_LINK  # `ip route add` picks link for a route without a gateway
    else:
        m["scope"] = RT_SCOPE_UNIVERSE
    attrs: list[tuple[str, object]] = [("RTA_TABLE", spec.table)]
    if spec.dst.prefixlen:
        attrs.append(("RTA_DST", str(spec.dst.network_address)))
    if spec.src is not None:
        attrs.append(("RTA_PREFSRC", str(spec.src)))
    if spec.gateway is not None:
        attrs.append(("RTA_GATEWAY", str(spec.gateway)))
    if spec.oif is not None:
        attrs.append(("RTA_OIF", spec.oif))
    if spec.metric is not None:
        attrs.append(("RTA_PRIORITY", spec.metric))
    m["attrs"] = attrs
    return m


def add_route(rtnl: Rtnl, spec: RouteSpec) -> bool:
    """Add a route; False if it was already there."""
    try:
        rtnl.request(
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            _route_msg(spec, deleting=False),
        )
    except NetlinkError as err:
        if err.errno == errno.EEXIST:
            return False
        raise
    return True


def del_route(rtnl: Rtnl, spec: RouteSpec) -> bool:
    """Remove our route (proto 112 only); False if it was not there."""
    try:
        rtnl.request(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, _route_msg(spec, deleting=True))
    except NetlinkError as err:
        if err.errno in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            return False
        raise
    return True
