#!/usr/bin/env python3
"""make demo: a local lab of systemd containers, deployed with site.yml, then
one failover and one failback drilled and timed. With lvs_nginx, the requests
the client sends through the VIP are counted per real server, before and after
a real server's nginx stops and starts again, and through whichever director
holds the VIP. The lab stays up; `make demo-down` removes it.

    lab/demo.py up [master_backup|dual_master|lvs_nginx]
    lab/demo.py down
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a script (make demo: python lab/demo.py), so the lab kit at the
# repository root is not on the path by itself.
sys.path.insert(0, str(REPO))

from labkit.podman import addresses, answers, containers, freeze, podman, run, thaw  # noqa: E402
from labkit.poll import wait_for  # noqa: E402
from labkit.vips import holders, tally  # noqa: E402

STATE = REPO / ".demo"
NETWORK, SUBNET, PREFIX = "vrrp-demo", "10.89.100.0/24", "10.89.100"
BIN = Path(sys.executable).parent

TOPOLOGIES = {
    "master_backup": {
        "nodes": ["node1", "node2"],
        "real_servers": [],
        "vips": [f"{PREFIX}.100/24"],
    },
    "dual_master": {
        "nodes": ["node1", "node2"],
        "real_servers": [],
        "vips": [f"{PREFIX}.101/24", f"{PREFIX}.102/24"],
    },
    "lvs_nginx": {
        "nodes": ["director1", "director2"],
        "real_servers": ["web1", "web2"],
        "vips": [f"{PREFIX}.200/24"],
        # Real-server checks quick enough to watch: a stopped nginx is out of the
        # schedule within delay_loop + (retry + 1) * connect_timeout
        # + retry * delay_before_retry = 2 + 2 * 1 + 1 * 1 = 5 s.
        "vars": {
            "vrrp_lvs_delay_loop": 2,
            "vrrp_lvs_connect_timeout": 1,
            "vrrp_lvs_retry": 1,
            "vrrp_lvs_delay_before_retry": 1,
        },
    },
}
REQUESTS = 10  # requests per look at the balancing
ADDRESS = {"node1": 11, "node2": 12, "director1": 31, "director2": 32,
           "web1": 41, "web2": 42, "client": 50}  # fmt: skip
REAL_SERVER_SYSCTLS = [
    "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.conf.lo.arp_ignore=1", "net.ipv4.conf.lo.arp_announce=2",
]  # fmt: skip


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def container_name(host: str) -> str:
    return f"demo-{host}"


def holding(vip: str, nodes: list[str]) -> list[str]:
    """The nodes (by their short names) that hold `vip`."""
    return holders(vip, nodes, lambda n: addresses(container_name(n)))


def spread(vip: str, n: int = REQUESTS) -> str:
    """`n` requests from the client through `vip`, each on a new connection:
    how many each real server answered."""
    counts = tally(answers(vip, n, client=container_name("client")))
    return ", ".join(f"{p!r} x{c}" for p, c in counts.items())


def virtual_server(node: str, vip: str) -> dict:
    """`node`'s agent's view of the virtual server on `vip` (status --json)."""
    r = run(container_name(node), "/opt/vrrp-agent/bin/vrrp-agent", "status", "--json")
    if r.returncode != 0:
        return {}
    servers = json.loads(r.stdout).get("virtual_servers", [])
    return next((v for v in servers if v["virtual_server"].startswith(f"{vip}:")), {})


def waited(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    return wait_for(what, predicate, timeout, 0.05)


def up(topology: str) -> None:
    if topology not in TOPOLOGIES:
        raise SystemExit(f"demo: TOPOLOGY must be one of {', '.join(TOPOLOGIES)}, not {topology!r}")
    t = TOPOLOGIES[topology]
    image = subprocess.run(
        [str(REPO / "lab/build-image.sh")], check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    down(quiet=True)
    say(f"starting the {topology} lab on podman network {NETWORK} ({SUBNET})")
    podman("network", "create", "--subnet", SUBNET, "--disable-dns", NETWORK)
    for host in [*t["nodes"], *t["real_servers"], "client"]:
        args = ["run", "-d", "--name", container_name(host), "--hostname", host,
                "--network", NETWORK, "--ip", f"{PREFIX}.{ADDRESS[host]}", "--systemd=always",
                "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
                "--sysctl", "net.ipv4.ip_nonlocal_bind=1",
                "--sysctl", "net.ipv6.ip_nonlocal_bind=1"]  # fmt: skip
        if host in t["real_servers"]:
            for s in REAL_SERVER_SYSCTLS:
                args += ["--sysctl", s]
        podman(*args, image, "/sbin/init")
        print(f"    {container_name(host):16} {PREFIX}.{ADDRESS[host]}")

    STATE.mkdir(exist_ok=True)
    inventory = {
        "all": {
            "children": {
                "vrrp_nodes": {
                    "hosts": {n: {"ansible_host": container_name(n)} for n in t["nodes"]}
                },
                "real_servers": {
                    "hosts": {n: {"ansible_host": container_name(n)} for n in t["real_servers"]}
                },
                "clients": {"hosts": {"client": {"ansible_host": container_name("client")}}},
            },
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
                "vrrp_topology": topology,
                "vrrp_interface": "eth0",
                "vrrp_vips": t["vips"],
                **t.get("vars", {}),
            },
        }
    }
    inv = STATE / "inventory.json"
    inv.write_text(json.dumps(inventory, indent=2))
    say(f"ansible-playbook site.yml -i {inv.relative_to(REPO)}")
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    }
    subprocess.run(
        [str(BIN / "ansible-playbook"), "site.yml", "-i", str(inv)], cwd=REPO, env=env, check=True
    )

    vips = [v.split("/")[0] for v in t["vips"]]
    nodes = t["nodes"]
    say("who holds each VIP")
    for vip in vips:
        waited(f"{vip} on one node", lambda vip=vip: len(holding(vip, nodes)) == 1, 15)
        print(f"    {vip:15} on {', '.join(holding(vip, nodes))}")

    vip = vips[0]
    master = holding(vip, nodes)[0]
    backup = next(n for n in nodes if n != master)
    lvs = topology == "lvs_nginx"
    if lvs:
        real_server_drill(master, vip, t["real_servers"])

    def client_view() -> None:
        if lvs:
            print(f"    client: {REQUESTS} x curl http://{vip}/ -> {spread(vip)}")
        else:
            page = podman(
                "exec", container_name("client"), "curl", "-s", "-m", "2", f"http://{vip}/"
            ).stdout.strip()
            print(f"    client: curl http://{vip}/ -> {page!r}")

    say(
        f"failover drill: freezing {master} (silent on the wire, then podman pause); "
        f"{backup} should take {vip}"
    )
    freeze(container_name(master))
    took = waited(f"{backup} to take {vip}", lambda: backup in holding(vip, nodes), 30)
    print(
        f"    {vip} moved to {backup} after {took:.2f}s "
        "(the bound is Master_Down: 3.61 s at priority 100 with 1 s adverts)"
    )
    if lvs:
        print(f"    {backup} balances now ({master} is frozen):")
    client_view()
    say(f"failback drill: thawing {master}; it has the higher priority and takes {vip} back")
    thaw(container_name(master))
    back = waited(f"{vip} back on {master}", lambda: holding(vip, nodes) == [master], 30)
    print(f"    {vip} back on {master} after {back:.2f}s")
    client_view()

    drill_playbook(inv, env)

    say("the lab is still running; try:")
    print(f"    podman exec {container_name(master)} /opt/vrrp-agent/bin/vrrp-agent status")
    print(f"    podman exec {container_name(master)} systemctl stop vrrp-agent")
    if lvs:
        web = t["real_servers"][0]
        print(f"    podman exec {container_name(web)} systemctl stop nginx")
    print(f"    podman exec {container_name('client')} curl -s http://{vip}/")
    print("    make demo-down    # remove it")


def drill_playbook(inv: Path, env: dict[str, str]) -> None:
    """What an operator runs against a deployed inventory: playbooks/drill.yml
    drains each holder in turn while the client probes every VIP, and reports."""
    report = STATE / "drill-report.json"
    say(f"ansible-playbook playbooks/drill.yml -i {inv.relative_to(REPO)}")
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "playbooks/drill.yml", "-i", str(inv),
         "-e", f"drill_report={report}"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-2000:], sep="\n")
        raise SystemExit(f"demo: the drill playbook failed (rc {r.returncode})")
    sys.path.insert(0, str(REPO / "roles/vrrp_ops/filter_plugins"))
    from vrrp_drill import vrrp_drill_table

    for line in vrrp_drill_table(json.loads(report.read_text())):
        print(f"    {line}")
    print(f"    report: {report.relative_to(REPO)}")


def real_server_drill(director: str, vip: str, real_servers: list[str]) -> None:
    """Show the balancing, then stop and start the first real server's nginx."""
    web = real_servers[0]
    web_ip = f"{PREFIX}.{ADDRESS[web]}"

    def state() -> tuple[str | None, list[str]]:
        vs = virtual_server(director, vip)
        rs = vs.get("real_servers", {}).get(f"{web_ip}:80", {})
        return rs.get("state"), vs.get("scheduled", [])

    waited(
        "both real servers scheduled",
        lambda: len(virtual_server(director, vip).get("scheduled", [])) == 2,
        30,
    )
    vs = virtual_server(director, vip)
    say(f"{director} balances {vs['virtual_server']} ({vs['lb_kind']}, {vs['lb_algo']}, "
        f"{vs['data_plane']}) over {', '.join(vs['scheduled'])}")  # fmt: skip
    print(f"    client: {REQUESTS} x curl http://{vip}/ -> {spread(vip)}")

    say(f"real-server drill: stopping nginx on {web}; {director}'s checker takes it out")
    podman("exec", container_name(web), "systemctl", "stop", "nginx")
    took = waited(
        f"{web} DOWN", lambda: state()[0] == "DOWN" and f"{web_ip}:80" not in state()[1], 60
    )
    print(
        f"    {web} DOWN after {took:.2f}s (the bound is delay_loop + (retry + 1) x "
        "connect_timeout + retry x delay_before_retry: 5 s here)"
    )
    print(f"    client: {REQUESTS} x curl http://{vip}/ -> {spread(vip)}")
    podman("exec", container_name(web), "systemctl", "start", "nginx")
    back = waited(f"{web} UP", lambda: state()[0] == "UP" and f"{web_ip}:80" in state()[1], 60)
    print(f"    {web} UP and scheduled again after {back:.2f}s (next check: delay_loop, 2 s)")
    print(f"    client: {REQUESTS} x curl http://{vip}/ -> {spread(vip)}")


def down(quiet: bool = False) -> None:
    demo = containers("demo-")
    if demo:
        podman("rm", "-f", "-t", "2", *demo)
    podman("network", "rm", NETWORK, check=False)
    if not quiet:
        print(f"demo: removed {len(demo)} container(s) and network {NETWORK}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("up", "down"):
        raise SystemExit(__doc__)
    try:
        if sys.argv[1] == "up":
            up(sys.argv[2] if len(sys.argv) > 2 else "master_backup")
        else:
            down()
    except AssertionError as err:  # a wait that timed out
        raise SystemExit(f"demo: {err}") from None
