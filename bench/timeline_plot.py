"""Failover timelines, ours against keepalived's, drawn as one PNG.

A timeline is one failover of one implementation, every time in seconds
relative to the failure (t=0):

    {
      "impl": "keepalived", "advert_int": 1.0, "event": "master cut off",
      "window": [-1.5, 5.0], "hosts": ["n1", "n2"],
      "vip_held_at_start": {"n1": true, "n2": false},
      "adverts": [{"t": -0.9, "src": "n1", "priority": 200}, ...],
      "garps": [{"t": 3.62, "host": "n2"}, ...],
      "vip": [{"t": 0.02, "host": "n1", "change": "del"}, ...],
      "probes": [{"t": -1.49, "answered": true}, ...],
    }

`adverts` are the VRRP adverts seen on the wire (priority 0: the master
resigning), `garps` the gratuitous ARPs for the VIP, `vip` the address being
added to or deleted from each host, `probes` the client's ICMP probes by send
time. Each timeline becomes one panel; every panel has the same lanes, so the
two implementations can be compared by eye, top to bottom.

The helpers are pure; only `draw` needs matplotlib, and imports it itself, so
that the rest (and its tests) work without it.

    python -m bench.timeline_plot results.json out.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import failover_stats

Span = tuple[float, float]

# Host colours, in `hosts` order: the same host has the same colour in its
# advert, GARP and VIP lanes, so one legend entry per host covers all three.
HOST_COLOURS = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
RESIGN_COLOUR = "black"
ANSWERED_COLOUR = "#9cc49c"
LOST_COLOUR = "tab:red"

PANEL_HEIGHT = 3.2
FIG_WIDTH = 11.0
DPI = 110


def vip_spans(timeline: Mapping[str, Any], host: str) -> list[Span]:
    """The intervals within the timeline's window during which `host` held the VIP.

    Starts from `vip_held_at_start[host]` and applies the host's add/del events
    in time order; an add while held or a del while not held changes nothing
    (they happen: keepalived re-adds on every transition). Intervals are
    clipped to the window; one still open at the end runs to the window's end.
    Empty (zero-length) intervals are left out.
    """
    lo, hi = _window(timeline)
    held = bool(timeline.get("vip_held_at_start", {}).get(host, False))
    # Held from before the recording: the interval starts before anything
    # the window shows, so -inf clips to the window's start like any other.
    start = float("-inf")
    raw: list[Span] = []
    # sorted() is stable: events at the same instant keep their recorded order.
    events = sorted((e for e in timeline.get("vip", ()) if e["host"] == host), key=_t)
    for event in events:
        change = event["change"]
        if change not in ("add", "del"):
            raise ValueError(f"vip change {change!r} at t={event['t']}: not 'add' or 'del'")
        if change == "add" and not held:
            held, start = True, float(event["t"])
        elif change == "del" and held:
            held = False
            raw.append((start, float(event["t"])))
    if held:
        raw.append((start, float("inf")))
    clipped = [(max(a, lo), min(b, hi)) for a, b in raw]
    return [(a, b) for a, b in clipped if a < b]


def probe_interval(timeline: Mapping[str, Any]) -> float | None:
    """The client's probe interval: the median gap between probe send times
    (the median, so that one late-scheduled probe does not skew it); None
    with fewer than two probes."""
    times = sorted(float(p["t"]) for p in timeline.get("probes", ()))
    if len(times) < 2:
        return None
    return statistics.median(b - a for a, b in zip(times, times[1:], strict=False))


def loss_spans(timeline: Mapping[str, Any], interval: float) -> list[Span]:
    """Maximal runs of consecutive unanswered probes, each as (first lost send
    time, last lost send time + interval): the stretch during which a probe
    sent would have been lost."""
    return _probe_runs(timeline, interval, answered=False)


def answered_spans(timeline: Mapping[str, Any], interval: float) -> list[Span]:
    """`loss_spans`' complement: maximal runs of answered probes, same form."""
    return _probe_runs(timeline, interval, answered=True)


def _probe_runs(timeline: Mapping[str, Any], interval: float, *, answered: bool) -> list[Span]:
    probes = sorted((float(p["t"]), bool(p["answered"])) for p in timeline.get("probes", ()))
    return failover_stats.probe_runs(probes, interval, answered)


def panel_title(timeline: Mapping[str, Any]) -> str:
    """A panel's title: "keepalived, advert_int 1 s: master cut off"."""
    return (
        f"{timeline['impl']}, advert_int {float(timeline['advert_int']):g} s: {timeline['event']}"
    )


def advert_sources(timeline: Mapping[str, Any]) -> list[str]:
    """The advert lanes' hosts: `hosts` in order, then any other advert source
    in order of appearance (a stray router on the segment is worth seeing,
    not dropping)."""
    sources = list(timeline["hosts"])
    for advert in timeline.get("adverts", ()):
        if advert["src"] not in sources:
            sources.append(advert["src"])
    return sources


def lanes(timeline: Mapping[str, Any]) -> list[str]:
    """The panel's lane labels, top to bottom."""
    return [
        *(f"adverts {h}" for h in advert_sources(timeline)),
        "GARP",
        *(f"VIP on {h}" for h in timeline["hosts"]),
        "client probes",
    ]


def _t(item: Mapping[str, Any]) -> float:
    return float(item["t"])


def _window(timeline: Mapping[str, Any]) -> Span:
    lo, hi = (float(x) for x in timeline["window"])
    if not lo < hi:
        raise ValueError(f"window {timeline['window']}: start must be before end")
    return lo, hi


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- drawing ----------------------------------------------------------------------


def draw(timelines: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """One panel per timeline, stacked, on a shared x axis; saved as a PNG at `path`."""
    if not timelines:
        raise ValueError("no timelines to draw")
    # Imported here, not at the top: the pure helpers above must stay usable
    # (and testable) where matplotlib is not installed. Agg before pyplot, so
    # that no display is looked for.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(
        len(timelines),
        1,
        sharex=True,
        squeeze=False,
        figsize=(FIG_WIDTH, PANEL_HEIGHT * len(timelines)),
        dpi=DPI,
    )
    # One colour per host across all panels, so n2 is orange everywhere.
    colours: dict[str, str] = {}
    for timeline in timelines:
        for host in advert_sources(timeline):
            colours.setdefault(host, HOST_COLOURS[len(colours) % len(HOST_COLOURS)])
    for ax, timeline in zip(axes[:, 0], timelines, strict=True):
        _draw_panel(ax, timeline, colours)
    any_resign = any(a["priority"] == 0 for t in timelines for a in t.get("adverts", ()))

    # Panels may record different windows: show them all over the union.
    windows = [_window(t) for t in timelines]
    axes[0, 0].set_xlim(min(w[0] for w in windows), max(w[1] for w in windows))
    axes[-1, 0].set_xlabel("seconds since the failure")

    # One legend for the figure, not one per panel: the hosts' colours (each
    # used in three lanes) and the few symbols that are not self-explanatory.
    handles: list[Any] = [Patch(color=c, label=h) for h, c in colours.items()]
    if any_resign:
        handles.append(
            Line2D(
                [], [], color=RESIGN_COLOUR, marker="v", linestyle="", label="advert, priority 0"
            )
        )
    handles += [
        Line2D([], [], color=ANSWERED_COLOUR, linewidth=3, label="probes answered"),
        Patch(color=LOST_COLOUR, label="probes lost"),
    ]
    axes[0, 0].legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        frameon=False,
        fontsize="small",
        handlelength=1.2,
        columnspacing=1.0,
    )
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _draw_panel(ax: Any, timeline: Mapping[str, Any], colours: Mapping[str, str]) -> None:
    """Draws one timeline into `ax`."""
    from matplotlib.transforms import blended_transform_factory

    labels = lanes(timeline)
    # Lane i from the top sits at y = n-1-i, so the list reads top to bottom.
    y = {label: len(labels) - 1 - i for i, label in enumerate(labels)}
    sources = advert_sources(timeline)
    lo, hi = _window(timeline)

    for src in sources:
        ours = [a for a in timeline.get("adverts", ()) if a["src"] == src]
        normal = [float(a["t"]) for a in ours if a["priority"] != 0]
        resign = [float(a["t"]) for a in ours if a["priority"] == 0]
        row = y[f"adverts {src}"]
        ax.vlines(normal, row - 0.3, row + 0.3, color=colours[src], linewidth=1.5)
        # Priority 0 is the master stepping down: a different shape, so it
        # stands out from the master's regular adverts even in black and white.
        ax.plot(resign, [row] * len(resign), "v", color=RESIGN_COLOUR, markersize=7)

    for host in sources:
        garps = [float(g["t"]) for g in timeline.get("garps", ()) if g["host"] == host]
        # Open markers: keepalived sends its GARPs in bursts, and filled ones
        # would merge into one blob.
        ax.plot(
            garps,
            [y["GARP"]] * len(garps),
            "d",
            markerfacecolor="none",
            markeredgecolor=colours[host],
            markersize=7,
        )

    for host in timeline["hosts"]:
        spans = vip_spans(timeline, host)
        row = y[f"VIP on {host}"]
        ax.broken_barh(
            [(a, b - a) for a, b in spans],
            (row - 0.3, 0.6),
            facecolors=colours[host],
        )

    interval = probe_interval(timeline)
    if interval is not None:
        row = y["client probes"]
        answered = answered_spans(timeline, interval)
        ax.broken_barh(
            [(a, b - a) for a, b in answered], (row - 0.06, 0.12), facecolors=ANSWERED_COLOUR
        )
        lost = loss_spans(timeline, interval)
        ax.broken_barh([(a, b - a) for a, b in lost], (row - 0.3, 0.6), facecolors=LOST_COLOUR)
        # The loss is what the benchmark is about: its length, written on it.
        # Runs too short to see get no label, it would only hide the lanes.
        for a, b in lost:
            if b - a >= 0.03 * (hi - lo):
                ax.text(
                    (a + b) / 2,
                    row + 0.36,
                    _duration(b - a),
                    ha="center",
                    va="bottom",
                    fontsize="small",
                    color=LOST_COLOUR,
                )

    ax.axvline(0, color="0.3", linestyle="--", linewidth=1)
    # The event's name at the line, in the headroom above the top lane
    # (x in data coordinates, y in axes coordinates).
    ax.text(
        0,
        0.985,
        f" {timeline['event']}",
        transform=blended_transform_factory(ax.transData, ax.transAxes),
        ha="left",
        va="top",
        fontsize="small",
        color="0.3",
    )

    ax.set_yticks(list(y.values()), list(y))
    ax.set_ylim(-0.6, len(labels) - 0.4 + 0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(panel_title(timeline), loc="left", fontsize="medium")


# --- the command ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help='JSON with a top-level "timelines" list')
    p.add_argument("out", type=Path, help="the PNG to write")
    args = p.parse_args(argv)
    report = json.loads(args.results.read_text())
    if not isinstance(report, dict) or "timelines" not in report:
        print(f'{args.results}: no top-level "timelines" key', file=sys.stderr)
        return 2
    draw(report["timelines"], args.out, report.get("title") or "Failover timeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
