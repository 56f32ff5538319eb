"""keepalived's alert mail keys: their values, and which objects send mail
(smtp_alert_on's precedence) - the configuration side of io/smtp_alert.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from vrrp_agent.config import ConfigError, parse
from vrrp_agent.config.model import (
    Config,
    SmtpServer,
    alerting,
    alerts_instance,
    alerts_real_server,
    alerts_virtual_server,
    smtp_alert_on,
    smtp_warnings,
)

FILE = "t.yml"


def cfg(global_defs: dict[str, Any] | None = None, *, inst: dict[str, Any] | None = None,
        group: dict[str, Any] | None = None, vs: dict[str, Any] | None = None,
        rs: dict[str, Any] | None = None) -> Config:  # fmt: skip
    data: dict[str, Any] = {
        "vrrp_instances": {
            "VI_1": {
                "interface": "eth0",
                "virtual_router_id": 51,
                "virtual_ipaddress": ["192.168.1.100/24"],
                **(inst or {}),
            }
        },
        "vrrp_sync_groups": {"VG1": {"group": ["VI_1"], **(group or {})}},
        "virtual_servers": [
            {
                "ip": "192.168.1.100",
                "port": 80,
                **(vs or {}),
                "real_servers": [
                    {"ip": "10.0.0.1", "port": 80, "TCP_CHECK": {}, **(rs or {})},
                ],
            }
        ],
    }
    if global_defs is not None:
        data["global_defs"] = global_defs
    return parse(yaml.safe_dump(data, sort_keys=False), FILE)


def problems(global_defs: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg(global_defs)
    return info.value.problems


# --- values -------------------------------------------------------------------------


def test_defaults() -> None:
    g = cfg().global_defs
    assert g.notification_email == ()
    assert g.notification_email_from is None
    assert g.smtp_server is None
    assert g.smtp_helo_name is None
    assert g.smtp_connect_timeout == 30.0  # keepalived's DEFAULT_SMTP_CONNECTION_TIMEOUT
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (None, None, None)
    assert g.no_email_faults is False


def test_all_keys_typed() -> None:
    g = cfg({
        "notification_email": ["ops@example.com", "Ops Team <team@example.com>"],
        "notification_email_from": "Agent, node1 <agent@example.com>",
        "smtp_server": "192.0.2.25 2525",
        "smtp_helo_name": "node1.example.com",
        "smtp_connect_timeout": 5,
        "smtp_alert": True,
        "smtp_alert_vrrp": False,
        "smtp_alert_checker": True,
        "no_email_faults": True,
    }).global_defs  # fmt: skip
    assert g.notification_email == ("ops@example.com", "Ops Team <team@example.com>")
    # a display name with specials is quoted, as keepalived writes it in From:
    assert g.notification_email_from == '"Agent, node1" <agent@example.com>'
    assert g.smtp_server == SmtpServer("192.0.2.25", 2525)
    assert str(g.smtp_server) == "[192.0.2.25]:2525"
    assert g.smtp_helo_name == "node1.example.com"
    assert g.smtp_connect_timeout == 5.0
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (True, False, True)
    assert g.no_email_faults is True


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("127.0.0.1", SmtpServer("127.0.0.1", 25)),
        ("mail.example.com 587", SmtpServer("mail.example.com", 587)),
        ("2001:db8::25", SmtpServer("2001:db8::25", 25)),
        ("[2001:db8::25] 26", SmtpServer("2001:db8::25", 26)),
    ],
)
def test_smtp_server_forms(text: str, server: SmtpServer) -> None:
    assert cfg({"smtp_server": text}).global_defs.smtp_server == server


@pytest.mark.parametrize(
    ("global_defs", "keypath", "fragment"),
    [
        ({"smtp_server": "127.0.0.1:25"}, "global_defs.smtp_server", "after a space"),
        ({"smtp_server": "127.0.0.1 0"}, "global_defs.smtp_server", "between 1 and 65535"),
        ({"smtp_server": "a b c"}, "global_defs.smtp_server", "ADDR [PORT]"),
        ({"smtp_server": "bad_host-"}, "global_defs.smtp_server", "not an IP address"),
        ({"notification_email": ["a b@example.com"]}, "global_defs.notification_email",
         "not an email address"),
        # a newline would inject a header into every mail
        ({"notification_email_from": "a@example.com\nBcc: x@example.com"},
         "global_defs.notification_email_from", "control characters"),
        ({"smtp_helo_name": "two words"}, "global_defs.smtp_helo_name", "one word"),
        ({"smtp_connect_timeout": 0}, "global_defs.smtp_connect_timeout", ""),
        ({"smtp_alert": "maybe"}, "global_defs.smtp_alert", ""),
    ],
)  # fmt: skip
def test_bad_values(global_defs: dict[str, Any], keypath: str, fragment: str) -> None:
    found = problems(global_defs)
    assert len(found) == 1, found
    assert found[0].startswith(f"{FILE}: {keypath}"), found
    assert fragment in found[0]


def test_object_keys_parse() -> None:
    c = cfg(inst={"smtp_alert": True}, group={"smtp_alert": False},
            vs={"smtp_alert": True}, rs={"smtp_alert": False})  # fmt: skip
    assert c.vrrp_instances["VI_1"].smtp_alert is True
    assert c.vrrp_sync_groups["VG1"].smtp_alert is False
    assert c.virtual_servers[0].smtp_alert is True
    assert c.virtual_servers[0].real_servers[0].smtp_alert is False


# --- precedence (keepalived: vrrp/vrrp.c, check/check_data.c) -------------------------


@pytest.mark.parametrize(
    ("own", "category", "global_default", "fallback", "expected"),
    [
        (True, False, False, False, True),  # the object's own setting wins
        (False, True, True, True, False),
        (None, True, False, False, True),  # then smtp_alert_vrrp / _checker
        (None, False, True, True, False),
        (None, None, True, False, True),  # then the global smtp_alert
        (None, None, False, True, False),
        (None, None, None, False, False),  # else off...
        (None, None, None, True, True),  # ...except real servers
    ],
)
def test_smtp_alert_on(own: Any, category: Any, global_default: Any, fallback: bool,
                       expected: bool) -> None:  # fmt: skip
    assert smtp_alert_on(own, category, global_default, fallback) is expected


def test_instances_and_groups_follow_smtp_alert_vrrp() -> None:
    c = cfg({"smtp_alert": False, "smtp_alert_vrrp": True})
    g = c.global_defs
    assert alerts_instance(g, c.vrrp_instances["VI_1"])
    assert alerts_instance(g, c.vrrp_sync_groups["VG1"])
    # the checker side is not touched by smtp_alert_vrrp
    assert not alerts_virtual_server(g, c.virtual_servers[0])
    assert not alerts_real_server(g, c.virtual_servers[0].real_servers[0])


def test_own_setting_beats_category() -> None:
    c = cfg({"smtp_alert_vrrp": True}, inst={"smtp_alert": False})
    assert not alerts_instance(c.global_defs, c.vrrp_instances["VI_1"])
    assert alerts_instance(c.global_defs, c.vrrp_sync_groups["VG1"])


def test_global_smtp_alert_is_the_last_default() -> None:
    c = cfg({"smtp_alert": True, "smtp_alert_checker": False})
    g = c.global_defs
    assert alerts_instance(g, c.vrrp_instances["VI_1"])
    assert not alerts_virtual_server(g, c.virtual_servers[0])
    assert not alerts_real_server(g, c.virtual_servers[0].real_servers[0])


def test_real_servers_alert_by_default_others_do_not() -> None:
    c = cfg()
    g = c.global_defs
    assert not alerts_instance(g, c.vrrp_instances["VI_1"])
    assert not alerts_instance(g, c.vrrp_sync_groups["VG1"])
    assert not alerts_virtual_server(g, c.virtual_servers[0])
    # keepalived's backwards compatibility: checked real servers mail unless told not to
    assert alerts_real_server(g, c.virtual_servers[0].real_servers[0])
    assert alerting(c) == ["virtual_servers[0].real_servers[0]"]


def test_virtual_server_setting_is_not_inherited_by_real_servers() -> None:
    c = cfg(vs={"smtp_alert": False})
    assert alerts_real_server(c.global_defs, c.virtual_servers[0].real_servers[0])


# --- warnings ---------------------------------------------------------------------


def test_warnings_when_mail_is_asked_for_but_cannot_go() -> None:
    found = dict(smtp_warnings(cfg(inst={"smtp_alert": True}, rs={"smtp_alert": True})))
    assert set(found) == {"global_defs.smtp_server", "global_defs.notification_email"}
    assert (
        "vrrp_instances.VI_1, virtual_servers[0].real_servers[0]"
        in found["global_defs.smtp_server"]
    )
    only_server = dict(smtp_warnings(cfg({"smtp_server": "127.0.0.1", "smtp_alert": True})))
    assert list(only_server) == ["global_defs.notification_email"]


def test_no_warnings_when_configured_or_not_asked_for() -> None:
    full = {
        "smtp_server": "127.0.0.1",
        "notification_email": ["ops@example.com"],
        "smtp_alert": True,
    }
    assert smtp_warnings(cfg(full)) == []
    # real servers alert by keepalived's default: no reason to warn every LVS configuration
    assert smtp_warnings(cfg()) == []
    assert alerting(cfg()) == ["virtual_servers[0].real_servers[0]"]
    assert smtp_warnings(cfg({"smtp_alert_checker": True})) != []


def test_validate_tells_the_warnings() -> None:
    from vrrp_agent.config.acceptance import accept

    c = cfg({"smtp_alert": True})
    lines = accept(c).warning_lines("t.yml")
    assert any(line.startswith("t.yml: global_defs.smtp_server: not set") for line in lines), lines
