"""The corpus (tests/keepalived_corpus) is keepalived's own syntax: Debian's
keepalived 2.2.7 checks every file with `keepalived -t` in a namespace that
has the interfaces the files name. Where keepalived complains, the complaint
is the one the file was written to provoke, and the import says the same
thing (see tests/unit/keepalived/test_convert.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.netns import sh

CORPUS = Path(__file__).resolve().parents[1] / "keepalived_corpus"
FILES = sorted(CORPUS.glob("*.conf")) + sorted((CORPUS / "roundtrip").glob("*.conf"))
# keepalived -t exits non-zero on any complaint; these are the ones meant.
EXPECTED = {
    "lvs_dr.conf": ["nb_get_retry is deprecated - please use 'retry'"],
    "lvs_nat.conf": ["no scheduler set, setting default 'wlc'"],
    "strict.conf": [
        "(VI_S) State MASTER must match being address owner",
        "(VI_S) Strict mode does not support authentication. Ignoring.",
    ],
    "sync_group.conf": ["(VG_GW) global_tracking is deprecated"],
    "includes.conf": ["SECURITY VIOLATION - scripts are being executed but script_security"],
}


@pytest.fixture
def ns() -> Iterator[str]:
    if shutil.which("keepalived") is None:
        pytest.fail("keepalived is not installed (apt-get install keepalived)")
    name = "vkc-corpus"
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    try:
        for i, ifname in enumerate(("eth0", "eth1", "ens3")):
            sh("ip", "-n", name, "link", "add", ifname, "type", "veth", "peer", "name", f"p{i}")
            sh("ip", "-n", name, "link", "set", ifname, "up")
        sh("ip", "-n", name, "addr", "add", "10.99.0.1/24", "dev", "eth0")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_keepalived_reads_the_corpus_file(ns: str, path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    if "script_user nobody" in text:
        # keepalived 2.2.7's -t ends itself with SIGTERM (exit 143, no message)
        # when script_user names a user other than root; the rest is checked.
        copy = tmp_path / path.name
        copy.write_text(text.replace("script_user nobody", "script_user root"))
        path = copy
    r = subprocess.run(
        ["ip", "netns", "exec", ns, "keepalived", "-t", "-l", "-f", str(path),
         "--config-id", "n1" if path.parent.name == "roundtrip" else "node1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    said = [re.sub(r"^\(\S+: Line \d+\) ", "", line) for line in (r.stdout + r.stderr).splitlines()]
    expected = EXPECTED.get(path.name, [])
    for want in expected:
        assert any(want in line for line in said), (want, said)
    unexpected = [line for line in said if not any(w in line for w in expected)]
    assert unexpected == [], unexpected
    assert (r.returncode == 0) == (not expected), (r.returncode, said)
