"""Alert mail end to end: an agent whose smtp_server is an aiosmtpd on another
host of the lab mails "Entering MASTER state" when its instance takes the
VIP, and "Stopping" before it exits on SIGTERM (the mails drain with the
STOP hooks); status counts them."""

from __future__ import annotations

import email
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.netns import Lab, inside, vrrp_instance
from labkit.poll import wait_for

VIP = "10.99.0.100"
SMTP_PORT = 2525


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], email.message.Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [m["Subject"] for _, _, m in self.mails]


@pytest.fixture
def inbox(lab: Lab) -> Iterator[Inbox]:
    """aiosmtpd listening on n3's address: its thread is started inside n3's
    namespace, so its sockets belong there (a thread inherits its creator's)."""
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    box = Inbox()
    n3 = lab["n3"]
    with inside(n3.ns):
        controller = controller_mod.Controller(box, hostname=n3.ip4, port=SMTP_PORT)
        controller.start()
    try:
        yield box
    finally:
        controller.stop()


def test_master_and_stop_mails_arrive(lab: Lab, inbox: Inbox) -> None:
    config = {
        "global_defs": {
            "router_id": "n1",
            "smtp_server": f"{lab['n3'].ip4} {SMTP_PORT}",
            "smtp_connect_timeout": 3,
            "notification_email": ["ops@example.com"],
            "notification_email_from": "vrrp-agent <agent@n1.example.com>",
            "smtp_alert": True,
        },
        "vrrp_instances": {"VI_1": vrrp_instance(100, VIP, 0.2)},
    }
    agent = lab.agent("n1", config)
    wait_for("n1 to hold the VIP", lambda: lab["n1"].has(VIP), 10)
    master = "[n1] VRRP Instance VI_1 - Entering MASTER state"
    wait_for("the MASTER mail", lambda: master in inbox.subjects(), 15)
    sender, rcpts, msg = inbox.mails[inbox.subjects().index(master)]
    assert sender == "agent@n1.example.com" and rcpts == ["ops@example.com"]
    assert msg["From"] == "vrrp-agent <agent@n1.example.com>"
    assert msg["To"] == "ops@example.com"
    assert msg["Date"]
    assert msg.get_payload().splitlines() == ["=> VRRP Instance is now owning VRRP VIPs <="]
    # the server keeps the mail before it answers 250: the count follows
    wait_for("the count of sent mail", lambda: agent.status()["smtp"]["sent"] >= 1, 5)
    smtp = agent.status()["smtp"]
    assert smtp["server"] == f"[{lab['n3'].ip4}]:{SMTP_PORT}"
    assert smtp["dropped"] == 0 and smtp["failed"] == 0
    assert agent.stop() == 0
    assert "[n1] VRRP Instance VI_1 - Stopping" in inbox.subjects()
