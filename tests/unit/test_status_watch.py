"""`vrrp-agent status --watch`: one table per interval until Ctrl-C, exit 0;
the screen is cleared only on a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest

from vrrp_agent import cli
from vrrp_agent.io import control

DOC: dict[str, Any] = {
    "router_id": "node1", "pid": 1, "uptime": 3.0, "rx_dropped": {},
    "instances": {"VI_1": {"state": "MASTER", "priority": 100, "effective_priority": 100,
                           "interface": "eth0", "virtual_router_id": 51,
                           "virtual_ipaddress": ["10.0.0.100/32"], "master_ip": "10.0.0.1",
                           "last_transition_reason": "master down timer expired"}},
}  # fmt: skip


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Three answers (the second: the agent is gone), then Ctrl-C."""
    answers: list[Any] = [DOC, ConnectionRefusedError(111, "Connection refused"), DOC]
    sleeps: list[float] = []

    def request(path: str, command: str = "status", timeout: float = 5.0) -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if not answers:
            raise KeyboardInterrupt

    monkeypatch.setattr(control, "request", request)
    monkeypatch.setattr("time.sleep", sleep)
    monkeypatch.setattr(cli, "_control_socket", lambda path: "/run/test.sock")
    return sleeps


def test_piped_one_table_per_interval(
    frames: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--watch", "--interval", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    blocks = out.split("\n\n")
    assert len(blocks) == 3
    assert blocks[0].startswith("router_id node1") and "VI_1" in blocks[0] and "MASTER" in blocks[0]
    assert blocks[1] == "no agent answers on /run/test.sock: [Errno 111] Connection refused"
    assert blocks[0] == blocks[2].rstrip("\n")
    assert frames == [0.5, 0.5, 0.5]


def test_on_a_terminal_the_screen_is_cleared(
    frames: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr("sys.stdout", tty)
    assert cli.main(["status", "--watch"]) == 0
    assert tty.getvalue().count("\x1b[H\x1b[2J") == 3
    assert frames == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("interval", ["0", "-1", "soon", "3601"])
def test_a_bad_interval_is_a_usage_error(interval: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["status", "--watch", "--interval", interval])
    assert info.value.code == 2
    assert "--interval" in capsys.readouterr().err
