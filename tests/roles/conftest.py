"""The filter plugin and the argument-spec checker are plain modules outside any
package (Ansible and `make lint` load them by path); put their folders on the
import path so the tests import them by name."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for folder in (
    REPO / "roles/vrrp/filter_plugins",
    REPO / "roles/vrrp_ops/filter_plugins",
    REPO / "roles/vrrp_ops/files",
    REPO / "scripts",
):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
