"""Skips for a missing tool or privilege, which CI turns into failures.

On a developer's machine without nft or root, a test that needs them says so
and skips. CI installs every tool before the unit tests run (`make unit`
depends on `make deps`) and runs as root, so a skip there would only hide a
broken install step: with CI set, each of these fails instead, as the netns
suite's fixtures do.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

# Debian keeps nft and ip in /usr/sbin, which a non-root PATH may lack.
SBIN = "/usr/sbin:/sbin"


def unavailable(message: str) -> NoReturn:
    """Skip the running test, or fail it when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs every tool first: see scripts/system-deps.sh)")
    pytest.skip(message)


def tool(name: str, why: str = "") -> str:
    """The path of the program `name`; skips (fails in CI) when it is missing."""
    path = shutil.which(name) or shutil.which(name, path=SBIN)
    if path is None:
        unavailable(f"needs {name}{': ' + why if why else ''} (make deps installs it)")
    return path


def root(why: str) -> None:
    """Skips (fails in CI) unless the tests run as root."""
    if os.geteuid() != 0:
        unavailable(f"needs root: {why}")
