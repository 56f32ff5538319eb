"""Gratuitous ARP and unsolicited Neighbor Advertisement senders."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

from vrrp_agent.io.iface import Link
from vrrp_agent.wire import gratuitous_arp, unsolicited_na
from vrrp_agent.wire.addresses import IPAddr

ALL_NODES = "ff02::1"


class Announcer:
    """Tells the segment that the VIPs now live at this interface's MAC."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._arp: socket.socket | None = None
        self._icmp6: socket.socket | None = None

    def _arp_socket(self) -> socket.socket:
        if self._arp is None:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind((self.link.name, 0))
            s.setblocking(False)
            self._arp = s
        return self._arp

    def _icmp6_socket(self) -> socket.socket:
        if self._icmp6 is None:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            # RFC 4861 7.1.2: receivers drop NAs whose hop limit is not 255.
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.link.index)
            s.setblocking(False)
            self._icmp6 = s
        return self._icmp6

    def announce(self, ip: IPAddr) -> None:
        if isinstance(ip, IPv4Address):
            self._arp_socket().send(gratuitous_arp(self.link.mac, ip))
        else:
            msg = unsolicited_na(self.link.mac, ip)
            self._icmp6_socket().sendto(msg, (ALL_NODES, 0, 0, self.link.index))

    def close(self) -> None:
        for s in (self._arp, self._icmp6):
            if s is not None:
                s.close()
        self._arp = self._icmp6 = None
