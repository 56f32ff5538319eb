"""The command line starts under whichever Python runs the unit tests.

`make unit` runs these under 3.9 and the newest Python too, so they catch a
module the CLI imports that no longer loads there (a 3.10+ construct
evaluated at import time), which the per-part tests might import lazily.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vrrp_agent", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_help_lists_the_commands() -> None:
    done = agent("--help")
    assert done.returncode == 0, done.stderr
    for command in ("run", "validate", "status"):
        assert command in done.stdout


def test_validate_accepts_the_examples() -> None:
    # With the host checks: the examples name only programs and a user every
    # host has (tests/netns/test_newcomer runs them on a host made fresh).
    for name in ("agent.yml", "minimal.yml"):
        done = agent("validate", "-c", str(ROOT / "examples" / name))
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


def test_validate_rejects_an_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yml"
    bad.write_text((ROOT / "examples" / "minimal.yml").read_text() + "no_such_key: 1\n")
    done = agent("validate", "--no-host-checks", "-c", str(bad))
    assert done.returncode != 0
    assert "no_such_key" in done.stdout + done.stderr
