"""What `-c FILE` may name, and what a document may make the loader do.

Each case ran against the loader before this check existed: a FIFO blocked
`validate` for good, /dev/zero ended in a MemoryError traceback, a 667-byte
merge-key bomb hung PyYAML up to 6.0.3, and control_socket took relative paths
and unlinked whatever file sat at its path.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vrrp_agent.config import ConfigError, load, parse
from vrrp_agent.config._loader import MAX_CONFIG_BYTES
from vrrp_agent.io import control

MINIMAL = "vrrp_instances: {VI_1: {interface: eth0, virtual_router_id: 51, priority: 100, virtual_ipaddress: [10.0.0.1/24]}}\n"  # noqa: E501


def validate(path: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """In a child with a time and memory bound, so the old behaviour (block,
    or read /dev/zero until memory runs out) fails the test instead of hanging it."""
    return subprocess.run(
        ["/bin/sh", "-c", 'ulimit -v 2000000; exec "$@"', "sh",
         sys.executable, "-m", "vrrp_agent.cli", "validate", "--no-host-checks", "-c", path],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "agent.yml"
    os.mkfifo(fifo)
    out = validate(str(fifo))
    assert out.returncode == 2
    assert out.stderr == f"{fifo}: (top level): not a regular file (a FIFO)\n"


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/tmp", "a directory")]
)
def test_what_is_not_a_regular_file_is_refused(path: str, kind: str) -> None:
    out = validate(path)
    assert (out.returncode, out.stderr) == (
        2,
        f"{path}: (top level): not a regular file ({kind})\n",
    )


def test_a_file_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "agent.yml"
    with big.open("wb") as fh:
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ConfigError) as err:
        load(str(big))
    assert err.value.problems == [
        f"{big}: (top level): 4,194,305 bytes is larger than the 4,194,304 bytes"
        " a configuration file may have"
    ]


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    real = tmp_path / "real.yml"
    real.write_text(MINIMAL)
    (tmp_path / "link.yml").symlink_to(real)
    assert load(str(tmp_path / "link.yml")).vrrp_instances["VI_1"].priority == 100


def merge_bomb(levels: int) -> str:
    lines = ["L0: &L0 {k0: v}"]
    for n in range(1, levels + 1):
        lines.append(f"L{n}: &L{n} {{<<: [*L{n - 1}, *L{n - 1}], k{n}: v}}")
    lines.append(f"target: {{<<: [*L{levels}, *L{levels}]}}")
    return "\n".join(lines) + "\n"


def test_a_merge_key_bomb_is_refused_before_it_is_built(tmp_path: Path) -> None:
    bomb = merge_bomb(18)
    assert len(bomb) < 700
    path = tmp_path / "agent.yml"
    path.write_text(bomb)
    out = validate(str(path), timeout=10)
    assert out.returncode == 2
    assert "expand this document to more than 200,000 nodes" in out.stderr
    assert out.stderr.count("\n") == 1


def test_a_billion_laughs_of_plain_aliases_is_refused() -> None:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    with pytest.raises(ConfigError) as err:
        parse("\n".join(lines))
    assert err.value.problems == [
        "<string>: (top level): YAML error: aliases and merge keys (<<) expand this document"
        " to more than 200,000 nodes, far beyond any configuration (an alias bomb?)"
    ]


def test_ordinary_aliases_still_work() -> None:
    doc = (
        "x-common: &common {interface: eth0, priority: 100}\n"
        "vrrp_instances:\n"
        "  VI_1: {<<: *common, virtual_router_id: 51, virtual_ipaddress: [10.0.0.1/24]}\n"
    )
    # x-common is not a section: the alias must still expand for the instance.
    with pytest.raises(ConfigError) as err:
        parse(doc)
    assert [p for p in err.value.problems if "VI_1" in p] == []


def test_control_socket_must_be_absolute() -> None:
    with pytest.raises(ConfigError) as err:
        parse(MINIMAL + "global_defs: {control_socket: run/agent.sock}\n")
    assert err.value.problems == [
        "<string>: global_defs.control_socket: must be an absolute path, got 'run/agent.sock'"
    ]


def test_serve_refuses_a_path_that_is_a_file_and_leaves_it(tmp_path: Path) -> None:
    precious = tmp_path / "agent.sock"
    precious.write_text("somebody's data\n")
    with pytest.raises(control.ControlSocketError, match="exists and is not a socket"):
        asyncio.run(control.serve(str(precious), dict))
    control.remove(str(precious))  # what stop calls: a no-op on a non-socket
    assert precious.read_text() == "somebody's data\n"


def test_serve_replaces_a_stale_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.sock")

    async def twice() -> dict[str, object]:
        first = await control.serve(path, dict)
        first.close()  # a crashed run leaves its socket file behind
        second = await control.serve(path, lambda: {"ok": True})
        try:
            return await asyncio.to_thread(control.request, path)
        finally:
            second.close()

    assert asyncio.run(twice()) == {"ok": True}


def test_drain_file_defaults_under_run_and_must_be_an_absolute_file_path() -> None:
    assert parse(MINIMAL).global_defs.drain_file == "/run/vrrp-agent/drained"
    assert parse(
        MINIMAL + "global_defs: {drain_file: /var/lib/x/drained}\n"
    ).global_defs.drain_file == ("/var/lib/x/drained")
    for value, why in (
        ("run/drained", "expected an absolute path, got 'run/drained'"),
        ("/run/vrrp-agent/", "must name a file, got the directory '/run/vrrp-agent/'"),
        ("/run/..", "must name a file, got the directory '/run/..'"),
        (
            "/run/vrrp-agent/agent.sock",
            "must differ from control_socket (/run/vrrp-agent/agent.sock)",
        ),
    ):
        with pytest.raises(ConfigError) as err:
            parse(MINIMAL + f"global_defs: {{drain_file: {value!r}}}\n")
        assert err.value.problems == [f"<string>: global_defs.drain_file: {why}"], value
    with pytest.raises(ConfigError) as err:
        parse(MINIMAL + "global_defs: {drain_file: 5}\n")
    assert err.value.problems[0].startswith("<string>: global_defs.drain_file: expected a string")
