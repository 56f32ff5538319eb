"""Our agent against keepalived, side by side, on this machine (`make bench`, as root).

One lab (labkit/netns.py): n1 and n2 run the implementation under test
with identical configurations (VRRP v3, multicast, n1 priority 200, n2
priority 100, preemption on, both starting as BACKUP, logging to a file), n3
is the client and the observer. The two implementations take turns on the same
lab; at advert_int 1 keepalived goes first, at 0.1 ours does, so slow drift on
a shared machine does not always favour the same one.

Everything is observed from outside the implementations, the same way for
both (bench/recorder.py): VIPs arriving and leaving via rtnetlink in each
node's namespace, state changes via keepalived's notify_fifo (which both
write), adverts and gratuitous ARPs on the client's wire, and ICMP echo probes
from the client to the VIP every 5 ms.

One VIP, for each repetition:
- freeze: SIGSTOP to every process of the master right after one of its
  adverts was seen on the wire (so the advert timer's phase does not add up
  to one interval of noise), until n2 holds the VIP; then SIGCONT;
- handover: SIGTERM to the master's main process until n2 holds the VIP;
- reclaim: exec of n1 again until n1 holds the VIP, and exec until its first
  notify_fifo line ("ready": configuration read, sockets open, instance
  running);
- cut: n1's switch port down (a node that dies: its adverts and its answers
  stop at once) right after one of its adverts, until n2 holds the VIP; the
  probes give the client's outage; then the port up and n1 back as master.

255 VRIDs (one /32 VIP each), without probes:
- PSS (smaps_rollup, summed over every process of the implementation:
  keepalived runs a parent and a VRRP child) and CPU (utime + stime over
  windows) on both nodes in steady state, with capture off;
- the master's adverts captured for three intervals: how widely one round of
  them is spread over the interval;
- freeze n1 as above, at a random phase; the spread is the time between the
  first and the last VIP arriving on n2.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import failover_stats as fs
from bench.machine import describe, load
from bench.recorder import Event, Recorder
from bench.scrape import Scraper
from labkit.netns import Lab, sh

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NAME = "failover"

MASTER, BACKUP, CLIENT = "n1", "n2", "n3"
PRIORITY = {MASTER: 200, BACKUP: 100}
VIP = "10.99.0.100"
MANY = 255
MANY_VIPS = [f"10.98.0.{i}" for i in range(1, MANY + 1)]
PROBE_INTERVAL = 0.005
METRICS_PORT = 9165  # ours serves /metrics in the 255-VRID runs
S, PCT, MB = "s", "%", "MB"

METRICS = [
    fs.Metric("detect", "Detection, master frozen (SIGSTOP)", S, ("vs", 1.05), 1000),
    fs.Metric("handover", "Graceful handover (SIGTERM)", S, ("vs", 1.05), 1000),
    fs.Metric(
        "reclaim", "Reclaim: exec of the higher-priority node until it holds the VIP", S, None, 1000
    ),
    fs.Metric(
        "ready", "Exec until ready (first notify_fifo line), 1 instance", S, ("max", 0.5), 1000
    ),
    fs.Metric("ready_many", f"Exec until ready, {MANY} instances (last first line)", S, None, 1000),
    fs.Metric("detect_cut", "Detection, master cut off (switch port down)", S, None, 1000),
    fs.Metric("outage_cut", "Client outage, master cut off", S, None, 1000),
    fs.Metric("outage_handover", "Client outage, graceful handover", S, None, 1000),
    fs.Metric("outage_reclaim", "Client outage, reclaim after restart", S, None, 1000),
    fs.Metric(
        "spread", f"{MANY} VRIDs: first to last VIP moved after a freeze", S, ("vs", 1), 1000
    ),
    fs.Metric("moved_all", f"{MANY} VRIDs: freeze until the last VIP moved", S, None, 1000),
    fs.Metric("burst", f"{MANY} VRIDs: one round of the master's adverts spans", S, None, 1000),
    fs.Metric(
        "burst_scraped",
        f"{MANY} VRIDs: one round of the master's adverts spans, /metrics scraped every 1 s",
        S,
        None,
        1000,
    ),
    fs.Metric("scrape", f"{MANY} VRIDs: /metrics scrape, master", S, ("max", 0.05), 1000),
    fs.Metric("scrape_backup", f"{MANY} VRIDs: /metrics scrape, backup", S, ("max", 0.05), 1000),
    fs.Metric("pss", "PSS, master, 1 instance", MB, ("max", 35)),
    fs.Metric("pss_backup", "PSS, backup, 1 instance", MB, ("max", 35)),
    fs.Metric("pss_many", f"PSS, master, {MANY} instances", MB, ("max", 45)),
    fs.Metric("pss_many_backup", f"PSS, backup, {MANY} instances", MB, ("max", 45)),
    fs.Metric("cpu_many", f"CPU, master, {MANY} instances, % of one core", PCT),
    fs.Metric("cpu_many_backup", f"CPU, backup, {MANY} instances, % of one core", PCT),
]
# CPU targets hold at advert_int 1 only; see `cpu_target`.
CPU_LIMIT = 3.0


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    vrid: int
    priority: int
    advert_int: float
    vip: str  # with prefix length


def instances(node: str, count: int, advert_int: float) -> list[Instance]:
    if count == 1:
        return [Instance("VI_1", 51, PRIORITY[node], advert_int, f"{VIP}/24")]
    return [
        Instance(f"VI_{i}", i, PRIORITY[node], advert_int, f"{MANY_VIPS[i - 1]}/32")
        for i in range(1, count + 1)
    ]


# --- the two implementations ---------------------------------------------------------


class Implementation:
    name: str

    def command(self, node: str, insts: list[Instance], fifo: Path, tmp: Path) -> list[str]:
        raise NotImplementedError


class Ours(Implementation):
    name = fs.OURS

    def command(self, node: str, insts: list[Instance], fifo: Path, tmp: Path) -> list[str]:
        config = {
            "global_defs": {
                "router_id": node,
                "notify_fifo": str(fifo),
                "control_socket": str(tmp / f"{node}.sock"),
            },
            "vrrp_instances": {
                i.name: {
                    "interface": "eth0",
                    "state": "BACKUP",
                    "version": 3,
                    "virtual_router_id": i.vrid,
                    "priority": i.priority,
                    "advert_int": i.advert_int,
                    "virtual_ipaddress": [i.vip],
                }
                for i in insts
            },
        }
        if len(insts) > 1:
            # Listening costs nothing until a scrape; only the 255-VRID runs scrape.
            config["global_defs"]["metrics_listen"] = f"10.99.0.{node[1:]}:{METRICS_PORT}"
        path = tmp / f"ours-{node}.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return [sys.executable, "-m", "vrrp_agent.cli", "run", "-c", str(path)]


class Keepalived(Implementation):
    name = fs.THEIRS

    def command(self, node: str, insts: list[Instance], fifo: Path, tmp: Path) -> list[str]:
        blocks = [
            f"global_defs {{\n    router_id {node}\n    notify_fifo {fifo}\n"
            "    vrrp_version 3\n}\n"
        ]
        for i in insts:
            blocks.append(
                f"vrrp_instance {i.name} {{\n    state BACKUP\n    interface eth0\n"
                f"    virtual_router_id {i.vrid}\n    priority {i.priority}\n"
                f"    advert_int {i.advert_int:g}\n"
                f"    virtual_ipaddress {{\n        {i.vip}\n    }}\n}}\n"
            )
        path = tmp / f"keepalived-{node}.conf"
        path.write_text("".join(blocks))
        sh("keepalived", "-t", "-f", str(path))  # its own configuration check
        return [
            "keepalived",
            "-n",
            "-l",
            "-P",
            "-f",
            str(path),
            "-p",
            str(tmp / f"ka-{node}.pid"),
            "-r",
            str(tmp / f"ka-{node}.vrrp.pid"),
        ]


def descendants(pid: int) -> list[int]:
    """pid and every process below it (keepalived forks its VRRP child)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


@dataclass
class Running:
    impl: Implementation
    node: str
    proc: subprocess.Popen[bytes]
    started: float

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            os.kill(pid, sig)

    def cpu_ticks(self) -> int:
        return sum(fs.cpu_ticks(Path(f"/proc/{p}/stat").read_text()) for p in self.pids())

    def pss_mb(self) -> float:
        kib = sum(fs.pss_kib(Path(f"/proc/{p}/smaps_rollup").read_text()) for p in self.pids())
        return kib / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal_all(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- the drills ----------------------------------------------------------------------


def master_down(advert_int: float, priority: int = PRIORITY[BACKUP]) -> float:
    """RFC 5798: 3 x Master_Adver_Interval + Skew_Time."""
    return 3 * advert_int + (256 - priority) / 256 * advert_int


class Bench:
    def __init__(
        self,
        lab: Lab,
        tmp: Path,
        repetitions: int,
        cpu_windows: int,
        cpu_window: float,
        log: Callable[[str], None],
    ) -> None:
        self.lab = lab
        self.tmp = tmp
        self.reps = repetitions
        self.cpu_windows = cpu_windows
        self.cpu_window = cpu_window
        self.log = log
        self.fifos = {n: tmp / f"{n}.fifo" for n in (MASTER, BACKUP)}
        self.rec = Recorder(lab, [MASTER, BACKUP], CLIENT, self.fifos)
        self.samples: dict[str, dict[str, dict[str, list[float]]]] = {
            fs.OURS: {},
            fs.THEIRS: {},
        }
        self.timelines: list[dict[str, Any]] = []
        self.running: list[Running] = []
        self.n = 0

    def close(self) -> None:
        for r in self.running:
            r.stop()
        self.rec.close()

    def start(self, impl: Implementation, node: str, insts: list[Instance]) -> Running:
        self.n += 1
        cmd = impl.command(node, insts, self.fifos[node], self.tmp)
        with self.rec.cond:
            self.rec.state[node].clear()  # the previous run's instances
        log = open(self.tmp / f"{impl.name}-{node}-{self.n}.log", "wb")  # noqa: SIM115
        started = time.monotonic()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lab[node].ns, *cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
        log.close()
        r = Running(impl, node, proc, started)
        self.running.append(r)
        return r

    def stop(self, *rs: Running) -> None:
        for r in rs:
            r.stop()
            self.running.remove(r)

    def add(self, impl: Implementation, advert_int: float, key: str, value: float) -> None:
        per = self.samples[impl.name].setdefault(f"advert_int {advert_int:g}", {})
        per.setdefault(key, []).append(value)

    # ----------------------------------------------------------- waiting helpers

    def vip_event(self, kind: str, node: str, ip: str, after: float, timeout: float) -> Event:
        return self.rec.wait_event(
            f"{ip} {kind.removeprefix('vip_')} on {node}",
            lambda e: e.kind == kind and e.host == node and e.data.get("ip") == ip,
            after,
            timeout,
        )

    def advert_from(self, node: str, advert_int: float) -> Event:
        return self.rec.wait_event(
            f"an advert from {node}",
            lambda e: e.kind == "advert" and e.host == node and e.data["priority"] != 0,
            time.monotonic(),
            3 * advert_int + 2,
        )

    def first_lines(self, node: str, after: float, count: int, timeout: float) -> float:
        """When `count` distinct instances of `node` had written a notify_fifo line."""
        seen: set[object] = set()

        def pred(e: Event) -> bool:
            if e.kind == "state" and e.host == node:
                seen.add(e.data["name"])
            return len(seen) >= count

        return self.rec.wait_event(f"{count} state lines from {node}", pred, after, timeout).t

    def settle(self, vips: Sequence[str], advert_int: float) -> None:
        """n1 holds every VIP and says MASTER for every instance, n2 holds
        none and says BACKUP; then a moment for the GARPs to be answered."""
        want = set(vips)
        count = len(want)

        def settled() -> bool:
            states = self.rec.state
            return (
                want <= self.rec.held[MASTER]
                and not want & self.rec.held[BACKUP]
                and list(states[MASTER].values()).count("MASTER") == count
                and list(states[BACKUP].values()).count("BACKUP") == count
            )

        try:
            self.rec.wait_until(
                f"n1 to hold {count} VIP(s) as MASTER and n2 none as BACKUP",
                settled,
                3 * master_down(advert_int) + 10,
            )
        except TimeoutError as e:
            held = {n: len(want & self.rec.held[n]) for n in (MASTER, BACKUP)}
            states = {n: sorted(set(self.rec.state[n].values())) for n in (MASTER, BACKUP)}
            raise TimeoutError(f"{e}: VIPs held {held}, states {states}") from None
        time.sleep(0.2)

    def scraped(self, impl: Implementation, adv: float) -> None:
        """The advert capture again, now with both nodes' /metrics scraped
        once a second from the client: the scrape latency, and whether the
        master's adverts spread any wider for it."""
        targets = {MASTER: self.lab[MASTER].ip4, BACKUP: self.lab[BACKUP].ip4}
        with Scraper(self.lab[CLIENT].ns, targets, METRICS_PORT) as scraper:
            time.sleep(0.5)  # the first scrapes, before the capture starts
            self.rec.capture(True)
            t = time.monotonic()
            time.sleep(max(3 * adv, 5.0))
            self.rec.capture(False)
        if scraper.errors:
            raise RuntimeError(f"scrapes failed: {scraper.errors[:3]}")
        for node, key in ((MASTER, "scrape"), (BACKUP, "scrape_backup")):
            for took in scraper.latencies[node]:
                self.add(impl, adv, key, took)
        by_vrid: dict[int, list[float]] = defaultdict(list)
        for e in self.rec.since(t):
            if e.kind == "advert" and e.host == MASTER:
                by_vrid[int(str(e.data["vrid"]))].append(e.t)
        for advert_round in fs.advert_rounds(by_vrid, MANY):
            self.add(impl, adv, "burst_scraped", fs.phase_spread(advert_round, adv))
        count = len(scraper.latencies[MASTER])
        self.log(f"  scraped: {scraper.series} series, {count} scrapes each")

    # --------------------------------------------------------------- one VIP

    def one_vip(self, impl: Implementation, adv: float, timeline: bool) -> None:
        self.log(f"{impl.name}, advert_int {adv:g}: 1 VIP, {self.reps} repetitions")
        bound = 2 * master_down(adv) + 2
        t0 = time.monotonic()
        a = self.start(impl, MASTER, instances(MASTER, 1, adv))
        b = self.start(impl, BACKUP, instances(BACKUP, 1, adv))
        self.add(impl, adv, "ready", self.first_lines(MASTER, t0, 1, 10) - a.started)
        self.rec.capture(True)
        self.rec.probing(VIP, PROBE_INTERVAL)
        self.settle([VIP], adv)
        if adv == 1:
            self.add(impl, adv, "pss", a.pss_mb())
            self.add(impl, adv, "pss_backup", b.pss_mb())
        for rep in range(self.reps):
            # freeze
            self.advert_from(MASTER, adv)
            a.signal_all(signal.SIGSTOP)
            t0 = time.monotonic()
            got = self.vip_event("vip_add", BACKUP, VIP, t0, bound)
            self.add(impl, adv, "detect", got.t - t0)
            a.signal_all(signal.SIGCONT)
            self.settle([VIP], adv)

            # handover, then reclaim by a fresh start
            t0 = time.monotonic()
            os.kill(a.proc.pid, signal.SIGTERM)
            got = self.vip_event("vip_add", BACKUP, VIP, t0, bound)
            self.add(impl, adv, "handover", got.t - t0)
            a.proc.wait(10)
            self.running.remove(a)
            t_restart = time.monotonic()
            a = self.start(impl, MASTER, instances(MASTER, 1, adv))
            self.add(impl, adv, "ready", self.first_lines(MASTER, t_restart, 1, 10) - a.started)
            got = self.vip_event("vip_add", MASTER, VIP, t_restart, bound + 2)
            self.add(impl, adv, "reclaim", got.t - a.started)
            self.settle([VIP], adv)
            t_settled = time.monotonic()
            self.add(
                impl,
                adv,
                "outage_handover",
                fs.outage(self.rec.probes(t0 - 0.05, t_restart), PROBE_INTERVAL),
            )
            self.add(
                impl,
                adv,
                "outage_reclaim",
                fs.outage(self.rec.probes(t_restart, t_settled), PROBE_INTERVAL),
            )

            # cut
            if timeline and rep == 0:
                time.sleep(1.5)  # the plotted window starts in steady state
            self.advert_from(MASTER, adv)
            self.port(MASTER, up=False)
            t0 = time.monotonic()
            got = self.vip_event("vip_add", BACKUP, VIP, t0, bound)
            self.add(impl, adv, "detect_cut", got.t - t0)
            time.sleep(0.3)  # the client's probes get through n2
            t_up = time.monotonic()
            self.port(MASTER, up=True)
            time.sleep(0.1)  # the last replies land (Recorder.probes)
            self.add(
                impl, adv, "outage_cut", fs.outage(self.rec.probes(t0 - 0.05, t_up), PROBE_INTERVAL)
            )
            if timeline and rep == 0:
                self.timelines.append(self.timeline(impl, adv, t0, got.t, "master cut off"))
            self.settle([VIP], adv)
            self.log(f"  {rep + 1}/{self.reps}")
        self.rec.probing(None)
        self.rec.capture(False)
        self.stop(a, b)

    def port(self, node: str, up: bool) -> None:
        i = int(node.removeprefix("n"))
        sh("ip", "-n", self.lab.switch, "link", "set", f"p{i}k0", "up" if up else "down")

    def timeline(
        self, impl: Implementation, adv: float, t0: float, arrived: float, event: str
    ) -> dict[str, Any]:
        start, end = t0 - 1.5, arrived + 1.5
        while time.monotonic() < end + 0.1:  # the last replies land
            time.sleep(0.05)
        tl: dict[str, Any] = {
            "impl": impl.name,
            "advert_int": adv,
            "event": event,
            "window": [-1.5, round(end - t0, 4)],
            "hosts": [MASTER, BACKUP],
            "vip_held_at_start": {n: self.held_at(n, VIP, start) for n in (MASTER, BACKUP)},
            "adverts": [],
            "garps": [],
            "vip": [],
        }
        for e in self.rec.between(start, end):
            rel = round(e.t - t0, 4)
            if e.kind == "advert" and e.host in (MASTER, BACKUP):
                tl["adverts"].append({"t": rel, "src": e.host, "priority": e.data["priority"]})
            elif e.kind == "garp" and e.data.get("ip") == VIP:
                tl["garps"].append({"t": rel, "host": e.host})
            elif e.kind in ("vip_add", "vip_del") and e.data.get("ip") == VIP:
                tl["vip"].append({"t": rel, "host": e.host, "change": e.kind[4:]})
        tl["probes"] = [
            {"t": round(t - t0, 4), "answered": ok} for t, ok in self.rec.probes(start, end)
        ]
        return tl

    def held_at(self, node: str, ip: str, t: float) -> bool:
        """Whether `node` held `ip` at `t`, from the address events recorded."""
        for e in reversed(self.rec.between(0, t)):
            if e.host == node and e.kind in ("vip_add", "vip_del") and e.data.get("ip") == ip:
                return e.kind == "vip_add"
        return False

    # ------------------------------------------------------------- 255 VRIDs

    def many(self, impl: Implementation, adv: float) -> None:
        self.log(f"{impl.name}, advert_int {adv:g}: {MANY} VRIDs")
        want = set(MANY_VIPS)
        a = self.start(impl, MASTER, instances(MASTER, MANY, adv))
        self.add(impl, adv, "ready_many", self.first_lines(MASTER, a.started, MANY, 30) - a.started)
        self.rec.wait_until(
            f"n1 to hold {MANY} VIPs",
            lambda: want <= self.rec.held[MASTER],
            2 * master_down(adv) + 20,
        )
        b = self.start(impl, BACKUP, instances(BACKUP, MANY, adv))
        self.add(impl, adv, "ready_many", self.first_lines(BACKUP, b.started, MANY, 30) - b.started)
        self.settle(MANY_VIPS, adv)
        time.sleep(2 * adv + 1)  # past start-up work, into steady state
        if adv == 1:
            self.add(impl, adv, "pss_many", a.pss_mb())
            self.add(impl, adv, "pss_many_backup", b.pss_mb())
        hz = os.sysconf("SC_CLK_TCK")
        for _ in range(self.cpu_windows):
            ta, tb, t = a.cpu_ticks(), b.cpu_ticks(), time.monotonic()
            time.sleep(self.cpu_window)
            ua, ub, dt_ = a.cpu_ticks() - ta, b.cpu_ticks() - tb, time.monotonic() - t
            self.add(impl, adv, "cpu_many", fs.cpu_percent(ua, hz, dt_))
            self.add(impl, adv, "cpu_many_backup", fs.cpu_percent(ub, hz, dt_))
        # How the master spreads its adverts over an interval (which sets the
        # spread below: a backup's timer restarts with each advert it hears).
        self.rec.capture(True)
        t = time.monotonic()
        time.sleep(max(3 * adv, 1.0))
        self.rec.capture(False)
        by_vrid: dict[int, list[float]] = defaultdict(list)
        for e in self.rec.since(t):
            if e.kind == "advert" and e.host == MASTER:
                by_vrid[int(str(e.data["vrid"]))].append(e.t)
        for advert_round in fs.advert_rounds(by_vrid, MANY):
            self.add(impl, adv, "burst", fs.phase_spread(advert_round, adv))
        if isinstance(impl, Ours):
            self.scraped(impl, adv)
        bound = 2 * master_down(adv) + 10
        for rep in range(self.reps):
            time.sleep(random.uniform(0, adv))  # a random phase against the advert timers
            a.signal_all(signal.SIGSTOP)
            t0 = time.monotonic()
            self.rec.wait_until(
                f"n2 to hold {MANY} VIPs", lambda: want <= self.rec.held[BACKUP], bound
            )
            first: dict[str, float] = {}
            for e in self.rec.since(t0):
                if e.kind == "vip_add" and e.host == BACKUP and e.data["ip"] in want:
                    first.setdefault(str(e.data["ip"]), e.t)
            self.add(impl, adv, "spread", max(first.values()) - min(first.values()))
            self.add(impl, adv, "moved_all", max(first.values()) - t0)
            a.signal_all(signal.SIGCONT)
            self.settle(MANY_VIPS, adv)
            self.log(f"  {rep + 1}/{self.reps}")
        self.stop(a, b)


# --- the report ----------------------------------------------------------------------


def cpu_target(rows: list[dict[str, Any]]) -> None:
    """The CPU target is for advert_int 1; at 0.1 the row is for information."""
    for row in rows:
        if row["key"] in ("cpu_many", "cpu_many_backup") and row["condition"] == "advert_int 1":
            row["target"] = f"≤ {CPU_LIMIT:g} %"
            row["met"] = row[fs.OURS]["median"] <= CPU_LIMIT if row[fs.OURS] else None


def markdown(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["settings"]
    rows = report["rows"]
    missed = fs.misses(rows)
    md_text = ", ".join(
        f"{v * 1000:.0f} ms at advert_int {k}" for k, v in s["master_down_s"].items()
    )
    lines = [
        "# Failover: vrrp-agent against keepalived",
        "",
        f"`{report['command']}` on {report['date']}, {report['wall_s']:.0f} s wall time. "
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, kernel "
        f"{m['kernel']}, Python {m['python']}, {m['keepalived']}, vrrp-agent {m['vrrp-agent']}. "
        f"Load average before: {report['busy']['before']['loadavg_1m']}, after: "
        f"{report['busy']['after']['loadavg_1m']}"
        + (
            " (other work was running: read the figures with that in mind)."
            if report["busy"]["busy"]
            else "."
        )
        + "",
        "",
        f"{s['repetitions']} repetitions of every timing per implementation and advert_int; "
        f"CPU over {s['cpu_windows']} windows of {s['cpu_window_s']:g} s; PSS once per start. "
        "Each cell is the median, with the p90 in parentheses. The ratio is ours divided by "
        "keepalived's median (below 1: ours is faster or smaller). Targets apply to ours, "
        "at the median.",
        "",
        *fs.table(rows, METRICS),
        "",
    ]
    if missed:
        lines += ["**Targets missed:**", "", *[f"- {x}" for x in missed], ""]
    else:
        lines += ["Every target was met in this run.", ""]
    if report["timelines"]:
        lines += [f"![One failover, both implementations]({NAME}_timeline.png)", ""]
    lines += [
        "## Reading the results",
        "",
        "- Detection, handover and client outage are set by the protocol's timers "
        "(Master_Down = 3 × advert_int + Skew_Time, Skew_Time = (256 − priority) / 256 × "
        f"advert_int; for n2: {md_text}); the rows show how "
        "close each implementation stays to them.",
        "- Reclaim: a backup ignores adverts of lower priority (RFC 5798, 6.4.2), so a "
        "restarted higher-priority node waits out its own Master_Down before it preempts; "
        "the difference between the two is their start-up time (the ready rows).",
        "- Ready: ours starts a Python interpreter and imports its modules (byte-compiled "
        "first, as pip does on a target); keepalived is C.",
        "- 255 VRIDs: each backup instance's timer restarts when it hears its master's "
        "advert, so the instances cannot expire closer together than the master's adverts "
        "were sent: the row “one round of the master's adverts spans” is the floor of the "
        "spread, and what lies above it is the backup's own work of taking over. The freeze "
        "comes at a random phase, up to one interval after the adverts the backup's timers "
        "started from, so “freeze until the last VIP moved” can be under Master_Down.",
        "- /metrics: ours only (keepalived needs an exporter beside it). In the "
        f"{MANY}-VRID runs both nodes listen; the advert capture is repeated while the "
        "client scrapes both once a second, and the scrape rows are connect until the "
        "last byte of the answer. Compare the two “one round of the master's adverts "
        "spans” rows for what scraping costs the adverts.",
        "- PSS and CPU count every process of an implementation: keepalived's parent and "
        "its VRRP child, our one process.",
        "- Cut off, n1 itself: both drop the VIP at the netlink link event, within "
        "milliseconds (bench/link_down.py times it); n1 is unreachable either way, so the "
        "client does not see it.",
        "",
        "## How it was measured",
        "",
        *[line for line in (__doc__ or "").split("\n\n", 1)[1].splitlines()],
        "",
        "Detection and handover are measured from the signal to the VIP's arrival in n2's "
        "kernel (RTM_NEWADDR). Client outage is the time during which echo probes sent every "
        f"{PROBE_INTERVAL * 1000:g} ms went unanswered; a reply later than 20 ms counts as lost, "
        "because the client's kernel queues probes while it re-resolves the VIP's MAC and "
        "releases them when it learns the new holder. "
        "Ready is exec of `ip netns exec` until the first notify_fifo line: keepalived "
        "sends no sd_notify outside systemd, and both write that line once their "
        "instances run.",
        "",
        f"Raw values: [{NAME}.json]({NAME}.json).",
        "",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    from vrrp_agent import __version__

    return {**describe({"keepalived": ["keepalived", "--version"]}), "vrrp-agent": __version__}


def render(report: dict[str, Any], out_dir: Path) -> None:
    (out_dir / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{NAME}.md").write_text(markdown(report))
    if not report["timelines"]:
        return  # --only many: no failover of one VIP was timed
    from bench import timeline_plot

    timeline_plot.draw(
        report["timelines"],
        out_dir / f"{NAME}_timeline.png",
        "One failover: the master's switch port goes down at 0",
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--repetitions", type=int, default=10)
    p.add_argument("--advert-ints", type=float, nargs="+", default=[1.0, 0.1])
    p.add_argument("--cpu-windows", type=int, default=5)
    p.add_argument("--cpu-window", type=float, default=4.0, help="seconds")
    p.add_argument("--only", choices=["one", "many"], help="one part only (for a quick look)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true", help="only redraw from the .json in --out-dir")
    args = p.parse_args(argv)
    if args.render:
        render(json.loads((args.out_dir / f"{NAME}.json").read_text()), args.out_dir)
        return 0
    if os.geteuid() != 0:
        print("make bench needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    if not shutil.which("keepalived"):
        print("keepalived is not installed (make deps installs it)", file=sys.stderr)
        return 2
    # SIGTERM (a Ctrl-C from make, a timeout) unwinds like Ctrl-C: the
    # namespaces and daemons go away.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # On a target the agent runs from a wheel that pip byte-compiled at install;
    # here it runs from the checkout, and with PYTHONDONTWRITEBYTECODE set (as on
    # these machines) every exec compiled its ~60 modules again, 100 ms or more
    # of the "ready" rows that no deployed agent pays.
    import vrrp_agent

    compileall.compile_dir(Path(vrrp_agent.__file__).parent, quiet=1)
    impls: list[Implementation] = [Keepalived(), Ours()]
    before = load()
    started = dt.datetime.now(dt.UTC)
    wall = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - wall:6.1f}s] {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        lab = Lab(Path(tmp)).open(3)
        bench = None
        try:
            bench = Bench(lab, Path(tmp), args.repetitions, args.cpu_windows, args.cpu_window, log)
            for k, adv in enumerate(args.advert_ints):
                order = impls if k % 2 == 0 else impls[::-1]
                if args.only != "many":
                    for impl in order:
                        bench.one_vip(impl, adv, timeline=k == 0)
                if args.only != "one":
                    for impl in order:
                        bench.many(impl, adv)
        except BaseException:
            print(f"logs kept in {tmp}.failed", file=sys.stderr)
            shutil.copytree(
                tmp,
                f"{tmp}.failed",
                dirs_exist_ok=True,
                ignore_dangling_symlinks=True,
                ignore=shutil.ignore_patterns("*.fifo", "*.sock"),
            )
            raise
        finally:
            if bench is not None:
                bench.close()
            lab.close()
    after = load()
    rows = fs.build_rows(METRICS, bench.samples)
    cpu_target(rows)
    python_cmd = shlex.join(["python", "-m", "bench.failover", *(argv or sys.argv[1:])])
    report = {
        "benchmark": NAME,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench" if os.environ.get("MAKELEVEL") else python_cmd,
        "python_command": python_cmd,
        "wall_s": round(time.monotonic() - wall, 1),
        "machine": machine(),
        "busy": {
            "busy": before["molecule_running"]
            or after["molecule_running"]
            or before["loadavg_1m"] > 0.5,
            "before": before,
            "after": after,
        },
        "settings": {
            "repetitions": args.repetitions,
            "advert_ints": args.advert_ints,
            "cpu_windows": args.cpu_windows,
            "cpu_window_s": args.cpu_window,
            "probe_interval_s": PROBE_INTERVAL,
            "priorities": PRIORITY,
            "master_down_s": {f"{a:g}": round(master_down(a), 4) for a in args.advert_ints},
        },
        "rows": rows,
        "timelines": bench.timelines,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    render(report, args.out_dir)
    print(markdown(report))
    print(
        f"wrote {args.out_dir}/{NAME}.md, .json and _timeline.png ({report['wall_s']} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
