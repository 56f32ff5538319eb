"""The failover benchmark's arithmetic and its report: pure, no I/O.

Percentiles interpolate linearly between the closest ranks (numpy's default,
`statistics.quantiles(method="inclusive")`), so with 10 samples the p90 lies
between the 9th and the 10th smallest value, never beyond the largest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OURS, THEIRS = "vrrp-agent", "keepalived"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Stat:
    n: int
    median: float
    p90: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "median": round(self.median, 4),
            "p90": round(self.p90, 4),
            "min": round(self.low, 4),
            "max": round(self.high, 4),
        }


def summarize(values: Sequence[float]) -> Stat:
    if not values:
        raise ValueError("no values to summarize")
    return Stat(
        len(values), percentile(values, 50), percentile(values, 90), min(values), max(values)
    )


def ratio(ours: float, theirs: float) -> float | None:
    return None if theirs <= 0 else ours / theirs


# --- what the probes and /proc say ---------------------------------------------------


def probe_runs(
    probes: Sequence[tuple[float, bool]], interval: float, answered: bool = False
) -> list[tuple[float, float]]:
    """(send time, answered) in send order -> each maximal run of unanswered
    (or, with `answered`, answered) probes as (first sent, last sent +
    interval): the stretch during which a probe sent would have been lost."""
    runs: list[tuple[float, float]] = []
    first: float | None = None
    last = 0.0
    for t, ok in probes:
        if ok == answered:
            if first is None:
                first = t
            last = t
        elif first is not None:
            runs.append((first, last + interval))
            first = None
    if first is not None:
        runs.append((first, last + interval))
    return runs


def outage(probes: Sequence[tuple[float, bool]], interval: float) -> float:
    """Seconds during which the client's probes went unanswered."""
    return sum(end - start for start, end in probe_runs(probes, interval))


def phase_spread(times: Sequence[float], period: float) -> float:
    """One advert from each instance -> the shortest stretch of the advert
    interval that holds all of them, seen as phases on a circle of `period`
    (so a round of adverts that straddles a whole multiple of the period is
    not taken for one spread over all of it): period minus the largest gap."""
    if not times:
        raise ValueError("no advert times")
    phases = sorted(t % period for t in times)
    gaps = [b - a for a, b in zip(phases, phases[1:], strict=False)]
    gaps.append(phases[0] + period - phases[-1])
    return period - max(gaps)


def advert_rounds(by_instance: Mapping[int, Sequence[float]], count: int) -> list[list[float]]:
    """Each instance's advert times -> round k holds every instance's k-th
    advert; [] unless all `count` instances were seen."""
    if len(by_instance) < count:
        return []
    n = min(len(ts) for ts in by_instance.values())
    return [[sorted(ts)[k] for ts in by_instance.values()] for k in range(n)]


def cpu_ticks(stat: str) -> int:
    """/proc/PID/stat -> utime + stime in clock ticks (the command name, in
    parentheses, may itself contain spaces or parentheses)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def cpu_percent(ticks: int, hz: int, seconds: float) -> float:
    """Ticks used over `seconds` -> percent of one core."""
    return 100.0 * ticks / hz / seconds


def pss_kib(smaps_rollup: str) -> int:
    for line in smaps_rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError("no Pss line in smaps_rollup")


# --- rows, targets and the report ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str  # "s", "%", "MB"
    # None: no target. ("vs", f): our median <= f x keepalived's median.
    # ("max", x): our median <= x.
    target: tuple[str, float] | None = None
    scale: float = 1.0  # display: seconds shown as ms, say

    def target_text(self) -> str:
        if self.target is None:
            return ""
        kind, x = self.target
        if kind == "vs":
            return "≤ keepalived" if x == 1 else f"≤ {x:g} × keepalived"
        return f"≤ {x * self.scale:g} {self.display_unit}"

    @property
    def display_unit(self) -> str:
        return "ms" if self.unit == "s" and self.scale == 1000 else self.unit


def verdict(metric: Metric, ours: Stat, theirs: Stat | None) -> bool | None:
    """True when our median meets the metric's target, None without one."""
    if metric.target is None:
        return None
    kind, x = metric.target
    if kind == "vs":
        if theirs is None:
            return None
        return ours.median <= x * theirs.median
    return ours.median <= x


def build_rows(
    metrics: Iterable[Metric],
    samples: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
) -> list[dict[str, Any]]:
    """samples[impl][condition][metric key] -> values, where a condition is,
    say, "advert_int 1" -> one row per metric and condition that has values
    for at least one implementation."""
    conditions: list[str] = []
    for per_impl in samples.values():
        conditions += [c for c in per_impl if c not in conditions]
    rows = []
    for m in metrics:
        for cond in conditions:
            values = {impl: samples[impl].get(cond, {}).get(m.key) for impl in (OURS, THEIRS)}
            if not any(values.values()):
                continue
            ours = summarize(values[OURS]) if values[OURS] else None
            theirs = summarize(values[THEIRS]) if values[THEIRS] else None
            met = verdict(m, ours, theirs) if ours is not None else None
            rows.append(
                {
                    "key": m.key,
                    "label": m.label,
                    "unit": m.unit,
                    "condition": cond,
                    OURS: ours.as_dict() if ours else None,
                    THEIRS: theirs.as_dict() if theirs else None,
                    "ratio": _round(ratio(ours.median, theirs.median)) if ours and theirs else None,
                    "target": m.target_text() or None,
                    "met": met,
                    "values": {k: list(v) if v else [] for k, v in values.items()},
                }
            )
    return rows


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _cell(stat: Mapping[str, float] | None, scale: float) -> str:
    if not stat:
        return "—"
    digits = 0 if scale == 1000 else 1
    median, p90 = stat["median"] * scale, stat["p90"] * scale
    return f"{median:.{digits}f} ({p90:.{digits}f})"


def table(rows: Sequence[Mapping[str, Any]], metrics: Sequence[Metric]) -> list[str]:
    by_key = {m.key: m for m in metrics}
    lines = [
        f"| Measure | Condition | {THEIRS} median (p90) | {OURS} median (p90) "
        "| ours / keepalived | Target for ours |",
        "|---|---|--:|--:|--:|---|",
    ]
    for row in rows:
        m = by_key[row["key"]]
        r = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        target = row["target"] or ""
        if row["met"] is True:
            target += ": met"
        elif row["met"] is False:
            target += ": **MISSED**"
        lines.append(
            f"| {m.label} ({m.display_unit}) | {row['condition']} "
            f"| {_cell(row[THEIRS], m.scale)} | {_cell(row[OURS], m.scale)} | {r} | {target} |"
        )
    return lines


def misses(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{row['label']}, {row['condition']}" for row in rows if row["met"] is False]
