"""The alert mails' text: keepalived 2.2.7's subjects, bodies and headers."""

from __future__ import annotations

import email
import email.utils
from ipaddress import ip_address

import pytest

from vrrp_agent.config.enums import CheckerKind, TransportProtocol
from vrrp_agent.config.model import Checker, RealServer, VirtualServer
from vrrp_agent.io.mail_format import (
    X_MAILER,
    Alert,
    address_of,
    group_alert,
    instance_alert,
    real_server_alert,
    render,
    trio,
)


@pytest.mark.parametrize(
    ("state", "subject", "body"),
    [
        ("MASTER", "[node1] VRRP Instance VI_1 - Entering MASTER state",
         "=> VRRP Instance is now owning VRRP VIPs <="),
        ("BACKUP", "[node1] VRRP Instance VI_1 - Entering BACKUP state",
         "=> VRRP Instance is no longer owning VRRP VIPs <="),
        ("FAULT", "[node1] VRRP Instance VI_1 - Entering FAULT state",
         "=> VRRP Instance is no longer owning VRRP VIPs <="),
        ("STOP", "[node1] VRRP Instance VI_1 - Stopping", "=> VRRP Instance stopping <="),
    ],
)  # fmt: skip
def test_instance_alerts(state: str, subject: str, body: str) -> None:
    assert instance_alert("node1", "VI_1", state) == Alert(subject, body)


def test_group_alerts() -> None:
    assert group_alert("node1", "VG1", "MASTER") == Alert(
        "[node1] VRRP Group VG1 - Entering MASTER state",
        "=> All VRRP group instances are now in MASTER state <=",
    )
    assert group_alert("n", "VG1", "STOP") == Alert(
        "[n] VRRP Group VG1 - Stopping", "=> All VRRP group instances are now stopping <="
    )


def test_states_without_mail() -> None:
    assert instance_alert("n", "VI_1", "INIT") is None
    assert group_alert("n", "VG1", "INIT") is None


def _servers(kind: CheckerKind, vip: str = "192.168.1.100", rip: str = "10.0.0.1",
             proto: TransportProtocol = TransportProtocol.TCP) -> tuple[VirtualServer, RealServer]:  # fmt: skip
    # the checker's connect_port is not what the subject shows
    rs = RealServer(ip_address(rip), 8080, checker=Checker(kind=kind, connect_port=9999))
    return VirtualServer(ip_address(vip), 80, protocol=proto, real_servers=(rs,)), rs


@pytest.mark.parametrize(
    ("kind", "up", "body"),
    [
        (CheckerKind.TCP_CHECK, True, "=> TCP CHECK succeed on service <="),
        (CheckerKind.TCP_CHECK, False, "=> TCP CHECK failed on service <="),
        (CheckerKind.HTTP_GET, True, "=> CHECK succeed on service <="),
        (CheckerKind.HTTP_GET, False, "=> CHECK failed on service : HTTP request failed <="),
        (CheckerKind.SSL_GET, False, "=> CHECK failed on service : HTTP request failed <="),
        (CheckerKind.MISC_CHECK, True, "=> MISC CHECK succeeded on service <="),
        (CheckerKind.MISC_CHECK, False, "=> MISC CHECK failed on service <="),
    ],
)
def test_real_server_alerts(kind: CheckerKind, up: bool, body: str) -> None:
    vs, rs = _servers(kind)
    alert = real_server_alert("node1", vs, rs, up)
    assert alert.subject == (
        "[node1] Realserver [10.0.0.1]:tcp:8080 of virtual server [192.168.1.100]:tcp:80 - "
        + ("UP" if up else "DOWN")
    )
    assert alert.body == body


def test_trio_ipv6_and_udp() -> None:
    assert trio(ip_address("2001:db8::1"), "UDP", 53) == "[2001:db8::1]:udp:53"
    vs, rs = _servers(CheckerKind.TCP_CHECK, "2001:db8::80", "2001:db8::1", TransportProtocol.UDP)
    assert "Realserver [2001:db8::1]:udp:8080 of virtual server [2001:db8::80]:udp:80" in (
        real_server_alert("n", vs, rs, True).subject
    )


@pytest.mark.parametrize(
    ("mailbox", "addr"),
    [
        ("ops@example.com", "ops@example.com"),
        ("Ops Team <team@example.com>", "team@example.com"),
        ('"Agent, node1" <agent@example.com>', "agent@example.com"),
    ],
)
def test_address_of(mailbox: str, addr: str) -> None:
    assert address_of(mailbox) == addr


def test_render_headers_in_keepalived_order() -> None:
    when = 1_800_000_000.0
    data = render(
        Alert("[n] VRRP Instance VI_1 - Entering MASTER state", "=> body <="),
        sender='"Agent, n" <agent@example.com>',
        recipients=("a@example.com", "B <b@example.com>"),
        when=when,
    )
    text = data.decode()
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    head, body = text.split("\r\n\r\n", 1)
    assert [line.split(":", 1)[0] for line in head.split("\r\n")] == [
        "Date", "From", "Subject", "X-Mailer", "To",
    ]  # fmt: skip
    msg = email.message_from_string(text.replace("\r\n", "\n"))
    assert msg["From"] == '"Agent, n" <agent@example.com>'
    assert msg["To"] == "a@example.com, B <b@example.com>"
    assert msg["Subject"] == "[n] VRRP Instance VI_1 - Entering MASTER state"
    assert msg["X-Mailer"] == X_MAILER and X_MAILER.startswith("Keepalived")
    dated = email.utils.parsedate_to_datetime(msg["Date"])
    assert dated.timestamp() == when
    assert body == "=> body <=\r\n"


def test_render_dot_stuffs_and_keeps_headers_one_line() -> None:
    data = render(Alert("a\r\nBcc: x@example.com", ".\nline"), sender="s@example.com",
                  recipients=("r@example.com",), when=0.0)  # fmt: skip
    text = data.decode()
    assert "\r\nBcc:" not in text
    assert "Subject: a Bcc: x@example.com\r\n" in text
    # a lone "." would end the DATA early
    assert text.endswith("\r\n\r\n..\r\nline\r\n")
