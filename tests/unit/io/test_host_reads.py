"""Reading links and indexes when the host is out of descriptors: "cannot
look" is not "link down" (tests/netns/test_fd_exhaustion.py shows what the
difference saves), and it is said once, not once per poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from vrrp_agent.config.model import Script
from vrrp_agent.core.tracking import ScriptState
from vrrp_agent.io.log_limit import LogLimiter
from vrrp_agent.io.scripts import ScriptRunner

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


@contextlib.contextmanager
def no_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def _fresh_child_watcher() -> Iterator[None]:
    # The runner installs a pidfd child watcher bound to the test's loop.
    yield
    if sys.version_info < (3, 12):
        asyncio.set_child_watcher(None)


@pytest.mark.usefixtures("_fresh_child_watcher")
def test_a_check_that_cannot_be_spawned_is_not_a_failed_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """keepalived, when fork fails, leaves the script's result as it was and
    tries again next interval; so do we, for errors about the agent's own
    resources. Before: with fall 1 the first such run took the check DOWN."""
    changes: list[str] = []
    r = ScriptRunner(Script(name="chk", script="/bin/true", fall=1, rise=1), "root", changes.append)

    async def scenario() -> list[ScriptState]:
        seen = []
        r._record(await r.run_once())
        seen.append(r.state)
        for _ in range(3):
            with no_descriptors():
                result = await r.run_once()
            r._record(result)
            seen.append(r.state)
        r._record(await r.run_once())
        seen.append(r.state)
        return seen

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(scenario()) == [ScriptState.UP] * 5
    assert changes == []
    said = [m for m in (x.getMessage() for x in caplog.records) if "vrrp_script chk" in m]
    assert len(said) == 1 and "not run this time" in said[0], said
