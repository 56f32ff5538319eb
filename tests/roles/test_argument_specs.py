"""The lint check that keeps argument_specs.yml and defaults/main.yml in step."""

from __future__ import annotations

import shutil
from pathlib import Path

import check_argument_specs as checker

REPO = Path(__file__).resolve().parents[2]


def test_every_role_is_in_step() -> None:
    roles = [r for r in (REPO / "roles").iterdir() if r.is_dir()]
    assert len(roles) >= 4
    assert [p for r in roles for p in checker.check_role(r)] == []


def test_drift_is_reported(tmp_path: Path) -> None:
    role = tmp_path / "nginx"
    shutil.copytree(REPO / "roles/nginx", role)
    defaults = role / "defaults/main.yml"
    defaults.write_text(
        defaults.read_text().replace("nginx_port: 80", "nginx_port: 8080") + "nginx_new: 1\n"
    )
    problems = checker.check_role(role)
    assert any("nginx_port: default 80 differs from defaults/main.yml 8080" in p for p in problems)
    assert any("nginx_new is in defaults/main.yml but not documented" in p for p in problems)
    (role / "meta/argument_specs.yml").unlink()
    assert any("missing" in p for p in checker.check_role(role))
