"""Failure drills shared by the molecule scenarios' testinfra tests.

State is read through testinfra's podman backend and the lab kit (labkit.podman,
labkit.vips; the verifier's PYTHONPATH is the repository root); failures are
caused with podman itself (a freeze silent on the wire, network disconnect) or
systemctl inside a node. The client container probes the VIPs over HTTP every
50 ms (labkit.http_probe), so the downtime it measures is what a real client sees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import testinfra

from labkit import podman as lab_podman
from labkit import vips as lab_vips
from labkit.podman import freeze, podman, thaw
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval, skew_time

NODES = ("node1", "node2")
ADVERT_INT = 1.0  # vrrp_advert_int in .config/molecule/config.yml
# vrrp_check_*: the interval is set there; fall, rise and weight are the role defaults.
CHECK_INTERVAL, CHECK_FALL, CHECK_RISE, CHECK_WEIGHT = 1.0, 2, 1, -60
PRIO_MASTER, PRIO_BACKUP = 150, 100  # vrrp_priority_top, top - vrrp_priority_step
# Honest slack for what the protocol does not count: process wake-up, and the
# polling itself (a podman exec per node per poll, ~0.1 s each, so a move is
# seen up to ~0.25 s late), on a loaded 2-core CI machine.
MARGIN = 0.8
NETWORK = "vrrp-molecule"
NODE_IP = {"node1": "10.89.90.11", "node2": "10.89.90.12", "client": "10.89.90.50"}
# A scenario whose lab differs sets these from its conftest.py (cross_subnet: a
# network per node, the VIP on lo, announced to a router container).
NODE_NETWORK: dict[str, str] = {}  # node -> its network (default NETWORK)
NODE_GATEWAY: dict[str, str] = {}  # node -> the default route to restore on reconnect
VIP_DEV = "eth0"  # where the nodes hold the VIPs
ROUTER: str | None = None  # the container whose routes to the VIPs follow the holder
# How long after a VIP is added (or removed) the router's route follows: the
# routing protocol's own delays, which a scenario with a router sets.
ROUTE_BOUND = 0.0


# After a freeze the router had declared the node dead, and a thawed node keeps
# its VIP: the route comes back once the adjacency (OSPF) or session (BGP) is
# up again, which the scenario bounds; 0 elsewhere.
ROUTE_REJOIN_BOUND = 0.0


def route_back_bound(drill: str) -> float:
    """What the router adds to a drill's failback bound."""
    return ROUTE_REJOIN_BOUND if drill == "frozen" else ROUTE_BOUND


def vip_addresses(node: str) -> set[str] | None:
    return lab_podman.addresses(node, VIP_DEV)


def holders(vip: str, nodes: Sequence[str]) -> list[str]:
    return lab_vips.holders(vip, nodes, vip_addresses)


def held(vips: Sequence[str], nodes: Sequence[str]) -> dict[str, list[str]]:
    return lab_vips.held(vips, nodes, vip_addresses)


def route_via(vip: str) -> set[str]:
    """The next hops of ROUTER's kernel route to `vip` (empty: none), from
    `ip -j route`: what the router forwards by, not what its daemons believe."""
    assert ROUTER is not None
    r = lab_podman.run(ROUTER, "ip", "-j", "route", "show", "exact", f"{vip}/32")
    if r.returncode != 0:
        return set()
    hops = set()
    for route in json.loads(r.stdout or "[]"):
        if "gateway" in route:
            hops.add(route["gateway"])
        hops.update(h["gateway"] for h in route.get("nexthops", []) if "gateway" in h)
    return hops


@cache
def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def watch_vips(
    want: dict[str, list[str]], timeout: float, apart: Sequence[str] = (), stay: float = 0.0
) -> dict[str, float]:
    """Poll who holds the VIPs until each VIP in `want` is held by exactly the
    nodes listed (none: `[]`), then `stay` seconds more, during which it must
    remain so. At every poll, no node may hold more than one of `apart` (an
    exclusive pair). Returns, per VIP, the seconds until it was first held as
    wanted: the VIPs move independently, so each is timed on its own."""
    vips = sorted({*want, *apart})
    start = time.monotonic()
    first: dict[str, float] = {}
    reached: float | None = None
    while True:
        now = held(vips, NODES)
        t = time.monotonic() - start
        for node in NODES:
            both = [v for v in apart if node in now[v]]
            assert len(both) <= 1, f"{node} holds {both} at once, {t:.2f}s in: {now}"
        ok = {v: sorted(now[v]) == sorted(nodes) for v, nodes in want.items()}
        for v in want:
            if ok[v]:
                first.setdefault(v, t)
        if reached is None and all(ok.values()):
            reached = t
        if reached is None and t > timeout:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {want}; saw {now}")
        if reached is not None:
            assert all(ok.values()), f"{now}, {t - reached:.2f}s after {want} held"
            if t - reached >= stay:
                return first
        time.sleep(0.05)


def agent_status(node: str) -> dict:
    r = host(node).run("/opt/vrrp-agent/bin/vrrp-agent status --json")
    assert r.rc == 0, r.stderr
    return json.loads(r.stdout)


def page(vip: str) -> str:
    r = host("client").run(f"curl -s -m 2 http://{vip}/")
    return r.stdout.strip()


# ---------------------------------------------------------------- drills


def master_down(prio: int = PRIO_BACKUP) -> float:
    return master_down_interval(3, prio, ADVERT_INT)


def skew(prio: int = PRIO_BACKUP) -> float:
    return skew_time(3, prio, ADVERT_INT)


@dataclass(frozen=True)
class Drill:
    name: str
    breaks: Callable[[str], None]
    heals: Callable[[str], None]
    failover_bound: float  # seconds from the break until the backup holds the VIP
    failback_bound: float  # seconds from the heal until the master holds it again


def _systemctl(action: str, unit: str) -> Callable[[str], None]:
    def run(node: str) -> None:
        r = host(node).run(f"systemctl {action} {unit}")
        assert r.rc == 0, r.stderr

    return run


def _disconnect(node: str) -> None:
    podman("network", "disconnect", NODE_NETWORK.get(node, NETWORK), node)


def _reconnect(node: str) -> None:
    # The same address as before, or the other node's unicast_peer would be wrong.
    podman("network", "connect", "--ip", NODE_IP[node], NODE_NETWORK.get(node, NETWORK), node)
    if node in NODE_GATEWAY:
        # The route went with the old interface, as a pulled cable's would not:
        # put back what the host's network configuration would.
        r = host(node).run(f"ip route replace default via {NODE_GATEWAY[node]}")
        assert r.rc == 0, r.stderr


DRILLS = {
    # SIGTERM: the master resigns with priority 0, the backup waits Skew_Time only.
    "agent_stopped": Drill(
        "agent_stopped", _systemctl("stop", "vrrp-agent"), _systemctl("start", "vrrp-agent"),
        skew() + MARGIN,
        # start-up, then the `state MASTER` hint claims after Skew_Time(150)
        1.0 + skew(PRIO_MASTER) + MARGIN,
    ),
    # nginx down: check_http fails `fall` times, priority 150-60=90 < 100, the backup
    # stops accepting and takes over when Master_Down runs out.
    "nginx_stopped": Drill(
        "nginx_stopped", _systemctl("stop", "nginx"), _systemctl("start", "nginx"),
        (CHECK_FALL + 1) * CHECK_INTERVAL + master_down() + MARGIN,
        # node1's Master_Down timer was last set while it was at 90 (150 - 60)
        (CHECK_RISE + 1) * CHECK_INTERVAL + master_down(PRIO_MASTER + CHECK_WEIGHT) + MARGIN,
    ),
    # Frozen: no adverts at all; the backup waits Master_Down. Thawed, the master
    # advertises 150 at once (its advert timer is late) and the backup yields.
    # labkit.podman.freeze: silent on the wire as well as paused, as a frozen VM
    # or a dead host is; a paused container's kernel alone still answers ARP and
    # TCP handshakes for the VIP (see single_vip.py).
    "frozen": Drill(
        "frozen", freeze, thaw,
        master_down() + MARGIN,
        ADVERT_INT + MARGIN,
    ),
    # Cut off: eth0 (and the VIP on it) vanishes with the disconnect.
    "cut_off": Drill(
        "cut_off", _disconnect, _reconnect,
        master_down() + MARGIN,
        # the agent notices the new eth0 within a second, then preempts after Master_Down(150)
        1.0 + master_down(PRIO_MASTER) + MARGIN,
    ),
}  # fmt: skip


def healthy(node: str) -> bool:
    """Every instance at its configured priority, with no fault: fully healed."""
    r = host(node).run("/opt/vrrp-agent/bin/vrrp-agent status --json")
    if r.rc != 0:
        return False
    insts = json.loads(r.stdout)["instances"].values()
    return all(i["effective_priority"] == i["priority"] and not i["faults"] for i in insts)


def make_master(vip: str, node: str, other: str) -> None:
    """Start each drill from the same place: both nodes healed (a previous
    drill's check may still be rising) and the VIP on `node` only (a graceful
    restart of `other` hands it over)."""
    wait_for("both nodes healthy", lambda: healthy(node) and healthy(other), 15, 0.2)
    pair = (node, other)
    if holders(vip, pair) != [node]:
        r = host(other).run("systemctl restart vrrp-agent")
        assert r.rc == 0, r.stderr
        wait_for(f"{vip} on {node} only", lambda: holders(vip, pair) == [node], 10)


def settled(rows: Sequence[Sequence], good: Callable[[bool, str], bool]) -> float:
    """When a probe's record (`Probe.since`) settled: the time of the last
    request that was not `good(ok, page)`, 0.0 if none; every later one was."""
    bad = [t for t, ok, body in rows if not good(ok, body)]
    return bad[-1] if bad else 0.0


# ---------------------------------------------------------------- virtual servers


def real_server_down_bound(
    delay_loop: float, connect_timeout: float, retry: int, delay_before_retry: float
) -> float:
    """keepalived's checker: a real server that stops answering just after a
    passing check is tried again `delay_loop` later, that attempt and `retry`
    retries each take up to `connect_timeout`, `delay_before_retry` apart; then
    it is DOWN and leaves the schedule."""
    return delay_loop + (retry + 1) * connect_timeout + retry * delay_before_retry


def virtual_server(node: str, vip: str, port: int = 80) -> dict:
    """`node`'s status of the virtual server on vip:port."""
    servers = agent_status(node)["virtual_servers"]
    found = [v for v in servers if v["virtual_server"].startswith(f"{vip}:{port}/")]
    assert len(found) == 1, f"{vip}:{port} in {servers}"
    return found[0]
