"""`vrrp-agent drain` / `undrain` against a control socket served in a thread:
one line (or the JSON answer with --json), exit 0 when the node is in the
state asked for (also unchanged), exit 1 with a message on stderr when no
agent answers, the agent refuses, or it answers an error."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vrrp_agent import cli
from vrrp_agent.io import control

SINCE = 1796593200.0  # 2026-12-06T21:40:00Z


class FakeAgent:
    """Answers drain / undrain with whatever `answers` holds next."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.asked: list[str] = []

    def command(self, name: str) -> control.Answer:
        def answer() -> dict[str, object]:
            self.asked.append(name)
            return self.answers.pop(0)

        return answer


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAgent, Path]]:
    path = str(tmp_path / "agent.sock")
    fake = FakeAgent()
    monkeypatch.setattr(control, "_peer_uid", lambda writer: 0)  # as root, wherever tests run
    loop = asyncio.new_event_loop()
    commands = {"drain": fake.command("drain"), "undrain": fake.command("undrain")}
    server = loop.run_until_complete(control.serve(path, dict, commands))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cfg = tmp_path / "agent.yml"
    cfg.write_text(f"global_defs: {{control_socket: {path}}}\nvrrp_instances: {{}}\n")
    yield fake, cfg
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    # The empty vrrp_instances is a problem of the file, which drain mentions.
    err = "\n".join(line for line in err.splitlines() if "problem(s)" not in line)
    return code, out, err


def test_drain_prints_one_line_naming_the_released_instances(
    agent: tuple[FakeAgent, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, cfg = agent
    fake.answers = [
        {"drained": True, "since": SINCE, "changed": True, "released": ["VI_1", "VI_2"]},
        {"drained": True, "since": SINCE, "changed": False, "released": []},
        {"drained": True, "since": SINCE, "changed": True, "released": []},
        {"drained": True, "since": None, "changed": False, "released": []},
    ]
    assert run(capsys, "drain", "-c", str(cfg)) == (
        0,
        "drained since 2026-12-06T21:40:00Z: released VI_1, VI_2\n",
        "",
    )
    assert run(capsys, "drain", "-c", str(cfg)) == (
        0,
        "drained since 2026-12-06T21:40:00Z (already; nothing changed)\n",
        "",
    )
    assert run(capsys, "drain", "-c", str(cfg))[1] == (
        "drained since 2026-12-06T21:40:00Z: no instance was MASTER\n"
    )
    assert run(capsys, "drain", "-c", str(cfg))[1] == (
        "drained since an unknown time (already; nothing changed)\n"
    )
    assert fake.asked == ["drain"] * 4


def test_undrain_prints_since_when_it_was_drained(
    agent: tuple[FakeAgent, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, cfg = agent
    fake.answers = [
        {"drained": False, "since": SINCE, "changed": True, "released": []},
        {"drained": False, "since": None, "changed": False, "released": []},
    ]
    assert run(capsys, "undrain", "-c", str(cfg)) == (
        0,
        "not drained (was drained since 2026-12-06T21:40:00Z)\n",
        "",
    )
    assert run(capsys, "undrain", "-c", str(cfg)) == (
        0,
        "not drained (already; nothing changed)\n",
        "",
    )
    assert fake.asked == ["undrain", "undrain"]


def test_json_prints_the_answer_as_is(
    agent: tuple[FakeAgent, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, cfg = agent
    answer = {"drained": True, "since": SINCE, "changed": True, "released": ["VI_1"]}
    fake.answers = [dict(answer)]
    code, out, err = run(capsys, "drain", "--json", "-c", str(cfg))
    assert (code, json.loads(out), err) == (0, answer, "")


def test_a_refusal_or_an_error_exits_1_with_the_reason_on_stderr(
    agent: tuple[FakeAgent, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, cfg = agent
    why = "cannot write drain_file /x/drained: [Errno 2] No such file or directory"
    fake.answers = [{"error": why}, {"error": why}, {"drained": False}]
    assert run(capsys, "drain", "-c", str(cfg)) == (
        1,
        "",
        f"vrrp-agent drain: the agent refused: {why}",
    )
    code, out, err = run(capsys, "drain", "--json", "-c", str(cfg))
    assert (code, json.loads(out)) == (1, {"error": why})
    assert err == f"vrrp-agent drain: the agent refused: {why}"
    code, out, err = run(capsys, "drain", "-c", str(cfg))  # not what was asked for
    assert code == 1 and out == "" and err.startswith("vrrp-agent drain: unexpected answer")


def test_a_non_root_peer_is_refused(
    agent: tuple[FakeAgent, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake, cfg = agent
    monkeypatch.setattr(control, "_peer_uid", lambda writer: 1000)
    assert run(capsys, "undrain", "-c", str(cfg)) == (
        1,
        "",
        "vrrp-agent undrain: the agent refused: undrain needs root (peer uid 1000)",
    )
    assert fake.asked == []


def test_no_agent_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "none.sock"
    cfg = tmp_path / "agent.yml"
    cfg.write_text(f"global_defs: {{control_socket: {sock}}}\nvrrp_instances: {{}}\n")
    code, out, err = run(capsys, "drain", "-c", str(cfg))
    assert code == 1 and out == ""
    assert err.startswith(f"vrrp-agent drain: no agent answers on {sock}: ")


def test_status_table_says_drained(monkeypatch: pytest.MonkeyPatch) -> None:
    doc: dict[str, object] = {"router_id": "n1", "pid": 1, "uptime": 1.0, "instances": {}}
    assert "DRAINED" not in cli._table({**doc, "drained": False, "drained_since": None})
    lines = cli._table({**doc, "drained": True, "drained_since": SINCE}).splitlines()
    assert lines[1] == "DRAINED since 2026-12-06T21:40:00Z (vrrp-agent undrain to end)"
    lines = cli._table({**doc, "drained": True, "drained_since": None}).splitlines()
    assert lines[1] == "DRAINED since an unknown time (vrrp-agent undrain to end)"
