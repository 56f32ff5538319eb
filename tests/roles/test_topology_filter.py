"""The inventory -> instances derivation and its preflight rules, without Ansible.

The plans are fed to the agent's own configuration loader, so a derivation
that produced something the agent refuses fails here, not on a host.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vrrp_topology as topo
import yaml

from vrrp_agent.config import parse

REPO = Path(__file__).resolve().parents[2]


def settings(**kw: object) -> dict:
    defaults = yaml.safe_load((REPO / "roles/vrrp/defaults/main.yml").read_text())
    s = {k.removeprefix("vrrp_"): v for k, v in defaults.items()}
    # Ansible resolves these templated defaults; the filter sees plain values.
    s["health_checks"] = ["http"]
    s["check_weight"] = -60
    s["vips"] = ["192.0.2.100/24"]
    s["host_interfaces"] = ["lo", "eth0"]
    s["vip_routing_router_id"] = ""  # a host override, without a default
    s.update(kw)
    return s


def nodes(n: int = 2, **overrides: dict) -> list[dict]:
    out = []
    for i in range(n):
        name = f"lb{i + 1}"
        node = {
            "name": name,
            "address": f"192.0.2.{11 + i}",
            "priority": None,
            "state": None,
            "master_of": None,
            "unicast_src_ip": None,
            "network": "192.0.2.0/24",
        }
        node.update(overrides.get(name, {}))
        out.append(node)
    return out


RS = [{"name": "web1", "address": "192.0.2.41"}, {"name": "web2", "address": "192.0.2.42"}]


def agent_config(plan: dict) -> dict:
    scripts = {
        f"chk_{c['check']}": {
            "script": f"/usr/local/lib/vrrp-agent/checks/check_{c['check']} {c['args']}",
            "interval": c["interval"],
            "weight": c["weight"],
            "fall": c["fall"],
            "rise": c["rise"],
        }
        for c in plan["checks"]
    }
    cfg: dict = {"vrrp_instances": plan["instances"]}
    if scripts:
        cfg["vrrp_scripts"] = scripts
    if plan["virtual_servers"]:
        cfg["virtual_servers"] = plan["virtual_servers"]
    if plan["arbiter"]:
        cfg["arbiter"] = plan["arbiter"]
    return cfg


def plans(ns: list[dict], s: dict, rs: list[dict] | None = None) -> dict[str, dict]:
    out = {}
    for n in ns:
        assert topo.vrrp_problems(ns, n["name"], s, rs) == []
        plan = topo.vrrp_plan(ns, n["name"], s, rs)
        parse(yaml.safe_dump(agent_config(plan)), f"<{n['name']}>")  # the agent accepts it
        out[n["name"]] = plan
    return out


# ------------------------------------------------------------------ derivation


def test_master_backup_first_node_is_master() -> None:
    p = plans(nodes(), settings())
    a, b = p["lb1"]["instances"]["VI_1"], p["lb2"]["instances"]["VI_1"]
    assert (a["priority"], a["state"]) == (150, "MASTER")
    assert (b["priority"], b["state"]) == (100, "BACKUP")
    assert a["virtual_router_id"] == b["virtual_router_id"] == 51
    assert a["virtual_ipaddress"] == ["192.0.2.100/24"]
    assert a["track_script"] == ["chk_http"]
    assert p["lb1"]["checks"][0]["args"] == "http://127.0.0.1/"
    assert "unicast_peer" not in a


def test_three_nodes_get_descending_priorities() -> None:
    p = plans(nodes(3), settings())
    assert [p[n]["instances"]["VI_1"]["priority"] for n in ("lb1", "lb2", "lb3")] == [150, 100, 50]


def test_dual_master_each_node_masters_one_vip() -> None:
    s = settings(topology="dual_master", vips=["192.0.2.101/24", "192.0.2.102/24"])
    p = plans(nodes(), s)
    assert p["lb1"]["instances"]["VI_1"]["state"] == "MASTER"
    assert p["lb1"]["instances"]["VI_2"]["state"] == "BACKUP"
    assert p["lb2"]["instances"]["VI_2"]["state"] == "MASTER"
    assert p["lb2"]["instances"]["VI_2"]["priority"] == 150
    assert p["lb1"]["instances"]["VI_2"]["virtual_router_id"] == 52


def test_dual_master_assignment_can_be_overridden() -> None:
    s = settings(topology="dual_master", vips=["192.0.2.101/24", "192.0.2.102/24"])
    ns = nodes(lb1={"master_of": ["VI_2"]}, lb2={"master_of": ["VI_1"]})
    p = plans(ns, s)
    assert p["lb1"]["instances"]["VI_2"]["state"] == "MASTER"
    assert p["lb2"]["instances"]["VI_1"]["priority"] == 150


DUAL = {"topology": "dual_master", "vips": ["192.0.2.101/24", "192.0.2.102/24"]}
LVS = {"topology": "lvs_nginx", "vips": ["192.0.2.200/24"], "health_checks": []}


def test_dual_master_shared_is_the_default_and_names_no_pair() -> None:
    p = plans(nodes(), settings(**DUAL))
    assert all("exclusive_with" not in i for n in p for i in p[n]["instances"].values())


def test_dual_master_exclusive_pairs_the_instances_and_both_track_the_check() -> None:
    p = plans(nodes(), settings(**DUAL, dual_master_mode="exclusive"))
    for n in ("lb1", "lb2"):
        vi1, vi2 = p[n]["instances"]["VI_1"], p[n]["instances"]["VI_2"]
        assert (vi1["exclusive_with"], vi2["exclusive_with"]) == ("VI_2", "VI_1")
        # One failing check lowers both instances: one detection drives the swap.
        assert vi1["track_script"] == vi2["track_script"] == ["chk_http"]
        assert "nopreempt" not in vi1
    assert (
        p["lb1"]["instances"]["VI_1"]["state"] == p["lb2"]["instances"]["VI_2"]["state"] == "MASTER"
    )


def test_arbiter_is_probed_on_the_vrrp_interface() -> None:
    p = plans(nodes(), settings(arbiter_ips=["192.0.2.1", " 2001:db8::1"]))
    assert p["lb1"]["arbiter"] == {
        "addresses": ["192.0.2.1", "2001:db8::1"],
        "method": "icmp",
        "interface": "eth0",
    }
    p = plans(nodes(), settings(arbiter_ips=["192.0.2.1"], arbiter_method="arp"))
    assert p["lb2"]["arbiter"]["method"] == "arp"
    assert plans(nodes(), settings())["lb1"]["arbiter"] == {}


def test_host_overrides_priority_and_state() -> None:
    ns = nodes(lb1={"priority": 90}, lb2={"priority": {"VI_1": 200}, "state": "MASTER"})
    p = plans(ns, settings())
    assert p["lb1"]["instances"]["VI_1"]["priority"] == 90
    assert p["lb2"]["instances"]["VI_1"]["priority"] == 200
    assert p["lb2"]["instances"]["VI_1"]["state"] == "MASTER"
    assert p["lb1"]["instances"]["VI_1"]["state"] == "BACKUP"


def test_unicast_peers_are_the_other_nodes() -> None:
    ns = nodes(3, lb3={"unicast_src_ip": "192.0.2.99"})
    p = plans(ns, settings(unicast=True))
    assert p["lb1"]["instances"]["VI_1"]["unicast_src_ip"] == "192.0.2.11"
    assert p["lb1"]["instances"]["VI_1"]["unicast_peer"] == ["192.0.2.12", "192.0.2.99"]
    assert p["lb3"]["instances"]["VI_1"]["unicast_src_ip"] == "192.0.2.99"


def test_nopreempt_starts_everyone_as_backup() -> None:
    p = plans(nodes(), settings(nopreempt=True))
    assert {p[n]["instances"]["VI_1"]["state"] for n in p} == {"BACKUP"}
    assert p["lb1"]["instances"]["VI_1"]["nopreempt"] is True


def test_v2_with_auth_and_explicit_vrids() -> None:
    s = settings(version=2, auth_pass="s3cret", vrids=[7])
    p = plans(nodes(), s)
    inst = p["lb1"]["instances"]["VI_1"]
    assert inst["authentication"] == {"auth_type": "PASS", "auth_pass": "s3cret"}
    assert inst["virtual_router_id"] == 7


def test_lvs_nginx_builds_a_virtual_server_over_the_real_servers() -> None:
    s = settings(topology="lvs_nginx", vips=["192.0.2.200/24"], health_checks=[])
    p = plans(nodes(), s, RS)
    vs = p["lb1"]["virtual_servers"]
    assert len(vs) == 1
    assert (vs[0]["ip"], vs[0]["port"], vs[0]["lb_kind"], vs[0]["lb_algo"]) == (
        "192.0.2.200",
        80,
        "DR",
        "rr",
    )
    assert [r["ip"] for r in vs[0]["real_servers"]] == ["192.0.2.41", "192.0.2.42"]
    assert "track_script" not in p["lb1"]["instances"]["VI_1"]
    # nginx's page is what a client gets: each real server is checked by fetching it.
    assert vs[0]["delay_loop"] == 6
    assert vs[0]["real_servers"][0]["HTTP_GET"] == {
        "url": {"path": "/", "status_code": 200},
        "connect_timeout": 3,
        "retry": 3,
        "delay_before_retry": 3,
    }


def test_lvs_checker_kind_and_timings_come_from_the_inventory() -> None:
    s = settings(
        topology="lvs_nginx",
        vips=["192.0.2.200/24"],
        health_checks=[],
        lvs_check="TCP_CHECK",
        lvs_delay_loop=1,
        lvs_connect_timeout=0.5,
        lvs_retry=1,
        lvs_delay_before_retry=0.5,
    )
    [vs] = plans(nodes(), s, RS)["lb2"]["virtual_servers"]
    assert vs["delay_loop"] == 1
    for rs in vs["real_servers"]:
        assert "HTTP_GET" not in rs
        assert rs["TCP_CHECK"] == {"connect_timeout": 0.5, "retry": 1, "delay_before_retry": 0.5}


@pytest.mark.parametrize("check", ["http", "tcp", "process", "systemd", "container"])
def test_every_named_check_is_derivable(check: str) -> None:
    p = plans(nodes(), settings(health_checks=[check], check_container="web"))
    assert p["lb1"]["checks"][0]["check"] == check
    assert p["lb1"]["instances"]["VI_1"]["track_script"] == [f"chk_{check}"]


# ------------------------------------------------------------------ preflight rules
# Only what an option's spec cannot say. A wrong type or a value outside an
# option's choices (vrrp_topology, vrrp_version, vrrp_health_checks,
# vrrp_dual_master_mode, vrrp_arbiter_method, vrrp_lvs_kind, vrrp_lvs_check)
# is refused by the role's argument validation, before the filter runs:
# tests/ansible/test_site.py runs it for real (SPEC_BAD).


@pytest.mark.parametrize(
    ("kw", "ns", "rs", "expected"),
    [
        ({}, [], None, "vrrp_nodes_group: group 'vrrp_nodes' is missing or empty (host lb1)"),
        ({"topology": "dual_master", "vips": ["192.0.2.1", "192.0.2.2"]}, 3, None,
         "dual_master needs exactly two hosts in group 'vrrp_nodes', found 3 (host lb1)"),
        ({"topology": "lvs_nginx"}, None, [],
         "vrrp_real_servers_group: lvs_nginx needs hosts in group 'real_servers'"),
        ({"vips": ["192.0.2.300"]}, None, None,
         "vrrp_vips[0]: '192.0.2.300' is not an IP address (ADDR or ADDR/PREFIX) (host lb1)"),
        ({"vips": ["192.0.2.1", "192.0.2.2"]}, None, None,
         "vrrp_vips: master_backup takes exactly 1 address(es), got 2 (host lb1)"),
        ({"topology": "dual_master", "vips": ["192.0.2.1", "192.0.2.2"], "vrids": [51, 51]}, None, None,
         "vrrp_vrids[1]: VRID 51 is already used by VI_1 on eth0; one VRID per interface (host lb1)"),
        ({"vrids": [300]}, None, None, "vrrp_vrids[0]: a VRID is 1..255, got 300 (host lb1)"),
        ({"interface": "eth9"}, None, None, "vrrp_interface: 'eth9' does not exist (host lb1)"),
        ({"version": 2, "advert_int": 0.5}, None, None,
         "vrrp_advert_int: VRRPv2 takes whole seconds 1..255, got 0.5 (host lb1)"),
        ({"auth_pass": "x"}, None, None,
         "vrrp_auth_pass: authentication is VRRPv2 only (set vrrp_version: 2) (host lb1)"),
        ({"nopreempt": True, "preempt_delay": 5}, None, None,
         "vrrp_preempt_delay: has no effect with vrrp_nopreempt: true (host lb1)"),
        ({}, {"lb2": {"priority": 150}}, None,
         "vrrp_priority: VI_1 needs distinct priorities, got lb1=150, lb2=150 (host lb1)"),
        ({}, {"lb2": {"state": "LEADER"}}, None,
         "vrrp_state: must be MASTER or BACKUP, got 'LEADER' (host lb2)"),
        ({"unicast": True}, {"lb2": {"address": None}}, None,
         "vrrp_unicast_src_ip: unicast mode needs an address of eth0 on every node; none known (host lb2)"),
        ({"dual_master_mode": "exclusive"}, None, None,
         "vrrp_dual_master_mode: exclusive keeps the two VIPs of dual_master apart, but vrrp_topology is 'master_backup'"),
        ({**DUAL, "dual_master_mode": "exclusive", "nopreempt": True, "check_weight": 0}, None, None,
         "vrrp_nopreempt: exclusive dual-master needs preemption"),
        ({**DUAL, "dual_master_mode": "exclusive", "check_weight": 0}, None, None,
         "vrrp_check_weight: 0 (FAULT) drops both VIPs of a failing node"),
        ({**DUAL, "dual_master_mode": "exclusive", "check_weight": 10}, None, None,
         "vrrp_check_weight: 10 does not take VI_1's master lb1 (150) below its peer (100)"),
        ({**DUAL, "dual_master_mode": "exclusive", "check_weight": -60}, {"lb1": {"priority": {"VI_2": 40}}}, None,
         "vrrp_check_weight: -60 does not take VI_2's master lb2 (150) below its peer (40)"),
        ({**DUAL, "dual_master_mode": "exclusive"}, {"lb1": {"master_of": ["VI_1", "VI_2"]}}, None,
         "vrrp_master_of: exclusive dual-master needs each node to master one instance, but the highest priorities put VI_1 on lb1, VI_2 on lb1"),
        ({"arbiter_ips": "192.0.2.1"}, None, None,
         "vrrp_arbiter_ips: must be a list of addresses, got '192.0.2.1' (host lb1)"),
        ({"arbiter_ips": ["gw"]}, None, None,
         "vrrp_arbiter_ips[0]: 'gw' is not an IP address (ADDR, no prefix) (host lb1)"),
        ({"arbiter_ips": ["192.0.2.1", "192.0.2.1"]}, None, None,
         "vrrp_arbiter_ips[1]: 192.0.2.1 is listed twice (host lb1)"),
        ({"arbiter_ips": ["192.0.2.100"]}, None, None,
         "vrrp_arbiter_ips[0]: 192.0.2.100 is one of vrrp_vips"),
        ({"arbiter_ips": ["192.0.2.12"]}, None, None,
         "vrrp_arbiter_ips[0]: 192.0.2.12 is the address of node lb2"),
        ({"arbiter_ips": ["2001:db8::1"], "arbiter_method": "arp"}, None, None,
         "vrrp_arbiter_ips[0]: 2001:db8::1 is IPv6, and ARP probes are IPv4 only (set vrrp_arbiter_method: icmp) (host lb1)"),
        ({**LVS, "lvs_check_url": "health"}, None, None,
         "vrrp_lvs_check_url: must be a path starting with '/', got 'health' (host lb1)"),
        ({**LVS, "lvs_check_status_code": 99}, None, None,
         "vrrp_lvs_check_status_code: must be an HTTP status 100..599, got 99 (host lb1)"),
        ({**LVS, "lvs_delay_loop": 0}, None, None,
         "vrrp_lvs_delay_loop: must be a positive number of seconds, got 0 (host lb1)"),
        ({**LVS, "lvs_connect_timeout": "3"}, None, None,
         "vrrp_lvs_connect_timeout: must be a positive number of seconds, got '3' (host lb1)"),
        ({**LVS, "lvs_retry": -1}, None, None,
         "vrrp_lvs_retry: must be a whole number 0 or more, got -1 (host lb1)"),
        ({**LVS, "lvs_delay_before_retry": -1}, None, None,
         "vrrp_lvs_delay_before_retry: must be 0 or more seconds, got -1 (host lb1)"),
    ],
)  # fmt: skip
def test_preflight_names_the_variable_and_the_host(kw, ns, rs, expected) -> None:
    if ns is None:
        ns = nodes()
    elif isinstance(ns, int):
        ns = nodes(ns)
    elif isinstance(ns, dict):
        ns = nodes(**ns)
    problems = topo.vrrp_problems(ns, "lb1", settings(**kw), RS if rs is None else rs)
    assert any(expected in p for p in problems), problems


def test_plan_refuses_what_preflight_refuses() -> None:
    with pytest.raises(ValueError, match="vrrp_vips"):
        topo.vrrp_plan(nodes(), "lb1", settings(vips=["nope"]), None)
