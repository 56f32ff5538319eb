"""load() and parse(): YAML text in, a validated Config or one ConfigError out."""

from __future__ import annotations

from typing import Any

from ._arbiter import parse_arbiter
from ._lvs import parse_virtual_servers
from ._reader import (
    TOP,
    ConfigError,
    Problems,
    describe,
    did_you_mean,
    load_yaml,
    named_blocks,
)
from ._vrrp import (
    check_exclusive_pairs,
    check_instances_together,
    parse_global_defs,
    parse_instance,
    parse_scripts,
    parse_sync_groups,
)
from .model import Config, FrozenMap, Instance, config_keys

SECTIONS = config_keys(Config)


def load(path: str) -> Config:
    """Read and validate the configuration file at ``path``; raises ConfigError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise ConfigError([f"{path}: {TOP}: cannot read file: {err.strerror or err}"]) from None
    try:
        # utf-8-sig: a BOM left by a Windows editor is not worth an error
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            [f"{path}: {TOP}: not UTF-8 text (byte {err.start}: {err.reason})"]
        ) from None
    return parse(text, path)


def parse(text: str, path: str = "<string>") -> Config:
    """Validate configuration text; ``path`` only names the source in problems."""
    problems = Problems(path)
    ok, data = load_yaml(text, problems)
    if not ok:
        raise ConfigError(problems.lines)
    if not isinstance(data, dict):
        got = "an empty document" if data is None else describe(data)
        problems.add(TOP, f"expected a mapping of sections ({', '.join(SECTIONS)}), got {got}")
        raise ConfigError(problems.lines)
    config = _parse_document(problems, data, path)
    if problems.lines or config is None:
        raise ConfigError(problems.lines)
    return config


def _parse_document(problems: Problems, data: dict[Any, Any], path: str) -> Config | None:
    for key in data:
        if key not in SECTIONS:
            hint = did_you_mean(str(key), SECTIONS) if isinstance(key, str) else ""
            problems.add(str(key), f"unknown key {key!r}{hint}")
    global_defs = parse_global_defs(problems, data.get("global_defs"))
    scripts = parse_scripts(problems, data.get("vrrp_scripts"))
    instances: dict[str, Instance] = {}
    all_facts = []
    raw_instances = data.get("vrrp_instances")
    for name, keypath, block in named_blocks(problems, raw_instances, "vrrp_instances"):
        instance, facts = parse_instance(
            problems, name, keypath, block, _names(data.get("vrrp_scripts"))
        )
        all_facts.append(facts)
        if instance is not None:
            instances[name] = instance
    check_instances_together(problems, all_facts)
    sync_groups = parse_sync_groups(problems, data.get("vrrp_sync_groups"), _names(raw_instances))
    check_exclusive_pairs(problems, instances, _names(raw_instances), sync_groups)
    virtual_servers = parse_virtual_servers(problems, data.get("virtual_servers"))
    arbiter = parse_arbiter(problems, data.get("arbiter"))
    if not data.get("vrrp_instances") and not data.get("virtual_servers"):
        problems.add(
            "vrrp_instances",
            "nothing to do: define at least one of vrrp_instances or virtual_servers",
        )
    if global_defs is None:
        return None
    return Config(
        path=path,
        global_defs=global_defs,
        vrrp_scripts=FrozenMap(scripts),
        vrrp_instances=FrozenMap(instances),
        vrrp_sync_groups=FrozenMap(sync_groups),
        virtual_servers=virtual_servers,
        arbiter=arbiter,
    )


def _names(section: Any) -> list[str]:
    # The names as written, not just the valid blocks: a script or instance with
    # its own error must not also turn every reference to it into "unknown name".
    return [n for n in section if isinstance(n, str)] if isinstance(section, dict) else []
