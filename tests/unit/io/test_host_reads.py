"""Reading links and indexes when the host is out of descriptors: "cannot
look" is not "link down" (tests/netns/test_fd_exhaustion.py shows what the
difference saves), and it is said once, not once per poll."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from vrrp_agent.io.log_limit import LogLimiter

EXHAUSTED = textwrap.dedent(
    """
    import resource, sys
    from vrrp_agent.core.tracking import LinkState
    from vrrp_agent.io import host_reads
    from vrrp_agent.io.host_errors import CannotLook
    warm = sys.argv[1] == "warm"
    if warm:  # the agent's case: its first read happened at start
        assert host_reads.read_link("lo") is LinkState.UP
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    held = []
    try:
        while True:
            held.append(open("/dev/null"))
    except OSError:
        pass
    print(host_reads.read_link("lo"), host_reads.read_link("no-such-if0"))
    try:
        print(host_reads.ifindex_now("lo"), host_reads.ifindex_now("no-such-if0"))
    except CannotLook as err:
        print("CannotLook", err.errno)
    """
)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Its one socket open already: no descriptor needed, the answers are true.
        ("warm", "UP GONE\n1 None\n"),
        # Never opened and none to be had: no answer, and no DOWN or GONE made up.
        ("cold", "None None\nCannotLook 24\n"),
    ],
)
def test_reads_with_no_descriptor_left(when: str, expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", EXHAUSTED, when], capture_output=True, text=True, timeout=30
    )
    assert (out.returncode, out.stdout) == (0, expected), out.stderr


def test_the_limiter_says_a_condition_once_then_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(logging.getLogger("t"), every=3600)
    with caplog.at_level(logging.WARNING, "t"):
        for _ in range(50):
            limiter.warning("a", "trouble %s", "a")
        limiter.warning("b", "trouble %s", "b")
    assert [r.getMessage() for r in caplog.records] == ["trouble a", "trouble b"]
    limiter.every = 0  # the period is over: the next one says how many were held
    with caplog.at_level(logging.WARNING, "t"):
        limiter.warning("a", "trouble %s", "a")
    assert caplog.records[-1].getMessage().startswith("trouble a (and 49 more times in the last")
