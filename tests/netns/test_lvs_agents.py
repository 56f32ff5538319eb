"""Virtual servers on two real directors: health checks take a dead real
server out of rotation and back, only the VIP holder programs the data plane
(nftables), and a frozen director is replaced through VRRP while clients
keep being served. For NAT and for DR.

Topology (labkit/netns.py, two links): n1 and n2 are the directors, n3
and n4 the real servers (web3, web4), n5 the client.
- DR: everything on br0; the real servers hold the VIP on lo and neither
  answer nor announce ARP for it (arp_ignore=1, arp_announce=2).
- NAT: the client on br0, the real servers on br1 only, routed through a
  second VIP on the directors' br1 side; the two VIPs are one sync group, so
  the gateway moves with the service. The directors forward (the agent does
  not touch sysctls: set here, as an operator would).

Bounds come from the settings: a dead real server is out within
delay_loop + (retry+1)*connect_timeout + delay_before_retry, a recovered one
back within delay_loop + connect_timeout; VRRP moves within Master_Down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from labkit import http_probe
from labkit.netns import Agent, Lab
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

HERE = Path(__file__).resolve().parent
VIP, GW = "10.99.0.100", "10.99.1.254"
ADVERT_INT = 0.5
DELAY_LOOP, CONNECT_TIMEOUT, RETRY, DELAY_BEFORE_RETRY = 1.0, 0.5, 1, 0.5
MARGIN = 0.8
WEBS = {"n3": "web3", "n4": "web4"}


def rs_ip(kind: str, host: str) -> str:
    return f"10.99.{1 if kind == 'NAT' else 0}.{host[1:]}"


def director_conf(kind: str, priority: int) -> dict:
    inst = {"advert_int": ADVERT_INT, "priority": priority}
    instances = {
        "VI_1": {
            **inst,
            "interface": "eth0",
            "virtual_router_id": 51,
            "virtual_ipaddress": [f"{VIP}/24"],
        }
    }
    cfg: dict = {"global_defs": {"script_user": "nobody", "lvs_backend": "nftables"}}
    if kind == "NAT":
        instances["VI_GW"] = {
            **inst,
            "interface": "eth1",
            "virtual_router_id": 52,
            "virtual_ipaddress": [f"{GW}/24"],
        }
        cfg["vrrp_sync_groups"] = {"VG_LVS": {"group": ["VI_1", "VI_GW"]}}
    cfg["vrrp_instances"] = instances
    cfg["virtual_servers"] = [
        {
            "ip": VIP,
            "port": 80,
            "protocol": "TCP",
            "lb_algo": "rr",
            "lb_kind": kind,
            "delay_loop": DELAY_LOOP,
            "real_servers": [
                {
                    "ip": rs_ip(kind, host),
                    "port": 80,
                    "weight": 1,
                    "HTTP_GET": {
                        "url": {"path": "/", "status_code": 200},
                        "connect_timeout": CONNECT_TIMEOUT,
                        "retry": RETRY,
                        "delay_before_retry": DELAY_BEFORE_RETRY,
                    },
                }
                for host in WEBS
            ],
        }
    ]
    return cfg


def sysctl(lab: Lab, host: str, *settings: str) -> None:
    for setting in settings:
        lab[host].run("sysctl", "-qw", setting)


def build(lab: Lab, kind: str) -> dict[str, subprocess.Popen[bytes]]:
    if kind == "DR":
        for host in WEBS:
            lab[host].run("ip", "addr", "add", f"{VIP}/32", "dev", "lo")
            sysctl(lab, host, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
            lab[host].run("ip", "link", "set", "eth1", "down")
        lab["n5"].run("ip", "link", "set", "eth1", "down")
    else:
        for host in WEBS:
            lab[host].run("ip", "link", "set", "eth0", "down")
            lab[host].run("ip", "route", "add", "default", "via", GW)
        lab["n5"].run("ip", "link", "set", "eth1", "down")
        for host in ("n1", "n2"):
            sysctl(lab, host, "net.ipv4.ip_forward=1")
    return {host: web(lab, host) for host in WEBS}


def web(lab: Lab, host: str) -> subprocess.Popen[bytes]:
    name = WEBS[host]
    proc = lab.spawn(host, [sys.executable, str(HERE / "webserver.py"), name], f"{name}.log")
    wait_for(f"{name} listening", lambda: "serving" in (lab.tmp / f"{name}.log").read_text(), 5)
    return proc


def requests(lab: Lab, n: int) -> list[str]:
    out = (
        lab["n5"]
        .run(
            sys.executable,
            str(http_probe.PATH),
            "count",
            f"http://{VIP}/",
            str(n),
            "--timeout",
            "1",
        )
        .stdout
    )
    return json.loads(out)


def lvs(agent: Agent) -> dict:
    return agent.status()["virtual_servers"][0]


def rs_state(agent: Agent, kind: str, host: str) -> str:
    return lvs(agent)["real_servers"][f"{rs_ip(kind, host)}:80"]["state"]


def our_tables(lab: Lab, host: str) -> list[str]:
    tables = lab[host].run("nft", "list", "tables").stdout.splitlines()
    return [t for t in tables if "vrrp_agent_lvs" in t]


def served(answers: list[str]) -> Counter[str]:
    return Counter(a.removeprefix("Hello from ") for a in answers)


@pytest.mark.parametrize("kind", ["DR", "NAT"])
def test_virtual_server_on_two_directors(lab_lvs: Lab, kind: str) -> None:
    lab = lab_lvs
    webs = build(lab, kind)
    a1 = lab.agent("n1", director_conf(kind, 150))
    a2 = lab.agent("n2", director_conf(kind, 100))
    wait_for(
        "n1 holds the VIP", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2
    )
    wait_for("n1 programs the VIP's virtual server", lambda: lvs(a1)["active"], 2)
    assert our_tables(lab, "n1"), "the master has no rules of ours"
    assert our_tables(lab, "n2") == [], "the backup must not forward"
    assert lvs(a2)["active"] is False

    # rr over two real servers, a new connection per request.
    got = served(requests(lab, 20))
    print(f"{kind} spread: {dict(got)}")
    assert set(got) == {"web3", "web4"} and abs(got["web3"] - got["web4"]) <= 1, got

    # A dead real server leaves the rotation; traffic continues on the other.
    started = time.monotonic()
    webs["n3"].kill()
    bound = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + DELAY_BEFORE_RETRY + MARGIN
    took = wait_for("web3 DOWN", lambda: rs_state(a1, kind, "n3") == "DOWN", bound + 3, 0.05)
    print(f"{kind}: web3 out of rotation after {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    assert time.monotonic() - started <= bound + 0.5
    assert lvs(a1)["scheduled"] == [f"{rs_ip(kind, 'n4')}:80"]
    table = (
        lab["n1"]
        .run(sys.executable, "-m", "vrrp_agent.cli", "status", "-c", str(a1.config_path))
        .stdout
    )
    assert f"1/2 real servers up, down: {rs_ip(kind, 'n3')}:80" in table, table
    assert served(requests(lab, 10)) == Counter({"web4": 10})
    # The backup checks too, so it would take over with the same view.
    wait_for("n2 sees web3 DOWN", lambda: rs_state(a2, kind, "n3") == "DOWN", bound + 1, 0.05)

    webs["n3"].wait(5)
    web(lab, "n3")
    bound = DELAY_LOOP + CONNECT_TIMEOUT + MARGIN
    took = wait_for("web3 UP", lambda: rs_state(a1, kind, "n3") == "UP", bound + 3, 0.05)
    print(f"{kind}: web3 back in rotation after {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    assert set(served(requests(lab, 10))) == {"web3", "web4"}

    # A frozen director is replaced through VRRP; clients are still served.
    a1.signal(signal.SIGSTOP)
    bound = master_down_interval(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 takes the VIP", lambda: lab["n2"].has(VIP), bound + 3)
    print(f"{kind}: n2 holds the VIP {took:.3f}s after n1 froze (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n2 programs the virtual server", lambda: lvs(a2)["active"], 1)
    # The client (and in NAT the real servers' gateway) follow n2's GARPs. The
    # frozen director's kernel still holds the VIPs and its rules, so a
    # connection racing the GARPs can land there and, in NAT, lose its reply
    # to n2: the client is served again once one request went through.
    wait_for("a request served through n2", lambda: "ERR" not in requests(lab, 1)[0], 3, 0.1)
    got = served(requests(lab, 10))
    print(f"{kind} through n2: {dict(got)}")
    assert set(got) == {"web3", "web4"}, got

    a1.signal(signal.SIGCONT)
    wait_for("n1 back as master", lambda: lab["n1"].has(VIP) and not lab["n2"].has(VIP), 5)
    wait_for("n2 withdraws its rules", lambda: our_tables(lab, "n2") == [], 2)
    assert set(served(requests(lab, 10))) == {"web3", "web4"}

    # Stopping removes everything of ours.
    assert a1.stop() == 0
    assert our_tables(lab, "n1") == []
