"""Spurious transitions under CPU starvation: our agent against keepalived.

One lab (labkit/netns.py): n1 (priority 200) and n2 (priority 100) run the
implementation under test with 255 instances at advert_int 0.1 (VRRPv3,
multicast), n3 observes (bench/recorder.py: state changes from the
notify_fifo both write). Once n1 masters every instance and n2 backs up every
one, two busy-loop processes per core start on this host (both "nodes" are
namespaces on it), for --duration seconds. Every state change in that window
is spurious: nothing failed, so a backup that took over only did because
the machine delayed the master's adverts or its own receiving.

Our agent runs with the scheduling the role's unit gives it
(CPUSchedulingPolicy=rr, CPUSchedulingPriority=10, CPUSchedulingResetOnFork),
through `chrt --rr --reset-on-fork 10`. keepalived runs as shipped: without
vrrp_rt_priority or vrrp_priority, at the normal policy and nice 0
(max_auto_priority 0: it does not raise itself either).

Target: zero for us, and never more than keepalived.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import failover as fo
from bench import failover_stats as fs
from bench.machine import load
from bench.recorder import STATES, Event
from labkit.netns import Lab

NAME = "starvation"
ADVERT_INT = 0.1
# The role's defaults (roles/vrrp_agent/defaults/main.yml).
RT_POLICY, RT_PRIORITY = "rr", 10
HOGS_PER_CORE = 2
RESET_ON_FORK = 0x40000000  # SCHED_RESET_ON_FORK, <linux/sched.h>
POLICY_NAMES = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_RR: "SCHED_RR", os.SCHED_FIFO: "SCHED_FIFO"}


class Scheduled(fo.Ours):
    """Our agent as the unit starts it: real-time, not inherited by scripts."""

    def command(self, node: str, insts: list[fo.Instance], fifo: Path, tmp: Path) -> list[str]:
        inner = super().command(node, insts, fifo, tmp)
        return ["chrt", f"--{RT_POLICY}", "--reset-on-fork", str(RT_PRIORITY), *inner]


def policy_name(policy: int) -> str:
    """sched_getscheduler's answer, which carries SCHED_RESET_ON_FORK as a flag."""
    base = POLICY_NAMES.get(policy & ~RESET_ON_FORK, str(policy & ~RESET_ON_FORK))
    return base + (" (reset on fork)" if policy & RESET_ON_FORK else "")


def spurious(events: Iterable[Event], t1: float, t2: float) -> dict[str, int]:
    """State changes per node in [t1, t2): after the election, every one is spurious."""
    out: dict[str, int] = {}
    for e in events:
        if e.kind == "state" and t1 <= e.t < t2 and e.data.get("state") in STATES:
            out[e.host] = out.get(e.host, 0) + 1
    return out


def verdict(ours: int, theirs: int) -> str:
    if ours == 0:
        return "met (none)"
    if ours <= theirs:
        return f"not met: {ours}, though no more than keepalived's {theirs}"
    return f"not met: {ours}, more than keepalived's {theirs}"


def hogs(count: int) -> list[subprocess.Popen[bytes]]:
    # A shell loop: no I/O, no sleep, never yields on its own.
    return [
        subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
        for _ in range(count)
    ]


def run(
    bench: fo.Bench, impl: fo.Implementation, duration: float, log: Callable[[str], None]
) -> dict[str, Any]:
    count = fo.MANY
    log(f"{impl.name}: {count} instances at advert_int {ADVERT_INT:g}, electing")
    a = bench.start(impl, fo.MASTER, fo.instances(fo.MASTER, count, ADVERT_INT))
    bench.rec.wait_until(
        f"n1 to hold {count} VIPs",
        lambda: set(fo.MANY_VIPS) <= bench.rec.held[fo.MASTER],
        2 * fo.master_down(ADVERT_INT) + 30,
    )
    b = bench.start(impl, fo.BACKUP, fo.instances(fo.BACKUP, count, ADVERT_INT))
    bench.settle(fo.MANY_VIPS, ADVERT_INT)
    time.sleep(1.0)  # past start-up work
    # What the kernel says they run at (keepalived: its VRRP child too).
    policies = sorted({policy_name(os.sched_getscheduler(pid)) for pid in a.pids()})
    n = HOGS_PER_CORE * (os.cpu_count() or 1)
    log(f"{impl.name}: {n} busy loops for {duration:g} s")
    procs = hogs(n)
    t1 = time.monotonic()
    try:
        time.sleep(duration)
    finally:
        t2 = time.monotonic()
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    changes = spurious(bench.rec.since(t1), t1, t2)
    held_by_backup = len(set(fo.MANY_VIPS) & bench.rec.held[fo.BACKUP])
    bench.stop(a, b)
    return {
        "spurious": sum(changes.values()),
        "by_node": changes,
        "vips_on_backup_at_end": held_by_backup,
        "hogs": n,
        "master_policies": policies,
        "duration_s": round(t2 - t1, 1),
    }


def markdown(report: dict[str, Any]) -> str:
    s, r = report["settings"], report["results"]
    ours, theirs = r[fs.OURS]["spurious"], r[fs.THEIRS]["spurious"]
    lines = [
        "# Spurious transitions under CPU starvation: vrrp-agent against keepalived",
        "",
        f"`{report['command']}` on {report['date']}, {report['wall_s']:.0f} s wall time, "
        f"load average before {report['load']['before']['loadavg_1m']}.",
        f"{s['instances']} instances at advert_int {s['advert_int']:g}, "
        f"{s['hogs_per_core']} busy loops per core for {s['duration_s']:g} s. "
        f"vrrp-agent: {s['ours_scheduling']}; keepalived: {s['keepalived_scheduling']}.",
        "",
        "| | State changes while starved | n1 | n2 | VIPs on n2 at the end | n1 ran at |",
        "|---|---|---|---|---|---|",
    ]
    for name in (fs.OURS, fs.THEIRS):
        x = r[name]
        lines.append(
            f"| {name} | {x['spurious']} | {x['by_node'].get(fo.MASTER, 0)} | "
            f"{x['by_node'].get(fo.BACKUP, 0)} | {x['vips_on_backup_at_end']} | "
            f"{', '.join(x['master_policies'])} |"
        )
    lines += ["", f"Target (zero for us, never more than keepalived): {verdict(ours, theirs)}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds of starvation, each")
    p.add_argument("--out-dir", type=Path, default=fo.RESULTS)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("make bench-starvation needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    for tool in ("keepalived", "chrt"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (make deps installs it)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import vrrp_agent

    compileall.compile_dir(Path(vrrp_agent.__file__).parent, quiet=1)
    before = load()
    started = dt.datetime.now(dt.UTC)
    wall = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - wall:6.1f}s] {msg}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-starvation-") as tmp:
        lab = Lab(Path(tmp)).open(3)
        bench = None
        try:
            bench = fo.Bench(lab, Path(tmp), 0, 0, 0.0, log)
            for impl in (fo.Keepalived(), Scheduled()):
                results[impl.name] = run(bench, impl, args.duration, log)
        finally:
            if bench is not None:
                bench.close()
            lab.close()
    python_cmd = shlex.join(["python", "-m", "bench.starvation", *(argv or sys.argv[1:])])
    report = {
        "benchmark": NAME,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench" if os.environ.get("MAKELEVEL") else python_cmd,
        "wall_s": round(time.monotonic() - wall, 1),
        "machine": fo.machine(),
        "load": {"before": before, "after": load()},
        "settings": {
            "instances": fo.MANY,
            "advert_int": ADVERT_INT,
            "hogs_per_core": HOGS_PER_CORE,
            "duration_s": args.duration,
            "ours_scheduling": f"SCHED_{RT_POLICY.upper()} {RT_PRIORITY}, reset on fork",
            "keepalived_scheduling": "as shipped: SCHED_OTHER, nice 0, no vrrp_rt_priority",
        },
        "results": results,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"{NAME}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
