"""The arithmetic and parsing behind `make bench-lvs` (bench/wrkstats.py and the
summaries in bench/lvs_throughput.py); the benchmark itself needs root and
minutes, and its numbers are not assertions."""

from __future__ import annotations

import json
import re

import pytest

from bench import wrkstats
from bench.lvs_throughput import ROWS, rotated, summarize_rows

WRK_OUTPUT = """\
Running 8s test @ http://10.99.0.100/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.63ms    2.68ms  54.77ms   91.20%
    Req/Sec     4.73k     1.37k    8.14k    68.33%
  29699 requests in 3.05s, 10.23MB read
Requests/sec:   9744.87
Transfer/sec:      3.35MB
BENCH_RESULT {"duration_us": 3047656, "requests": 29699, "bytes": 10721339, \
"errors": {"connect": 0, "read": 2, "write": 0, "status": 1, "timeout": 3}, \
"latency_us": {"mean": 1631.2, "stdev": 2675.2, "max": 54766, "p50": 886, "p90": 3341, \
"p99": 13211}}
"""


def test_parse_reads_the_result_line():
    run = wrkstats.parse(WRK_OUTPUT)
    assert run.requests == 29699
    assert run.duration_us == 3047656
    assert run.rps == pytest.approx(9744.87, abs=0.01)  # what wrk itself printed
    assert run.errors == {"connect": 0, "read": 2, "write": 0, "status": 1, "timeout": 3}
    assert run.error_count == 6
    assert run.latency_us["p50"] == 886
    assert run.latency_us["p99"] == 13211


def test_parse_takes_the_last_result_line():
    first = WRK_OUTPUT.splitlines()[-1].replace('"requests": 29699', '"requests": 1')
    assert wrkstats.parse(first + "\n" + WRK_OUTPUT).requests == 29699


def test_parse_refuses_output_without_a_result():
    with pytest.raises(ValueError, match="Lua script"):
        wrkstats.parse(WRK_OUTPUT.rsplit("BENCH_RESULT", 1)[0])
    with pytest.raises(ValueError, match="ran for 0"):
        wrkstats.parse(WRK_OUTPUT.replace('"duration_us": 3047656', '"duration_us": 0'))


def _lua_format_and_args() -> tuple[str, list[str]]:
    """done()'s format string as Lua sees it, and the arguments it is given."""
    call = wrkstats.LUA.split("string.format(", 1)[1]
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', call.split("summary.duration", 1)[0])
    fmt = "".join(literals).replace('\\"', '"').replace("\\n", "\n")
    args = "summary.duration" + call.split("summary.duration", 1)[1].rsplit("))", 1)[0]
    return fmt, [a.strip() for a in args.split(",")]


def test_the_lua_result_line_is_what_parse_reads():
    fmt, args = _lua_format_and_args()
    specs = re.findall(r"%[.\d]*[df]", fmt)
    assert len(specs) == len(args) == 14
    line = re.sub(r"%d", "7", fmt)
    line = re.sub(r"%\.1f", "7.5", line)
    assert line.startswith(wrkstats.MARKER) and line.endswith("\n")
    json.loads(line[len(wrkstats.MARKER) :])  # valid JSON
    run = wrkstats.parse("noise\n" + line)
    assert run.requests == 7 and run.latency_us["p99"] == 7 and run.latency_us["mean"] == 7.5
    # every error kind wrk counts, and the arguments in the order the keys appear
    assert set(run.errors) == {"connect", "read", "write", "status", "timeout"}
    assert args[3:8] == ["e.connect", "e.read", "e.write", "e.status", "e.timeout"]
    assert args[-3:] == [f"latency:percentile({p})" for p in (50, 90, 99)]


@pytest.mark.parametrize(
    ("values", "median", "spread"),
    [
        ([100.0], 100.0, 0.0),
        ([90.0, 110.0, 100.0], 100.0, 20.0),
        ([10.0, 20.0, 30.0, 1000.0], 25.0, 3960.0),
        ([0.0, 0.0, 0.0], 0.0, 0.0),
    ],
)
def test_summarize_gives_median_and_spread(values, median, spread):
    s = wrkstats.summarize(values)
    assert s.median == median
    assert (s.low, s.high) == (min(values), max(values))
    assert s.spread_pct == pytest.approx(spread)


def test_summarize_needs_values():
    with pytest.raises(ValueError):
        wrkstats.summarize([])


def test_summary_as_dict_rounds():
    assert wrkstats.summarize([1.234, 2.0, 3.0]).as_dict() == {
        "median": 2.0,
        "min": 1.2,
        "max": 3.0,
        "spread_pct": 88.3,
    }


def test_ratio_and_shares():
    assert wrkstats.ratio(50.0, 200.0) == 0.25
    assert wrkstats.ratio(50.0, 0.0) is None
    assert wrkstats.shares({"n4": 1, "n3": 3}) == {"n3": 0.75, "n4": 0.25}
    assert wrkstats.shares({"n3": 0, "n4": 0}) == {"n3": 0.0, "n4": 0.0}


def test_stub_status_requests():
    page = (
        "Active connections: 1 \nserver accepts handled requests\n 10 10 12 \n"
        "Reading: 0 Writing: 1 Waiting: 0 \n"
    )
    assert wrkstats.stub_status_requests(page) == 12
    with pytest.raises(ValueError, match="stub_status"):
        wrkstats.stub_status_requests("<html>404</html>")


def test_netstat_counters():
    text = (
        "TcpExt: SyncookiesSent TCPSynRetrans\nTcpExt: 0 429\n"
        "IpExt: InNoRoutes InOctets\nIpExt: 0 123456789012\n"
    )
    assert wrkstats.netstat_counters(text) == {
        "TcpExt.SyncookiesSent": 0,
        "TcpExt.TCPSynRetrans": 429,
        "IpExt.InNoRoutes": 0,
        "IpExt.InOctets": 123456789012,
    }
    with pytest.raises(ValueError, match="unpaired"):
        wrkstats.netstat_counters("TcpExt: A\nIpExt: 1\n")


def test_rotation_puts_every_row_first_once():
    reps = [rotated(ROWS, rep) for rep in range(len(ROWS))]
    assert [r[0].id for r in reps] == [row.id for row in ROWS]
    assert all(sorted(r, key=ROWS.index) == list(ROWS) for r in reps)
    assert rotated(ROWS, len(ROWS)) == list(ROWS)


def _run(rps: float, p50: float = 500, p99: float = 2000, served=(10, 10), retx=0) -> dict:
    return {
        "rps": rps,
        "latency_us": {"p50": p50, "p99": p99},
        "errors": {"connect": 0, "read": 1, "write": 0, "status": 0, "timeout": 0},
        "served": {"n3": served[0], "n4": served[1]},
        "syn_retrans": retx,
    }


def test_rows_are_summarized_against_direct_of_the_same_mode():
    runs = {
        ("close", "direct_one"): [_run(900), _run(1000), _run(1100)],
        ("close", "direct_both"): [_run(2000), _run(1900), _run(2100)],
        ("close", "nat"): [_run(1000, served=(15, 5), retx=1), _run(1500), _run(500)],
        ("keep-alive", "direct_both"): [_run(4000)],
        ("keep-alive", "dr"): [_run(3000)],
    }
    rows = {(r["mode"], r["id"]): r for r in summarize_rows(runs)}
    nat = rows[("close", "nat")]
    assert nat["rps"] == {"median": 1000.0, "min": 500.0, "max": 1500.0, "spread_pct": 100.0}
    assert nat["ratio_to_direct_both"] == 0.5
    assert nat["ratio_to_direct_one"] == 1.0
    assert nat["errors"] == 3 and nat["syn_retrans"] == 1
    assert nat["share"] == {"n3": 0.583, "n4": 0.417}  # 35 / 25 over the three runs
    assert nat["label"] == "VIP, nftables NAT, rr"
    assert rows[("close", "direct_both")]["ratio_to_direct_both"] == 1.0
    # no direct, one in this mode: no ratio, not a division by zero
    assert rows[("keep-alive", "dr")]["ratio_to_direct_both"] == 0.75
    assert rows[("keep-alive", "dr")]["ratio_to_direct_one"] is None


def test_table_has_a_row_per_result_with_its_ratios():
    runs = {
        ("close", "direct_both"): [_run(2000.0)],
        ("close", "dr"): [_run(1500.0, p50=800, p99=12500)],
    }
    text = wrkstats.table(summarize_rows(runs))
    lines = text.splitlines()
    assert len(lines) == 4
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    dr = dict(zip(header, (c.strip() for c in lines[3].strip("|").split("|")), strict=True))
    assert dr["req/s (median)"] == "1,500"
    assert dr["× direct, both"] == "0.75"
    assert dr["× direct, one"] == "–"
    assert (dr["p50 ms"], dr["p99 ms"]) == ("0.80", "12.50")
    assert dr["share n3 / n4"] == "50% / 50%"


def test_cpu_split():
    before = wrkstats.cpu_times("cpu  100 0 50 800 10 0 40 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    after = wrkstats.cpu_times("cpu  400 0 150 900 110 0 340 100 0 0\n")
    split = wrkstats.cpu_split(before, after)
    assert split == {
        "user": 30.0,
        "nice": 0.0,
        "system": 10.0,
        "idle": 10.0,
        "iowait": 10.0,
        "irq": 0.0,
        "softirq": 30.0,
        "steal": 10.0,
    }
    assert wrkstats.cpu_split(after, after)["idle"] == 0.0
    with pytest.raises(ValueError):
        wrkstats.cpu_times("intr 1 2 3\n")
