"""Active-active anycast: every healthy node announces the VIP by BGP and the
router spreads the client's connections over them (ECMP); a node whose check
fails withdraws, and comes back when it passes. No VRRP election: each node's
instance is alone (unicast, no peers)."""

from __future__ import annotations

import time

import drills
import pytest
from drills import (
    CHECK_FALL,
    CHECK_INTERVAL,
    CHECK_RISE,
    MARGIN,
    agent_status,
    healthy,
    host,
    master_down,
    route_via,
)

from labkit.podman import Probe, answers
from labkit.poll import wait_for
from labkit.vips import tally

VIP = "10.89.255.2"
NODE_IP = drills.NODE_IP
PAGES = {f"Hello from {n}" for n in ("node1", "node2", "node3")}
# BGP withdraws and announces at once (advertisement-interval 0 on both sides);
# MARGIN covers zebra, bgpd, the router's install and the poll.
ROUTE_BOUND = MARGIN
# nginx stops just after a passing check: `fall` failures, the first up to one
# interval later, then FAULT removes the VIP and the route goes with it.
WITHDRAW_BOUND = (CHECK_FALL + 1) * CHECK_INTERVAL + MARGIN + ROUTE_BOUND
# Passing again: `rise` checks, then BACKUP -> MASTER after Master_Down (alone,
# it hears no master), at node3's priority (150 - 2 * 50).
RETURN_BOUND = (CHECK_RISE + 1) * CHECK_INTERVAL + master_down(50) + MARGIN + ROUTE_BOUND
# Requests per spread check: each of three nodes gets 1/3 of fresh connections
# (the hash takes ports too); 90 put a node below 10 with p < 1e-5.
SPREAD = 90


def nodes() -> tuple[str, ...]:
    return drills.NODES


def everyone_routed() -> bool:
    return route_via(VIP) == {NODE_IP[n] for n in nodes()}


@pytest.fixture(autouse=True)
def all_serving() -> None:
    wait_for("every node healthy", lambda: all(healthy(n) for n in nodes()), 20, 0.3)
    wait_for("the router to route the VIP to every node", everyone_routed, 20, 0.2)


def test_no_election_every_node_holds_the_vip_alone() -> None:
    for node in nodes():
        st = agent_status(node)["instances"]["VI_1"]
        assert st["state"] == "MASTER", (node, st["state"])
        assert st["unicast_peer"] == []
        assert st["stats"]["adverts_received"] == 0
        assert host(node).run(f"ip -o addr show dev lo to {VIP}/32").stdout.strip()
    # FRR itself has the three BGP paths as one multipath route ("* NEXTHOP, via IF").
    r = host("router").run(f"vtysh -c 'show ip route {VIP}/32'")
    assert 'Known via "bgp"' in r.stdout, r.stdout
    hops = {line.split()[1].rstrip(",") for line in r.stdout.splitlines() if "* 10.89.94." in line}
    assert hops == {NODE_IP[n] for n in nodes()}, r.stdout


def test_the_client_is_spread_over_all_three() -> None:
    counts = tally(answers(VIP, SPREAD))
    print(f"\nspread over {SPREAD} connections: {counts}")
    assert set(counts) == PAGES, counts
    assert all(c >= 10 for c in counts.values()), counts


def test_a_failing_node_leaves_the_spread_and_comes_back() -> None:
    probe = Probe.start(VIP, WITHDRAW_BOUND + RETURN_BOUND + 8)
    stopped = time.monotonic()
    r = host("node3").run("systemctl stop nginx")
    assert r.rc == 0, r.stderr
    try:
        rest = {NODE_IP["node1"], NODE_IP["node2"]}
        wait_for("node3's route withdrawn", lambda: route_via(VIP) == rest, WITHDRAW_BOUND + 5, 0.1)
        took = time.monotonic() - stopped
        print(f"\nnode3 withdrawn after {took:.2f}s (bound {WITHDRAW_BOUND:.2f}s)")
        assert took <= WITHDRAW_BOUND
        assert agent_status("node3")["instances"]["VI_1"]["state"] == "FAULT"
        counts = tally(answers(VIP, 60))
        print(f"while node3 is out: {counts}")
        assert set(counts) == {"Hello from node1", "Hello from node2"}, counts
    finally:
        started = time.monotonic()
        r = host("node3").run("systemctl start nginx")
        assert r.rc == 0, r.stderr
    wait_for("node3 back in the route", everyone_routed, RETURN_BOUND + 5, 0.1)
    back = time.monotonic() - started
    print(f"node3 back after {back:.2f}s (bound {RETURN_BOUND:.2f}s)")
    assert back <= RETURN_BOUND
    assert set(tally(answers(VIP, SPREAD))) == PAGES
    # What clients saw: connections hashed to node3 fail from nginx's stop until
    # the withdrawal (nothing else moves); none fail on the way back.
    rows = probe.rows()
    failed = [t for t, ok, _ in rows if not ok]
    served = sorted({body for _, ok, body in rows if ok})
    span = failed[-1] - failed[0] if failed else 0.0
    print(f"probe: {len(failed)} of {len(rows)} requests failed, within {span:.2f}s; {served}")
    assert span <= WITHDRAW_BOUND
