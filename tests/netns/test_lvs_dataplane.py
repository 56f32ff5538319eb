"""The nftables data plane moving real HTTP traffic between namespaces.

One lab per lb_kind, shared by that kind's tests (each test starts from a
cleared plane): n1 is the director, n2 the client (with extra source
addresses), n3..n5 real servers and n6 a sorry server, each answering HTTP
with its own name. The plane is applied directly inside the director's
namespace, as the daemon would; no VRRP agent runs here.

- NAT (two segments): clients on eth0, real servers on eth1 with their
  default route via the director (10.99.1.1), whose forwarding the test turns
  on (the agent leaves sysctls alone). The virtual server's port 80 maps to
  the real servers' 8080.
- DR (one segment): the real servers hold the VIP on lo with arp_ignore=1 and
  arp_announce=2 and answer the client directly; the director does not know
  their MACs beforehand (the plane resolves them).

Every request is a fresh connection; counts are exact where the scheduler is
deterministic (numgen counts connections) and the tests say so.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

import pytest

from labkit.netns import Host, Lab, inside
from labkit.poll import wait_for
from vrrp_agent.config.model import RealServer, SorryServer, VirtualServer
from vrrp_agent.lvs.nftables import DR_TABLE_PREFIX, NAT_TABLE, NftablesPlane
from vrrp_agent.lvs.plan import plan_service

pytestmark = pytest.mark.netns

VIP4, VIP6 = "10.99.0.100", "fd99:0::100"
SOURCES = ["10.99.0.2", "10.99.0.200", "10.99.0.201"]  # the client's addresses
REALS = ["n3", "n4", "n5"]
SORRY = "n6"

SERVER = """
import socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too
        super().server_bind()
server = Server(("::", port), Handler)
print("ready", flush=True)
server.serve_forever()
"""

CLIENT = """
import http.client, sys, time
host, count, source, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
for i in range(count):
    if i and delay:
        time.sleep(delay)
    conn = http.client.HTTPConnection(host, 80, timeout=3, source_address=(source, 0))
    try:
        conn.request("GET", "/")
        print(conn.getresponse().read().decode(), flush=True)
    except OSError as err:
        print("ERR:" + type(err).__name__, flush=True)
    finally:
        conn.close()
"""


# --- running the plane inside the director's namespace -----------------------------


@dataclass
class Site:
    lab: Lab
    kind: str
    tmp: Path
    plane: NftablesPlane

    @property
    def director(self) -> Host:
        return self.lab["n1"]

    @property
    def client(self) -> Host:
        return self.lab["n2"]

    def rs_ip(self, name: str, v6: bool = False) -> str:
        i = int(name[1:])
        seg = 1 if self.kind == "NAT" else 0
        return f"fd99:{seg}::{i}" if v6 else f"10.99.{seg}.{i}"

    @property
    def rs_port(self) -> int:
        return 8080 if self.kind == "NAT" else 80

    def vs(
        self, algo: str = "rr", reals: dict[str, int] | None = None, v6: bool = False, **kw: object
    ) -> VirtualServer:
        reals = reals or {name: 1 for name in REALS}
        return VirtualServer(
            ip_address(VIP6 if v6 else VIP4),
            80,
            lb_algo=algo,
            lb_kind=self.kind,
            real_servers=tuple(
                RealServer(ip_address(self.rs_ip(n, v6)), self.rs_port, w) for n, w in reals.items()
            ),
            **kw,
        )

    def apply(self, vs: VirtualServer, down: tuple[str, ...] = ()) -> None:
        v6 = vs.ip.version == 6
        healthy = {(ip_address(self.rs_ip(n, v6)), self.rs_port): False for n in down}
        with inside(self.director.ns):
            self.plane.apply([(plan_service(vs, healthy), "eth0")])

    def clear(self) -> None:
        with inside(self.director.ns):
            self.plane.clear()

    def get(
        self, count: int, source: str = SOURCES[0], delay: float = 0, v6: bool = False
    ) -> list[str]:
        host, source = (VIP6, "fd99:0::2") if v6 else (VIP4, source)
        out = self.client.run(sys.executable, "-c", CLIENT, host, str(count), source, str(delay))
        return out.stdout.split()

    def tables(self) -> set[str]:
        out = self.director.run("nft", "list", "tables").stdout
        return {line.strip() for line in out.splitlines() if line.strip()}


def _serve(lab: Lab, name: str, port: int) -> None:
    log = f"http-{name}-{port}.log"
    lab.spawn(name, [sys.executable, "-c", SERVER, name, str(port)], log)
    wait_for(f"http server on {name}", lambda: "ready" in (lab.tmp / log).read_text(), 10)


def _sysctl(host: Host, *settings: str) -> None:
    for s in settings:
        host.run("sysctl", "-qw", s)


def _build(tmp: Path, kind: str) -> Lab:
    lab = Lab(tmp).open(6, links=2 if kind == "NAT" else 1)
    director, client = lab["n1"], lab["n2"]
    director.run("ip", "addr", "add", f"{VIP4}/24", "dev", "eth0")
    director.run("ip", "addr", "add", f"{VIP6}/64", "dev", "eth0", "nodad")
    for src in SOURCES[1:]:
        client.run("ip", "addr", "add", f"{src}/24", "dev", "eth0")
    servers = [*REALS, SORRY]
    if kind == "NAT":
        # the test's part of keepalived's NAT setup: the director routes
        _sysctl(director, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        client.run("ip", "link", "set", "eth1", "down")
        for name in servers:
            rs = lab[name]
            rs.run("ip", "link", "set", "eth0", "down")  # replies must go back via the director
            rs.run("ip", "route", "add", "default", "via", "10.99.1.1")
            rs.run("ip", "-6", "route", "add", "default", "via", "fd99:1::1")
            _serve(lab, name, 8080)
    else:
        for name in servers:
            rs = lab[name]
            rs.run("ip", "addr", "add", f"{VIP4}/32", "dev", "lo")
            rs.run("ip", "addr", "add", f"{VIP6}/128", "dev", "lo")
            _sysctl(
                rs,
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth0.arp_ignore=1",
                "net.ipv4.conf.eth0.arp_announce=2",
            )
            _serve(lab, name, 80)
    return lab


@pytest.fixture(scope="module", params=["NAT", "DR"])
def site_lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    if os.geteuid() != 0:
        message = "netns tests need root (network namespaces)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"lvs-{kind}")
    lab = _build(tmp, kind)
    try:
        yield Site(lab, kind, tmp, NftablesPlane())
    finally:
        lab.close()


@pytest.fixture
def site(site_lab: Site) -> Iterator[Site]:
    site_lab.clear()  # each test starts with no stickiness, connections or counters
    yield site_lab
    site_lab.clear()


def show(site: Site, what: str, counts: object) -> None:
    print(f"[{site.kind}] {what}: {counts}")


# --- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_rr_spreads_fresh_connections_evenly(site: Site, v6: bool) -> None:
    site.apply(site.vs("rr", v6=v6))
    n = 30
    counts = Counter(site.get(n, v6=v6))
    show(site, f"rr {n} requests {'v6' if v6 else 'v4'}", dict(counts))
    assert set(counts) == set(REALS)
    for name in REALS:
        assert abs(counts[name] - n / len(REALS)) <= 1, counts


def test_wrr_follows_weights_exactly(site: Site) -> None:
    site.apply(site.vs("wrr", {"n3": 3, "n4": 1}))
    counts = Counter(site.get(40))
    show(site, "wrr 3:1 over 40", dict(counts))
    assert counts == {"n3": 30, "n4": 10}


def test_sh_keeps_each_source_on_one_server(site: Site) -> None:
    site.apply(site.vs("sh"))
    seen = {}
    for source in SOURCES[:2]:
        counts = Counter(site.get(12, source=source))
        seen[source] = dict(counts)
        assert len(counts) == 1 and sum(counts.values()) == 12, counts
    show(site, "sh per source", seen)
    # and again after a re-apply of the same plan: the seed is fixed
    site.apply(site.vs("sh"))
    for source in SOURCES[:2]:
        assert dict(Counter(site.get(4, source=source))) == {name: 4 for name in seen[source]}


def test_persistence_holds_across_connections_and_ends_after_the_timeout(site: Site) -> None:
    a, b, c = SOURCES
    vs = site.vs("rr", persistence_timeout=2)
    site.apply(vs)
    # a: four connections a second apart, 3 s in all: each gap < 2 s keeps it
    first = site.get(4, source=a, delay=1.0)
    assert first == ["n3"] * 4, first  # numgen slot 0, then stuck
    assert site.get(2, source=b) == ["n4", "n4"]  # slot 1 for a new source
    # replacing the ruleset (same plan) keeps each client's server: without the
    # carried-over sets b would restart at slot 0 (n3)
    site.apply(vs)
    assert site.get(1, source=b) == ["n4"]
    assert site.get(1, source=a) == ["n3"]
    assert site.get(1, source=c) == ["n3"]  # slot 0 of the new rules: next slot is 1
    time.sleep(3)  # > 2 s of silence from a
    after = site.get(1, source=a)
    show(site, "persistence a / after 3 s idle", (first, after))
    assert after == ["n4"], after  # scheduled afresh (slot 1), no longer n3


def test_removing_a_backend_moves_new_connections_to_the_rest(site: Site) -> None:
    site.apply(site.vs("rr"))
    assert Counter(site.get(6)) == {"n3": 2, "n4": 2, "n5": 2}
    site.apply(site.vs("rr"), down=("n5",))
    counts = Counter(site.get(10))
    show(site, "rr after n5 left", dict(counts))
    assert counts == {"n3": 5, "n4": 5}


def test_sorry_server_gets_everything_when_it_is_the_only_backend(site: Site) -> None:
    sorry = SorryServer(ip_address(site.rs_ip(SORRY)), site.rs_port)
    site.apply(site.vs("wrr", {"n3": 2, "n4": 1}, sorry_server=sorry), down=("n3", "n4"))
    counts = Counter(site.get(8))
    show(site, "all real servers down", dict(counts))
    assert counts == {SORRY: 8}
    # one comes back: the sorry server is out again
    site.apply(site.vs("wrr", {"n3": 2, "n4": 1}, sorry_server=sorry), down=("n4",))
    assert Counter(site.get(4)) == {"n3": 4}


def test_clear_removes_our_tables_and_leaves_a_foreign_one(site: Site) -> None:
    # one foreign table plain, one whose name our DR prefix nearly matches
    foreign = {"table inet someone_else", "table netdev vrrp_agent_lvs"}
    for table in foreign:
        site.director.run("nft", "add", *table.split())
    try:
        site.apply(site.vs("rr"))
        ours = (
            f"table netdev {DR_TABLE_PREFIX}eth0"
            if site.kind == "DR"
            else f"table inet {NAT_TABLE}"
        )
        assert site.tables() == foreign | {ours}
        assert Counter(site.get(3)) == {"n3": 1, "n4": 1, "n5": 1}
        site.clear()
        assert site.tables() == foreign
        # nothing forwards: the director itself refuses port 80
        assert site.get(2) == ["ERR:ConnectionRefusedError"] * 2
        site.clear()  # nothing of ours left: no error
        assert site.tables() == foreign
    finally:
        for table in foreign:
            site.director.run("nft", "delete", *table.split(), check=False)


# MAC addresses matter for DR only: this test runs on the DR lab alone.
@pytest.mark.parametrize("site_lab", ["DR"], indirect=True)
def test_dr_backend_without_a_mac_is_left_out_until_it_resolves(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # the director has not talked to n3..n5: apply() resolves them itself
    site.director.run("ip", "neigh", "flush", "dev", "eth0")
    absent = "10.99.0.77"
    vs = site.vs("rr")
    vs = VirtualServer(
        vs.ip,
        vs.port,
        lb_algo="rr",
        lb_kind="DR",
        real_servers=(
            *vs.real_servers,
            RealServer(ip_address(absent), 80),
        ),
    )
    with caplog.at_level(logging.WARNING, logger="vrrp_agent.lvs.nftables"):
        site.apply(vs)
    assert site.plane.unresolved == {("eth0", ip_address(absent))}
    assert f"no MAC address for real server {absent} on eth0" in caplog.text
    counts = Counter(site.get(9))
    show(site, "rr with an unresolvable fourth backend", dict(counts))
    assert counts == {"n3": 3, "n4": 3, "n5": 3}
