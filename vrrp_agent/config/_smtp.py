"""The values of keepalived's alert mail keys: addresses, smtp_server, helo name."""

from __future__ import annotations

import re
from ipaddress import ip_address
from typing import Any

from ._reader import Invalid, describe, text
from .model import SmtpServer

# What RFC 5322 (3.2.3) says a display name must quote; keepalived quotes a
# display name holding any of them (core/global_data.c, format_email_addr).
_SPECIALS = set('()<>[]:;@\\,."')
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_SMTP_PORT = 25


def _no_controls(word: str) -> None:
    # CR or LF in an address would end the header (or the SMTP command) early:
    # a configuration must not be able to inject lines into the mail.
    if any(not c.isprintable() for c in word):
        raise Invalid(f"{word!r} contains control characters")


def email_address(value: Any) -> str:
    """ "addr" or "Display Name <addr>", returned the way keepalived writes it
    in the From: and To: headers (a display name with specials is quoted)."""
    word = text(value).strip()
    _no_controls(word)
    if not word.endswith(">"):
        if any(c.isspace() or c in "<>" for c in word):
            raise Invalid(f"{word!r} is not an email address (with a display name: 'Name <addr>')")
        return word
    start = word.rfind("<")
    if start < 0:
        raise Invalid(f"{word!r} ends with '>' but has no '<'")
    spec = word[start + 1 : -1]
    if not spec or any(c.isspace() or c in "<>" for c in spec):
        raise Invalid(f"{word!r}: {spec!r} is not an email address")
    display = word[:start].rstrip()
    if not display:
        return f"<{spec}>"
    quoted = len(display) >= 2 and display[0] == display[-1] == '"'
    if not quoted and _SPECIALS.intersection(display):
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        display = f'"{escaped}"'
    return f"{display} <{spec}>"


def _hostname(word: str) -> str:
    if len(word) > 253 or not all(_LABEL.fullmatch(label) for label in word.split(".")):
        raise Invalid(f"{word!r} is not an IP address or a host name")
    return word


def smtp_server(value: Any) -> SmtpServer:
    """keepalived's "ADDR [PORT]": IPv4, IPv6 (bare or in brackets) or a host name."""
    word = text(value)
    _no_controls(word)
    words = word.split()
    if len(words) > 2:
        raise Invalid(f"expected 'ADDR [PORT]', got {describe(value)}")
    host = words[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        host = str(ip_address(host))
    except ValueError:
        if ":" in host:
            raise Invalid(
                f"{words[0]!r} is not an IP address or a host name"
                " (the port goes after a space: 'ADDR PORT')"
            ) from None
        host = _hostname(host)
    port = _SMTP_PORT
    if len(words) == 2:
        if not words[1].isdigit() or not 1 <= int(words[1]) <= 65535:
            raise Invalid(f"port {words[1]!r} must be a number between 1 and 65535")
        port = int(words[1])
    return SmtpServer(host, port)


def helo_name(value: Any) -> str:
    word = text(value).strip()
    _no_controls(word)
    if any(c.isspace() for c in word):
        raise Invalid(f"{word!r} must be one word (it follows HELO)")
    return word
