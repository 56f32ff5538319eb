"""The IPVS data plane: the kernel's IP Virtual Server, over generic netlink.

What ipvsadm and keepalived do, through pyroute2's IPVS message classes
(`pyroute2.netlink.generic.ipvs.ipvsmsg`, and `ctrlmsg` to find the "IPVS"
family) on a blocking socket of our own, as `vrrp_agent.io.netlink` does for
addresses. pyroute2's `IPVS` socket class is not used: it runs an asyncio
loop of its own per call, and its "update" command sends a delete.

Split like the rest of the agent:

- `desired()` and `diff()` are pure: plans and a snapshot of the kernel in,
  a list of `Op`s out. The diff edits rather than replaces, so established
  connections survive: a changed weight is one SET_DEST, a changed
  scheduler or persistence one SET_SERVICE, and an inhibited real server
  (inhibit_on_failure) stays with weight 0, as keepalived leaves it, so its
  connections finish while nothing new is scheduled to it.
- `IpvsPlane` reads the kernel (dumps), runs the diff and sends the ops.

"Ours": a service whose (VIP, port, protocol) is a configured virtual
server (`virtual_servers=`), or one this plane created or was handed in a
plan. Every other service (ipvsadm's, another daemon's, fwmark services) is
never touched, by `apply` or by `clear`.

The kernel on our build machines has no ip_vs, so the tests drive this module
through a faked kernel side of the netlink socket (`sock_factory`): it
decodes what we send and answers with messages built by the same pyroute2
classes. That fake is the only mock, and the tests say so.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import socket
import struct
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any, Protocol

from vrrp_agent.config.model import VirtualServer
from vrrp_agent.io.nlexchange import NetlinkError, exchange
from vrrp_agent.lvs.plan import ServicePlan
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

# Every scheduler IPVS has (net/netfilter/ipvs/ip_vs_*.c); config's LB_ALGOS
# names the same list. The kernel loads a scheduler's module on first use.
SCHEDULERS = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)

# include/uapi/linux/ip_vs.h
IPVS_CMD_NEW_SERVICE, IPVS_CMD_SET_SERVICE, IPVS_CMD_DEL_SERVICE, IPVS_CMD_GET_SERVICE = 1, 2, 3, 4
IPVS_CMD_NEW_DEST, IPVS_CMD_SET_DEST, IPVS_CMD_DEL_DEST, IPVS_CMD_GET_DEST = 5, 6, 7, 8
GENL_NAME = "IPVS"
GENL_VERSION = 1
IP_VS_CONN_F_MASQ, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_DROUTE = 0, 2, 3
IP_VS_CONN_F_FWD_MASK = 0x7
IP_VS_SVC_F_PERSISTENT = 0x1
# The flags this plane decides; the kernel adds its own (HASHED) in dumps.
_OUR_SVC_FLAGS = IP_VS_SVC_F_PERSISTENT

FWD_METHODS: Mapping[str, int] = {
    "NAT": IP_VS_CONN_F_MASQ,
    "DR": IP_VS_CONN_F_DROUTE,
    "TUN": IP_VS_CONN_F_TUNNEL,
}
PROTOCOLS: Mapping[str, int] = {"TCP": 6, "UDP": 17, "SCTP": 132}
_PROTOCOL_NAMES = {n: name for name, n in PROTOCOLS.items()}

# include/uapi/linux/netlink.h, genetlink.h
NETLINK_GENERIC = 16  # not in Python's socket module
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300

# IPVS_SVC_ATTR_NETMASK is the persistence granularity. The kernel requires it
# on every full service message. IPv4: a netmask. IPv6: a prefix length,
# which the kernel reads as a host-order u32 out of the same 4 bytes; pyroute2
# encodes the attribute as an IPv4 address, so 128 is spelled that way.
_NETMASK = {
    socket.AF_INET: "255.255.255.255",
    socket.AF_INET6: socket.inet_ntoa(struct.pack("=I", 128)),
}


class IpvsUnavailable(OSError):
    """The running kernel has no IPVS (the ip_vs module is absent or not loadable)."""


# ------------------------------------------------------------------ model


@dataclass(frozen=True, order=True)
class ServiceKey:
    """How IPVS names a (non-fwmark) service."""

    af: int
    protocol: int
    addr: IPAddr
    port: int

    def __str__(self) -> str:
        host = str(self.addr) if self.af == socket.AF_INET else f"[{self.addr}]"
        return f"{_PROTOCOL_NAMES.get(self.protocol, self.protocol)} {host}:{self.port}"


@dataclass(frozen=True)
class Service:
    """One IPVS virtual service as the kernel holds it."""

    key: ServiceKey
    scheduler: str
    persistent: bool = False
    timeout: int = 0  # seconds of persistence; 0 unless persistent
    netmask: str = "255.255.255.255"


DestKey = tuple[IPAddr, int]


@dataclass(frozen=True)
class Dest:
    """One IPVS destination (real server) of a service."""

    addr: IPAddr
    port: int
    fwd_method: int
    weight: int
    u_thresh: int = 0
    l_thresh: int = 0

    @property
    def key(self) -> DestKey:
        return (self.addr, self.port)

    def __str__(self) -> str:
        host = str(self.addr) if self.addr.version == 4 else f"[{self.addr}]"
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Op:
    """One IPVS netlink command, for the log and the tests."""

    cmd: int  # IPVS_CMD_*
    service: Service  # service ops send all of it; dest ops only its key
    dest: Dest | None = None

    def __str__(self) -> str:
        verb = _OP_NAMES.get(self.cmd, str(self.cmd))
        if self.dest is None:
            return f"{verb} {self.service.key}"
        return f"{verb} {self.dest} weight {self.dest.weight} in {self.service.key}"


_OP_NAMES = {
    IPVS_CMD_NEW_SERVICE: "add service",
    IPVS_CMD_SET_SERVICE: "edit service",
    IPVS_CMD_DEL_SERVICE: "delete service",
    IPVS_CMD_NEW_DEST: "add",
    IPVS_CMD_SET_DEST: "edit",
    IPVS_CMD_DEL_DEST: "delete",
}

Wanted = Mapping[ServiceKey, tuple[Service, Mapping[DestKey, Dest]]]


def _af(addr: IPAddr) -> int:
    return socket.AF_INET if isinstance(addr, IPv4Address) else socket.AF_INET6


def service_key(vs: VirtualServer) -> ServiceKey:
    return ServiceKey(_af(vs.ip), PROTOCOLS[vs.protocol], vs.ip, vs.port)


def desired(plans: Iterable[ServicePlan]) -> dict[ServiceKey, tuple[Service, dict[DestKey, Dest]]]:
    """What IPVS should hold for these plans."""
    out: dict[ServiceKey, tuple[Service, dict[DestKey, Dest]]] = {}
    for plan in plans:
        vs = plan.vs
        if vs.lb_algo not in SCHEDULERS:
            raise ValueError(f"IPVS has no scheduler '{vs.lb_algo}'")
        key = service_key(vs)
        persistent = vs.persistence_timeout > 0
        service = Service(
            key,
            vs.lb_algo,
            persistent,
            vs.persistence_timeout if persistent else 0,
            _NETMASK[key.af],
        )
        # The sorry server goes out the way the real servers do, as in keepalived.
        fwd = FWD_METHODS[vs.lb_kind]
        dests = {(b.ip, b.port): Dest(b.ip, b.port, fwd, b.weight) for b in plan.backends}
        out[key] = (service, dests)
    return out


def diff(
    services: Mapping[ServiceKey, Service],
    dests: Mapping[ServiceKey, Mapping[DestKey, Dest]],
    wanted: Wanted,
    ours: Set[ServiceKey],
) -> list[Op]:
    """The ops that turn the kernel's `services` (and the `dests` of those
    among them that are wanted) into `wanted`, touching nothing outside `ours`.

    Per service: the service itself, then added and edited destinations, then
    removed ones, so a service never passes through having none when it
    should have some. Services of ours no longer wanted go last.
    """
    ops: list[Op] = []
    for key, (want, want_dests) in wanted.items():
        have = services.get(key)
        if have is None:
            ops.append(Op(IPVS_CMD_NEW_SERVICE, want))
            ops.extend(Op(IPVS_CMD_NEW_DEST, want, d) for d in want_dests.values())
            continue
        if have != want:
            ops.append(Op(IPVS_CMD_SET_SERVICE, want))
        have_dests = dests.get(key, {})
        for dkey, d in want_dests.items():
            old = have_dests.get(dkey)
            if old is None:
                ops.append(Op(IPVS_CMD_NEW_DEST, want, d))
            elif old != d:
                ops.append(Op(IPVS_CMD_SET_DEST, want, d))
        ops.extend(
            Op(IPVS_CMD_DEL_DEST, want, d)
            for dkey, d in have_dests.items()
            if dkey not in want_dests
        )
    for key, have in services.items():
        if key in ours and key not in wanted:
            ops.append(Op(IPVS_CMD_DEL_SERVICE, have))
    return ops


# ------------------------------------------------------------ netlink I/O


@functools.cache
def codecs() -> tuple[Any, Any, Any]:
    """(ipvsmsg, ctrlmsg, nlmsgerr). Loaded on first use, not at import:
    `vrrp-agent validate` imports this module for SCHEDULERS alone, and the
    generic netlink package pulls in asyncio (~50 ms)."""
    from vrrp_agent.io.netlink import load_pyroute2_modules

    netlink, generic_ipvs = load_pyroute2_modules(
        "pyroute2.netlink", "pyroute2.netlink.generic.ipvs"
    )
    return generic_ipvs.ipvsmsg, netlink.ctrlmsg, netlink.nlmsgerr


class NetlinkSocket(Protocol):
    """What `sock_factory` returns: a datagram socket's send/recv/close."""

    def send(self, data: bytes, /) -> int: ...

    def recv(self, bufsize: int, /) -> bytes: ...

    def close(self) -> None: ...


def genl_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    # The kernel answers at once; a timeout only guards the daemon's loop
    # against a reply that never comes.
    sock.settimeout(5.0)
    sock.bind((0, 0))
    return sock


def modprobe_ip_vs() -> None:
    """Load ip_vs, as ipvsadm and keepalived do: no netlink request loads it."""
    try:
        subprocess.run(["modprobe", "-q", "ip_vs"], check=False, timeout=10, capture_output=True)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.debug("modprobe ip_vs: %s", err)


class Genl:
    """One generic netlink conversation: request, collect replies, raise on error."""

    def __init__(self, sock: NetlinkSocket) -> None:
        self.sock = sock
        self._seq = itertools.count(1)

    def request(self, msg_type: int, flags: int, msg: Any) -> list[bytes]:
        """Send `msg` (a pyroute2 message) with NLM_F_ACK or NLM_F_DUMP in
        `flags`, either of which guarantees an end; return the raw replies
        before it. An error reply raises NetlinkError(errno)."""
        _, _, nlmsgerr = codecs()
        return exchange(self.sock, msg, msg_type, flags, next(self._seq), nlmsgerr)

    def family_id(self, name: str) -> int:
        _, ctrlmsg, _ = codecs()
        msg = ctrlmsg()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", name)]
        for raw in self.request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, msg):
            reply = ctrlmsg(raw)
            reply.decode()
            family = reply.get_attr("CTRL_ATTR_FAMILY_ID")
            if family is not None:
                return int(family)
        raise NetlinkError(errno.ENOENT, f"no generic netlink family {name}")


class _IpvsLink:
    """IPVS commands on a Genl conversation, messages built with ipvsmsg."""

    def __init__(self, genl: Genl, family: int) -> None:
        self.genl = genl
        self.family = family

    def _msg(self, cmd: int, attrs: list[tuple[str, Any]]) -> Any:
        ipvsmsg, _, _ = codecs()
        msg = ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = GENL_VERSION
        msg["attrs"] = attrs
        return msg

    def _decode(self, raw: bytes) -> Any:
        ipvsmsg, _, _ = codecs()
        msg = ipvsmsg(raw)
        msg.decode()
        return msg

    def services(self) -> dict[ServiceKey, Service]:
        """Every non-fwmark service in the kernel, ours or not."""
        out: dict[ServiceKey, Service] = {}
        replies = self.genl.request(
            self.family, NLM_F_REQUEST | NLM_F_DUMP, self._msg(IPVS_CMD_GET_SERVICE, [])
        )
        for raw in replies:
            svc = self._decode(raw).get_attr("IPVS_CMD_ATTR_SERVICE")
            if svc is None or svc.get_attr("IPVS_SVC_ATTR_FWMARK"):
                continue  # fwmark services are never ours: we configure VIP:port ones
            af = svc.get_attr("IPVS_SVC_ATTR_AF")
            key = ServiceKey(
                af,
                svc.get_attr("IPVS_SVC_ATTR_PROTOCOL"),
                ip_address(svc.get_attr("IPVS_SVC_ATTR_ADDR")),
                svc.get_attr("IPVS_SVC_ATTR_PORT"),
            )
            flags = svc.get_attr("IPVS_SVC_ATTR_FLAGS") or {"flags": 0}
            out[key] = Service(
                key,
                svc.get_attr("IPVS_SVC_ATTR_SCHED_NAME"),
                bool(flags["flags"] & IP_VS_SVC_F_PERSISTENT),
                svc.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0,
                svc.get_attr("IPVS_SVC_ATTR_NETMASK") or _NETMASK.get(af, ""),
            )
        return out

    def dests(self, key: ServiceKey) -> dict[DestKey, Dest]:
        out: dict[DestKey, Dest] = {}
        msg = self._msg(IPVS_CMD_GET_DEST, [("IPVS_CMD_ATTR_SERVICE", _key_nla(key))])
        for raw in self.genl.request(self.family, NLM_F_REQUEST | NLM_F_DUMP, msg):
            d = self._decode(raw).get_attr("IPVS_CMD_ATTR_DEST")
            if d is None:
                continue
            dest = Dest(
                ip_address(d.get_attr("IPVS_DEST_ATTR_ADDR")),
                d.get_attr("IPVS_DEST_ATTR_PORT"),
                (d.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0) & IP_VS_CONN_F_FWD_MASK,
                d.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
                d.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
                d.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
            )
            out[dest.key] = dest
        return out

    def send(self, op: Op) -> None:
        if op.dest is None:
            if op.cmd == IPVS_CMD_DEL_SERVICE:
                attrs = [("IPVS_CMD_ATTR_SERVICE", _key_nla(op.service.key))]
            else:
                attrs = [("IPVS_CMD_ATTR_SERVICE", _service_nla(op.service))]
        else:
            attrs = [
                ("IPVS_CMD_ATTR_SERVICE", _key_nla(op.service.key)),
                ("IPVS_CMD_ATTR_DEST", _dest_nla(op.dest)),
            ]
        self.genl.request(self.family, NLM_F_REQUEST | NLM_F_ACK, self._msg(op.cmd, attrs))


def _key_nla(key: ServiceKey) -> dict[str, Any]:
    return {
        "attrs": [
            ("IPVS_SVC_ATTR_AF", key.af),
            ("IPVS_SVC_ATTR_PROTOCOL", key.protocol),
            ("IPVS_SVC_ATTR_ADDR", str(key.addr)),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    }


def _service_nla(s: Service) -> dict[str, Any]:
    nla = _key_nla(s.key)
    nla["attrs"] += [
        ("IPVS_SVC_ATTR_SCHED_NAME", s.scheduler),
        # mask ~0 as ipvsadm sends: the flags say all of what we want
        ("IPVS_SVC_ATTR_FLAGS", {"flags": _svc_flags(s), "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", s.timeout),
        ("IPVS_SVC_ATTR_NETMASK", s.netmask),
    ]
    return nla


def _svc_flags(s: Service) -> int:
    return IP_VS_SVC_F_PERSISTENT if s.persistent else 0


def _dest_nla(d: Dest) -> dict[str, Any]:
    # ADDR_FAMILY (Linux 3.18+) lets a tunnel carry the other family.
    return {
        "attrs": [
            ("IPVS_DEST_ATTR_ADDR_FAMILY", _af(d.addr)),
            ("IPVS_DEST_ATTR_ADDR", str(d.addr)),
            ("IPVS_DEST_ATTR_PORT", d.port),
            ("IPVS_DEST_ATTR_FWD_METHOD", d.fwd_method),
            ("IPVS_DEST_ATTR_WEIGHT", d.weight),
            ("IPVS_DEST_ATTR_U_THRESH", d.u_thresh),
            ("IPVS_DEST_ATTR_L_THRESH", d.l_thresh),
        ]
    }


# ------------------------------------------------------------------ plane


class IpvsPlane:
    """IPVS services for the virtual servers whose VIP this node holds.

    A socket is opened per `apply`/`clear`: they are rare, and a fresh
    family lookup follows an ip_vs module that was reloaded meanwhile.
    """

    name = "ipvs"

    def __init__(
        self,
        sock_factory: Callable[[], NetlinkSocket] = genl_socket,
        *,
        virtual_servers: Iterable[VirtualServer] = (),
        load_module: Callable[[], None] = modprobe_ip_vs,
    ) -> None:
        self._sock_factory = sock_factory
        self._load_module = load_module
        self._module_tried = False
        # Configured virtual servers: ours even when left over by an earlier run.
        self._configured = frozenset(service_key(vs) for vs in virtual_servers)
        # Services this plane created or was handed in a plan, until it deletes them.
        self._installed: set[ServiceKey] = set()

    @property
    def ours(self) -> frozenset[ServiceKey]:
        return self._configured | self._installed

    def _open(self) -> tuple[NetlinkSocket, _IpvsLink]:
        sock = self._sock_factory()
        try:
            genl = Genl(sock)
            try:
                family = genl.family_id(GENL_NAME)
            except NetlinkError as err:
                if err.errno != errno.ENOENT or self._module_tried:
                    raise
                self._module_tried = True
                self._load_module()
                family = genl.family_id(GENL_NAME)
        except NetlinkError as err:
            sock.close()
            if err.errno == errno.ENOENT:
                raise IpvsUnavailable(
                    errno.ENOENT,
                    "the kernel has no IPVS (module ip_vs missing or not loadable);"
                    " use global_defs.lvs_backend: nftables",
                ) from None
            raise
        except BaseException:
            sock.close()
            raise
        return sock, _IpvsLink(genl, family)

    def apply(self, services: Sequence[tuple[ServicePlan, str]]) -> None:
        """Make our services in the kernel equal `services`.

        The interface is not needed: IPVS hooks every interface (nftables'
        DR ingress is what wants it). Every service is tried; the first
        failure is raised afterwards, naming the service and the operation,
        so the caller retries at its next change.
        """
        wanted = desired(plan for plan, _ifname in services)
        sock, link = self._open()
        try:
            ours = self.ours | wanted.keys()
            have = link.services()
            have_dests = {key: link.dests(key) for key in wanted if key in have}
            ops = diff(have, have_dests, wanted, ours)
            self._installed |= wanted.keys() & have.keys()
            self._run(link, ops)
        finally:
            sock.close()

    def clear(self) -> None:
        """Delete our services (and with them their destinations); no others."""
        sock, link = self._open()
        try:
            have = link.services()
            ops = [Op(IPVS_CMD_DEL_SERVICE, s) for key, s in have.items() if key in self.ours]
            self._run(link, ops)
            self._installed.clear()
        finally:
            sock.close()

    def _run(self, link: _IpvsLink, ops: list[Op]) -> None:
        failures: list[str] = []
        failed: set[ServiceKey] = set()
        first: OSError | None = None
        for op in ops:
            key = op.service.key
            if key in failed:
                continue  # after a failure, this service's later ops would fail too
            try:
                link.send(op)
            except OSError as err:
                failed.add(key)
                failures.append(f"{op}: {err.strerror or err}")
                first = first or err
                continue
            if op.cmd == IPVS_CMD_NEW_SERVICE:
                self._installed.add(key)
            elif op.cmd == IPVS_CMD_DEL_SERVICE:
                self._installed.discard(key)
            log.debug("ipvs: %s", op)
        if first is not None:
            raise NetlinkError(first.errno or errno.EIO, "IPVS: " + "; ".join(failures))
