"""The IPVS data plane against a FAKED kernel.

Mocks only where the kernel here cannot provide a thing, and this is that
place: the kernel on our build machines has no ip_vs, so `FakeIpvsKernel`
plays the kernel side of the generic netlink socket handed to `IpvsPlane`
through `sock_factory`. It decodes every request with pyroute2's own
`ipvsmsg`/`ctrlmsg` classes and answers with messages encoded by them (and
NLMSG_ERROR/NLMSG_DONE framed as the kernel frames them), enforcing the
rules of net/netfilter/ipvs/ip_vs_ctl.c that matter here: full attributes
on NEW/SET, EEXIST/ESRCH/ENOENT, flags applied through their mask. So our
encoding, framing and decoding are all exercised; only the kernel is not.
One test reads the raw bytes against the ABI in linux/ip_vs.h, so the two
sides cannot merely agree with each other. The parts that need no IPVS
(the generic netlink control family) also run against the real kernel.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections import deque
from ipaddress import ip_address
from typing import Any

import pytest

from vrrp_agent.config.model import RealServer, SorryServer, VirtualServer
from vrrp_agent.io.nlexchange import NLMSG_DONE, NLMSG_ERROR
from vrrp_agent.lvs import ipvs
from vrrp_agent.lvs.ipvs import IpvsPlane, IpvsUnavailable, codecs
from vrrp_agent.lvs.plan import plan_service

CMD_NAMES = {
    1: "NEW_SERVICE",
    2: "SET_SERVICE",
    3: "DEL_SERVICE",
    4: "GET_SERVICE",
    5: "NEW_DEST",
    6: "SET_DEST",
    7: "DEL_DEST",
    8: "GET_DEST",
}
NLM_F_MULTI, NLM_F_CAPPED = 0x2, 0x100
IP_VS_SVC_F_HASHED = 0x2
MASK = 0xFFFFFFFF
# IPv6 persistence netmask: prefix length 128 as a host-order u32, spelled as
# the IPv4 address pyroute2's NETMASK codec reads those 4 bytes as
V6_MASK = socket.inet_ntoa(struct.pack("=I", 128))

Key = tuple[int, int, str, int]  # af, protocol, addr, port


def _attrs(nla: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in nla["attrs"]:
        short = name.removeprefix(prefix).lower()
        out[short] = {"flags": value["flags"], "mask": value["mask"]} if short == "flags" else value
    return out


class FakeSocket:
    def __init__(self, kernel: FakeIpvsKernel) -> None:
        self.kernel = kernel
        self.inbox: deque[bytes] = deque()
        self.closed = False

    def send(self, data: bytes, /) -> int:
        assert not self.closed
        self.inbox.extend(self.kernel.handle(bytes(data)))
        return len(data)

    def recv(self, bufsize: int, /) -> bytes:
        assert self.inbox, "recv with nothing queued: the kernel would block here"
        return self.inbox.popleft()

    def close(self) -> None:
        self.closed = True


class FakeIpvsKernel:
    """The kernel side of NETLINK_GENERIC with (optionally) ip_vs loaded. A MOCK."""

    FAMILY = 0x23
    SCHEDULERS = frozenset(ipvs.SCHEDULERS)

    def __init__(self, loaded: bool = True) -> None:
        self.loaded = loaded
        self.services: dict[Key, dict[str, Any]] = {}
        self.dests: dict[Key, dict[tuple[str, int], dict[str, Any]]] = {}
        self.fwmark_services: list[int] = []
        # Every changing request as (command, service attrs, dest attrs or None)
        self.log: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        self.raw: list[bytes] = []  # every request as sent
        self.sockets: list[FakeSocket] = []
        self.loads = 0

    # -- test helpers
    def factory(self) -> FakeSocket:
        s = FakeSocket(self)
        self.sockets.append(s)
        return s

    def load_module(self) -> None:
        self.loads += 1
        self.loaded = True

    def add_service(self, addr: str, port: int, protocol: int = 6, sched: str = "wlc") -> Key:
        af = socket.AF_INET6 if ":" in addr else socket.AF_INET
        key = (af, protocol, addr, port)
        mask = "255.255.255.255" if af == socket.AF_INET else V6_MASK
        self.services[key] = {"sched_name": sched, "flags": IP_VS_SVC_F_HASHED, "timeout": 0,
                              "netmask": mask}  # fmt: skip
        self.dests[key] = {}
        return key

    def add_dest(self, key: Key, addr: str, port: int, weight: int = 1, fwd: int = 0) -> None:
        self.dests[key][(addr, port)] = {"fwd_method": fwd, "weight": weight, "u_thresh": 0,
                                         "l_thresh": 0, "active_conns": 7}  # fmt: skip

    def changes(self) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
        out, self.log = self.log, []
        return out

    # -- the kernel
    def handle(self, data: bytes) -> list[bytes]:
        self.raw.append(data)
        _length, typ, flags, seq, _pid = struct.unpack_from("=IHHII", data)
        try:
            if typ == ipvs.GENL_ID_CTRL:
                replies = self._ctrl(data, seq)
            elif typ == self.FAMILY and self.loaded:
                replies = self._ipvs(data, flags, seq)
            else:
                raise OSError(errno.EINVAL, "unknown netlink type")
        except OSError as err:
            return [self._error(data, err.errno)]
        if flags & ipvs.NLM_F_DUMP == ipvs.NLM_F_DUMP:
            # Several messages in one datagram, the end in the next, as dumps come.
            done = struct.pack("=IHHIIi", 20, NLMSG_DONE, NLM_F_MULTI, seq, 0, 0)
            return [b"".join(replies), done] if replies else [done]
        out = [b"".join(replies)] if replies else []
        if flags & ipvs.NLM_F_ACK:
            out.append(self._error(data, 0))
        return out

    def _error(self, request: bytes, code: int) -> bytes:
        # struct nlmsgerr: the error, then the request's header (payload capped)
        seq = struct.unpack_from("=IHHII", request)[3]
        body = struct.pack("=i", -code) + request[:16]
        return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, NLM_F_CAPPED, seq, 0) + body

    def _ctrl(self, data: bytes, seq: int) -> list[bytes]:
        _, ctrlmsg, _ = codecs()
        req = ctrlmsg(data)
        req.decode()
        if req.get_attr("CTRL_ATTR_FAMILY_NAME") != "IPVS" or not self.loaded:
            raise OSError(errno.ENOENT, "no such family")
        reply = ctrlmsg()
        reply["cmd"] = 1  # CTRL_CMD_NEWFAMILY
        reply["version"] = 2
        reply["attrs"] = [("CTRL_ATTR_FAMILY_NAME", "IPVS"), ("CTRL_ATTR_FAMILY_ID", self.FAMILY),
                          ("CTRL_ATTR_VERSION", 1)]  # fmt: skip
        return [self._encode(reply, ipvs.GENL_ID_CTRL, 0, seq)]

    def _encode(self, msg: Any, typ: int, flags: int, seq: int) -> bytes:
        msg["header"]["type"] = typ
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg.encode()
        return bytes(msg.data)

    def _ipvs(self, data: bytes, flags: int, seq: int) -> list[bytes]:
        ipvsmsg, _, _ = codecs()
        req = ipvsmsg(data)
        req.decode()
        name = CMD_NAMES[req["cmd"]]
        svc_nla = req.get_attr("IPVS_CMD_ATTR_SERVICE")
        dest_nla = req.get_attr("IPVS_CMD_ATTR_DEST")
        svc = _attrs(svc_nla, "IPVS_SVC_ATTR_") if svc_nla is not None else {}
        dest = _attrs(dest_nla, "IPVS_DEST_ATTR_") if dest_nla is not None else None
        if name == "GET_SERVICE":
            return [self._service_msg(k, v, seq) for k, v in self.services.items()] + [
                self._fwmark_msg(m, seq) for m in self.fwmark_services
            ]
        key = (svc["af"], svc["protocol"], svc["addr"], svc["port"])
        if name == "GET_DEST":
            return [self._dest_msg(a, v, seq) for a, v in self.dests.get(key, {}).items()]
        self.log.append((name, svc, dest))
        if name in ("NEW_SERVICE", "SET_SERVICE"):
            self._set_service(name, key, svc)
        elif name == "DEL_SERVICE":
            if key not in self.services:
                raise OSError(errno.ESRCH, "no service")
            del self.services[key], self.dests[key]
        else:
            self._set_dest(name, key, dest or {})
        return []

    def _set_service(self, name: str, key: Key, svc: dict[str, Any]) -> None:
        if not {"sched_name", "flags", "timeout", "netmask"} <= svc.keys():
            raise OSError(errno.EINVAL, "service: not a full entry")
        if key[0] == socket.AF_INET6:
            plen = struct.unpack("=I", socket.inet_aton(svc["netmask"]))[0]
            if not 1 <= plen <= 128:
                raise OSError(errno.EINVAL, "IPv6 netmask is a prefix length")
        exists = key in self.services
        if name == "NEW_SERVICE" and exists:
            raise OSError(errno.EEXIST, "exists")
        if name == "SET_SERVICE" and not exists:
            raise OSError(errno.ESRCH, "no service")
        if svc["sched_name"] not in self.SCHEDULERS:
            raise OSError(errno.ENOENT, "scheduler module not found")
        old = self.services[key]["flags"] if exists else 0
        f = svc["flags"]
        new_flags = (old & ~f["mask"]) | (f["flags"] & f["mask"]) | IP_VS_SVC_F_HASHED
        self.services[key] = {"sched_name": svc["sched_name"], "flags": new_flags,
                              "timeout": svc["timeout"], "netmask": svc["netmask"]}  # fmt: skip
        self.dests.setdefault(key, {})

    def _set_dest(self, name: str, key: Key, dest: dict[str, Any]) -> None:
        if key not in self.services:
            raise OSError(errno.ESRCH, "no service")
        dkey = (dest["addr"], dest["port"])
        dests = self.dests[key]
        if name == "DEL_DEST":
            if dkey not in dests:
                raise OSError(errno.ENOENT, "no dest")
            del dests[dkey]
            return
        if not {"fwd_method", "weight", "u_thresh", "l_thresh"} <= dest.keys():
            raise OSError(errno.EINVAL, "dest: not a full entry")
        if name == "NEW_DEST" and dkey in dests:
            raise OSError(errno.EEXIST, "exists")
        if name == "SET_DEST" and dkey not in dests:
            raise OSError(errno.ENOENT, "no dest")
        conns = dests.get(dkey, {}).get("active_conns", 0)
        dests[dkey] = {k: dest[k] for k in ("fwd_method", "weight", "u_thresh", "l_thresh")}
        dests[dkey]["active_conns"] = conns

    def _service_msg(self, key: Key, v: dict[str, Any], seq: int) -> bytes:
        ipvsmsg, _, _ = codecs()
        af, protocol, addr, port = key
        msg = ipvsmsg()
        msg["cmd"] = 1
        msg["version"] = 1
        stats = {"attrs": [("IPVS_STATS_ATTR_CONNS", 12), ("IPVS_STATS_ATTR_INBYTES", 1 << 40)]}
        msg["attrs"] = [("IPVS_CMD_ATTR_SERVICE", {"attrs": [
            ("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_PROTOCOL", protocol),
            ("IPVS_SVC_ATTR_ADDR", addr), ("IPVS_SVC_ATTR_PORT", port),
            ("IPVS_SVC_ATTR_SCHED_NAME", v["sched_name"]),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": v["flags"], "mask": MASK}),
            ("IPVS_SVC_ATTR_TIMEOUT", v["timeout"]), ("IPVS_SVC_ATTR_NETMASK", v["netmask"]),
            ("IPVS_SVC_ATTR_STATS", stats), ("IPVS_SVC_ATTR_STATS64", stats),
        ]})]  # fmt: skip
        return self._encode(msg, self.FAMILY, NLM_F_MULTI, seq)

    def _fwmark_msg(self, mark: int, seq: int) -> bytes:
        ipvsmsg, _, _ = codecs()
        msg = ipvsmsg()
        msg["cmd"] = 1
        msg["version"] = 1
        msg["attrs"] = [("IPVS_CMD_ATTR_SERVICE", {"attrs": [
            ("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_FWMARK", mark),
            ("IPVS_SVC_ATTR_SCHED_NAME", "rr"),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": IP_VS_SVC_F_HASHED, "mask": MASK}),
            ("IPVS_SVC_ATTR_TIMEOUT", 0), ("IPVS_SVC_ATTR_NETMASK", "255.255.255.255"),
        ]})]  # fmt: skip
        return self._encode(msg, self.FAMILY, NLM_F_MULTI, seq)

    def _dest_msg(self, dkey: tuple[str, int], v: dict[str, Any], seq: int) -> bytes:
        ipvsmsg, _, _ = codecs()
        addr, port = dkey
        msg = ipvsmsg()
        msg["cmd"] = 5
        msg["version"] = 1
        # The kernel's order: the address before its family.
        msg["attrs"] = [("IPVS_CMD_ATTR_DEST", {"attrs": [
            ("IPVS_DEST_ATTR_ADDR", addr), ("IPVS_DEST_ATTR_PORT", port),
            ("IPVS_DEST_ATTR_FWD_METHOD", v["fwd_method"]),
            ("IPVS_DEST_ATTR_WEIGHT", v["weight"]), ("IPVS_DEST_ATTR_TUN_TYPE", 0),
            ("IPVS_DEST_ATTR_U_THRESH", v["u_thresh"]), ("IPVS_DEST_ATTR_L_THRESH", v["l_thresh"]),
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", v["active_conns"]),
            ("IPVS_DEST_ATTR_INACT_CONNS", 0), ("IPVS_DEST_ATTR_PERSIST_CONNS", 0),
            ("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET6 if ":" in addr else socket.AF_INET),
        ]})]  # fmt: skip
        return self._encode(msg, self.FAMILY, NLM_F_MULTI, seq)


# ------------------------------------------------------------------ helpers


def vs(
    ip: str = "192.0.2.10",
    port: int = 80,
    reals: tuple[tuple[str, int, int], ...] = (("10.0.0.1", 8080, 3), ("10.0.0.2", 8080, 1)),
    inhibit: bool = False,
    **kw: Any,
) -> VirtualServer:
    rs = tuple(RealServer(ip_address(a), p, w, inhibit_on_failure=inhibit) for a, p, w in reals)
    return VirtualServer(ip_address(ip), port, real_servers=rs, **kw)


def plane(kernel: FakeIpvsKernel, **kw: Any) -> IpvsPlane:
    return IpvsPlane(kernel.factory, load_module=kernel.load_module, **kw)


def svc_key(ip: str = "192.0.2.10", port: int = 80, protocol: int = 6) -> dict[str, Any]:
    af = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return {"af": af, "protocol": protocol, "addr": ip, "port": port}


def dest(ip: str, port: int, weight: int, fwd: int = 0) -> dict[str, Any]:
    af = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return {"addr_family": af, "addr": ip, "port": port, "fwd_method": fwd, "weight": weight,
            "u_thresh": 0, "l_thresh": 0}  # fmt: skip


def full_svc(sched: str, flags: int = 0, timeout: int = 0, **key: Any) -> dict[str, Any]:
    k = svc_key(**key)
    mask = "255.255.255.255" if k["af"] == socket.AF_INET else V6_MASK
    return {**k, "sched_name": sched, "flags": {"flags": flags, "mask": MASK}, "timeout": timeout,
            "netmask": mask}  # fmt: skip


# ------------------------------------------------------------------ creating


def test_nat_service_then_its_destinations_with_masq_and_weights() -> None:
    k = FakeIpvsKernel()
    plane(k).apply([(plan_service(vs(lb_algo="wrr", lb_kind="NAT"), {}), "eth0")])
    assert k.changes() == [
        ("NEW_SERVICE", full_svc("wrr"), None),
        ("NEW_DEST", svc_key(), dest("10.0.0.1", 8080, 3, fwd=0)),
        ("NEW_DEST", svc_key(), dest("10.0.0.2", 8080, 1, fwd=0)),
    ]
    key = (socket.AF_INET, 6, "192.0.2.10", 80)
    assert k.services[key]["flags"] == IP_VS_SVC_F_HASHED
    assert set(k.dests[key]) == {("10.0.0.1", 8080), ("10.0.0.2", 8080)}
    assert all(s.closed for s in k.sockets)


def test_dr_with_persistence_sets_the_persistent_flag_and_the_timeout() -> None:
    k = FakeIpvsKernel()
    v = vs(lb_algo="sh", lb_kind="DR", persistence_timeout=300, reals=(("10.0.0.1", 80, 1),))
    plane(k).apply([(plan_service(v, {}), "eth0")])
    assert k.changes() == [
        ("NEW_SERVICE", full_svc("sh", flags=1, timeout=300), None),
        ("NEW_DEST", svc_key(), dest("10.0.0.1", 80, 1, fwd=3)),
    ]


@pytest.mark.parametrize(
    ("protocol", "number", "lb_kind", "fwd"),
    [("TCP", 6, "TUN", 2), ("UDP", 17, "NAT", 0), ("SCTP", 132, "DR", 3)],
)
def test_protocols_and_forwarding_methods(
    protocol: str, number: int, lb_kind: str, fwd: int
) -> None:
    k = FakeIpvsKernel()
    v = vs(protocol=protocol, lb_kind=lb_kind, reals=(("10.0.0.1", 80, 2),))
    plane(k).apply([(plan_service(v, {}), "eth0")])
    (_, svc, _), (_, key, d) = k.changes()
    assert svc["protocol"] == number and key["protocol"] == number
    assert d is not None and d["fwd_method"] == fwd


def test_ipv6_service_netmask_is_a_prefix_length_the_kernel_accepts() -> None:
    k = FakeIpvsKernel()
    v = vs(ip="2001:db8::10", reals=(("2001:db8::1", 80, 1),), lb_kind="DR")
    plane(k).apply([(plan_service(v, {}), "eth0")])
    assert k.changes() == [
        ("NEW_SERVICE", full_svc("rr", ip="2001:db8::10"), None),
        ("NEW_DEST", svc_key("2001:db8::10"), dest("2001:db8::1", 80, 1, fwd=3)),
    ]


def _nlattrs(buf: bytes) -> dict[int, bytes]:
    out, off = {}, 0
    while off + 4 <= len(buf):
        length, typ = struct.unpack_from("=HH", buf, off)
        out[typ & 0x3FFF] = buf[off + 4 : off + length]
        off += (length + 3) & ~3
    return out


def test_the_bytes_follow_the_kernel_abi_not_just_pyroute2() -> None:
    """linux/ip_vs.h: IPVS_CMD_ATTR_SERVICE=1 nests AF=1 (u16), PROTOCOL=2 (u16),
    ADDR=3, PORT=4 (be16), SCHED_NAME=6, FLAGS=7 (struct ip_vs_flags), TIMEOUT=8,
    NETMASK=9; IPVS_CMD_ATTR_DEST=2 nests ADDR=1, PORT=2, FWD_METHOD=3, WEIGHT=4,
    U_THRESH=5, L_THRESH=6, ADDR_FAMILY=11."""
    k = FakeIpvsKernel()
    v = vs(
        ip="2001:db8::10", lb_kind="DR", persistence_timeout=60, reals=(("2001:db8::1", 8080, 5),)
    )
    plane(k).apply([(plan_service(v, {}), "eth0")])
    ctrl = [r for r in k.raw if struct.unpack_from("=H", r, 4)[0] == ipvs.GENL_ID_CTRL][0]
    assert _nlattrs(ctrl[20:])[2] == b"IPVS\0"  # CTRL_ATTR_FAMILY_NAME
    new_service, new_dest = [r for r in k.raw if r[16] in (1, 5)]
    assert struct.unpack_from("=HH", new_service, 4) == (k.FAMILY, 0x5)  # REQUEST|ACK
    assert new_service[16:18] == bytes([1, 1])  # genlmsghdr: cmd NEW_SERVICE, version 1
    svc = _nlattrs(_nlattrs(new_service[20:])[1])
    assert svc[1] == struct.pack("=H", socket.AF_INET6)
    assert svc[2] == struct.pack("=H", 6)
    assert svc[3] == socket.inet_pton(socket.AF_INET6, "2001:db8::10")
    assert svc[4] == b"\x00\x50"
    assert svc[6] == b"rr\0"
    assert svc[7] == struct.pack("=II", 1, MASK)
    assert svc[8] == struct.pack("=I", 60)
    assert svc[9] == struct.pack("=I", 128)
    top = _nlattrs(new_dest[20:])
    assert set(_nlattrs(top[1])) == {1, 2, 3, 4}  # a dest command names its service by key only
    d = _nlattrs(top[2])
    assert d[1] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert d[2] == struct.pack(">H", 8080)
    assert (d[3], d[4], d[5], d[6]) == tuple(struct.pack("=I", n) for n in (3, 5, 0, 0))
    assert d[11] == struct.pack("=H", socket.AF_INET6)


def test_sorry_server_when_every_real_server_is_down() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    v = vs(sorry_server=SorryServer(ip_address("10.0.0.9"), 8080))
    p.apply([(plan_service(v, {}), "eth0")])
    k.changes()
    down = {(ip_address("10.0.0.1"), 8080): False, (ip_address("10.0.0.2"), 8080): False}
    p.apply([(plan_service(v, down), "eth0")])
    # added before the others go, so the service never has nobody to send to
    assert k.changes() == [
        ("NEW_DEST", svc_key(), dest("10.0.0.9", 8080, 1)),
        ("DEL_DEST", svc_key(), dest("10.0.0.1", 8080, 3)),
        ("DEL_DEST", svc_key(), dest("10.0.0.2", 8080, 1)),
    ]


# ------------------------------------------------------------------ the diff


def test_reapplying_the_same_plans_changes_nothing() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    plans = [(plan_service(vs(), {}), "eth0"), (plan_service(vs(port=443), {}), "eth0")]
    p.apply(plans)
    assert len(k.changes()) == 6
    p.apply(plans)
    assert k.changes() == []


def test_a_changed_weight_is_one_edit_and_nothing_else() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    p.apply([(plan_service(vs(), {}), "eth0")])
    k.changes()
    key = (socket.AF_INET, 6, "192.0.2.10", 80)
    k.dests[key][("10.0.0.1", 8080)]["active_conns"] = 42
    v = vs(reals=(("10.0.0.1", 8080, 5), ("10.0.0.2", 8080, 1)))
    p.apply([(plan_service(v, {}), "eth0")])
    assert k.changes() == [("SET_DEST", svc_key(), dest("10.0.0.1", 8080, 5))]
    # edited in place: the destination (and its connections) is the same one
    assert k.dests[key][("10.0.0.1", 8080)]["active_conns"] == 42


def test_an_inhibited_real_server_stays_with_weight_zero() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    v = vs(inhibit=True)
    p.apply([(plan_service(v, {}), "eth0")])
    k.changes()
    p.apply([(plan_service(v, {(ip_address("10.0.0.2"), 8080): False}), "eth0")])
    assert k.changes() == [("SET_DEST", svc_key(), dest("10.0.0.2", 8080, 0))]
    key = (socket.AF_INET, 6, "192.0.2.10", 80)
    assert k.dests[key][("10.0.0.2", 8080)]["weight"] == 0
    p.apply([(plan_service(v, {}), "eth0")])
    assert k.changes() == [("SET_DEST", svc_key(), dest("10.0.0.2", 8080, 1))]


def test_a_failed_real_server_without_inhibit_is_deleted_alone() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    p.apply([(plan_service(vs(), {}), "eth0")])
    k.changes()
    p.apply([(plan_service(vs(), {(ip_address("10.0.0.1"), 8080): False}), "eth0")])
    assert k.changes() == [("DEL_DEST", svc_key(), dest("10.0.0.1", 8080, 3))]


def test_scheduler_and_persistence_changes_edit_the_service_in_place() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    p.apply([(plan_service(vs(lb_algo="rr"), {}), "eth0")])
    k.changes()
    p.apply([(plan_service(vs(lb_algo="wlc", persistence_timeout=120), {}), "eth0")])
    assert k.changes() == [("SET_SERVICE", full_svc("wlc", flags=1, timeout=120), None)]
    p.apply([(plan_service(vs(lb_algo="wlc"), {}), "eth0")])
    assert k.changes() == [("SET_SERVICE", full_svc("wlc"), None)]
    key = (socket.AF_INET, 6, "192.0.2.10", 80)
    assert k.services[key]["flags"] == IP_VS_SVC_F_HASHED  # persistence cleared through the mask


def test_a_changed_lb_kind_edits_each_destination() -> None:
    k = FakeIpvsKernel()
    p = plane(k)
    p.apply([(plan_service(vs(lb_kind="NAT"), {}), "eth0")])
    k.changes()
    p.apply([(plan_service(vs(lb_kind="DR"), {}), "eth0")])
    assert k.changes() == [
        ("SET_DEST", svc_key(), dest("10.0.0.1", 8080, 3, fwd=3)),
        ("SET_DEST", svc_key(), dest("10.0.0.2", 8080, 1, fwd=3)),
    ]


def test_a_service_left_by_an_earlier_run_is_adopted_and_edited_not_recreated() -> None:
    k = FakeIpvsKernel()
    key = k.add_service("192.0.2.10", 80, sched="rr")
    k.add_dest(key, "10.0.0.1", 8080, weight=3)  # as wanted: untouched
    k.add_dest(key, "10.0.0.7", 8080)  # no longer configured
    plane(k).apply([(plan_service(vs(), {}), "eth0")])
    assert k.changes() == [
        ("NEW_DEST", svc_key(), dest("10.0.0.2", 8080, 1)),
        ("DEL_DEST", svc_key(), dest("10.0.0.7", 8080, 1)),
    ]
    assert k.dests[key][("10.0.0.1", 8080)]["active_conns"] == 7


# ------------------------------------------------------------------ ours and not ours


def foreign(k: FakeIpvsKernel) -> list[Key]:
    """Services this agent must never touch: the VIP on another port and
    protocol, another address, and a firewall-mark service."""
    keys = [
        k.add_service("192.0.2.10", 443),
        k.add_service("192.0.2.10", 80, protocol=17),
        k.add_service("198.51.100.1", 80),
    ]
    k.add_dest(keys[0], "10.0.0.50", 443)
    k.fwmark_services.append(7)
    return keys


def test_a_vip_no_longer_held_removes_our_service_and_only_it() -> None:
    k = FakeIpvsKernel()
    others = foreign(k)
    p = plane(k)
    p.apply([(plan_service(vs(), {}), "eth0")])
    k.changes()
    p.apply([])
    assert k.changes() == [("DEL_SERVICE", svc_key(), None)]
    assert set(k.services) == set(others)
    assert k.dests[others[0]] == {("10.0.0.50", 443): k.dests[others[0]][("10.0.0.50", 443)]}


def test_clear_removes_ours_configured_or_installed_and_nothing_else() -> None:
    k = FakeIpvsKernel()
    others = foreign(k)
    leftover = k.add_service("192.0.2.11", 80)  # a configured VS from an earlier run
    p = plane(k, virtual_servers=[vs(), vs(ip="192.0.2.11")])
    p.apply([(plan_service(vs(), {}), "eth0")])
    # apply already deletes the configured leftover: this node does not hold its VIP
    assert ("DEL_SERVICE", svc_key("192.0.2.11"), None) in k.changes()
    assert leftover not in k.services
    p.clear()
    assert k.changes() == [("DEL_SERVICE", svc_key(), None)]
    assert set(k.services) == set(others)
    assert k.fwmark_services == [7]
    p.clear()
    assert k.changes() == []


def test_foreign_services_are_never_in_any_request() -> None:
    k = FakeIpvsKernel()
    foreign(k)
    p = plane(k)
    p.apply([(plan_service(vs(), {}), "eth0"), (plan_service(vs(ip="2001:db8::10",
             reals=(("2001:db8::1", 80, 1),)), {}), "eth0")])  # fmt: skip
    p.apply([])
    p.clear()
    touched = {(s["addr"], s["port"], s["protocol"]) for _, s, _ in k.changes()}
    assert touched == {("192.0.2.10", 80, 6), ("2001:db8::10", 80, 6)}


# ------------------------------------------------------------------ failures


def test_no_ip_vs_loads_the_module_once_then_says_what_to_use() -> None:
    k = FakeIpvsKernel(loaded=False)
    p = IpvsPlane(k.factory, load_module=lambda: setattr(k, "loads", k.loads + 1))
    with pytest.raises(IpvsUnavailable) as info:
        p.apply([(plan_service(vs(), {}), "eth0")])
    assert info.value.errno == errno.ENOENT
    assert "lvs_backend: nftables" in str(info.value)
    with pytest.raises(IpvsUnavailable):
        p.clear()
    assert k.loads == 1
    assert all(s.closed for s in k.sockets)


def test_a_module_loaded_on_demand_is_used() -> None:
    k = FakeIpvsKernel(loaded=False)
    plane(k).apply([(plan_service(vs(), {}), "eth0")])
    assert k.loads == 1
    assert [c for c, _, _ in k.changes()] == ["NEW_SERVICE", "NEW_DEST", "NEW_DEST"]


def test_one_failing_service_does_not_stop_the_others_and_is_named() -> None:
    k = FakeIpvsKernel()
    k.SCHEDULERS = frozenset({"rr"})  # a kernel built without ip_vs_wrr
    p = plane(k)
    with pytest.raises(OSError) as info:
        p.apply([(plan_service(vs(lb_algo="wrr"), {}), "eth0"),
                 (plan_service(vs(ip="192.0.2.11"), {}), "eth0")])  # fmt: skip
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror == "IPVS: add service TCP 192.0.2.10:80: No such file or directory"
    # no destinations sent for the service that failed; the other one is complete
    assert [(c, s["addr"]) for c, s, _ in k.changes()] == [
        ("NEW_SERVICE", "192.0.2.10"),
        ("NEW_SERVICE", "192.0.2.11"),
        ("NEW_DEST", "192.0.2.11"),
        ("NEW_DEST", "192.0.2.11"),
    ]
    k.SCHEDULERS = frozenset(ipvs.SCHEDULERS)
    p.apply([(plan_service(vs(lb_algo="wrr"), {}), "eth0"),
             (plan_service(vs(ip="192.0.2.11"), {}), "eth0")])  # fmt: skip
    assert [(c, s["addr"]) for c, s, _ in k.changes()] == [
        ("NEW_SERVICE", "192.0.2.10"),
        ("NEW_DEST", "192.0.2.10"),
        ("NEW_DEST", "192.0.2.10"),
    ]


# ------------------------------------------------------------------ pure parts and the real kernel


def test_schedulers_are_everything_ipvs_has_and_what_config_accepts() -> None:
    from vrrp_agent.config._lvs import LB_ALGOS

    assert frozenset(LB_ALGOS) == ipvs.SCHEDULERS
    assert len(ipvs.SCHEDULERS) == 14


def test_diff_touches_nothing_outside_ours() -> None:
    mine = ipvs.service_key(vs())
    theirs = ipvs.service_key(vs(port=443))
    have = {k: ipvs.Service(k, "rr", netmask="255.255.255.255") for k in (mine, theirs)}
    assert ipvs.diff(have, {}, {}, {mine}) == [ipvs.Op(ipvs.IPVS_CMD_DEL_SERVICE, have[mine])]


def test_generic_netlink_control_on_the_real_kernel() -> None:
    """No mock: the family lookup and the request loop against this kernel,
    which has nlctrl and (here) no IPVS."""
    sock = ipvs.genl_socket()
    try:
        genl = ipvs.Genl(sock)
        assert genl.family_id("nlctrl") == ipvs.GENL_ID_CTRL
        with pytest.raises(OSError) as info:
            genl.family_id("no-such-family")
        assert info.value.errno == errno.ENOENT
    finally:
        sock.close()


def test_importing_the_module_loads_no_netlink_code() -> None:
    import subprocess
    import sys

    code = "import sys, vrrp_agent.lvs.ipvs; print(any(m.startswith('pyroute2') for m in sys.modules), 'asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
