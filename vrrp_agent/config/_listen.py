"""global_defs.metrics_listen: "ADDR:PORT", an IP literal and a TCP port."""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address
from typing import Any

from ._reader import Invalid, text
from .model import ListenAddress


def listen_address(value: Any) -> ListenAddress:
    """`10.0.0.1:9165` or `[::1]:9165`. Literals only: a host name would be
    resolved at start (a DNS lookup before the first advert) and could name
    another address after a reload."""
    word = text(value).strip()
    host, sep, port = word.rpartition(":")
    if not sep or not host:
        raise Invalid(f"{word!r} is not ADDR:PORT (e.g. 127.0.0.1:9165 or [::1]:9165)")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    try:
        addr = ip_address(host)
    except ValueError:
        raise Invalid(
            f"{host!r} is not an IPv4 or IPv6 address (host names are not accepted)"
        ) from None
    if isinstance(addr, IPv6Address) and not bracketed:
        # "::1:9165" would be ambiguous: is 9165 the port or the last group?
        raise Invalid(f"an IPv6 address needs brackets: [{host}]:{port}")
    if bracketed and not isinstance(addr, IPv6Address):
        raise Invalid(f"brackets are for IPv6 addresses only: {host}:{port}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Invalid(f"port {port!r} is not a number in 1..65535")
    return ListenAddress(str(addr), int(port))
