"""Requests per second through the nftables data plane, against direct
requests to the real servers, on this machine (`make bench-lvs`, as root).

One lab (labkit/netns.py, two segments): n1 is the director, n2 the
client, n3 and n4 real servers running nginx (one worker each, a small static
file, no access log). The same two nginx serve every row; only the path and
the director's ruleset change between runs:

- direct, one:  the client to n3 over br0, nothing in between.
- direct, both: the client to n3 and n4 over br0, one wrk thread each (see
  below); the reference the load-balanced rows are compared with.
- routed:       the client to n3 and n4 on br1 through the director, plain IP
  forwarding, no nftables table: what NAT costs on top of routing (to
  addresses of their own, see `l3_routed`).
- NAT:          the VIP on the director, `NftablesPlane` lb_kind NAT, rr to
  n3/n4 on br1; the real servers answer through the director (a policy route
  for their br1 source addresses), as keepalived's NAT needs.
- DR:           the VIP on the director, `NftablesPlane` lb_kind DR, rr to
  n3/n4 on br0; the real servers hold the VIP on lo (arp_ignore=1,
  arp_announce=2) and answer the client directly.

Every row uses the same wrk settings, twice: with `Connection: close` (a new
TCP connection per request, so every request is scheduled: what a load
balancer does most work for) and with keep-alive (wrk's default; each of the
connections is scheduled once and then pinned to its real server).

"Direct, both" is one wrk process whose two threads connect to n3 and to n4
(wrk's Lua `setup` sets each thread's address), not two wrk processes in
parallel: it has the same process, threads and connections as the VIP rows,
so the client's own cost is identical and only the path differs, wrk merges
the latency histograms itself, and the connections are split evenly, as rr
splits them.

Repetitions are interleaved (every row once, then again, each round starting
one row later) so that drift on a shared machine spreads over all rows rather
than landing on one; each row gets a short unrecorded warm-up before its
first run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from bench import wrkstats
from bench.machine import describe, load
from labkit.netns import Host, Lab, inside
from labkit.poll import wait_for
from vrrp_agent.config.model import RealServer, VirtualServer
from vrrp_agent.lvs.nftables import NftablesPlane
from vrrp_agent.lvs.plan import plan_service

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NAME = "lvs_nftables"

VIP = "10.99.0.100"
DIRECTOR, CLIENT, REALS = "n1", "n2", ("n3", "n4")
STATUS_PORT = 8081  # nginx stub_status, on each real server's loopback
BODY_BYTES = 128
MODES = {
    "close": "a new connection per request (`-H 'Connection: close'`)",
    "keep-alive": "wrk's default, connections kept open (each scheduled once, then pinned)",
}


def l2(rs: str) -> str:
    return f"10.99.0.{rs[1:]}"


def l3(rs: str) -> str:
    return f"10.99.1.{rs[1:]}"


def l3_routed(rs: str) -> str:
    """A second address on the real server's br1 link, for the routed row alone.

    With `Connection: close` the real servers keep every connection in
    TIME_WAIT for a minute, and the client's ports come round again within
    seconds. Were the routed row to use NAT's addresses, a NAT connection
    could meet a routed one's TIME_WAIT on the same four-tuple: the client
    stamps each destination with its own TCP timestamp offset (here the VIP's,
    there the real server's), so the server would take the SYN for an old
    duplicate and the client would wait a second to retry.
    """
    return f"10.99.1.{10 + int(rs[1:])}"


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    label: str
    url_host: str
    addrs: tuple[str, ...] = ()  # per-thread addresses (BENCH_ADDRS); empty: the URL's host
    plane: str | None = None  # lb_kind applied on the director, or none
    expect: frozenset[str] = frozenset(REALS)  # real servers that must answer


ROWS = (
    Row("direct_one", "direct to n3", l2("n3"), expect=frozenset({"n3"})),
    Row("direct_both", "direct to n3 + n4", l2("n3"), tuple(map(l2, REALS))),
    Row(
        "routed",
        "routed via director to n3 + n4, no nftables",
        l3_routed("n3"),
        tuple(map(l3_routed, REALS)),
    ),
    Row("nat", "VIP, nftables NAT, rr", VIP, plane="NAT"),
    Row("dr", "VIP, nftables DR, rr", VIP, plane="DR"),
)


# --- the lab -----------------------------------------------------------------------


def sysctl(host: Host, *settings: str) -> None:
    for s in settings:
        host.run("sysctl", "-qw", s)


NGINX_CONF = """\
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    server {{
        listen 80 default_server;
        root {d}/www;
        index index.txt;
    }}
    server {{
        listen 127.0.0.1:{status};
        location / {{ stub_status; }}
    }}
}}
"""


def body(name: str) -> str:
    return f"served by {name}\n".ljust(BODY_BYTES - 1, ".") + "\n"


def start_nginx(lab: Lab, name: str) -> None:
    d = lab.tmp / f"nginx-{name}"
    (d / "www").mkdir(parents=True)
    (d / "www" / "index.txt").write_text(body(name))
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONF.format(d=d, status=STATUS_PORT))
    args = ["nginx", "-p", f"{d}/", "-e", f"{d}/error.log", "-c", str(conf)]
    lab[name].run(*args, "-t")
    lab.spawn(name, [*args, "-g", "daemon off;"], f"nginx-{name}.out")
    wait_for(f"nginx on {name}", lambda: served_requests(lab, name) is not None, 10, 0.05)


def build(lab: Lab) -> None:
    lab.open(4, links=2)
    director, client = lab[DIRECTOR], lab[CLIENT]
    # The test's part of keepalived's setup: the director routes (NAT, routed).
    sysctl(director, "net.ipv4.ip_forward=1")
    director.run("ip", "addr", "add", f"{VIP}/24", "dev", "eth0")
    # The client reaches br1 only through the director.
    client.run("ip", "link", "set", "eth1", "down")
    client.run("ip", "route", "add", "10.99.1.0/24", "via", "10.99.0.1")
    for name in REALS:
        rs = lab[name]
        # DR: the VIP on lo, neither answered nor announced in ARP.
        rs.run("ip", "addr", "add", f"{VIP}/32", "dev", "lo")
        rs.run("ip", "addr", "add", f"{l3_routed(name)}/24", "dev", "eth1")
        sysctl(
            rs,
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.eth1.rp_filter=0",
        )
        # NAT and routed: what leaves from the br1 address goes back through
        # the director (the client's own segment is directly attached on eth0).
        rs.run("ip", "rule", "add", "from", "10.99.1.0/24", "lookup", "100", "priority", "100")
        rs.run("ip", "route", "add", "default", "via", "10.99.1.1", "dev", "eth1", "table", "100")
        start_nginx(lab, name)


def virtual_server(kind: str) -> VirtualServer:
    addr = l3 if kind == "NAT" else l2
    return VirtualServer(
        ip_address(VIP),
        80,
        lb_algo="rr",
        lb_kind=kind,
        real_servers=tuple(RealServer(ip_address(addr(rs)), 80) for rs in REALS),
    )


def configure(lab: Lab, plane: NftablesPlane, row: Row) -> None:
    with inside(lab[DIRECTOR].ns):
        plane.clear()
        if row.plane:
            plane.apply([(plan_service(virtual_server(row.plane), {}), "eth0")])
            if plane.unresolved:
                raise RuntimeError(f"real servers without a MAC: {sorted(plane.unresolved)}")


def served_requests(lab: Lab, name: str) -> int | None:
    """nginx's request counter on `name`, or None while it does not answer."""
    with inside(lab[name].ns):
        conn = http.client.HTTPConnection("127.0.0.1", STATUS_PORT, timeout=2)
        try:
            conn.request("GET", "/")
            return wrkstats.stub_status_requests(conn.getresponse().read().decode())
        except OSError:
            return None
        finally:
            conn.close()


def counters(lab: Lab) -> dict[str, int]:
    out = {}
    for name in REALS:
        n = served_requests(lab, name)
        if n is None:
            raise RuntimeError(f"nginx on {name} does not answer its status page")
        out[name] = n
    return out


def syn_retransmits(lab: Lab) -> int:
    """The client's SYN retransmissions so far: a connection that waited a
    second (or more) for its handshake, which wrk's latency does not show."""
    with inside(lab[CLIENT].ns):
        text = Path("/proc/self/net/netstat").read_text()
    return wrkstats.netstat_counters(text)["TcpExt.TCPSynRetrans"]


def probe(lab: Lab, row: Row) -> None:
    """A few fresh connections along the row's path: the right servers answer."""
    seen = set()
    targets = row.addrs or (row.url_host,)
    with inside(lab[CLIENT].ns):
        for i in range(4):
            conn = http.client.HTTPConnection(targets[i % len(targets)], 80, timeout=2)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                text = conn.getresponse().read().decode()
            finally:
                conn.close()
            seen.add(text.split()[2] if text.startswith("served by ") else text[:40])
    if seen != set(row.expect):
        raise RuntimeError(f"{row.id}: expected answers from {sorted(row.expect)}, got {seen}")


# --- measuring ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    threads: int
    connections: int
    duration: int
    repetitions: int
    warmup: int

    def wrk_args(self, mode: str, duration: int | None = None) -> list[str]:
        args = ["-t", str(self.threads), "-c", str(self.connections)]
        args += ["-d", f"{duration or self.duration}s", "--timeout", "2s"]
        if mode == "close":
            args += ["-H", "Connection: close"]
        return args


def run_wrk(lab: Lab, script: Path, settings: Settings, row: Row, mode: str, duration: int) -> str:
    cmd = ["env", f"BENCH_ADDRS={','.join(row.addrs)}", "wrk"]
    cmd += [*settings.wrk_args(mode, duration), "-s", str(script), f"http://{row.url_host}/"]
    proc = lab[CLIENT].run(*cmd, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def rotated(rows: Sequence[Row], rep: int) -> list[Row]:
    """Each repetition starts one row later, so no row always runs first
    (after the switch of connection mode) or right after the same neighbour."""
    k = rep % len(rows)
    return [*rows[k:], *rows[:k]]


def measure(lab: Lab, settings: Settings, log: Any) -> list[dict[str, Any]]:
    script = lab.tmp / "bench.lua"
    script.write_text(wrkstats.LUA)
    plane = NftablesPlane()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(settings.repetitions):
        for mode in MODES:
            for row in rotated(ROWS, rep):
                configure(lab, plane, row)
                if rep == 0:
                    probe(lab, row)
                    if settings.warmup:
                        run_wrk(lab, script, settings, row, mode, settings.warmup)
                before, retx = counters(lab), syn_retransmits(lab)
                result = wrkstats.parse(
                    run_wrk(lab, script, settings, row, mode, settings.duration)
                )
                after, retx = counters(lab), syn_retransmits(lab) - retx
                others = load()
                # minus the status request itself
                served = {n: after[n] - before[n] - 1 for n in REALS}
                runs.setdefault((mode, row.id), []).append(
                    {
                        "rps": round(result.rps, 1),
                        "requests": result.requests,
                        "duration_s": round(result.duration_us / 1e6, 3),
                        "latency_us": dict(result.latency_us),
                        "errors": dict(result.errors),
                        "served": served,
                        "syn_retrans": retx,
                        "machine_after": others,
                    }
                )
                print(
                    f"rep {rep + 1} {mode:10} {row.id:11} {result.rps:10,.0f} req/s"
                    f"  p50 {result.latency_us['p50'] / 1000:.2f} ms"
                    f"  p99 {result.latency_us['p99'] / 1000:.2f} ms"
                    f"  errors {result.error_count}  SYN retx {retx}  served {served}",
                    file=log,
                    flush=True,
                )
    with inside(lab[DIRECTOR].ns):
        plane.clear()
    return summarize_rows(runs)


def summarize_rows(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    medians = {}
    for (mode, row_id), rs in runs.items():
        medians[(mode, row_id)] = wrkstats.summarize([r["rps"] for r in rs]).median
    for (mode, row_id), rs in runs.items():
        row = next(r for r in ROWS if r.id == row_id)
        rps = wrkstats.summarize([r["rps"] for r in rs])
        served: dict[str, int] = {n: sum(r["served"][n] for r in rs) for n in REALS}
        rows.append(
            {
                "mode": mode,
                "id": row_id,
                "label": row.label,
                "rps": rps.as_dict(),
                "p50_us": wrkstats.summarize([r["latency_us"]["p50"] for r in rs]).as_dict(),
                "p99_us": wrkstats.summarize([r["latency_us"]["p99"] for r in rs]).as_dict(),
                "ratio_to_direct_both": _round(
                    wrkstats.ratio(rps.median, medians.get((mode, "direct_both"), 0))
                ),
                "ratio_to_direct_one": _round(
                    wrkstats.ratio(rps.median, medians.get((mode, "direct_one"), 0))
                ),
                "errors": sum(sum(r["errors"].values()) for r in rs),
                "syn_retrans": sum(r["syn_retrans"] for r in rs),
                "share": {k: round(v, 3) for k, v in wrkstats.shares(served).items()},
                "runs": rs,
            }
        )
    return rows


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# --- the machine -------------------------------------------------------------------


def machine() -> dict[str, Any]:
    m = describe({"nft": ["nft", "--version"], "nginx": ["nginx", "-v"], "wrk": ["wrk", "-v"]})
    return {**m, "wrk": m["wrk"].split(" Copyright")[0]}


# --- the report --------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m, s, b = report["machine"], report["settings"], report["busy"]
    busy = ("**yes**: " if b["busy"] else "no: ") + (
        f"load average {b['before']['loadavg_1m']:.2f} before the run"
        f" ({b['after']['loadavg_1m']:.2f} after, this benchmark's own included);"
        f" molecule running before / after: {b['before']['molecule_running']} /"
        f" {b['after']['molecule_running']}; podman conmon processes:"
        f" {b['before']['podman_conmon']} / {b['after']['podman_conmon']};"
        f" runs with molecule running: {b['runs_with_molecule_running']},"
        f" with podman containers running: {b['runs_with_podman_running']}"
        f" (of {sum(len(r['runs']) for r in report['rows'])})"
    )
    ratio = {(r["mode"], r["id"]): r["ratio_to_direct_both"] for r in report["rows"]}

    def x(mode: str, row: str) -> str:
        value = ratio.get((mode, row))
        return "–" if value is None else f"{value:.2f}×"

    summary = [
        f"- {mode}: NAT {x(mode, 'nat')}, DR {x(mode, 'dr')} of the direct rate to both"
        f" real servers; routing through the director without nftables {x(mode, 'routed')}"
        for mode in MODES
    ]
    cpu = b["cpu_pct_during_measurement"]
    cpu_s = ", ".join(f"{k} {v:.1f}%" for k, v in cpu.items() if v)
    rows = sorted(
        report["rows"],
        key=lambda r: (list(MODES).index(r["mode"]), [x.id for x in ROWS].index(r["id"])),
    )
    lines = [
        "# HTTP through the nftables LVS data plane vs direct",
        "",
        f"Date: {report['date']}  ",
        f"Command: `{report['command']}`"
        + (
            ""
            if report["command"] == report["python_command"]
            else f" (runs `{report['python_command']}`)"
        )
        + "  ",
        f"wrk: `{report['wrk_command']}`  ",
        f"Repetitions: {s['repetitions']} per row, interleaved; median, min – max, and"
        " spread = (max − min) / median. Ratios are of medians.  ",
        f"Machine busy with other work: {busy}",
        "",
        "## Machine",
        "",
        f"- CPUs: {m['nproc']} × {m['cpu_model']} ({m['cpu_mhz']} MHz), {m['mem_gib']} GiB",
        f"- kernel {m['kernel']}; {m['nft']}; {m['nginx']}; {m['wrk']}; Python {m['python']}",
        "- everything (wrk, both nginx, the director's forwarding) shares these CPUs:"
        " the numbers are CPU cost per request on this machine, not link capacity",
        f"- CPU time over the whole measurement (all processes): {cpu_s}",
        "",
        "## Results",
        "",
        "Requests per second through the VIP, as a fraction of the same two nginx"
        " served directly (medians):",
        "",
        *summary,
        "",
        wrkstats.table(rows),
        "- close: " + MODES["close"] + "; keep-alive: " + MODES["keep-alive"] + ".",
        "- × direct, both: against n3 + n4 served directly (one wrk thread each), the"
        " fair reference for rows that spread over both servers; × direct, one: against n3 alone.",
        "- p50/p99: wrk's latency from writing a request to reading its response (a"
        " new connection's handshake is not included), median over the repetitions.",
        "- errors: wrk's socket errors and non-2xx answers; SYN retx: the client's"
        " SYN retransmissions (a handshake that waited ≥ 1 s, invisible in wrk's latency);"
        " share: requests each nginx counted (stub_status); all summed over the repetitions.",
        "",
        "## Setup",
        "",
        f"- nginx: one worker per real server, a {BODY_BYTES}-byte static file, no access"
        " log, keepalive_requests 1000000.",
        f"- wrk: {s['threads']} threads, {s['connections']} connections,"
        f" {s['duration']} s per run, "
        + (f"after a {s['warmup']} s warm-up per row" if s["warmup"] else "no warm-up")
        + ", timeout 2 s.",
        "- Lab: labkit/netns.py; the director applies the plane with"
        " `NftablesPlane().apply([(plan_service(vs, {}), 'eth0')])` (rr over n3, n4);"
        " see bench/lvs_throughput.py's docstring for each path.",
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=int, default=8, help="seconds per run")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="seconds, once per row, not recorded")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the .json in --out-dir"
    )
    args = p.parse_args(argv)
    if args.render:
        report = json.loads((args.out_dir / f"{NAME}.json").read_text())
        (args.out_dir / f"{NAME}.md").write_text(markdown(report))
        return 0
    if os.geteuid() != 0:
        print("bench-lvs needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    for tool in ("wrk", "nginx", "nft", "ip"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (make bench-lvs installs it)", file=sys.stderr)
            return 2
    if args.threads % len(REALS) or args.connections % args.threads:
        print("threads must split evenly over the real servers, connections over threads")
        return 2
    settings = Settings(
        args.threads, args.connections, args.duration, args.repetitions, args.warmup
    )
    before = load()
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-lvs-") as tmp:
        lab = Lab(Path(tmp))
        try:
            build(lab)
            cpu_before = wrkstats.cpu_times(Path("/proc/stat").read_text())
            rows = measure(lab, settings, sys.stderr)
            cpu = wrkstats.cpu_split(cpu_before, wrkstats.cpu_times(Path("/proc/stat").read_text()))
        finally:
            lab.close()
    after = load()
    samples = [before, after] + [r["machine_after"] for row in rows for r in row["runs"]]
    python_cmd = shlex.join(["python", "-m", "bench.lvs_throughput", *(argv or sys.argv[1:])])
    wrk_cmd = shlex.join(["wrk", *settings.wrk_args("close"), "-s", "bench.lua", "http://TARGET/"])
    report = {
        "benchmark": NAME,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench-lvs" if os.environ.get("MAKELEVEL") else python_cmd,
        "python_command": python_cmd,
        "wrk_command": wrk_cmd.replace(" -H 'Connection: close'", " [-H 'Connection: close']"),
        "wall_s": round(time.monotonic() - t0, 1),
        "machine": machine(),
        "busy": {
            "busy": any(x["molecule_running"] or x["podman_conmon"] for x in samples)
            or before["loadavg_1m"] > 0.5,
            "runs_with_molecule_running": sum(x["molecule_running"] for x in samples[2:]),
            "runs_with_podman_running": sum(bool(x["podman_conmon"]) for x in samples[2:]),
            "before": before,
            "after": after,
            "cpu_pct_during_measurement": cpu,
        },
        "settings": {
            **{k: v for k, v in vars(args).items() if k != "render"},
            "out_dir": _shown(args.out_dir),
            "body_bytes": BODY_BYTES,
            "nginx_workers_per_server": 1,
            "modes": MODES,
        },
        "rows": rows,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / f"{NAME}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {args.out_dir}/{NAME}.md and .json ({report['wall_s']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
