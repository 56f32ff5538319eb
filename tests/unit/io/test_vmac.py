"""io/vmac: the rtnetlink messages (byte for byte) and the bookkeeping of
vmacs shared across a reload, against a fake kernel. No root."""

from __future__ import annotations

import socket
import struct
from dataclasses import replace

import pytest

from vrrp_agent.io import vmac
from vrrp_agent.io.vmac import LinkInfo, LinkRequest, VmacError, Vmacs, VmacSpec

MAC = bytes.fromhex("00005e000133")


def test_ipv4_devconf_is_nested_af_spec_inet_conf() -> None:
    attr = vmac.ipv4_conf_attr({vmac.ARP_IGNORE: 1, vmac.RP_FILTER: 0})
    option = lambda kind, value: struct.pack("=HHI", 8, kind, value)  # noqa: E731
    conf = struct.pack("=HH", 4 + 16, 1 | 0x8000) + option(8, 0) + option(19, 1)
    inet = struct.pack("=HH", 4 + len(conf), socket.AF_INET | 0x8000) + conf
    assert attr == struct.pack("=HH", 4 + len(inet), 26 | 0x8000) + inet


def test_a_link_request_encodes_header_and_ifinfomsg() -> None:
    req = LinkRequest(7, vmac.nla(3, b"eth0\0"), flags=1, change=1)
    req["header"].update(type=16, flags=5, sequence_number=9)
    req.encode()
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", req.data)
    assert (length, kind, flags, seq, pid) == (len(req.data), 16, 5, 9, 0)
    assert struct.unpack_from("=BxHiII", req.data, 16) == (0, 0, 7, 1, 1)
    assert req.data[32:] == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3


def test_parse_link_reads_kind_mode_lower_mac_and_devconf() -> None:
    linkinfo = vmac.nest(
        18,
        vmac.nla(1, b"macvlan\0"),
        vmac.nest(2, vmac.u32(1, vmac.MACVLAN_MODE_PRIVATE)),
    )
    conf = struct.pack("=30I", *range(1, 31))
    spec = vmac.nest(26, vmac.nest(socket.AF_INET, vmac.nla(1, conf)))
    attrs = vmac.nla(3, b"vrrp.51\0") + vmac.nla(1, MAC) + vmac.u32(5, 2) + linkinfo + spec
    body = struct.pack("=BxHiII", 0, 1, 4, 0x1003, 0) + attrs
    info = vmac.parse_link(struct.pack("=IHHII", 16 + len(body), 16, 0, 1, 0) + body)
    assert (info.index, info.name, info.mac, info.link) == (4, "vrrp.51", MAC, 2)
    assert (info.kind, info.macvlan_mode, info.flags) == ("macvlan", 1, 0x1003)
    assert info.ipv4_conf[vmac.ARP_IGNORE] == 19 and info.ipv4_conf[vmac.RP_FILTER] == 8


class FakeLinks:
    """Links as the kernel would keep them, and what was asked of it."""

    def __init__(self) -> None:
        self.by_name = {"eth0": LinkInfo(2, "eth0", 1, b"\x02" * 6, ipv4_conf={})}
        self.calls: list[tuple[object, ...]] = []
        self._next = 10

    def get(self, name: str) -> LinkInfo | None:
        return self.by_name.get(name)

    def dump(self) -> list[LinkInfo]:
        return list(self.by_name.values())

    def _name(self, index: int) -> str:
        return next(n for n, i in self.by_name.items() if i.index == index)

    def create_macvlan(self, name: str, base: int, mac: bytes, alias: str) -> None:
        self.calls.append(("create", name))
        self._next += 1
        self.by_name[name] = LinkInfo(self._next, name, 0, mac, "macvlan", base, 1)

    def delete(self, index: int) -> None:
        name = self._name(index)
        self.calls.append(("delete", name))
        del self.by_name[name]

    def set_ipv4_conf(self, index: int, values: dict[int, int]) -> None:
        name = self._name(index)
        self.calls.append(("conf", name, dict(values)))
        info = self.by_name[name]
        self.by_name[name] = replace(info, ipv4_conf={**info.ipv4_conf, **values})

    def set_addr_gen_none(self, index: int) -> None:
        self.calls.append(("addrgen", self._name(index)))

    def set_up(self, index: int) -> None:
        name = self._name(index)
        self.calls.append(("up", name))
        self.by_name[name] = replace(self.by_name[name], flags=1)


@pytest.fixture
def vmacs(monkeypatch: pytest.MonkeyPatch) -> Vmacs:
    monkeypatch.setattr(vmac, "all_rp_filter", lambda: 0)
    monkeypatch.setattr(vmac, "_disable_ipv6", lambda spec: None)
    v = Vmacs(None)  # type: ignore[arg-type]  # the fake links never reach netlink
    v.links = FakeLinks()  # type: ignore[assignment]
    return v


SPEC = VmacSpec("vrrp.51", "eth0", MAC, 4, False, "VI_1")


def test_made_configured_and_removed_with_the_base_put_back(vmacs: Vmacs) -> None:
    links: FakeLinks = vmacs.links  # type: ignore[assignment]
    vmacs.acquire(SPEC)
    assert links.calls == [
        ("create", "vrrp.51"),
        ("conf", "vrrp.51", vmac.VMAC_CONF),
        ("conf", "eth0", vmac.BASE_CONF),
        ("addrgen", "vrrp.51"),
        ("up", "vrrp.51"),
    ]
    links.calls.clear()
    vmacs.release("vrrp.51")
    assert links.calls == [
        ("delete", "vrrp.51"),
        ("conf", "eth0", dict.fromkeys(vmac.BASE_CONF, 0)),
    ]


def test_a_reload_shares_the_vmac_until_the_last_user_goes(vmacs: Vmacs) -> None:
    links: FakeLinks = vmacs.links  # type: ignore[assignment]
    vmacs.acquire(SPEC)
    vmacs.acquire(SPEC)  # the rebuilt instance, before the old one closes
    vmacs.release("vrrp.51")
    assert "vrrp.51" in links.by_name
    vmacs.release("vrrp.51")
    assert "vrrp.51" not in links.by_name


def test_a_leftover_is_reused_a_stale_one_replaced_a_foreign_one_refused(vmacs: Vmacs) -> None:
    links: FakeLinks = vmacs.links  # type: ignore[assignment]
    links.by_name["vrrp.51"] = LinkInfo(5, "vrrp.51", 1, MAC, "macvlan", 2, 1)
    vmacs.acquire(SPEC)
    assert ("create", "vrrp.51") not in links.calls and links.by_name["vrrp.51"].index == 5
    vmacs.close()
    links.calls.clear()
    links.by_name["vrrp.51"] = LinkInfo(5, "vrrp.51", 1, MAC, "macvlan", 2, 4)  # bridge mode
    links.by_name["old"] = LinkInfo(6, "old", 1, MAC, "macvlan", 2, 1)  # same MAC, same base
    vmacs.acquire(SPEC)
    assert links.calls[:3] == [("delete", "vrrp.51"), ("delete", "old"), ("create", "vrrp.51")]
    vmacs.close()
    links.by_name["vrrp.51"] = LinkInfo(5, "vrrp.51", 1, b"\x02" * 6, "veth", None, None)
    with pytest.raises(VmacError, match="exists and is not a macvlan"):
        vmacs.acquire(SPEC)
    assert links.by_name["vrrp.51"].kind == "veth"


def test_made_again_when_gone(vmacs: Vmacs) -> None:
    links: FakeLinks = vmacs.links  # type: ignore[assignment]
    vmacs.acquire(SPEC)
    del links.by_name["vrrp.51"]
    assert vmacs.ensure() == ["vrrp.51"]
    assert "vrrp.51" in links.by_name
    assert vmacs.ensure() == []


def test_all_rp_filter_on_refuses_a_vmac_that_hears_adverts(
    vmacs: Vmacs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vmac, "all_rp_filter", lambda: 1)
    with pytest.raises(VmacError, match="net.ipv4.conf.all.rp_filter is 1"):
        vmacs.acquire(SPEC)
    vmacs.acquire(replace(SPEC, xmit_base=True))  # adverts come in on the base
