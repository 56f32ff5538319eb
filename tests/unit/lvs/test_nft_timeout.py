"""A hung `nft` is cut off: the agent's nft calls (the LVS data plane and the
accept-mode filter) run on the event loop's thread, so one that never returns
would stop every advert of every instance.

The subject is the time limit, not nftables: the `nft` here is a stand-in
that never answers (it sleeps), as a wedged netlink or a stuck lock would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from vrrp_agent.io.accept_filter import AcceptFilter
from vrrp_agent.io.tool import TOOL_TIMEOUT_S
from vrrp_agent.lvs.nftables import NftablesPlane

# Generous against a loaded machine: the call must end within its limit plus this.
SLACK_S = 10.0


@pytest.fixture
def hung_nft(tmp_path: Path) -> Iterator[Path]:
    pidfile = tmp_path / "pid"
    fake = tmp_path / "nft"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 600\n")
    fake.chmod(0o755)
    yield fake
    # Before the fix nothing reaped it; never leave it behind.
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def outcome(call: Callable[[], object]) -> tuple[bool, BaseException | None]:
    """(still running after the limit and the slack, what it raised)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            raised.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(TOOL_TIMEOUT_S + SLACK_S)
    return t.is_alive(), (raised[0] if raised else None)


@pytest.mark.parametrize(
    "call",
    [
        lambda nft: NftablesPlane(nft=str(nft)).tables(),
        lambda nft: AcceptFilter(nft=str(nft)).block([ip_address("192.0.2.1")]),
    ],
    ids=["lvs-plane", "accept-filter"],
)
def test_a_hung_nft_is_cut_off_with_one_line(hung_nft: Path, call) -> None:
    alive, exc = outcome(lambda: call(hung_nft))
    assert not alive, f"{hung_nft} still running after {TOOL_TIMEOUT_S + SLACK_S:.0f} s"
    assert isinstance(exc, OSError), exc
    message = str(exc)
    assert "\n" not in message
    assert f"{hung_nft} timed out after {TOOL_TIMEOUT_S:g} s" in message, message
    # The stand-in is gone, not left sleeping.
    pid = int((hung_nft.parent / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
