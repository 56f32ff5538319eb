"""Raw IP protocol 112 sockets, one per (interface, address family).

Sending sets the source address explicitly (IP_PKTINFO / IPV6_PKTINFO)
because the VRRPv3 checksum covers it: the address we put in the pseudo-
header must be the one the kernel writes into the IP header.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

from vrrp_agent.wire import MCAST_V4, MCAST_V6, VRRP_PROTO, parse_ipv4
from vrrp_agent.wire.addresses import IPAddr

# Linux values Python's socket module does not export.
IP_PKTINFO = 8
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29

TTL = 255  # RFC 9568 5.1.1.3 / 5.1.2.3: sent with 255, anything else dropped on receipt


@dataclass(frozen=True)
class Received:
    """One packet read from a VRRP socket, with the IP header fields checks need."""

    payload: bytes
    src: IPAddr
    dst: IPAddr
    ttl: int


class VrrpSocket:
    """A raw IP protocol 112 socket bound to one interface and address family, joined to the VRRP
    group."""

    def __init__(self, family: int, ifname: str, ifindex: int) -> None:
        self.family = family
        self.ifname = ifname
        self.ifindex = ifindex
        self.sock = socket.socket(family, socket.SOCK_RAW, VRRP_PROTO)
        self.sock.setblocking(False)
        s = self.sock
        # Only this interface's packets reach this socket, so a packet's socket names its interface.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        if family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            mreqn = struct.pack("=4s4si", MCAST_V4.packed, b"\0" * 4, ifindex)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            mreq = struct.pack("=16sI", MCAST_V6.packed, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            # Raw IPv6 sockets never see the IP header: ask for hop limit and destination.
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, payload: bytes, src: IPAddr, dst: IPAddr, ttl: int | None = None) -> None:
        """`ttl`: this packet's TTL / hop limit when not the socket's 255
        (keepalived's unicast_ttl), as a per-send control message."""
        if self.family == socket.AF_INET:
            pktinfo = struct.pack("=I4s4s", self.ifindex, src.packed, b"\0" * 4)
            cmsgs = [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)]
            if ttl is not None:
                cmsgs.append((socket.IPPROTO_IP, socket.IP_TTL, struct.pack("=i", ttl)))
            self.sock.sendmsg([payload], cmsgs, 0, (str(dst), 0))
        else:
            pktinfo = struct.pack("=16sI", src.packed, self.ifindex)
            cmsgs = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
            if ttl is not None:
                cmsgs.append((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", ttl)))
            self.sock.sendmsg([payload], cmsgs, 0, (str(dst), 0, 0, self.ifindex))

    def recv(self) -> Received:
        """One packet; raises BlockingIOError when none is waiting and
        wire.DecodeError when the IPv4 header itself is malformed."""
        if self.family == socket.AF_INET:
            data = self.sock.recv(65535)
            hdr = parse_ipv4(data)
            return Received(hdr.payload, hdr.src, hdr.dst, hdr.ttl)
        data, ancdata, _flags, addr = self.sock.recvmsg(65535, 256)
        ttl = -1
        dst: IPAddr = MCAST_V6
        for level, kind, cdata in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT:
                ttl = struct.unpack("=i", cdata[:4])[0]
            elif kind == socket.IPV6_PKTINFO:
                dst = IPv6Address(cdata[:16])
        src = ip_address(addr[0].split("%", 1)[0])
        return Received(data, src, dst, ttl)
