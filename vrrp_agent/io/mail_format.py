"""What keepalived's alert mails say, as plain functions: no socket, no clock.

Subjects and bodies are keepalived 2.2.7's (vrrp/vrrp_notify.c for instances
and sync groups, check/check_*.c for real servers, core/smtp.c for the
subject prefix and the headers), so mail filters written for keepalived keep
matching. `render` builds the DATA of one mail; io/smtp_alert.py sends it.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

from vrrp_agent import __version__
from vrrp_agent.config.model import RealServer, VirtualServer
from vrrp_agent.wire.addresses import IPAddr


@dataclass(frozen=True)
class Alert:
    """One mail's subject and body, before the headers of the day are added."""

    subject: str
    body: str


# state -> (subject, body): keepalived's vrrp_smtp_notifier. No INIT: an
# instance that leaves (agent stopping, removed on reload) is reported as STOP;
# keepalived's "Deleted" for the latter has no separate state here.
_INSTANCE = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
# keepalived's vrrp_sync_smtp_notifier
_GROUP = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}
# checker kind -> (body when UP, body when DOWN): check_tcp.c, check_http.c
# (HTTP_GET and SSL_GET share it), check_misc.c.
_CHECKER = {
    "TCP_CHECK": ("=> TCP CHECK succeed on service <=", "=> TCP CHECK failed on service <="),
    "HTTP_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP request failed <=",
    ),
    "SSL_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP request failed <=",
    ),
    "MISC_CHECK": ("=> MISC CHECK succeeded on service <=", "=> MISC CHECK failed on service <="),
}
# keepalived sends "Keepalived"; filters that match its prefix still do.
X_MAILER = f"Keepalived (vrrp-agent {__version__})"


def instance_alert(router_id: str, name: str, state: str) -> Alert | None:
    """ "[node1] VRRP Instance VI_1 - Entering MASTER state"; None for a state without mail."""
    if state not in _INSTANCE:
        return None
    subject, body = _INSTANCE[state]
    return Alert(f"[{router_id}] VRRP Instance {name} - {subject}", body)


def group_alert(router_id: str, name: str, state: str) -> Alert | None:
    """ "[node1] VRRP Group VG1 - Entering MASTER state"."""
    if state not in _GROUP:
        return None
    subject, body = _GROUP[state]
    return Alert(f"[{router_id}] VRRP Group {name} - {subject}", body)


def trio(ip: IPAddr, protocol: str, port: int) -> str:
    """keepalived's inet_sockaddrtotrio: "[10.0.0.1]:tcp:80", "[2001:db8::1]:udp:53"."""
    return f"[{ip}]:{protocol.lower()}:{port}"


def real_server_alert(router_id: str, vs: VirtualServer, rs: RealServer, up: bool) -> Alert:
    """ "[node1] Realserver [10.0.0.1]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - UP".

    The real server is shown with the virtual server's protocol, as keepalived's
    format_rs does; its port is the real server's, not the checker's connect_port."""
    proto = str(vs.protocol)
    kind = str(rs.checker.kind) if rs.checker is not None else "TCP_CHECK"
    ok, failed = _CHECKER.get(kind, _CHECKER["TCP_CHECK"])
    subject = (
        f"[{router_id}] Realserver {trio(rs.ip, proto, rs.port)} of virtual server"
        f" {trio(vs.ip, proto, vs.port)} - {'UP' if up else 'DOWN'}"
    )
    return Alert(subject, ok if up else failed)


def address_of(mailbox: str) -> str:
    """The addr-spec of "Name <addr>" (or "addr"), for MAIL FROM and RCPT TO.

    keepalived puts the configured string between the brackets as it is, so a
    display name there makes a command servers refuse; the header keeps it."""
    _, addr = email.utils.parseaddr(mailbox)
    return addr or mailbox


def _one_line(text: str) -> str:
    # The configuration refuses control characters in addresses; names and
    # router_id are checked elsewhere, so make sure no CR/LF reaches a header.
    return " ".join(text.splitlines())


def render(alert: Alert, *, sender: str, recipients: tuple[str, ...], when: float) -> bytes:
    """The DATA of one mail, CRLF line ends and dot-stuffed, without the final ".".

    keepalived's headers in its order (Date, From, Subject, X-Mailer, To); the
    date is `when` (wall clock seconds) in local time with its offset, as
    keepalived's strftime("%a, %d %b %Y %H:%M:%S %z"). `when` is the time of
    the event: a mail that waited for a server that was down still tells when
    the state changed."""
    headers = [
        ("Date", email.utils.formatdate(when, localtime=True)),
        ("From", sender),
        ("Subject", alert.subject),
        ("X-Mailer", X_MAILER),
        ("To", ", ".join(recipients)),
    ]
    lines = [f"{key}: {_one_line(value)}" for key, value in headers]
    lines.append("")
    lines.extend(alert.body.splitlines() or [""])
    # RFC 5321 4.5.2: a line that starts with "." gets one more, or it could end the data.
    stuffed = ["." + line if line.startswith(".") else line for line in lines]
    # Headers are ASCII here; UTF-8 in a name passes through as 8-bit, as keepalived's.
    return ("\r\n".join(stuffed) + "\r\n").encode("utf-8", "replace")
