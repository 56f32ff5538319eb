"""keepalived.conf read the way keepalived 2.2.7's lib/parser.c reads it.

The result is a tree of `Node`s (keyword, words, optional block) with the
file and line each came from; what the reader itself cannot take is a
`Message`. Nothing here knows what a keyword means (that is `convert`).

What keepalived does, and so this does, line by line:
- leading blanks go, then comments: `#` or `!` outside double quotes to the
  end of the line (`\\#` and `\\!` are the characters themselves); single
  quotes do not protect a comment character (keepalived's decomment()).
- `@ID line` keeps the line only when ID is the config id, `@^ID line` only
  when it is not (default id: the host name up to its first dot).
- `$NAME=VALUE` defines a parameter, continued on the next lines while they
  end in `\\`; `$NAME` and `${NAME}` are replaced anywhere in a later line
  (a multi-line one only when it ends the line, each of its lines then a
  line of its own); `${_PWD}`, `${_INSTANCE}`, `${_HASH}`, `${_BANG}` are
  keepalived's predefined ones.
- `~SEQ(VAR, [START,] [STEP,] END) text` and `~LST(VARS, VALUES...) text`
  repeat text with VAR set to each value.
- `include GLOB` (and includer, includem, ...) reads the matching files in
  sorted order, relative to the including file's directory.
- `{` and `}` outside double quotes split a line, so one-line blocks work.
- words are split on blanks, a double-quoted string being one word.
"""

from __future__ import annotations

import glob
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

# Bounds on what one file may make the reader do: a config that loops (an
# include of itself, a parameter that names itself) is refused, not followed.
MAX_INCLUDE_DEPTH = 32
MAX_LINES = 200_000  # logical lines in all, after ~SEQ/~LST and parameters
MAX_LINE = 8192  # keepalived's MAXBUF is 1024 for a line (2.2.7)
MAX_FILE = 16 * 1024 * 1024
MAX_EXPANSIONS = 64  # parameter re-expansions of one line

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = frozenset(("on", "true", "yes"))
_FALSE = frozenset(("off", "false", "no"))


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Node:
    keyword: str
    args: list[str]
    children: list[Node] | None
    where: Where
    # The line as keepalived's handlers see it (buf_extern): scripts and
    # notify commands are split again from it, with single quotes and escapes.
    raw: str = ""


@dataclass(frozen=True)
class Message:
    where: Where
    text: str
    refused: bool

    def __str__(self) -> str:
        return f"{self.where}: {'error' if self.refused else 'warning'}: {self.text}"


def boolean(node: Node) -> bool | None:
    """keepalived's check_true_false on the first word; no word means true.
    None when the word is none of on|off|true|false|yes|no."""
    if not node.args:
        return True
    word = node.args[0].lower()
    return True if word in _TRUE else False if word in _FALSE else None


class _Stop(Exception):
    """The reader gave up (a bound was hit); the message says why."""


@dataclass
class _Definition:
    value: str  # lines joined with "\n" when multiline
    multiline: bool = False


@dataclass
class _State:
    config_id: str
    messages: list[Message] = field(default_factory=list)
    defs: dict[str, _Definition] = field(default_factory=dict)
    lines: int = 0
    open_files: list[str] = field(default_factory=list)
    # A multi-line definition being read: its name.
    continuing: str | None = None
    # Lines whose expansion was cut off (see _logical).
    runaway: set[Where] = field(default_factory=set)

    def warn(self, where: Where, text: str) -> None:
        self.messages.append(Message(where, text, False))

    def refuse(self, where: Where, text: str) -> None:
        self.messages.append(Message(where, text, True))


def default_config_id() -> str:
    """keepalived's default -i: the host name up to its first dot."""
    return socket.gethostname().split(".", 1)[0]


def read(
    path: str | os.PathLike[str], config_id: str | None = None
) -> tuple[list[Node], list[Message]]:
    """The tree of `path` and the reader's messages; never raises for input."""
    state = _State(config_id if config_id is not None else default_config_id())
    top = str(path)
    events: list[tuple[str, Where]] = []
    try:
        for text, where in _file_lines(state, top, Where(top, 0)):
            events.extend(_split_braces(state, text, where))
    except _Stop as stop:
        state.messages.append(stop.args[0])
    return _tree(state, events), state.messages


# ------------------------------------------------------------------ physical lines


def _decomment(line: str) -> tuple[str, bool]:
    """keepalived's decomment(): the line without leading blanks, comment or
    trailing blanks, and whether it ends in a continuation backslash."""
    out: list[str] = []
    quote = False
    cont = False
    i = 0
    line = line.lstrip(" \t")
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            quote = not quote
        elif c == "\\":
            if i + 1 == n:
                cont = True
                break
            nxt = line[i + 1]
            if not quote and nxt in "#!":
                out.append(nxt)
            else:
                out.append(c + nxt)
            i += 2
            continue
        elif not quote and c in "#!":
            break
        out.append(c)
        i += 1
    return "".join(out).rstrip(" \t"), cont


def _read_text(state: _State, name: str, where: Where) -> list[str] | None:
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as err:
        state.refuse(where, f"cannot read {name}: {err.strerror or err}")
        return None
    if len(data) > MAX_FILE:
        state.refuse(where, f"{name} is larger than {MAX_FILE // (1024 * 1024)} MiB")
        return None
    text = data.decode("utf-8", errors="replace")
    return text.split("\n")


def _file_lines(state: _State, name: str, where: Where) -> Iterator[tuple[str, Where]]:
    """The logical lines of one file, its includes read in their place."""
    if len(state.open_files) >= MAX_INCLUDE_DEPTH:
        raise _Stop(
            Message(
                where,
                f"include: more than {MAX_INCLUDE_DEPTH} files deep"
                f" ({' -> '.join(state.open_files[-3:])} -> {name}); does a file include itself?",
                True,
            )
        )
    lines = _read_text(state, name, where)
    if lines is None:
        return
    state.open_files.append(name)
    try:
        if lines and lines[-1] == "":
            lines.pop()
        for number, physical in enumerate(lines, 1):
            here = Where(name, number)
            physical = physical.rstrip("\r\n")
            if "\x00" in physical or "\ufffd" in physical:
                text, _ = _decomment(physical.replace("\x00", ""))
                if text:
                    state.refuse(here, "the line is not UTF-8 text (or holds a NUL byte)")
                    continue
            if len(physical) > MAX_LINE:
                state.refuse(here, f"the line is longer than {MAX_LINE} characters")
                continue
            text, cont = _decomment(physical)
            if state.continuing is not None:
                _continue_definition(state, text, cont)
                continue
            if not text:
                continue
            if cont:
                text += "\\"  # only a definition continues; keepalived keeps it
            yield from _logical(state, text, here, 0)
    finally:
        state.open_files.pop()


def _continue_definition(state: _State, text: str, cont: bool) -> None:
    """A line of a multi-line `$NAME=` (keepalived: blank lines are not
    added; a line without the trailing backslash, or a blank one, ends it)."""
    assert state.continuing is not None
    d = state.defs[state.continuing]
    if text:
        d.value = f"{d.value}\n{text}" if d.value else text
    if not cont or not text:
        state.continuing = None
        d.multiline = "\n" in d.value


# ------------------------------------------------------------------ logical lines


def _logical(state: _State, text: str, where: Where, depth: int) -> Iterator[tuple[str, Where]]:
    """One line through keepalived's @, $, ~ and include handling."""
    if depth > MAX_EXPANSIONS:
        # A multi-line parameter whose lines name it again, and the like: said
        # once for the line, however many branches run into it.
        if where not in state.runaway:
            state.runaway.add(where)
            state.refuse(where, f"parameter expansion does not end: {text[:80]!r}")
        return
    for _ in range(MAX_EXPANSIONS):
        if text.startswith("@"):
            kept = _conditional(state, text)
            if kept is None:
                return
            text = kept
        if text.startswith("$") and _definition(state, text, where):
            return
        if text.startswith(("~SEQ", "~LST")):
            yield from _repeat(state, text, where, depth)
            return
        if text.startswith("~") or "$" not in text:
            break
        expanded = _expand(state, text, where)
        if expanded is None:
            break
        first, rest = expanded
        if rest:
            # A multi-line parameter: its other lines follow, each a line.
            yield from _logical(state, _decomment(first)[0], where, depth + 1)
            for extra in rest:
                yield from _logical(state, extra, where, depth + 1)
            return
        text, _ = _decomment(first)
        if not (text.startswith("@") or "$" in text):
            break
    else:
        state.refuse(where, f"parameter expansion does not end: {text[:80]!r}")
        return
    if not text:
        return
    include = _include_pattern(text)
    if include is not None:
        yield from _include(state, include, where)
        return
    state.lines += 1
    if state.lines > MAX_LINES:
        raise _Stop(Message(where, f"more than {MAX_LINES} lines after expansion", True))
    yield text, where


def _conditional(state: _State, text: str) -> str | None:
    """keepalived's @ID / @^ID: the rest of the line, or None to drop it."""
    reverse = text.startswith("@^")
    body = text[2:] if reverse else text[1:]
    m = re.match(r"([^ \t]*)[ \t]+", body)
    if m is None:
        return None  # nothing after the id: keepalived drops the line
    matches = m.group(1) == state.config_id
    if matches == reverse:
        return None
    return body[m.end() :]


def _definition(state: _State, text: str, where: Where) -> bool:
    """`$NAME=VALUE`: defines and returns True; False when not a definition."""
    m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=", text)
    if m is None:
        return False
    value = text[m.end() :].lstrip(" \t")
    name = m.group(1)
    if value.endswith("\\"):
        first = value[:-1].rstrip(" \t")
        state.defs[name] = _Definition(first, multiline=True)
        state.continuing = name
    else:
        state.defs[name] = _Definition(value)
    if name == "_RANDOM":
        state.refuse(where, "$_RANDOM redefined: keepalived's own _RANDOM cannot be imported")
    return True


def _predefined(state: _State, name: str, params: str, where: Where) -> str | None:
    if name == "_PWD":
        return os.path.dirname(os.path.abspath(where.file))
    if name == "_INSTANCE":
        return state.config_id
    if name == "_HASH":
        return "#"
    if name == "_BANG":
        return "!"
    if name == "_RANDOM":
        state.refuse(
            where,
            "${_RANDOM}: keepalived draws a new number each time it reads the file;"
            " an import would freeze one; write the value",
        )
        return params or "0"
    return None


def _expand(state: _State, text: str, where: Where) -> tuple[str, list[str]] | None:
    """keepalived's replace_param(): `$NAME` / `${NAME}` replaced, or None
    when nothing was. A multi-line parameter gives (first line, the others)."""
    out: list[str] = []
    i = 0
    found = False
    n = len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        braces = text[i + 1] == "{"
        start = i + 2 if braces else i + 1
        m = _NAME.match(text, start)
        if m is None:
            out.append(c)
            i += 1
            continue
        name, end = m.group(0), m.end()
        params = ""
        if braces:
            pm = re.match(r"((?: *\d)*)\}", text[end:]) if name == "_RANDOM" else None
            if pm is not None:
                params, end = pm.group(1).strip(), end + pm.end()
            elif end < n and text[end] == "}":
                end += 1
            else:
                out.append(c)
                i += 1
                continue
        elif end < n and text[end] not in " \t,)":
            out.append(c)
            i += 1
            continue
        at_end = end == n
        d = state.defs.get(name)
        value = d.value if d is not None else _predefined(state, name, params, where)
        if value is None or (d is not None and d.multiline and not at_end):
            out.append(c)
            i += 1
            continue
        found = True
        if d is not None and d.multiline:
            lines = value.split("\n")
            out.append(lines[0])
            return "".join(out), lines[1:]
        out.append(value)
        i = end
        if value.lstrip(" \t").startswith("~"):
            # keepalived stops replacing once a value starts a ~SEQ/~LST.
            out.append(text[i:])
            break
    return ("".join(out), []) if found else None


def _include_pattern(text: str) -> str | None:
    m = re.match(r"include[rmwba]?[ \t]+(.*)$", text)
    return m.group(1).strip(" \t") if m else None


def _include(state: _State, pattern: str, where: Where) -> Iterator[tuple[str, Where]]:
    base = os.path.dirname(where.file)
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    matches = sorted(glob.glob(full))
    if not matches:
        if glob.has_magic(pattern):
            # keepalived: "No config files matched" is logged; nothing read.
            state.warn(where, f"include {pattern}: no file matches (keepalived reads none)")
        else:
            state.refuse(where, f"include {pattern}: {full} does not exist")
        return
    for name in matches:
        if os.path.isdir(name):
            continue  # keepalived's check_glob_file skips what is not a file
        yield from _file_lines(state, name, where)


# ------------------------------------------------------------------ ~SEQ and ~LST


def _repeat(state: _State, text: str, where: Where, depth: int) -> Iterator[tuple[str, Where]]:
    if depth > MAX_EXPANSIONS:
        state.refuse(where, "~SEQ/~LST nested too deep")
        return
    parsed = _seq(state, text, where) if text.startswith("~SEQ") else _lst(text)
    if parsed is None:
        kind = text[:4]
        state.refuse(where, f"invalid {kind} specification {text[:80]!r}")
        return
    names, rows, rest = parsed
    if len(rows) > MAX_LINES:
        raise _Stop(Message(where, f"{text[:4]} repeats more than {MAX_LINES} times", True))
    for row in rows:
        for name, value in zip(names, row):
            state.defs[name] = _Definition(value)
        yield from _logical(state, rest, where, depth + 1)


def _seq(state: _State, text: str, where: Where) -> tuple[list[str], list[list[str]], str] | None:
    m = re.match(r"~SEQ(x?)[ \t]*\([ \t]*([^ \t,)]+)[ \t]*,([^)]*)\)[ \t]*(.*)$", text)
    if m is None:
        return None
    hex_out, var, numbers, rest = m.group(1) == "x", m.group(2), m.group(3), m.group(4)
    expanded = _expand(state, numbers, where)
    if expanded is not None:
        if expanded[1]:
            return None
        numbers = expanded[0]
    try:
        values = [int(v.strip(" \t"), 0) for v in numbers.split(",")]
    except ValueError:
        return None
    if len(values) == 1:
        end = values[0]
        step = -1 if end < 1 else 1
        start = -1 if end < 0 else 1
    elif len(values) == 2:
        start, end = values
        step = 1 if start <= end else -1
    elif len(values) == 3:
        start, step, end = values
        if not step or (start < end and step < 0) or (start > end and step > 0):
            return None
    else:
        return None
    if hex_out and (start < 0 or end < 0):
        return None
    count = (end - start) // step + 1
    if count > MAX_LINES:
        raise _Stop(Message(where, f"~SEQ repeats {count} times (at most {MAX_LINES})", True))
    seq = range(start, end + (1 if step > 0 else -1), step)
    return [var], [[format(v, "x") if hex_out else str(v)] for v in seq], rest


def _lst(text: str) -> tuple[list[str], list[list[str]], str] | None:
    """~LST(VAR, v1, v2) or ~LST({V1, V2}, {a, b}, {c, d}); missing values are blank."""
    m = re.match(r"~LST[ \t]*\((.*)$", text)
    if m is None:
        return None
    body = m.group(1)
    depth = 0
    for i, c in enumerate(body):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ")" and depth == 0:
            inner, rest = body[:i], body[i + 1 :].lstrip(" \t")
            break
    else:
        return None
    groups = [g.strip(" \t") for g in re.findall(r"\{[^}]*\}|[^,{}]+", inner)]
    groups = [g for g in groups if g]
    if len(groups) < 2:
        return None

    def words(group: str) -> list[str]:
        if group.startswith("{"):
            return [w.strip(" \t") for w in group[1:-1].split(",")]
        return [group]

    names = words(groups[0])
    if not all(_NAME.fullmatch(n) for n in names):
        return None
    rows = []
    for g in groups[1:]:
        row = words(g)
        if len(row) > len(names):
            return None
        rows.append(row + [""] * (len(names) - len(row)))
    return names, rows, rest


# ------------------------------------------------------------------ blocks


def _split_braces(state: _State, text: str, where: Where) -> Iterator[tuple[str, Where]]:
    """A line cut at each `{` and `}` outside double quotes."""
    while text:
        quote = False
        cut = -1
        for i, c in enumerate(text):
            if c == '"':
                quote = not quote
            elif not quote and c in "{}":
                cut = i
                break
        if cut < 0:
            yield text.rstrip(" \t"), where
            return
        if cut > 0:
            yield text[:cut].rstrip(" \t"), where
        yield text[cut], where
        text = text[cut + 1 :].lstrip(" \t")


def _words(state: _State, text: str, where: Where) -> list[str] | None:
    """keepalived's alloc_strvec(): blank-separated, "..." one word."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\f\v\r\n":
            i += 1
        if i == n:
            break
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                state.refuse(where, f"unmatched quote in {text[:80]!r}")
                return None
            out.append(text[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\f\v\r\n"':
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _tree(state: _State, events: list[tuple[str, Where]]) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[list[Node], Node | None]] = [(root, None)]
    for text, where in events:
        level = stack[-1][0]
        if text == "{":
            last = level[-1] if level else None
            if last is None or last.children is not None:
                state.refuse(where, "'{' without a keyword before it")
                stack.append(([], None))
                continue
            last.children = []
            stack.append((last.children, last))
        elif text == "}":
            if len(stack) == 1:
                state.refuse(where, "extra '}' (keepalived reports it too)")
                continue
            stack.pop()
        else:
            words = _words(state, text, where)
            if words:
                level.append(Node(words[0], words[1:], None, where, text))
    for _, owner in stack[1:]:
        if owner is not None:
            state.refuse(owner.where, f"{owner.keyword}: the block opened here is never closed")
    return root


# ------------------------------------------------------------------ commands


def command_words(node: Node) -> list[str] | None:
    """A script or notify command as keepalived runs it: the line split again
    allowing '...' and escapes (alloc_strvec_quoted_escaped), its second word
    split once more into the program and its arguments. None if unparsable."""
    line = quoted_escaped(node.raw)
    if line is None or len(line) < 2:
        return None
    return quoted_escaped(line[1])


def quoted_escaped(text: str) -> list[str] | None:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\f\n\r\v":
            i += 1
        if i == n:
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i == n:
                    return None
                c = text[i]
                if c == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    j = i + 1
                    while j < n and text[j] in "0123456789abcdefABCDEF":
                        j += 1
                    word.append(chr(int(text[i + 1 : j], 16) & 0xFF))
                    i = j
                elif c == "c" and i + 1 < n:
                    word.append(chr(ord(text[i + 1]) & 0x1F))
                    i += 2
                elif c in "01234567":
                    j = i
                    while j < n and j < i + 3 and text[j] in "01234567":
                        j += 1
                    word.append(chr(int(text[i:j], 8) & 0xFF))
                    i = j
                else:
                    word.append(
                        {
                            "a": "\a",
                            "b": "\b",
                            "E": "\x1b",
                            "f": "\f",
                            "n": "\n",
                            "r": "\r",
                            "t": "\t",
                            "v": "\v",
                        }.get(c, c)  # fmt: skip
                    )
                    i += 1
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
                i += 1
                continue
            if c in "\"'":
                quote = c
                i += 1
                continue
            if c in " \t\f\n\r\v":
                break
            word.append(c)
            i += 1
        if quote:
            return None
        out.append("".join(word))
    return out
