"""The I/O of one VRRP instance: its socket, its addresses, its announcements.

`InstancePort` is built from a validated configuration instance plus what the
kernel says about its interface, and owns the instance's `Router`; it is the
only piece of the agent that turns a router's actions into packets and
addresses.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass, replace
from ipaddress import IPv4Interface, IPv6Interface

from vrrp_agent.config import Config, Instance, garp_settings, skip_check_adv_addr
from vrrp_agent.core import (
    Action,
    AddVips,
    Announce,
    ProbeVips,
    RemoveVips,
    Router,
    RouterParams,
    SendAdvert,
    StateChanged,
)
from vrrp_agent.io.accept_filter import AcceptFilter
from vrrp_agent.io.announce import Announcer
from vrrp_agent.io.iface import Link, link, link_local_ipv6, primary_ipv4
from vrrp_agent.io.netlink import Rtnl
from vrrp_agent.io.virtual_routes import probe_routes, set_routes
from vrrp_agent.io.vrrp_socket import VrrpSocket
from vrrp_agent.wire import AUTH_NONE, AUTH_PASS, MCAST_V4, MCAST_V6, encode
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The host cannot run this instance (missing interface, no address)."""


@dataclass(frozen=True)
class Vip:
    """One address an instance configures while master, on the device it
    lives on. The device is kept by name, never by index: a device deleted
    and created again has a new index, and the VIP belongs on the new one."""

    dev: str
    interface: IPv4Interface | IPv6Interface
    label: str | None
    advertised: bool

    @property
    def ip(self) -> IPAddr:
        return self.interface.ip


def router_params(cfg: Config, inst: Instance, local_ip: IPAddr) -> RouterParams:
    garp = garp_settings(cfg, inst)
    return RouterParams(
        name=inst.name,
        vrid=inst.virtual_router_id,
        version=inst.version,
        priority=inst.priority,
        advert_int=inst.advert_int,
        addresses=tuple(v.address.ip for v in inst.virtual_ipaddress),
        local_ip=local_ip,
        preempt=not inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        start_as_master=inst.state == "MASTER",
        auth_type=AUTH_PASS if inst.auth_type == "PASS" else AUTH_NONE,
        auth_data=(inst.auth_pass or "").encode(),
        unicast_peers=frozenset(inst.unicast_peer),
        unicast_no_peer=inst.unicast_no_peer,
        garp_master_delay=garp.master_delay,
        garp_master_repeat=garp.master_repeat,
        garp_master_refresh=garp.master_refresh,
        garp_master_refresh_repeat=garp.master_refresh_repeat,
        skip_check_adv_addr=skip_check_adv_addr(cfg, inst),
    )


class InstancePort:
    """One instance's router and the kernel resources it acts through: the
    shared VRRP socket, its links and announcers, the running announcement."""

    def __init__(
        self,
        cfg: Config,
        inst: Instance,
        rtnl: Rtnl,
        sock: VrrpSocket,
        accept_filter: AcceptFilter,
    ) -> None:
        self.inst = inst
        self.rtnl = rtnl
        self.sock = sock
        self.accept_filter = accept_filter
        self._read_links()
        self.router = Router(router_params(cfg, inst, self.local_ip))
        self.garp_interval = garp_settings(cfg, inst).interval
        # Unicast without peers has no destination at all (the router sends
        # nothing then, see RouterParams.unicast_no_peer).
        self.destinations: tuple[IPAddr, ...] = (
            inst.unicast_peer if inst.unicast else (MCAST_V4,) if inst.family == 4 else (MCAST_V6,)
        )
        # keepalived's unicast_ttl; multicast adverts keep 255 (the socket's own)
        self.send_ttl: int | None = (
            inst.unicast_ttl if inst.unicast and inst.unicast_ttl != 255 else None
        )
        self._announcing: asyncio.Task[None] | None = None
        # The last failure logged per VIP (or route), so a retried failure logs once.
        self._logged: dict[object, str] = {}

    def _read_links(self) -> None:
        """What the kernel says now about our interfaces: index, MAC, source address."""
        inst = self.inst
        self.link = _link(inst, inst.interface)
        # A VIP's other device may be missing: the add fails, is retried, and
        # faults the instance past a bound (core.vip_retry), not the start.
        self.vips = [
            Vip(v.dev or inst.vip_interface, v.address, v.label, True)
            for v in inst.virtual_ipaddress
        ] + [
            Vip(v.dev or inst.vip_interface, v.address, v.label, False)
            for v in inst.virtual_ipaddress_excluded
        ]
        self.local_ip = self._local_ip()
        self.announcers: dict[str, Announcer] = {}

    def rebind(self, sock: VrrpSocket) -> None:
        """The interface was deleted and created again (a new index, maybe a new
        MAC): use the new socket and re-read everything tied to the old link.
        Raises StartupError while the interface or its address is still missing."""
        old = self.announcers
        self._read_links()
        for a in old.values():
            a.close()
        self.sock = sock
        if self.local_ip != self.router.params.local_ip:
            log.warning(
                "(%s) source address changed from %s to %s",
                self.inst.name,
                self.router.params.local_ip,
                self.local_ip,
            )
            self.router.params = replace(self.router.params, local_ip=self.local_ip)

    def _local_ip(self) -> IPAddr:
        if self.inst.unicast_src_ip is not None:
            return self.inst.unicast_src_ip
        own = {v.ip for v in self.vips}
        if self.inst.family == 4:
            ip: IPAddr | None = primary_ipv4(self.rtnl, self.link.index, own)  # type: ignore[arg-type]
            what = "IPv4 address"
        else:
            ip = link_local_ipv6(self.rtnl, self.link.index)
            what = "IPv6 link-local address"
        if ip is None:
            raise StartupError(
                f"vrrp_instances.{self.inst.name}: interface {self.inst.interface} has no {what} "
                "to send advertisements from (set unicast_src_ip or add one)"
            )
        return ip

    # ------------------------------------------------------------------ actions

    def execute(self, actions: list[Action]) -> dict[str, str] | None:
        """Carry out `actions`; after an AddVips or ProbeVips, the VIPs that
        could not be added (address -> why) for `Node.vips_result`, else None."""
        result: dict[str, str] | None = None
        for action in actions:
            if isinstance(action, SendAdvert):
                self._send(action)
            elif isinstance(action, AddVips):
                result = self._set_vips(True, "")
            elif isinstance(action, ProbeVips):
                result = self._probe_vips()
            elif isinstance(action, RemoveVips):
                self._remove_vips(action.reason)
            elif isinstance(action, Announce):
                self._announce(action.count)
            elif isinstance(action, StateChanged):
                self._log_transition(action)
        return result

    def _send(self, action: SendAdvert) -> None:
        pseudo = self.inst.v3_checksum_pseudo_header
        for dst in self.destinations:
            payload = encode(action.advert, src=self.local_ip, dst=dst, pseudo_header=pseudo)
            try:
                self.sock.send(payload, self.local_ip, dst, self.send_ttl)
            except OSError as err:
                # A down link must not kill the agent; the next interval tries again.
                self.router.stats.tx_errors += 1
                log.warning("(%s) sending advertisement to %s failed: %s", self.inst.name, dst, err)

    @property
    def filtered(self) -> bool:
        """RFC 9568 Accept_Mode off, and not the address owner."""
        return not self.inst.accept and self.inst.priority != 255

    def _remove_vips(self, reason: str) -> None:
        if self._announcing is not None:
            self._announcing.cancel()
            self._announcing = None
        self._set_vips(False, reason)

    def _probe_vips(self) -> dict[str, str]:
        """Whether every VIP's device exists now (an add would find it)."""
        errors = {}
        for v in self.vips:
            try:
                _ifindex(v.dev)
            except OSError as err:
                errors[str(v.interface)] = _why(err, v.dev)
        return {**errors, **probe_routes(self.inst.virtual_routes)}

    def _set_vips(self, present: bool, reason: str) -> dict[str, str]:
        """Add or remove every VIP, and the virtual routes (added after the
        VIPs, removed before them); one failing never stops the others.
        Returns the addresses and routes that failed, and why."""
        verb = "adding" if present else "removing"
        changed = []
        errors: dict[str, str] = {}
        if not present:
            self._set_routes(False, reason)
        for v in self.vips:
            try:
                index = _ifindex(v.dev)
                if present:
                    done = self.rtnl.add_address(index, v.interface, v.label)
                else:
                    done = self.rtnl.del_address(index, v.interface)
            except OSError as err:
                if not present and err.errno in (errno.ENODEV, errno.ENXIO):
                    continue  # the device is gone, and the address with it
                errors[str(v.interface)] = why = _why(err, v.dev)
                if self._logged.get(v.ip) != why:
                    # Once per condition: retries of the same failure stay quiet.
                    log.error("(%s) %s %s failed: %s", self.inst.name, verb, v.interface, why)
                    self._logged[v.ip] = why
                continue
            self._logged.pop(v.ip, None)
            if done:
                changed.append(str(v.interface))
        if self.filtered:
            ips = [v.ip for v in self.vips]
            try:
                if present:
                    self.accept_filter.block(ips)
                else:
                    self.accept_filter.unblock(ips)
            except OSError as err:
                log.error("(%s) accept mode filter: %s", self.inst.name, err)
        if changed:
            what = "added" if present else "removed"
            why = f" ({reason})" if reason else ""
            log.info(
                "(%s) %s virtual addresses %s%s", self.inst.name, what, ", ".join(changed), why
            )
        if present:
            errors.update(self._set_routes(True, reason))
        return errors

    def _set_routes(self, present: bool, reason: str) -> dict[str, str]:
        if not self.inst.virtual_routes:
            return {}
        changed, errors = set_routes(self.rtnl, self.inst.virtual_routes, present)
        verb = "adding" if present else "removing"
        for route in self.inst.virtual_routes:
            text = str(route)
            if text not in errors:
                self._logged.pop(text, None)
            elif self._logged.get(text) != errors[text]:
                log.error("(%s) %s route %s failed: %s", self.inst.name, verb, text, errors[text])
                self._logged[text] = errors[text]
        if changed:
            what = "added" if present else "removed"
            why = f" ({reason})" if reason else ""
            log.info("(%s) %s virtual routes %s%s", self.inst.name, what, "; ".join(changed), why)
        return errors

    def _announce(self, count: int) -> None:
        if self._announcing is not None:
            self._announcing.cancel()
        self._announcing = asyncio.get_running_loop().create_task(self._announce_burst(count))

    async def _announce_burst(self, count: int) -> None:
        for i in range(count):
            if i and self.garp_interval > 0:
                await asyncio.sleep(self.garp_interval)
            for v in self.vips:
                try:
                    announcer = self._announcer(v.dev)
                    if announcer is not None:
                        announcer.announce(v.ip)
                except OSError as err:
                    log.warning("(%s) announcing %s failed: %s", self.inst.name, v.ip, err)

    def _announcer(self, dev: str) -> Announcer | None:
        """The announcer of the device as it is now: one made for an earlier
        incarnation of the device (another index) is replaced. None for lo
        and IFF_NOARP devices: nobody to announce to, so quietly nothing."""
        current = link(dev)
        if current.quiet:
            return None
        have = self.announcers.get(dev)
        if have is None or have.link != current:
            if have is not None:
                have.close()
            have = self.announcers[dev] = Announcer(current)
        return have

    def _log_transition(self, action: StateChanged) -> None:
        log.info("(%s) Entering %s STATE (%s)", self.inst.name, action.new, action.reason)

    def close(self) -> None:
        if self._announcing is not None:
            self._announcing.cancel()
        for a in self.announcers.values():
            a.close()


def _link(inst: Instance, name: str) -> Link:
    try:
        return link(name)
    except OSError as err:
        raise StartupError(
            f"vrrp_instances.{inst.name}: interface {name} not found on this host ({err})"
        ) from None


def _ifindex(dev: str) -> int:
    """The device's index now; OSError(ENODEV) when there is none (Python's
    if_nametoindex raises an OSError without an errno)."""
    try:
        return socket.if_nametoindex(dev)
    except OSError as err:
        if err.errno is None:
            raise OSError(errno.ENODEV, "No such device") from None
        raise


def _why(err: OSError, dev: str) -> str:
    """One line for status and the log: the errno's name, what it means, the device."""
    name = errno.errorcode.get(err.errno or 0, "error")
    if err.errno in (errno.ENODEV, errno.ENXIO):
        return f"{name} no such device {dev}"
    return f"{name} {err.strerror or err} (device {dev})"


def family_of(inst: Instance) -> int:
    return socket.AF_INET if inst.family == 4 else socket.AF_INET6
