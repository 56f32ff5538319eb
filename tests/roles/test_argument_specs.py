"""The lint check that keeps argument_specs.yml and defaults/main.yml in step."""

from __future__ import annotations

import shutil
from pathlib import Path

import check_argument_specs as checker
import yaml

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


def test_vrrp_entry_points_share_one_spec() -> None:
    # The alias makes them one object, not a copy that could drift.
    specs = yaml.safe_load((REPO / "roles/vrrp/meta/argument_specs.yml").read_text())
    main, preflight = (specs["argument_specs"][e]["options"] for e in ("main", "preflight"))
    assert preflight is main
    assert len(main) > 40


def test_drift_between_entry_points_is_reported(tmp_path: Path) -> None:
    role = tmp_path / "vrrp"
    shutil.copytree(REPO / "roles/vrrp", role)
    specs_file = role / "meta/argument_specs.yml"
    specs = yaml.safe_load(specs_file.read_text())
    preflight = specs["argument_specs"]["preflight"]
    # A copy instead of the alias is fine while it agrees, and reported once it does not.
    preflight["options"] = yaml.safe_load(yaml.safe_dump(preflight["options"]))
    specs_file.write_text(yaml.safe_dump(specs))
    assert checker.check_role(role) == []
    preflight["options"]["vrrp_version"]["choices"] = [2, 3, 4]
    specs_file.write_text(yaml.safe_dump(specs))
    assert checker.check_role(role) == [
        f"{specs_file}: argument_specs.preflight.options.vrrp_version differs from "
        "argument_specs.main.options.vrrp_version"
    ]
