#!/usr/bin/env python3
"""Draw the README's Monitoring picture: a failover as Prometheus recorded it.

Input: the JSON that molecule/master_backup/tests/test_prometheus.py writes
when VRRP_PROMETHEUS_EXPORT names a file (Prometheus's query_range answers
for keepalived_vrrp_state, up and keepalived_become_master_total around the
freeze drill). Output: a PNG. Needs matplotlib (`pip install -e '.[bench]'`).

    VRRP_PROMETHEUS_EXPORT=/tmp/prom.json molecule test -s master_backup
    .venv/bin/python scripts/plot_prometheus_failover.py /tmp/prom.json docs/prometheus-failover.png
"""

from __future__ import annotations

import json
import sys

STATES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT"}


def points(series: dict, t0: float, step: float) -> tuple[list[float], list[float]]:
    """A range query's values as a step line that breaks where Prometheus has no
    sample (a stale series: the frozen node's, which it could not scrape)."""
    xs: list[float] = []
    ys: list[float] = []
    for t, v in series["values"]:
        t = float(t) - t0
        if xs and t - xs[-1] > 1.5 * step:
            xs.append(xs[-1] + step)
            ys.append(float("nan"))
        xs.append(t)
        ys.append(float(v))
    return xs, ys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        doc = json.load(f)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = doc["frozen_at"]
    fig, (ax_state, ax_up) = plt.subplots(
        2, 1, figsize=(9, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    step = doc.get("step", 1.0)
    for ax, name in ((ax_state, "state"), (ax_up, "up")):
        for s in sorted(doc["series"][name], key=lambda s: s["metric"]["instance"]):
            xs, ys = points(s, t0, step)
            ax.step(xs, ys, where="post", label=s["metric"]["instance"], linewidth=2)
    for ax in (ax_state, ax_up):
        ax.axvline(0, color="grey", linestyle="--")
        ax.axvline(doc["thawed_at"] - t0, color="grey", linestyle=":")
        ax.legend(loc="center right")
    ax_state.set_yticks(list(STATES), [STATES[k] for k in STATES])
    ax_state.set_title(
        "keepalived_vrrp_state as Prometheus scraped it every second: node1 frozen at 0 "
        "(dashed), thawed (dotted);\nno line where a node could not be scraped",
        fontsize=10,
    )
    ax_up.set_yticks([0, 1], ["down", "up"])
    ax_up.set_ylabel('up{job="vrrp-agent"}')
    ax_up.set_xlabel("seconds from the freeze")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
