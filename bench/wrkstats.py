"""wrk's results and what the benchmarks make of them: pure, no I/O.

Every wrk run loads `LUA`. It defines no request()/response() hook, so wrk
keeps its static request and the script costs nothing per request; it only
points threads at addresses (`setup`) and prints one machine-readable line at
the end (`done`), with wrk's own microsecond latency percentiles, so nothing
has to be read back from wrk's rounded human-readable summary.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MARKER = "BENCH_RESULT "

# BENCH_ADDRS="10.99.0.3,10.99.0.4": thread i connects to address i mod n
# (port 80), whatever the URL says; unset, wrk connects to the URL's host.
LUA = """\
local addrs = {}
local n = 0

function setup(thread)
  local list = os.getenv("BENCH_ADDRS")
  if list and list ~= "" then
    if #addrs == 0 then
      for host in string.gmatch(list, "[^,]+") do
        table.insert(addrs, wrk.lookup(host, "80")[1])
      end
    end
    thread.addr = addrs[(n % #addrs) + 1]
  end
  n = n + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\\"duration_us\\": %d, \\"requests\\": %d, \\"bytes\\": %d, " ..
    "\\"errors\\": {\\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, " ..
    "\\"status\\": %d, \\"timeout\\": %d}, " ..
    "\\"latency_us\\": {\\"mean\\": %.1f, \\"stdev\\": %.1f, \\"max\\": %d, " ..
    "\\"p50\\": %d, \\"p90\\": %d, \\"p99\\": %d}}\\n",
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One wrk run. Latencies in microseconds; `status` errors are non-2xx/3xx answers."""

    duration_us: int
    requests: int
    bytes: int
    errors: Mapping[str, int]
    latency_us: Mapping[str, float]

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse(stdout: str) -> WrkRun:
    """wrk's output with `LUA` loaded -> its result; ValueError without a result line."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError("no BENCH_RESULT line in wrk's output (was the Lua script loaded?)")
    data = json.loads(lines[-1][len(MARKER) :])
    if data["duration_us"] <= 0:
        raise ValueError(f"wrk ran for {data['duration_us']} us")
    return WrkRun(
        duration_us=int(data["duration_us"]),
        requests=int(data["requests"]),
        bytes=int(data["bytes"]),
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_us={k: float(v) for k, v in data["latency_us"].items()},
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Repetitions of one measurement: the median, and the spread as
    (max - min) / median, in percent."""

    median: float
    low: float
    high: float

    @property
    def spread_pct(self) -> float:
        return 0.0 if self.median == 0 else 100.0 * (self.high - self.low) / self.median

    def as_dict(self) -> dict[str, float]:
        return {
            "median": round(self.median, 1),
            "min": round(self.low, 1),
            "max": round(self.high, 1),
            "spread_pct": round(self.spread_pct, 1),
        }


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarize")
    return Summary(statistics.median(values), min(values), max(values))


def ratio(value: float, reference: float) -> float | None:
    return None if reference <= 0 else value / reference


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Requests per backend -> each backend's fraction of them."""
    total = sum(counts.values())
    return {k: (v / total if total else 0.0) for k, v in sorted(counts.items())}


def stub_status_requests(text: str) -> int:
    """nginx's stub_status page -> its `requests` counter (the third number
    on the line after "server accepts handled requests")."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.split() == ["server", "accepts", "handled", "requests"]:
            return int(lines[i + 1].split()[2])
    raise ValueError(f"not an nginx stub_status page: {text[:80]!r}")


def netstat_counters(text: str) -> dict[str, int]:
    """/proc/net/netstat or /proc/net/snmp -> {"TcpExt.TCPSynRetrans": n, ...}:
    each section is a line of names followed by a line of values."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        section, _, keys = names.partition(":")
        section2, _, vals = values.partition(":")
        if section != section2:
            raise ValueError(f"unpaired section {section!r} / {section2!r}")
        for k, v in zip(keys.split(), vals.split(), strict=True):
            out[f"{section}.{k}"] = int(v)
    return out


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(proc_stat: str) -> dict[str, int]:
    """/proc/stat -> the all-CPU line's jiffies by name (guest time is
    already counted in user)."""
    for line in proc_stat.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            return dict(zip(CPU_FIELDS, map(int, parts[1:9]), strict=False))
    raise ValueError("no cpu line in /proc/stat")


def cpu_split(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, float]:
    """Percent of all CPU time between two `cpu_times` readings, per field."""
    delta = {k: after[k] - before[k] for k in CPU_FIELDS}
    total = sum(delta.values())
    return {k: round(100.0 * v / total, 1) if total else 0.0 for k, v in delta.items()}


# --- the report -------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Report rows (as in the JSON) -> a markdown table."""
    out = [
        "| connections | path | req/s (median) | min – max | spread | × direct, both"
        " | × direct, one | p50 ms | p99 ms | errors | SYN retx | share n3 / n4 |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        rps = r["rps"]
        share = r.get("share") or {}
        share_s = " / ".join(f"{100 * v:.0f}%" for v in share.values()) if share else "–"
        out.append(
            f"| {r['mode']} | {r['label']} | {rps['median']:,.0f} "
            f"| {rps['min']:,.0f} – {rps['max']:,.0f} | {rps['spread_pct']:.1f}% "
            f"| {_x(r['ratio_to_direct_both'])} | {_x(r['ratio_to_direct_one'])} "
            f"| {_ms(r['p50_us']['median'])} | {_ms(r['p99_us']['median'])} "
            f"| {r['errors']} | {r['syn_retrans']} | {share_s} |"
        )
    return "\n".join(out) + "\n"
