"""Fixtures for tests that need root, network namespaces and raw sockets.

In CI a missing capability is a failure, not a skip: a skipped netns suite
would hide exactly what these tests exist to prove.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.netns import Lab


def _open_lab(tmp_path: Path, hosts: int, links: int) -> Iterator[Lab]:
    if os.geteuid() != 0:
        message = "netns tests need root (network namespaces, raw sockets)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    lab = Lab(tmp_path)
    try:
        lab.open(hosts, links)
        yield lab
    finally:
        # Shown by pytest only when the test fails.
        for a in lab.agents:
            print(f"===== agent on {a.host.name} ({a.config_path.name})\n{a.log()}")
        lab.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _open_lab(tmp_path, hosts=3, links=1)


@pytest.fixture
def lab_two_links(tmp_path: Path) -> Iterator[Lab]:
    yield from _open_lab(tmp_path, hosts=2, links=2)


@pytest.fixture
def lab_lvs(tmp_path: Path) -> Iterator[Lab]:
    """Two directors, two real servers and a client, on two segments."""
    yield from _open_lab(tmp_path, hosts=5, links=2)


@pytest.fixture
def flags() -> Iterator[Path]:
    """A root-owned 0755 directory below /tmp for scripts, hooks and the files
    they look at: the unprivileged script user can enter it (pytest's
    tmp_path sits below a 0700 one) and enable_script_security accepts
    programs in it (only root can write it)."""
    d = Path(tempfile.mkdtemp(prefix="vrrp-test-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
