#!/usr/bin/env python3
"""Fail when a role's meta/argument_specs.yml and defaults/main.yml drift apart.

Rules, for every role and every entry point: each default is an option with
the same default value; each option that declares a default has one in
defaults/main.yml. Options without a default (host overrides) may be absent.
An option that two entry points both take has the same spec in both (share it
with a YAML alias, as roles/vrrp does, rather than keep a copy in step).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def check_role(role: Path) -> list[str]:
    defaults_file = role / "defaults/main.yml"
    specs_file = role / "meta/argument_specs.yml"
    if not specs_file.exists():
        return [f"{specs_file}: missing (every role documents its variables)"]
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    specs = (yaml.safe_load(specs_file.read_text()) or {}).get("argument_specs", {})
    problems = []
    for entry, spec in specs.items():
        options = spec.get("options", {})
        where = f"{specs_file}: argument_specs.{entry}.options"
        for name, value in defaults.items():
            if name not in options:
                problems.append(f"{where}: {name} is in defaults/main.yml but not documented")
            elif "default" not in options[name]:
                problems.append(f"{where}.{name}: no default, but defaults/main.yml has {value!r}")
            elif options[name]["default"] != value:
                problems.append(
                    f"{where}.{name}: default {options[name]['default']!r} differs from "
                    f"defaults/main.yml {value!r}"
                )
        for name, option in options.items():
            if "default" in option and name not in defaults:
                problems.append(f"{where}.{name}: has a default but is not in defaults/main.yml")
    return problems + _entry_points_disagree(specs, specs_file)


def _entry_points_disagree(specs: dict, specs_file: Path) -> list[str]:
    """Each option that several entry points take, where their specs differ."""
    problems = []
    first: dict[str, tuple[str, dict]] = {}
    for entry, spec in specs.items():
        for name, option in spec.get("options", {}).items():
            if name not in first:
                first[name] = (entry, option)
            elif option != first[name][1]:
                problems.append(
                    f"{specs_file}: argument_specs.{entry}.options.{name} differs from "
                    f"argument_specs.{first[name][0]}.options.{name}"
                )
    return problems


def main(argv: list[str]) -> int:
    roles_dir = Path(argv[1] if len(argv) > 1 else "roles")
    problems = [
        p for role in sorted(roles_dir.iterdir()) if role.is_dir() for p in check_role(role)
    ]
    for p in problems:
        print(p, file=sys.stderr)
    roles = sum(1 for r in roles_dir.iterdir() if r.is_dir())
    print(f"argument specs: {roles} roles checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
