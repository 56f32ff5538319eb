"""Plumbing for the validator: the problem list, YAML loading, typed reads.

Every check reports into one ``Problems`` list and carries on, so a single
``validate`` run shows every mistake in the file instead of one per run.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING
from enum import Enum
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, TypeVar

import yaml

from vrrp_agent.wire.addresses import IPAddr

from .model import config_keys

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


TOP = "(top level)"  # the key path used for problems about the document as a whole


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` holds one "FILE: key.path: message" each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """Every problem found so far, as "FILE: key.path: message" lines in the order found."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, keypath: str, message: str) -> None:
        self.lines.append(f"{self.path}: {keypath}: {message}")

    def __len__(self) -> int:
        return len(self.lines)


class Invalid(Exception):
    """Raised by a value checker; the caller attaches the key path."""


def join(keypath: str, key: object) -> str:
    return f"{keypath}.{key}" if keypath else str(key)


def index(keypath: str, i: int) -> str:
    return f"{keypath}[{i}]"


def describe(value: object) -> str:
    """Name a YAML value the way the user wrote it, for "expected X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value:g}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def fmt(number: float) -> str:
    # ints print exactly (and a huge one would overflow the float conversion of :g)
    return str(number) if isinstance(number, int) else f"{number:g}"


# --- YAML -------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_yaml(text: str, problems: Problems) -> tuple[bool, Any]:
    """Parse one YAML document; (False, None) when it is not usable YAML."""
    # The pure-Python loader, not libyaml's CSafeLoader: on absurdly deep nesting
    # the C one overflows the C stack and kills the process, where this one
    # raises RecursionError. Config files are small; the speed does not matter.
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters already
        node = loader.get_single_node()
        if node is None:
            return True, None
        _check_duplicate_keys(node, "", problems, set())
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            problems.add(
                TOP,
                "YAML error: aliases and merge keys (<<) expand this document to more than"
                f" {MAX_EXPANDED_NODES:,} nodes, far beyond any configuration (an alias bomb?)",
            )
            return False, None
        return True, loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP
        what = err.problem or err.context or "invalid YAML"
        if err.context and err.problem and err.context_mark:
            what += f" ({err.context} at line {err.context_mark.line + 1})"
        problems.add(where, f"YAML syntax error: {_one_line(what)}")
    except yaml.reader.ReaderError as err:  # control characters and the like
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        problems.add(
            f"line {line}, column {column}",
            f"YAML error: unacceptable character {_char(err.character)}: {err.reason}",
        )
    except yaml.YAMLError as err:
        problems.add(TOP, f"YAML error: {_one_line(str(err))}")
    except RecursionError:
        problems.add(TOP, "YAML error: the document is nested too deeply")
    except (ValueError, TypeError, OverflowError) as err:
        # PyYAML's constructors let these through for values that match a tag's
        # pattern but not its range: "2001-13-45", a 5000-digit integer, bad base64.
        problems.add(TOP, f"YAML error: a value cannot be read: {_one_line(str(err))}")
    finally:
        if loader is not None:
            loader.dispose()
    return False, None


def _char(character: object) -> str:
    return f"#x{character:04x}" if isinstance(character, int) else repr(character)


_MERGE_TAG = "tag:yaml.org,2002:merge"

# A configuration of 255 instances with scripts and virtual servers is a few
# thousand nodes; a document that aliases expand beyond this is an attack.
# Checked before PyYAML constructs it: its merge-key code was exponential up to
# 6.0.3, and the bound must hold whichever version a host has.
MAX_EXPANDED_NODES = 200_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """The number of nodes in the tree the document means, aliases written
    out, computed on the shared graph (linear in the text, saturating)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a self-referencing anchor counts once, as it loads
    total = 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        for child in node.value:
            pair = child if isinstance(child, tuple) else (child,)
            for sub in pair:
                total += _expanded_size(sub, memo)
                if total > MAX_EXPANDED_NODES:
                    break
    memo[id(node)] = total = min(total, MAX_EXPANDED_NODES + 1)
    return total


def _check_duplicate_keys(
    node: yaml.Node, keypath: str, problems: Problems, seen: set[int]
) -> None:
    # PyYAML keeps the last of two equal keys without a word, so a pasted-twice
    # "priority:" would silently win; walk the node tree to catch that.
    if id(node) in seen:  # aliases share nodes; also stops self-referencing anchors
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            child = keypath
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                child = join(keypath, key.value)
                line = key.start_mark.line + 1
                if key.value in first:
                    problems.add(
                        child,
                        f"duplicate key (lines {first[key.value]} and {line});"
                        " YAML would silently keep only the last",
                    )
                else:
                    first[key.value] = line
            _check_duplicate_keys(value, child, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, index(keypath, i), problems, seen)


# --- value checkers: take a YAML value, return the typed value or raise Invalid ----


Check = Callable[[Any], T]


def _range_error(value: float, lo: float | None, hi: float | None, lo_open: bool) -> str:
    if hi is None:
        return f"must be {'>' if lo_open else '>='} {fmt(lo or 0)}, got {fmt(value)}"
    if lo_open:
        return f"must be > {fmt(lo or 0)} and <= {fmt(hi)}, got {fmt(value)}"
    return f"must be between {fmt(lo or 0)} and {fmt(hi)}, got {fmt(value)}"


def ints(lo: int | None = None, hi: int | None = None) -> Check[int]:
    def check(value: Any) -> int:
        # bool is a subclass of int: "priority: yes" must not become priority 1
        if type(value) is not int:
            raise Invalid(f"expected an integer, got {describe(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise Invalid(_range_error(value, lo, hi, False))
        return value

    return check


def floats(lo: float = 0.0, hi: float | None = None, *, lo_open: bool = False) -> Check[float]:
    """A number of seconds (or similar); ints are accepted, bools and inf/nan are not."""

    def check(value: Any) -> float:
        if type(value) not in (int, float):
            raise Invalid(f"expected a number, got {describe(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise Invalid(f"expected a finite number, got {describe(value)}")
        if (number <= lo if lo_open else number < lo) or (hi is not None and number > hi):
            raise Invalid(_range_error(number, lo, hi, lo_open))
        return number

    return check


def one_of(*options: int) -> Check[int]:
    def check(value: Any) -> int:
        if type(value) is not int or value not in options:
            words = ", ".join(map(str, options[:-1])) + f" or {options[-1]}"
            raise Invalid(f"must be {words}, got {describe(value)}")
        return value

    return check


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def text(value: Any) -> str:
    """A non-empty string (paths, commands, names)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # YAML reads auth_pass: 1111 as a number and 0111 as octal 73; make the
        # user quote it rather than guess what they typed.
        raise Invalid(f"expected a string, got {describe(value)} (put it in quotes)")
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def choice(words: type[E], *, upper: bool = True) -> Check[E]:
    """A member of ``words``, matched case-insensitively; its value is the canonical case."""
    options = [member.value for member in words]

    def check(value: Any) -> E:
        word = text(value)
        norm = word.upper() if upper else word.lower()
        if norm not in options:
            raise Invalid(
                f"must be one of {', '.join(options)}, got {word!r}{did_you_mean(norm, options)}"
            )
        return words(norm)

    return check


_IFNAMSIZ = 16


def ifname(value: Any) -> str:
    """A Linux interface name, by the kernel's dev_valid_name() rules."""
    name = text(value)
    if len(name) >= _IFNAMSIZ:
        raise Invalid(f"interface name {name!r} is longer than {_IFNAMSIZ - 1} characters")
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise Invalid(f"{name!r} is not a valid interface name (no '/', ':' or whitespace)")
    return name


def word_options(
    item: str, words: Sequence[str], allowed: Sequence[str], supported: str
) -> dict[str, str]:
    """keepalived's `KEYWORD VALUE` pairs after an address in a one-line item
    ("ADDR dev eth1 label eth1:1", "ADDR min_ttl 250"): each keyword among
    `allowed`, once, with a value; `supported` says which, for the error."""
    options: dict[str, str] = {}
    rest = list(words)
    while rest:
        option = rest.pop(0)
        if option not in allowed:
            raise Invalid(f"unsupported option {option!r} in {item!r} (supported: {supported})")
        if not rest:
            raise Invalid(f"{option!r} needs a value in {item!r}")
        if option in options:
            raise Invalid(f"{option!r} given twice in {item!r}")
        options[option] = rest.pop(0)
    return options


def name(value: Any) -> str:
    """A name of a script, instance, group: one token, as keepalived needs."""
    word = text(value)
    if any(c.isspace() or not c.isprintable() for c in word):
        raise Invalid(f"name {word!r} must not contain whitespace")
    return word


def abs_path(value: Any) -> str:
    path = text(value)
    if not path.startswith("/"):
        raise Invalid(f"expected an absolute path, got {path!r}")
    return path


def ip_addr(value: Any) -> IPAddr:
    word = text(value)
    try:
        addr = ip_address(word.strip())
    except ValueError:
        raise Invalid(f"{word!r} is not an IPv4 or IPv6 address") from None
    assert isinstance(addr, (IPv4Address, IPv6Address))
    return addr


def family_name(version: int) -> str:
    return f"IPv{version}"


# --- sections ---------------------------------------------------------------


def default_of(cls: type, field_name: str) -> Any:
    """The dataclass default, so the parser never restates (and drifts from) the model."""
    field = cls.__dataclass_fields__[field_name]
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    raise KeyError(field_name)


_HEX = re.compile(r"[0-9a-fA-F]+")


def is_hex(word: str) -> bool:
    return bool(_HEX.fullmatch(word))


class Section:
    """Typed reads from one YAML mapping, reporting problems under its key path.

    A key whose value is wrong lands in ``bad`` so cross-field rules that depend on
    it can stay quiet instead of piling a second, confusing message on top.
    """

    def __init__(
        self,
        problems: Problems,
        data: Mapping[Any, Any],
        keypath: str,
        allowed: Sequence[str] | None = None,
        cls: type | None = None,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        """``allowed``: the keys the mapping may hold; by default those of ``cls``."""
        if allowed is None:
            assert cls is not None
            allowed = config_keys(cls)
        self.problems = problems
        self.data = data
        self.keypath = keypath
        self.cls = cls
        self.bad: set[str] = set()
        for key in data:
            if key in allowed:
                continue
            if not isinstance(key, str):
                problems.add(join(keypath, key), f"unknown key {key!r}")
            elif hints and key in hints:
                problems.add(join(keypath, key), f"unknown key {key!r} ({hints[key]})")
            else:
                suggestion = did_you_mean(key, allowed)
                if not suggestion and len(allowed) <= 6:
                    suggestion = f" (expected one of: {', '.join(allowed)})"
                problems.add(join(keypath, key), f"unknown key {key!r}{suggestion}")

    def at(self, key: str) -> str:
        return join(self.keypath, key)

    def has(self, key: str) -> bool:
        return key in self.data

    def ok(self, *keys: str) -> bool:
        return not self.bad.intersection(keys)

    def error(self, key: str, message: str, keypath: str | None = None) -> None:
        self.problems.add(keypath or self.at(key), message)
        self.bad.add(key)

    def get(self, key: str, check: Check[T], default: Any = MISSING) -> T:
        """The checked value, or the default (from ``cls`` unless given) when absent or bad.

        ``null`` is accepted exactly where the default is None: optional settings
        can be templated as ``~`` but ``priority:`` with no value is a mistake.
        """
        if default is MISSING:
            assert self.cls is not None
            default = default_of(self.cls, key)
        if key not in self.data:
            return default  # type: ignore[no-any-return]
        value = self.data[key]
        if value is None and default is None:
            return None  # type: ignore[return-value]
        try:
            return check(value)
        except Invalid as err:
            self.error(key, str(err))
            return default  # type: ignore[no-any-return]

    def need(self, key: str, check: Check[T]) -> T | None:
        """A required key; None (with a problem recorded) when absent or bad."""
        if key not in self.data:
            self.error(key, "required key is missing")
            return None
        try:
            return check(self.data[key])
        except Invalid as err:
            self.error(key, str(err))
            return None

    def items(self, key: str, *, required: bool = False) -> list[tuple[str, Any]]:
        """(keypath, item) for each element of a list value; [] when absent or not a list."""
        if key not in self.data or (self.data[key] is None and not required):
            if required:
                self.error(key, "required key is missing")
            return []
        value = self.data[key]
        if not isinstance(value, list):
            self.error(key, f"expected a list, got {describe(value)}")
            return []
        if required and not value:
            self.error(key, "must list at least one entry")
        return [(index(self.at(key), i), item) for i, item in enumerate(value)]

    def checked_items(
        self, key: str, check: Check[T], *, required: bool = False
    ) -> list[tuple[str, T]]:
        """(keypath, value) for each element that passes ``check``; the rest are reported."""
        out: list[tuple[str, T]] = []
        for keypath, item in self.items(key, required=required):
            try:
                out.append((keypath, check(item)))
            except Invalid as err:
                self.error(key, str(err), keypath)
        return out

    def mapping(self, key: str) -> Mapping[Any, Any] | None:
        """A nested block; ``KEY:`` with nothing under it counts as an empty block."""
        value = self.data.get(key)
        if value is None:
            return {} if key in self.data else None
        if not isinstance(value, dict):
            self.error(key, f"expected a mapping, got {describe(value)}")
            return None
        return value


def named_blocks(
    problems: Problems, data: Any, keypath: str, check_name: Check[str] = name
) -> list[tuple[str, str, Mapping[Any, Any]]]:
    """(name, keypath, block) for a NAME: {...} section such as vrrp_instances."""
    if data is None:
        return []
    if not isinstance(data, dict):
        problems.add(keypath, f"expected a mapping of names to blocks, got {describe(data)}")
        return []
    out = []
    for key, block in data.items():
        child = join(keypath, key)
        try:
            block_name = check_name(key)
        except Invalid as err:
            problems.add(child, str(err))
            continue
        if block is None:
            block = {}  # "VI_1:" with nothing under it; its required keys will be reported
        if not isinstance(block, dict):
            problems.add(child, f"expected a mapping, got {describe(block)}")
            continue
        out.append((block_name, child, block))
    return out
