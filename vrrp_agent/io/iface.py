"""What the agent needs to know about a local interface."""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vrrp_agent.core.tracking import LinkState
from vrrp_agent.io.link_monitor import state_from_flags
from vrrp_agent.io.netlink import IFA_F_SECONDARY, Rtnl


@dataclass(frozen=True)
class Link:
    """An interface's name, index and MAC address, as read at one moment."""

    name: str
    index: int
    mac: bytes
    # IFF_NOARP or IFF_LOOPBACK (lo, where routed VIPs live): nobody on a
    # segment to tell, so no GARP / NA. Not part of the identity: an
    # announcer stays valid while flags change.
    quiet: bool = field(default=False, compare=False)


# <linux/if.h>
IFF_LOOPBACK, IFF_NOARP = 0x8, 0x80


def link(name: str) -> Link:
    """Raises OSError when the interface does not exist."""
    index = socket.if_nametoindex(name)
    with open(f"/sys/class/net/{name}/address") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = _flags(sock, name)
    quiet = bool(flags & (IFF_LOOPBACK | IFF_NOARP))
    return Link(name, index, mac.ljust(6, b"\0")[:6], quiet)


def primary_ipv4(rtnl: Rtnl, ifindex: int, exclude: set[IPv4Address]) -> IPv4Address | None:
    """The interface's primary IPv4 address: the source of our adverts and the
    tie-breaker at equal priority. Our own VIPs never count, or a master would
    compare itself by an address it only borrowed."""
    for addr in rtnl.addresses(ifindex, socket.AF_INET):
        ip = addr.ip
        if isinstance(ip, IPv4Address) and not addr.flags & IFA_F_SECONDARY and ip not in exclude:
            return ip
    for addr in rtnl.addresses(ifindex, socket.AF_INET):
        if isinstance(addr.ip, IPv4Address) and addr.ip not in exclude:
            return addr.ip
    return None


def link_local_ipv6(rtnl: Rtnl, ifindex: int) -> IPv6Address | None:
    """RFC 9568 5.1.2.1: IPv6 adverts come from the interface's link-local address."""
    for addr in rtnl.addresses(ifindex, socket.AF_INET6):
        if isinstance(addr.ip, IPv6Address) and addr.ip.is_link_local:
            return addr.ip
    return None


# <linux/if.h> and <linux/sockios.h>
_SIOCGIFFLAGS = 0x8913


def link_state(sock: socket.socket, name: str) -> LinkState:
    """UP when the interface is administratively up *and* running, as
    keepalived's IF_FLAGS_UP: a pulled cable or a downed veth peer clears
    IFF_RUNNING while IFF_UP stays.

    An ioctl on `sock` (any AF_INET datagram socket) rather than
    /sys/class/net: sysfs shows the network namespace it was mounted in,
    the ioctl the one the agent runs in.
    """
    try:
        flags = _flags(sock, name)
    except OSError as err:
        if err.errno in (errno.ENODEV, errno.ENXIO):
            return LinkState.GONE
        raise
    # One rule for the ioctl and the netlink link events, so the two agree.
    return state_from_flags(flags)


def _flags(sock: socket.socket, name: str) -> int:
    ifreq = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, struct.pack("16sH22x", name.encode(), 0))
    (flags,) = struct.unpack_from("H", ifreq, 16)
    return int(flags)
