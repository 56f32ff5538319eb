"""The daemon's link poll (Agent._poll_links) with its I/O replaced: what it
tells the node when a vmac had to be made again."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from vrrp_agent import daemon
from vrrp_agent.config import parse
from vrrp_agent.core.tracking import LinkState

CFG = {
    "vrrp_instances": {
        "VI_1": {
            "interface": "eth0",
            "virtual_router_id": 51,
            "use_vmac": True,
            "virtual_ipaddress": ["10.0.0.100/24"],
        }
    }
}


class Recorder:
    def __init__(self) -> None:
        self.links: list[dict[str, LinkState]] = []

    def links_changed(self, links: dict[str, LinkState], now: float, unbound: Any) -> list:
        self.links.append(dict(links))
        return []

    def files_changed(self, files: Any, now: float) -> list:
        return []


class Ports:
    def __init__(self, made: list[str]) -> None:
        self.made = made

    def rebind_all(self) -> list[str]:
        return self.made

    def unbound(self) -> frozenset[str]:
        return frozenset()


class Files:
    def poll(self, watched: Any) -> dict:
        return {}


class Loop:
    def time(self) -> float:
        return 10.0


def agent(made: list[str]) -> tuple[daemon.Agent, Recorder]:
    a = object.__new__(daemon.Agent)
    node = Recorder()
    a.cfg = parse(yaml.safe_dump(CFG), "<test>")
    a.node, a.ports, a.files, a.loop = node, Ports(made), Files(), Loop()  # type: ignore[assignment]
    a._run = lambda actions: None  # type: ignore[method-assign]
    a._sync_lvs = lambda: None  # type: ignore[method-assign]
    return a, node


def test_a_vmac_made_again_is_reported_gone_for_that_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    # The vmac was deleted after its state was read as UP, and made again by
    # the same poll: the VIPs went with the old interface. Reported UP (as
    # before the fix; once in CI), the instance stayed MASTER without them.
    monkeypatch.setattr(daemon, "read_link", lambda name: LinkState.UP)
    a, node = agent(["vrrp.51"])
    a._poll_links()
    assert node.links[-1]["vrrp.51"] is LinkState.GONE
    assert node.links[-1]["eth0"] is LinkState.UP
    a.ports = Ports([])  # type: ignore[assignment]
    a._poll_links()  # the next poll: it is up again
    assert node.links[-1]["vrrp.51"] is LinkState.UP
