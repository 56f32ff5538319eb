"""The VRRP sockets of an agent (one per interface and family) and the
instance ports that share them; rebinding when an interface comes back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from vrrp_agent.config import Config, Instance
from vrrp_agent.io.accept_filter import AcceptFilter
from vrrp_agent.io.host_reads import CannotLook, ifindex_now
from vrrp_agent.io.instance_port import InstancePort, StartupError, family_of
from vrrp_agent.io.netlink import Rtnl
from vrrp_agent.io.vmac import VmacError, Vmacs, VmacSpec
from vrrp_agent.io.vrrp_socket import VrrpSocket
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)


class PortSet:
    """Every running instance's port, the sockets they read from (each
    registered with the loop, calling `on_readable(sock)`), and the netlink
    and accept-mode filter handles they share."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_readable: Callable[[VrrpSocket], None]
    ) -> None:
        self.loop = loop
        self._on_readable = on_readable
        self.rtnl = Rtnl()
        self.accept_filter = AcceptFilter()
        self.vmacs = Vmacs(self.rtnl)
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.ports: dict[str, InstancePort] = {}

    def build(self, cfg: Config, names: Iterable[str]) -> dict[str, InstancePort]:
        """Open what the instances need, not yet installed. All or nothing: on
        StartupError the ports built so far are closed and nothing has been
        configured."""
        built: dict[str, InstancePort] = {}
        new_sockets: list[tuple[str, int]] = []
        vmacs: list[str] = []
        try:
            for name in names:
                inst = cfg.vrrp_instances[name]
                if ifindex_now(inst.interface) is None:
                    raise StartupError(
                        f"vrrp_instances.{name}: interface {inst.interface} not found on this host"
                    )
                if inst.use_vmac is not None:
                    # Made now, not on becoming master (as keepalived): a backup
                    # hears a master's adverts on its own vmac only.
                    self._acquire_vmac(inst)
                    vmacs.append(inst.use_vmac)
                ifname = inst.advert_interface
                key = (ifname, family_of(inst))
                if key not in self.sockets:
                    index = ifindex_now(ifname)
                    if index is None:
                        raise StartupError(
                            f"vrrp_instances.{name}: interface {ifname} not found on this host"
                        )
                    self.sockets[key] = VrrpSocket(key[1], ifname, index)
                    new_sockets.append(key)
                sock = self.sockets[key]
                built[name] = InstancePort(cfg, inst, self.rtnl, sock, self.accept_filter)
        except (StartupError, OSError):
            for port in built.values():
                port.close()
            for key in new_sockets:
                self.sockets.pop(key).close()
            for vmac in vmacs:
                self.vmacs.release(vmac)
            raise
        return built

    def _acquire_vmac(self, inst: Instance) -> None:
        assert inst.use_vmac is not None and inst.vmac_address is not None
        spec = VmacSpec(
            name=inst.use_vmac,
            base=inst.interface,
            mac=inst.vmac_address,
            family=inst.family,
            xmit_base=inst.vmac_xmit_base,
            instance=inst.name,
        )
        try:
            self.vmacs.acquire(spec)
        except VmacError as err:
            raise StartupError(f"vrrp_instances.{inst.name}.use_vmac: {err}") from None

    def install(self, gone: Iterable[str], built: dict[str, InstancePort]) -> None:
        """Close the ports of removed instances and put the built ones in use."""
        for name in gone:
            self._close_port(self.ports.pop(name))
        self.ports.update(built)
        for port in built.values():
            self.loop.add_reader(port.sock.fileno(), self._on_readable, port.sock)

    def unbound(self) -> frozenset[str]:
        """Interfaces gone, or present under another index than our socket's."""
        return frozenset(n for (n, _), s in self.sockets.items() if not _same_index(n, s.ifindex))

    def held_vips(self, names: Iterable[str]) -> dict[IPAddr, str]:
        """VIP -> the interface it is on, for the instances `names`."""
        return {v.ip: v.dev for n in names for v in self.ports[n].vips}

    def rebind_all(self) -> list[str]:
        """Rebind every socket whose interface is back under a new index; the
        vmacs made again first (gone with their base, or by hand), returned:
        their VIPs went with the old interface."""
        made = self.vmacs.ensure()
        for (ifname, family), sock in list(self.sockets.items()):
            self._rebind(ifname, family, sock)
        return made

    def _rebind(self, ifname: str, family: int, sock: VrrpSocket) -> None:
        """An interface back under a new index gets a fresh socket, and its
        instances use it; until then (address not there yet) try next time."""
        try:
            index = ifindex_now(ifname)
        except CannotLook:
            return  # said once by ifindex_now; try again next poll
        if index is None or index == sock.ifindex:
            return
        try:
            fresh = VrrpSocket(family, ifname, index)
        except OSError as err:
            log.warning("interface %s is back but not usable yet: %s", ifname, err)
            return
        try:
            for port in [p for p in self.ports.values() if p.sock is sock]:
                port.rebind(fresh)
        except StartupError as err:
            log.warning("interface %s is back but not usable yet: %s", ifname, err)
            fresh.close()
            return
        self.loop.remove_reader(sock.fileno())
        sock.close()
        self.sockets[(ifname, family)] = fresh
        self.loop.add_reader(fresh.fileno(), self._on_readable, fresh)
        log.info("interface %s is back (index %d)", ifname, index)

    def close_unused(self) -> None:
        in_use = {(p.inst.advert_interface, p.sock.family) for p in self.ports.values()}
        for key in [k for k in self.sockets if k not in in_use]:
            sock = self.sockets.pop(key)
            self.loop.remove_reader(sock.fileno())
            sock.close()

    def close_ports(self) -> None:
        for port in self.ports.values():
            self._close_port(port)
        self.ports.clear()

    def _close_port(self, port: InstancePort) -> None:
        port.close()
        if port.inst.use_vmac is not None:
            # The last user removes the vmac, and the VIPs on it with it.
            self.vmacs.release(port.inst.use_vmac)

    def close(self) -> None:
        """Everything: ports, sockets, the accept-mode filter, netlink."""
        self.close_ports()
        self.close_unused()
        try:
            self.accept_filter.clear()
        except OSError as err:
            log.error("removing the accept-mode filter failed: %s", err)
        self.rtnl.close()


def _same_index(ifname: str, index: int) -> bool:
    """True also when the host cannot say now: a failed look is no news, not
    an interface gone (which would fault every instance on it)."""
    try:
        return ifindex_now(ifname) == index
    except CannotLook:
        return True
