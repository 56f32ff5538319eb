"""load() and parse(): YAML text in, a validated Config or one ConfigError out."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
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
    resolve_vmac_names,
)
from .model import Config, FrozenMap, Instance, config_keys

SECTIONS = config_keys(Config)
# keepalived sets no limit; 4 MiB is a hundred times the largest configuration
# we have seen (255 instances and 500 real servers come to about 200 KiB).
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def load(path: str) -> Config:
    """Read and validate the configuration file at ``path``; raises ConfigError."""
    raw = read_config_file(path)
    try:
        # utf-8-sig: a BOM left by a Windows editor is not worth an error
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            [f"{path}: {TOP}: not UTF-8 text (byte {err.start}: {err.reason})"]
        ) from None
    return parse(text, path)


def read_config_file(path: str) -> bytes:
    """The file's bytes, if it is a regular file of a sane size; else ConfigError.

    Opened non-blocking and checked with fstat before reading, so a FIFO or a
    device named by mistake (or on purpose) neither blocks `run` or `validate`
    nor fills memory: `-c /dev/zero` used to end in a MemoryError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError([f"{path}: {TOP}: cannot read file: {err.strerror or err}"]) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONFIG_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError([f"{path}: {TOP}: not a regular file ({_kind(st.st_mode)})"])
        raise ConfigError([_too_big(path, st.st_size)])
    with os.fdopen(fd, "rb") as fh:
        try:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        except OSError as err:
            raise ConfigError([f"{path}: {TOP}: cannot read file: {err.strerror or err}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:  # grew while we read it
        raise ConfigError([_too_big(path, len(raw))])
    return raw


def _too_big(path: str, size: int) -> str:
    return (
        f"{path}: {TOP}: {size:,} bytes is larger than the {MAX_CONFIG_BYTES:,} bytes"
        " a configuration file may have"
    )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


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
    vmacs = resolve_vmac_names(problems, all_facts)
    for facts in all_facts:
        if facts.keypath in vmacs and facts.name in instances:
            instances[facts.name] = replace(instances[facts.name], use_vmac=vmacs[facts.keypath])
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
