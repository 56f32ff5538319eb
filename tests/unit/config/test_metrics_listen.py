"""global_defs.metrics_listen: IP literal and port, or a problem naming the key."""

from __future__ import annotations

import pytest

from vrrp_agent.config import parse

from .test_config import FILE, assert_one, doc


def listen(value: object) -> object:
    return parse(doc(global_defs={"metrics_listen": value}), FILE).global_defs.metrics_listen


def test_off_when_unset() -> None:
    assert parse(doc(), FILE).global_defs.metrics_listen is None


@pytest.mark.parametrize(
    ("value", "host", "port", "shown"),
    [
        ("10.0.0.1:9165", "10.0.0.1", 9165, "10.0.0.1:9165"),
        ("0.0.0.0:1", "0.0.0.0", 1, "0.0.0.0:1"),
        ("[::1]:9165", "::1", 9165, "[::1]:9165"),
        ("[2001:DB8::0001]:65535", "2001:db8::1", 65535, "[2001:db8::1]:65535"),
    ],
)
def test_literals(value: str, host: str, port: int, shown: str) -> None:
    got = listen(value)
    assert (got.host, got.port, str(got)) == (host, port, shown)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("10.0.0.1", "is not ADDR:PORT"),
        (":9165", "is not ADDR:PORT"),
        ("localhost:9165", "host names are not accepted"),
        ("10.0.0.300:9165", "is not an IPv4 or IPv6 address"),
        ("::1:9165", "needs brackets"),
        ("[10.0.0.1]:9165", "brackets are for IPv6"),
        ("10.0.0.1:0", "1..65535"),
        ("10.0.0.1:65536", "1..65535"),
        ("10.0.0.1:http", "1..65535"),
        ("[::1]:", "1..65535"),
        (9165, "expected a string"),
    ],
)
def test_bad_values_name_the_key(value: object, fragment: str) -> None:
    assert_one(doc(global_defs={"metrics_listen": value}), "global_defs.metrics_listen", fragment)
