"""site.yml's preflight and the agent configuration it renders, run by the
real ansible-playbook against local-connection hosts.

Nothing here installs anything: the bad inventories must stop in preflight,
and the good ones only render the agent's configuration into a temp dir.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLES = sorted(p.parent.name for p in (REPO / "inventories").glob("*/hosts.yml"))


def localize(inventory: dict) -> dict:
    """Every host becomes this machine; addresses come from ansible_host."""
    for group in inventory["all"]["children"].values():
        for name, hv in group["hosts"].items():
            hv = hv or {}
            hv["ansible_connection"] = "local"
            hv["ansible_python_interpreter"] = sys.executable
            # All hosts are one machine, so facts cannot tell them apart.
            hv.setdefault("vrrp_unicast_src_ip", hv.get("ansible_host"))
            hv.setdefault("vrrp_real_server_ip", hv.get("ansible_host"))
            group["hosts"][name] = hv
    inventory["all"]["vars"]["vrrp_interface"] = "lo"  # present on every machine
    return inventory


def example(name: str) -> dict:
    return localize(yaml.safe_load((REPO / "inventories" / name / "hosts.yml").read_text()))


def play(
    playbook: str, inventory: dict, tmp: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    inv = tmp / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{BIN}:{os.environ['PATH']}",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}  # fmt: skip
    return subprocess.run(
        [str(BIN / "ansible-playbook"), playbook, "-i", str(inv), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def recap(out: str) -> dict[str, dict[str, int]]:
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def render(inv: dict, tmp_path: Path) -> dict[str, dict]:
    """Each VRRP node's agent.yml, rendered and checked by `vrrp-agent validate`."""
    r = play("tests/ansible/render.yml", inv, tmp_path,
             "-e", f"render_dir={tmp_path / 'out'}", "-e", f"agent_venv={BIN.parent}")  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    nodes = list(inv["all"]["children"]["vrrp_nodes"]["hosts"])
    return {n: yaml.safe_load((tmp_path / "out" / n / "agent.yml").read_text()) for n in nodes}


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_render_configs_the_agent_accepts(name: str, tmp_path: Path) -> None:
    inv = example(name)
    configs = render(inv, tmp_path)
    nodes = list(configs)
    first, second = (configs[n]["vrrp_instances"] for n in nodes)
    topology = inv["all"]["vars"]["vrrp_topology"]
    vips = inv["all"]["vars"]["vrrp_vips"]
    assert len(first) == len(vips)
    for j, vi in enumerate(sorted(first)):
        a, b = first[vi], second[vi]
        assert a["virtual_router_id"] == b["virtual_router_id"] == 51 + j
        if inv["all"]["vars"].get("vrrp_vip_routing", "none") != "none":
            # Announced by FRR from lo, as a host route (test_routed_vips_render_frr).
            assert a["virtual_ipaddress"] == [vips[j].split("/")[0] + "/32 dev lo"]
        else:
            assert a["virtual_ipaddress"] == [vips[j]]
        # dual_master: node j masters VIP j; otherwise the first node masters all.
        master_is_first = topology != "dual_master" or j == 0
        hi, lo = (a, b) if master_is_first else (b, a)
        assert (hi["priority"], lo["priority"]) == (150, 100)
        if inv["all"]["vars"].get("vrrp_nopreempt"):
            assert a["state"] == b["state"] == "BACKUP" and a["nopreempt"] is True
        else:
            assert (hi["state"], lo["state"]) == ("MASTER", "BACKUP")
        if inv["all"]["vars"].get("vrrp_unicast"):
            hosts = inv["all"]["children"]["vrrp_nodes"]["hosts"]
            assert a["unicast_peer"] == [hosts[nodes[1]]["ansible_host"]]
        assert a["notify"] == "/usr/local/lib/vrrp-agent/notify"
        if inv["all"]["vars"].get("vrrp_dual_master_mode") == "exclusive":
            # Named on both sides, and both instances track the check (one detection, one swap).
            other = "VI_2" if vi == "VI_1" else "VI_1"
            assert a["exclusive_with"] == b["exclusive_with"] == other
            assert a["track_script"] == b["track_script"] == ["chk_http"]
        else:
            assert "exclusive_with" not in a
    cfg = configs[nodes[0]]
    assert ("arbiter" in cfg) == bool(inv["all"]["vars"].get("vrrp_arbiter_ips"))
    if topology == "lvs_nginx":
        rs = inv["all"]["children"]["real_servers"]["hosts"]
        [vs] = cfg["virtual_servers"]
        assert [r["ip"] for r in vs["real_servers"]] == [h["ansible_host"] for h in rs.values()]
        assert vs["real_servers"][0]["HTTP_GET"]["url"] == {"path": "/", "status_code": 200}
        assert "vrrp_scripts" not in cfg
    else:
        assert cfg["vrrp_scripts"]["chk_http"]["script"] == (
            "/usr/local/lib/vrrp-agent/checks/check_http http://127.0.0.1/"
        )
        # Without preemption a lower priority moves nothing: a failing check must mean FAULT.
        expected_weight = 0 if inv["all"]["vars"].get("vrrp_nopreempt") else -60
        assert cfg["vrrp_scripts"]["chk_http"]["weight"] == expected_weight


@pytest.mark.parametrize("protocol", ["ospf", "bgp"])
def test_routed_vips_render_frr_announcing_only_the_vips(protocol: str, tmp_path: Path) -> None:
    inv = example("cross_subnet")
    hosts = inv["all"]["children"]["vrrp_nodes"]["hosts"]
    if protocol == "bgp":
        inv["all"]["vars"].update(vrrp_vip_routing="bgp", vrrp_vip_routing_bgp_asn=65001)
        # Each rack's node peers with its own router.
        hosts["lb1"]["vrrp_vip_routing_bgp_peers"] = [{"address": "10.1.1.1", "asn": 65000}]
        hosts["lb2"]["vrrp_vip_routing_bgp_peers"] = [{"address": "10.1.2.1", "asn": 65000}]
    render(inv, tmp_path)
    conf = (tmp_path / "out" / "lb2" / "frr.conf").read_text()
    lines = [line.strip() for line in conf.splitlines()]
    assert [x for x in lines if x.startswith("ip prefix-list")] == [
        "ip prefix-list VRRP_VIPS seq 5 permit 10.1.255.1/32"
    ]
    assert "redistribute connected route-map VRRP_VIPS" in lines
    assert "detect-multiplier 3" in lines and "transmit-interval 300" in lines
    if protocol == "ospf":
        assert "ospf router-id 10.1.2.11" in lines  # the node's own address, never the VIP
        assert "ip ospf area 0.0.0.0" in lines and "ip ospf dead-interval 3" in lines
        assert "ip ospf bfd profile VRRP_VIPS" in lines
        assert not any(x.startswith("router bgp") for x in lines)
    else:
        assert "router bgp 65001" in lines and "bgp router-id 10.1.2.11" in lines
        assert "neighbor 10.1.2.1 remote-as 65000" in lines
        assert "neighbor 10.1.2.1 timers 1 3" in lines
        assert "neighbor 10.1.2.1 bfd profile VRRP_VIPS" in lines
        assert "neighbor 10.1.2.1 route-map VRRP_VIPS out" in lines
        assert "neighbor 10.1.1.1 remote-as 65000" not in lines


def test_metrics_listen_renders_into_global_defs(tmp_path: Path) -> None:
    inv = example("master_backup")
    inv["all"]["vars"]["vrrp_agent_metrics_listen"] = "[::]:9165"
    for cfg in render(inv, tmp_path).values():
        assert cfg["global_defs"]["metrics_listen"] == "[::]:9165"


@pytest.mark.parametrize(
    ("method", "ips"), [("icmp", ["192.0.2.1", "2001:db8::1"]), ("arp", ["192.0.2.1"])]
)
def test_arbiter_renders_on_the_vrrp_interface(method: str, ips: list, tmp_path: Path) -> None:
    inv = example("master_backup")
    inv["all"]["vars"].update(vrrp_arbiter_ips=ips, vrrp_arbiter_method=method)
    for cfg in render(inv, tmp_path).values():
        assert cfg["arbiter"] == {"addresses": ips, "method": method, "interface": "lo"}


def _bad(mutate) -> dict:
    inv = example("master_backup")
    mutate(inv)
    return inv


def _dual(inv: dict, **kw: object) -> None:
    inv["all"]["vars"].update(
        vrrp_topology="dual_master", vrrp_vips=["192.0.2.101/24", "192.0.2.102/24"], **kw
    )


BAD = {
    "duplicate VRID": (
        lambda inv: _dual(inv, vrrp_vrids=[60, 60]),
        "vrrp_vrids[1]: VRID 60 is already used by VI_1 on lo; one VRID per interface (host lb1)",
    ),
    "VIP not an address": (
        lambda inv: inv["all"]["vars"].update(vrrp_vips=["192.0.2.300/24"]),
        "vrrp_vips[0]: '192.0.2.300/24' is not an IP address (ADDR or ADDR/PREFIX) (host lb2)",
    ),
    "missing real_servers group": (
        lambda inv: inv["all"]["vars"].update(vrrp_topology="lvs_nginx"),
        "vrrp_real_servers_group: lvs_nginx needs hosts in group 'real_servers', which is missing or empty (host lb1)",
    ),
    "missing nodes group": (
        lambda inv: inv["all"]["vars"].update(vrrp_nodes_group="directors"),
        "vrrp_nodes_group: group 'directors' is missing or empty (host lb1)",
    ),
    "equal priorities": (
        lambda inv: inv["all"]["children"]["vrrp_nodes"]["hosts"]["lb2"].update(vrrp_priority=150),
        "vrrp_priority: VI_1 needs distinct priorities, got lb1=150, lb2=150 (host lb2)",
    ),
    "dual_master with three nodes": (
        lambda inv: (_dual(inv), inv["all"]["children"]["vrrp_nodes"]["hosts"].update(
            lb3={"ansible_host": "192.0.2.13"})),
        "dual_master needs exactly two hosts in group 'vrrp_nodes', found 3 (host lb3)",
    ),
    "exclusive without dual_master": (
        lambda inv: inv["all"]["vars"].update(vrrp_dual_master_mode="exclusive"),
        "vrrp_dual_master_mode: exclusive keeps the two VIPs of dual_master apart, but vrrp_topology is 'master_backup' (set vrrp_topology: dual_master) (host lb1)",
    ),
    "exclusive with nopreempt": (
        lambda inv: _dual(inv, vrrp_dual_master_mode="exclusive", vrrp_nopreempt=True),
        "vrrp_nopreempt: exclusive dual-master needs preemption",
    ),
    "exclusive with a weight that swaps nothing": (
        lambda inv: _dual(inv, vrrp_dual_master_mode="exclusive", vrrp_check_weight=-30),
        "vrrp_check_weight: -30 does not take VI_1's master lb1 (150) below its peer (100), so a failing check would swap nothing; exclusive dual-master needs a weight below -50 (host lb2)",
    ),
    "bgp without an AS number": (
        lambda inv: inv["all"]["vars"].update(
            vrrp_vips=["10.1.255.1"], vrrp_vip_routing="bgp",
            vrrp_vip_routing_bgp_peers=[{"address": "10.1.1.1", "asn": 65000}]),
        "vrrp_vip_routing_bgp_asn: vrrp_vip_routing: bgp needs this node's AS number (1..4294967295), got 0 (host lb1)",
    ),
    "routed VIP with a prefix": (
        lambda inv: inv["all"]["vars"].update(vrrp_vip_routing="ospf", vrrp_vip_routing_ospf_area="0"),
        "vrrp_vips[0]: 192.0.2.100/24: a routed VIP is announced as a host route; write 192.0.2.100 or 192.0.2.100/32 (host lb2)",
    ),
    "metrics address without a port": (
        lambda inv: inv["all"]["vars"].update(vrrp_agent_metrics_listen="0.0.0.0"),
        "vrrp_agent_metrics_listen must be ADDR:PORT with an IPv4 or [IPv6] literal and a port 1..65535, such as 0.0.0.0:9165 or [::]:9165; got '0.0.0.0' (host lb1)",
    ),
    "monitoring host without agents that serve metrics": (
        lambda inv: inv["all"]["children"].update(monitoring={"hosts": {"mon1": {"ansible_host": "192.0.2.60"}}}),
        "mon1 is in vrrp_monitoring_group (monitoring), but no host of vrrp_nodes sets vrrp_agent_metrics_listen",
    ),
    "arbiter not an address": (
        lambda inv: inv["all"]["vars"].update(vrrp_arbiter_ips=["192.0.2.1", "192.0.2.0/24"]),
        "vrrp_arbiter_ips[1]: '192.0.2.0/24' is not an IP address (ADDR, no prefix) (host lb1)",
    ),
}  # fmt: skip


# A wrong type or a value outside an option's choices: the role's argument
# validation (meta/argument_specs.yml, entry point preflight) refuses it, on
# every host, before the filter's cross-field rules run.
SPEC_BAD = {
    "unknown topology": (
        lambda inv: inv["all"]["vars"].update(vrrp_topology="active_active"),
        "value of vrrp_topology must be one of: master_backup, dual_master, lvs_nginx, got: active_active",
    ),
    "unknown version": (
        lambda inv: inv["all"]["vars"].update(vrrp_version=4),
        "value of vrrp_version must be one of: 2, 3, got: 4",
    ),
    "unknown health check": (
        lambda inv: inv["all"]["vars"].update(vrrp_health_checks=["htp"]),
        "value of vrrp_health_checks must be one or more of: http, tcp, process, systemd, container. Got no match for: htp",
    ),
    "unknown dual-master mode": (
        lambda inv: _dual(inv, vrrp_dual_master_mode="exclusve"),
        "value of vrrp_dual_master_mode must be one of: shared, exclusive, got: exclusve",
    ),
    "unknown arbiter method": (
        lambda inv: inv["all"]["vars"].update(vrrp_arbiter_method="ping"),
        "value of vrrp_arbiter_method must be one of: icmp, arp, got: ping",
    ),
    "unknown LVS kind": (
        lambda inv: inv["all"]["vars"].update(vrrp_lvs_kind="TUN"),
        "value of vrrp_lvs_kind must be one of: DR, NAT, got: TUN",
    ),
    "unknown LVS checker": (
        lambda inv: inv["all"]["vars"].update(vrrp_lvs_check="SSL_GET"),
        "value of vrrp_lvs_check must be one of: HTTP_GET, TCP_CHECK, got: SSL_GET",
    ),
    "unknown routing protocol": (
        lambda inv: inv["all"]["vars"].update(vrrp_vip_routing="isis"),
        "value of vrrp_vip_routing must be one of: none, ospf, bgp, got: isis",
    ),
    "nopreempt not a boolean": (
        lambda inv: inv["all"]["vars"].update(vrrp_nopreempt="maybe"),
        "argument 'vrrp_nopreempt' is of type str and we were unable to convert to bool",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", SPEC_BAD)
def test_bad_argument_stops_in_argument_validation(case: str, tmp_path: Path) -> None:
    mutate, message = SPEC_BAD[case]
    r = play("site.yml", localize(_bad(mutate)), tmp_path)
    for host in ("lb1", "lb2"):
        # The host's failure names the role's spec and the variable.
        [line] = [x for x in r.stdout.splitlines() if x.startswith(f"fatal: [{host}]")]
        assert '"argument_spec_name": "preflight"' in line, line
        assert message in line, line
    assert_stopped_before_any_change(r)


@pytest.mark.parametrize("case", BAD)
def test_bad_inventory_stops_in_preflight_before_any_change(case: str, tmp_path: Path) -> None:
    mutate, message = BAD[case]
    r = play("site.yml", localize(_bad(mutate)), tmp_path)
    out = r.stdout + r.stderr
    assert message in out, out[-4000:]
    assert_stopped_before_any_change(r)


def assert_stopped_before_any_change(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode != 0
    # Nothing was applied anywhere: no host reports a change, and no deploy play started.
    hosts = recap(r.stdout)
    assert hosts, r.stdout[-2000:]
    assert all(h.get("changed", 0) == 0 for h in hosts.values()), hosts
    assert "PLAY [Deploy the VRRP nodes]" not in r.stdout
    assert "PLAY [Prepare the web servers behind LVS]" not in r.stdout


AGENT_BAD = {
    "nothing to run": (
        {"instances": {}},
        "vrrp_agent_instances and vrrp_agent_virtual_servers are both empty",
    ),
    "unknown check": (
        {"checks": [{"check": "ping"}]},
        "every vrrp_agent_checks[].check must be one of http, tcp, process, systemd, container, got ping",
    ),
    "check listed twice": (
        {"checks": [{"check": "http"}, {"check": "tcp"}, {"check": "http"}]},
        "vrrp_agent_checks lists a check twice (http, tcp, http)",
    ),
    "no systemd": (
        {"target": {"service_mgr": "openrc"}},
        "the agent runs as a systemd service (Type=notify), but this host's service manager is openrc",
    ),
    "no apt": (
        {"target": {"pkg_mgr": "dnf"}},
        "the role installs python3-venv and nftables with apt (Debian, Ubuntu), but this host's package manager is dnf",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [*AGENT_BAD, "good"])
def test_agent_preflight_names_the_problem(case: str, tmp_path: Path) -> None:
    given, message = AGENT_BAD.get(case, ({"checks": [{"check": "http"}]}, None))
    inv = {"all": {"hosts": {"lb1": {"ansible_connection": "local",
                                     "ansible_python_interpreter": sys.executable}}}}  # fmt: skip
    extra = tmp_path / "input.json"
    role_input = {k: v for k, v in given.items() if k != "target"}
    extra.write_text(json.dumps({"agent_input": role_input, "target": given.get("target", {})}))
    r = play("tests/ansible/agent_preflight.yml", inv, tmp_path, "-e", f"@{extra}")
    if message is None:
        assert r.returncode == 0, r.stdout[-3000:]
        assert recap(r.stdout)["lb1"]["failed"] == 0
    else:
        assert r.returncode != 0
        [line] = [x for x in r.stdout.splitlines() if x.startswith("fatal: [lb1]")]
        assert message in line and "(host lb1)" in line, line


def test_diff_does_not_print_the_auth_pass(tmp_path: Path) -> None:
    """`ansible-playbook --diff` shows what a template changes; the agent's
    configuration carries the VRRPv2 password, which must not be shown (nor
    logged by the task), while the file itself still gets it."""
    secret = "s3cr3tpw"
    inv = example("master_backup")
    inv["all"]["vars"].update(vrrp_version=2, vrrp_auth_pass=secret)
    r = play("tests/ansible/render.yml", inv, tmp_path, "--diff", "-vvv",
             "-e", f"render_dir={tmp_path / 'out'}", "-e", f"agent_venv={BIN.parent}")  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert secret not in out, [line for line in out.splitlines() if secret in line][:5]
    rendered = yaml.safe_load((tmp_path / "out" / "lb1" / "agent.yml").read_text())
    auth = rendered["vrrp_instances"]["VI_1"]["authentication"]
    assert auth == {"auth_type": "PASS", "auth_pass": secret}


KEEPALIVED = REPO / "molecule" / "dual_master" / "keepalived"


def test_keepalived_conf_is_deployed_instead_of_the_derived_config(tmp_path: Path) -> None:
    """vrrp_agent_keepalived_conf: each host's file, imported on the controller
    (--config-id the short host name), is what the node gets, with the role's
    control socket and script user where the file sets none."""
    inv = example("dual_master")
    hosts = inv["all"]["children"]["vrrp_nodes"]["hosts"]
    for name, conf in zip(hosts, ("node1.conf", "node2.conf")):
        hosts[name]["vrrp_agent_keepalived_conf"] = str(KEEPALIVED / conf)
    rendered = render(inv, tmp_path)
    for name, prio in zip(hosts, (150, 100)):
        cfg = rendered[name]
        r = subprocess.run(
            [sys.executable, "-m", "vrrp_agent.cli", "import-keepalived",
             str(KEEPALIVED / f"node{1 if prio == 150 else 2}.conf")],
            cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        want = yaml.safe_load(r.stdout)
        want["global_defs"]["control_socket"] = "/run/vrrp-agent/agent.sock"
        assert cfg == want
        assert cfg["vrrp_instances"]["VI_1"]["priority"] == prio
        assert cfg["vrrp_instances"]["VI_1"]["version"] == 3


def test_a_keepalived_conf_that_cannot_be_imported_fails_the_play(tmp_path: Path) -> None:
    bad = tmp_path / "keepalived.conf"
    bad.write_text(
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
        "  virtual_ipaddress {\n    192.0.2.101/24\n  }\n  dont_track_primary\n}\n"
    )
    inv = example("dual_master")
    for hv in inv["all"]["children"]["vrrp_nodes"]["hosts"].values():
        hv["vrrp_agent_keepalived_conf"] = str(bad)
    r = play("tests/ansible/render.yml", inv, tmp_path,
             "-e", f"render_dir={tmp_path / 'out'}", "-e", f"agent_venv={BIN.parent}")  # fmt: skip
    assert r.returncode != 0
    fatal = [x for x in r.stdout.splitlines() if x.startswith("fatal: [web1]")]
    assert fatal, r.stdout[-3000:]
    assert "vrrp_agent_keepalived_conf of web1 cannot be imported" in fatal[0]
    assert f"{bad}:7: error: dont_track_primary: not supported by the agent" in fatal[0]
    assert not (tmp_path / "out" / "web1" / "agent.yml").exists()
