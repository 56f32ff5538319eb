"""`vrrp-agent import-keepalived`: read, convert, check, write; one line per message.

The output is written only when the whole file converted faithfully and the
agent's own validation accepts the result (without host checks: the import
usually runs on the controller, not on the node); otherwise nothing is
written and the exit status is 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, TextIO

import yaml

from vrrp_agent.config import ConfigError, parse
from vrrp_agent.keepalived.convert import Result, convert
from vrrp_agent.keepalived.reader import Message, Where, read

HEADER = "# Imported by vrrp-agent import-keepalived from {source}\n"


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order written, no aliases for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(result: Result, source: str) -> str:
    body = yaml.dump(result.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return HEADER.format(source=source) + body


def _origin(result: Result, keypath: str, source: str) -> Where:
    """The keepalived line a key path of the output came from (its longest
    known prefix), or the file itself."""
    best = ""
    for known in result.origins:
        if (keypath == known or keypath.startswith((known + ".", known + "["))) and len(
            known
        ) > len(best):
            best = known
    return result.origins[best] if best else Where(source, 1)


def check(result: Result, text: str, source: str) -> list[Message]:
    """The agent's validation of the output, each problem on the line it came from."""
    try:
        parse(text, "<import>")
    except ConfigError as err:
        out = []
        for problem in err.problems:
            # "<import>: KEYPATH: what is wrong"
            _, _, rest = problem.partition(": ")
            keypath, _, what = rest.partition(": ")
            where = _origin(result, keypath, source)
            out.append(Message(where, f"{keypath}: {what} (the agent's check of the import)", True))
        return out
    return []


def say(messages: list[Message], stream: TextIO) -> None:
    for m in messages:
        print(m, file=stream)


def import_file(source: str, output: str | None, config_id: str | None) -> int:
    try:
        nodes, messages = read(source, config_id)
        result = convert(nodes)
        messages = messages + result.messages
        text = render(result, source)
        if not any(m.refused for m in messages):
            messages += check(result, text, source)
    except Exception as err:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        print(f"{source}:1: error: the import failed unexpectedly: {type(err).__name__}: {err}",
              file=sys.stderr)  # fmt: skip
        return 2
    # One line repeated by a parameter or ~SEQ says the same thing each time.
    messages = list(dict.fromkeys(messages))
    say(messages, sys.stderr)
    if any(m.refused for m in messages):
        return 2  # nothing written: the errors above say why
    if output is None:
        sys.stdout.write(text)
        return 0
    return _write(output, text)


def _write(path: str, text: str) -> int:
    """Replace `path` whole or not at all (the file may hold auth_pass: 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".import-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        print(f"{path}: error: cannot write: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0
