"""A real Prometheus (Debian's, deployed by site.yml's monitoring play) scrapes
both agents every second with the project's alert rules loaded; the drill
freezes the master and reads the move through Prometheus's HTTP query API."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request

from drills import ADVERT_INT, MARGIN, holders, make_master, master_down

from labkit.podman import freeze, in_netns, thaw
from labkit.poll import wait_for

VIP = "10.89.90.100"
PROMETHEUS = "http://10.89.90.60:9090"
SCRAPE = 1.0  # prometheus_scrape_interval (molecule.yml), also the evaluation interval
SPLIT_BRAIN = "VRRPSplitBrain"


def query(expr: str) -> list[dict]:
    url = f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def value(expr: str) -> float | None:
    result = query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


# keepalived's (and the exporter's) form: the prefix shown unless it is /32.
VIP_LABEL = f'ip_address="{VIP}/24"'


def state_of(node: str) -> float | None:
    return value(f'max(keepalived_vrrp_state{{instance="{node}",{VIP_LABEL}}})')


def test_prometheus_scrapes_both_agents_with_the_rules_loaded() -> None:
    wait_for("both agents up in Prometheus", lambda: value('count(up{job="vrrp-agent"} == 1)') == 2,
             30, 0.5)  # fmt: skip
    with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/rules", timeout=5) as r:
        rules = json.load(r)["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert SPLIT_BRAIN in names, names


def test_a_frozen_master_moves_in_prometheus_and_split_brain_does_not_fire() -> None:
    make_master(VIP, "node1", "node2")
    wait_for("Prometheus to see node1 MASTER", lambda: state_of("node1") == 2, 10, 0.5)
    before = value('keepalived_become_master_total{instance="node2"}')
    assert before is not None
    frozen_at = time.time()
    freeze("node1")
    try:
        wait_for("node2 to take the VIP", lambda: "node2" in holders(VIP, ("node2",)),
                 master_down() + MARGIN + 5)  # fmt: skip
        # Seen by Prometheus within a scrape (and a query's staleness) of the move.
        wait_for("Prometheus to see node2 MASTER", lambda: state_of("node2") == 2,
                 2 * SCRAPE + MARGIN + 5, 0.25)  # fmt: skip
        wait_for("node2's become_master counted",
                 lambda: value('keepalived_become_master_total{instance="node2"}') != before,
                 2 * SCRAPE + 5, 0.25)  # fmt: skip
        assert value('keepalived_become_master_total{instance="node2"}') == before + 1
        # The frozen node still holds the VIP in its kernel: a split brain on
        # the hosts, but Prometheus cannot scrape node1 (up 0) and drops its
        # series, so the alert stays quiet. Not even pending: a true condition
        # shows as pending at the first evaluation (every second here), long
        # before the rule's `for` would let it fire.
        assert VIP in in_netns("node1", "ip", "-j", "addr", "show", "dev", "eth0")
        wait_for("node1's scrape to fail", lambda: value('up{instance="node1"}') == 0, 10, 0.5)
        deadline = time.monotonic() + 10 * SCRAPE
        while time.monotonic() < deadline:
            alerts = query(f'ALERTS{{alertname="{SPLIT_BRAIN}"}}')
            assert alerts == [], alerts
            time.sleep(SCRAPE / 2)
    finally:
        thawed_at = time.time()
        thaw("node1")
    wait_for("node1 to take the VIP back", lambda: holders(VIP, ("node1", "node2")) == ["node1"],
             ADVERT_INT + MARGIN + 5)  # fmt: skip
    wait_for("Prometheus to see node1 MASTER again", lambda: state_of("node1") == 2, 10, 0.5)
    export = os.environ.get("VRRP_PROMETHEUS_EXPORT")
    if export:
        # What the README's picture is drawn from (scripts/plot_prometheus_failover.py).
        time.sleep(5 * SCRAPE)
        _export(export, frozen_at - 10, time.time(), frozen_at, thawed_at)


def _export(path: str, start: float, end: float, frozen_at: float, thawed_at: float) -> None:
    series = {}
    for name, expr in (
        ("state", f"max by (instance) (keepalived_vrrp_state{{{VIP_LABEL}}})"),
        ("up", 'up{job="vrrp-agent"}'),
        ("become_master", "keepalived_become_master_total"),
    ):
        url = f"{PROMETHEUS}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": start, "end": end, "step": SCRAPE}
        )
        with urllib.request.urlopen(url, timeout=10) as r:
            series[name] = json.load(r)["data"]["result"]
    doc = {"vip": VIP, "frozen_at": frozen_at, "thawed_at": thawed_at, "step": SCRAPE,
           "series": series}  # fmt: skip
    with open(path, "w") as f:
        json.dump(doc, f)
