"""import-keepalived on broken versions of the corpus: whatever the input, it
exits 0 or 2, never with a traceback, and every line it prints is one
`FILE:LINE: warning|error: ...` message."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from vrrp_agent.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "keepalived_corpus"
LINE = re.compile(r"^\S+:\d+: (warning|error): \S")


def mutate(rnd: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rnd.randrange(1, 6)):
        i = rnd.randrange(len(lines))
        op = rnd.randrange(6)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rnd.randrange(len(lines))])
        elif op == 2 and lines[i]:
            j = rnd.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rnd.choice('{}"#!$@~\\ 0x-') + lines[i][j + 1 :]
        elif op == 3:
            words = lines[i].split()
            if words:
                words[rnd.randrange(len(words))] = rnd.choice(
                    ["-1", "256", "1e9", "", "nan", "0", "ON", "{", "}", "a:b:c", "10.0.0.1/99"]
                )
                lines[i] = " ".join(words)
        elif op == 4:
            lines[i] = lines[i].replace("{", "")
        else:
            lines.insert(i, rnd.choice(["}", "{", "include *.conf", "$X=$X", "~SEQ(n, 9)"]))
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.conf")))
def test_broken_files_end_in_messages_not_tracebacks(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rnd = random.Random(name)
    original = (CORPUS / name).read_text()
    exits = set()
    for i in range(40):
        f = tmp_path / f"{i}.conf"
        f.write_text(mutate(rnd, original))
        rc = main(["import-keepalived", str(f), "--config-id", "node1"])
        out, err = capsys.readouterr()
        exits.add(rc)
        assert rc in (0, 2), (f.read_text(), err)
        bad = [line for line in err.splitlines() if not LINE.match(line)]
        assert not bad, (f.read_text(), bad)
        assert "Traceback" not in err and "unexpectedly" not in err, err
        if rc == 2:
            assert out == ""
            assert any(": error: " in line for line in err.splitlines())
    assert 2 in exits  # the mutations did break something


def test_a_line_repeated_by_expansion_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text("$B=a \\\n$B\n$B\n")  # B's second line names B: refused
    assert main(["import-keepalived", str(f)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{f}:3: error: parameter expansion does not end: 'a'",
        f"{f}:3: warning: a: not a keepalived keyword in the top level; keepalived ignores"
        " it too ('Unknown keyword'), and so does the import",
    ]
