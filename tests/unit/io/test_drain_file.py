"""The drain file and `Maintenance` (the daemon's drain / undrain) with a real
`Node` and a fake clock: the file is written before anything changes, a
drain that cannot be recorded is refused with the path and the OS error, and
a file found at start means drained (an unreadable one too)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from vrrp_agent.core import SendAdvert, State
from vrrp_agent.core.node import InstanceActions, NodeAction
from vrrp_agent.io import drain_file
from vrrp_agent.io.drain_file import Maintenance, Reading

from ..core.test_node import config, inst, started, to_master


def maintenance() -> tuple[Maintenance, list[NodeAction]]:
    node, _ = started(config({"VI_1": inst(1), "VI_2": inst(2)}))
    to_master(node)
    ran: list[NodeAction] = []
    return Maintenance(node, ran.extend, lambda: 20.0), ran


def test_read_absent_written_and_corrupt(tmp_path: Path) -> None:
    path = str(tmp_path / "drained")
    assert drain_file.read(path) == Reading(False)
    drain_file.write(path, 1765057200.25)
    assert json.loads(Path(path).read_text()) == {"since": 1765057200.25}
    assert drain_file.read(path) == Reading(True, 1765057200.25)
    assert os.listdir(tmp_path) == ["drained"]  # no tmp file left
    for junk in (b"", b"{", b"[]", b'{"since": "x"}', b'{"since": true}', b"\xff"):
        Path(path).write_bytes(junk)
        found = drain_file.read(path)
        assert found.drained and found.since is None, junk
        assert found.warning == (
            f'{path} is not {{"since": <unix time>}}: drained all the same (since unknown)'
        )
    Path(path).write_text('{"since": null}')
    assert drain_file.read(path) == Reading(True, None)
    drain_file.remove(path)
    drain_file.remove(path)  # gone already: fine
    assert drain_file.read(path) == Reading(False)


def test_a_path_under_a_file_is_absent_not_unreadable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert drain_file.read(str(tmp_path / "file" / "drained")) == Reading(False)


def test_an_unreadable_drain_file_still_means_drained(tmp_path: Path) -> None:
    path = tmp_path / "drained"
    path.mkdir()  # reading a directory fails (EISDIR) as root too
    found = drain_file.read(str(path))
    assert found.drained and found.since is None
    assert found.warning and "Is a directory" in found.warning


def test_drain_records_first_then_releases_every_master(tmp_path: Path) -> None:
    m, ran = maintenance()
    path = str(tmp_path / "run" / "drained")  # the directory is made
    answer = m.drain(path)
    assert answer["drained"] is True and answer["changed"] is True
    assert answer["released"] == ["VI_1", "VI_2"]
    assert isinstance(answer["since"], float)
    assert drain_file.read(path) == Reading(True, answer["since"])
    zero = [
        a
        for b in ran
        if isinstance(b, InstanceActions)
        for a in b.actions
        if isinstance(a, SendAdvert) and a.advert.priority == 0
    ]
    assert len(zero) == 2
    assert all(r.state is State.BACKUP for r in m.node.routers.values())
    # Again: unchanged, same since, nothing run.
    ran.clear()
    assert m.drain(path) == {
        "drained": True,
        "since": answer["since"],
        "changed": False,
        "released": [],
    }
    assert ran == []
    assert m.node.status(20.0)["drained_since"] == answer["since"]


def test_a_drain_that_cannot_be_recorded_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    m, ran = maintenance()
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = f"{blocker}/drained"  # under a regular file: ENOTDIR, as root too
    answer = m.drain(path)
    assert answer == {"error": f"cannot write drain_file {path}: [Errno 20] Not a directory"}
    assert ran == [] and not m.node.drained
    assert all(r.state is State.MASTER for r in m.node.routers.values())


def test_undrain_removes_the_file_first_and_is_refused_when_it_cannot(tmp_path: Path) -> None:
    m, ran = maintenance()
    path = str(tmp_path / "drained")
    since = m.drain(path)["since"]
    assert m.undrain(path) == {"drained": False, "since": since, "changed": True, "released": []}
    assert not os.path.exists(path) and not m.node.drained
    assert m.undrain(path) == {"drained": False, "since": None, "changed": False, "released": []}
    # A drain file that cannot be removed (here: it is a non-empty directory).
    m.drain(path)
    os.unlink(path)
    os.mkdir(path)
    (Path(path) / "x").write_text("")
    answer = m.undrain(path)
    assert answer["error"].startswith(f"cannot remove drain_file {path}: [Errno 21]")
    assert m.node.drained


def test_start_with_a_drain_file_starts_drained_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "drained"
    path.write_text("garbage")
    node, _ = started(config({"VI_1": inst(1)}))
    m = Maintenance(node, lambda out: None, lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="vrrp_agent"):
        m.start(str(path))
    assert node.drained and node.drained_since is None
    assert [r.getMessage() for r in caplog.records] == [
        f'{path} is not {{"since": <unix time>}}: drained all the same (since unknown)',
        f"drained since an unknown time ({path}): staying BACKUP until `vrrp-agent undrain`",
    ]
    node.on_timer(100.0)
    assert node.routers["VI_1"].state is State.BACKUP


def test_a_reload_with_another_drain_file_moves_the_record(tmp_path: Path) -> None:
    m, _ = maintenance()
    old, new = str(tmp_path / "a"), str(tmp_path / "b")
    since = m.drain(old)["since"]
    m.moved(old, new)
    assert not os.path.exists(old) and drain_file.read(new) == Reading(True, since)
