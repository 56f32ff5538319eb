"""The drill, maintenance and upgrade playbooks' decisions
(roles/vrrp_ops/filter_plugins/vrrp_drill.py) and the probe's summary
(roles/vrrp_ops/files/http_probe.py), on status documents shaped like
`vrrp-agent status --json`."""

from __future__ import annotations

import json

import http_probe
import pytest
import vrrp_drill as drill

NODES = ["node1", "node2"]


def inst(state: str, prio: int, ip: str, vip: str = "10.0.0.100/24", **kw) -> dict:
    return {
        "state": state, "priority": prio, "effective_priority": prio, "version": 3,
        "advert_int": 1.0, "master_adver_interval": 1.0, "source_ip": ip,
        "virtual_ipaddress": [vip], "holds_vips": state == "MASTER", "preempt": True,
        "preempt_delay": 0, "faults": {}, "last_transition_at": None, **kw,
    }  # fmt: skip


def doc(instances: dict, **kw) -> dict:
    return {"version": "0.1.0", "drained": False, "instances": instances, "vrrp_scripts": {}, **kw}


def ok(d: dict) -> dict:
    return {"ok": True, "doc": d, "error": None}


def pair(**b_kw) -> dict:
    return {
        "node1": ok(doc({"VI_1": inst("MASTER", 150, "10.0.0.11")})),
        "node2": ok(doc({"VI_1": inst("BACKUP", 100, "10.0.0.12", **b_kw)})),
    }


def test_a_healthy_pair_is_one_step_with_the_skew_time_bound() -> None:
    plan = drill.vrrp_drill_plan(pair(), NODES, [], "graceful", slack=0.85)
    assert plan["problems"] == []
    [step] = plan["steps"]
    [v] = step["vips"]
    assert (step["node"], v["vip"], v["to"], v["to_iname"]) == (
        "node1",
        "10.0.0.100",
        "node2",
        "VI_1",
    )
    # Skew_Time of priority 100 at 1 s (v3): 156/256 = 0.609
    assert v["protocol_s"] == pytest.approx(0.609, abs=1e-3)
    assert v["bound_s"] == pytest.approx(0.609 + 0.85, abs=1e-3)
    assert v["failback"] is True
    # Undrained, node1 (150) waits out its Master_Down, 3 + 106/256 s, before it preempts.
    assert v["failback_bound_s"] == pytest.approx(3.414 + 0.85, abs=1e-3)
    freeze = drill.vrrp_drill_plan(pair(), NODES, [], "freeze", slack=0.85)["steps"][0]["vips"][0]
    assert freeze["protocol_s"] == pytest.approx(3.609, abs=1e-3)  # Master_Down
    assert freeze["failback_bound_s"] == pytest.approx(1.0 + 0.85)  # thawed: its next advert
    assert drill.vrrp_drill_plan(pair(), NODES, [], "graceful", max_downtime=2.0)["steps"][0][
        "vips"][0]["bound_s"] == 2.0  # fmt: skip


def test_no_failback_without_preemption_except_for_a_thawed_master() -> None:
    s = pair()
    s["node1"]["doc"]["instances"]["VI_1"]["preempt"] = False
    assert drill.vrrp_drill_plan(s, NODES)["steps"][0]["vips"][0]["failback"] is False
    # A thawed master never left MASTER: priority decides, preempt does not.
    assert drill.vrrp_drill_plan(s, NODES, mode="freeze")["steps"][0]["vips"][0]["failback"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.update(node2={"ok": False, "doc": None, "error": "connection refused"}),
         "node2: the agent does not answer `vrrp-agent status` (connection refused)"),
        (lambda s: s["node2"]["doc"]["instances"]["VI_1"].update(state="FAULT", faults={"script:chk": "DOWN"}),
         "VIP 10.0.0.100 cannot move from node1: node2: VI_1 is FAULT (script:chk: DOWN)"),
        (lambda s: s["node2"]["doc"]["instances"]["VI_1"].update(state="MASTER", holds_vips=True),
         "VIP 10.0.0.100: held by node1 and node2, not exactly one"),
        (lambda s: s["node1"]["doc"]["instances"]["VI_1"].update(state="BACKUP", holds_vips=False),
         "VIP 10.0.0.100: held by no node, not exactly one"),
        (lambda s: s["node2"]["doc"].update(vrrp_scripts={"chk_nginx": {"state": "DOWN"}}),
         "node2: check chk_nginx is DOWN"),
        (lambda s: s["node2"]["doc"].update(drained=True, drained_since=1.0),
         "node2: drained since 1.0"),
        (lambda s: s["node1"]["doc"]["instances"]["VI_1"].update(exclusive={"with": "VI_2"}),
         "node1/VI_1 is exclusive_with VI_2"),
    ],
)  # fmt: skip
def test_each_problem_is_named_and_refuses_the_drill(change, expected) -> None:
    s = pair()
    change(s)
    problems = drill.vrrp_drill_plan(s, NODES)["problems"]
    assert any(expected in p for p in problems), problems


def test_drill_vips_must_name_a_vip() -> None:
    problems = drill.vrrp_drill_plan(pair(), NODES, ["10.0.0.99/24"])["problems"]
    assert problems == [
        "drill_vips: 10.0.0.99 is no instance's VIP on any node (they have: 10.0.0.100)"
    ]
    assert drill.vrrp_drill_plan(pair(), NODES, ["10.0.0.100/24"])["problems"] == []


def test_dual_master_is_a_step_per_holder_and_a_drain_checks_every_vip_it_moves() -> None:
    s = {
        "node1": ok(doc({"VI_1": inst("MASTER", 150, "10.0.0.11", "10.0.0.101/24"),
                         "VI_2": inst("BACKUP", 100, "10.0.0.11", "10.0.0.102/24")})),
        "node2": ok(doc({"VI_1": inst("BACKUP", 100, "10.0.0.12", "10.0.0.101/24"),
                         "VI_2": inst("MASTER", 150, "10.0.0.12", "10.0.0.102/24")})),
    }  # fmt: skip
    plan = drill.vrrp_drill_plan(s, NODES, ["10.0.0.102"])
    assert [(st["node"], [v["vip"] for v in st["vips"]]) for st in plan["steps"]] == [
        ("node2", ["10.0.0.102"])
    ]
    s["node1"]["doc"]["instances"]["VI_2"]["state"] = "FAULT"
    assert any("10.0.0.102 cannot move from node2: node1: VI_2 is FAULT" in p
               for p in drill.vrrp_drill_plan(s, NODES, ["10.0.0.102"])["problems"])  # fmt: skip
    # Only node1's VIP drilled: node2's broken taker is not in the way.
    assert drill.vrrp_drill_plan(s, NODES, ["10.0.0.101"])["problems"] == []


def test_an_entry_is_measured_on_the_agents_clocks() -> None:
    [v] = drill.vrrp_drill_plan(pair(), NODES)["steps"][0]["vips"]
    taker = doc({"VI_1": inst("MASTER", 100, "10.0.0.12", last_transition_at=1000.61)})
    after = pair()
    after["node1"]["doc"]["instances"]["VI_1"]["last_transition_at"] = 1010.2
    after["node2"]["doc"]["instances"]["VI_1"]["last_transition_at"] = 1010.25
    e = drill.vrrp_drill_entry(v, 1000.0, taker, {"downtime_s": 0.05, "requests": 40, "failed": 1},
                               1010.0, after, {"downtime_s": 0.0})  # fmt: skip
    assert (e["moved_after_s"], e["client_downtime_s"], e["failback_after_s"]) == (0.61, 0.05, 0.25)
    report = drill.vrrp_drill_finish({"vips": {"10.0.0.100": e}})
    assert report["exceeded"] == []
    slow = {**e, "client_downtime_s": 9.0}
    assert drill.vrrp_drill_exceeded({"vips": {"10.0.0.100": slow}}) == [
        f"10.0.0.100: client_downtime_s 9.0 s > bound {v['bound_s']} s"
    ]
    assert drill.vrrp_drill_table(report)[1].split() == [
        "10.0.0.100", "node1", "node2", "0.61", "0.05", "0.25", "0.00", f"{v['bound_s']:.2f}"
    ]  # fmt: skip


def test_undrain_waits_only_for_what_preemption_brings_back() -> None:
    s = pair()
    s["node1"]["doc"]["instances"]["VI_1"].update(state="BACKUP", holds_vips=False)
    s["node2"]["doc"]["instances"]["VI_1"].update(state="MASTER", holds_vips=True)
    assert drill.vrrp_ops_would_win(s, "node1") == {"VI_1": "MASTER"}
    s["node1"]["doc"]["instances"]["VI_1"]["preempt"] = False
    assert drill.vrrp_ops_would_win(s, "node1") == {}
    s["node1"]["doc"]["instances"]["VI_1"].update(preempt=True, effective_priority=100)
    assert drill.vrrp_ops_would_win(s, "node1") == {}  # equal: a backup does not preempt


def test_maintenance_and_upgrade_health() -> None:
    assert drill.vrrp_maintenance_problems(pair(), NODES, "node1") == []
    assert drill.vrrp_maintenance_problems(pair(), NODES, "node3") == [
        "maintenance_host: node3 is not a VRRP node (they are: node1, node2)"
    ]
    fresh = doc({"VI_1": inst("BACKUP", 150, "10.0.0.11")}, drained=True, version="0.2.0")
    assert drill.vrrp_ops_unhealthy(fresh, "0.2.0") == []
    assert drill.vrrp_ops_unhealthy({**fresh, "drained": False}, "0.1.9") == [
        "runs version 0.2.0, not 0.1.9",
        "is not drained (the drain file was lost across the restart)",
    ]


def test_the_probe_summary_counts_runs_of_failures() -> None:
    rows = [{"wall": 5.0}, [0.0, True, "a"], [0.05, False, "ERR: x"], [0.4, False, "ERR: x"],
            [0.75, True, "b"], [0.8, False, "ERR: y"], [0.85, True, "b"], {"done": True}]  # fmt: skip
    s = http_probe.summary([json.dumps(r) for r in rows])
    assert (s["downtime_s"], s["outages"], s["failed"], s["requests"]) == (0.7, 2, 3, 6)
    assert (
        s["recovered"] and s["done"] and s["answers"] == {"a": 1, "ERR: x": 2, "b": 2, "ERR: y": 1}
    )
    tail = http_probe.summary([json.dumps(r) for r in rows[:4]])
    assert (tail["recovered"], tail["downtime_s"]) == (False, 0.35)


def test_a_client_that_never_got_back_fails_the_drill() -> None:
    [v] = drill.vrrp_drill_plan(pair(), NODES)["steps"][0]["vips"]
    taker = doc({"VI_1": inst("MASTER", 100, "10.0.0.12", last_transition_at=1.0)})
    e = drill.vrrp_drill_entry(v, 0.5, taker, {"downtime_s": 0.1, "recovered": False})
    assert drill.vrrp_drill_exceeded({"vips": {"10.0.0.100": e}}) == [
        "10.0.0.100: the client was still not answered when the probe stopped",
        # and the way back was never measured (it fails back: preempt)
        "10.0.0.100: failback_after_s was not measured",
        "10.0.0.100: failback_downtime_s was not measured",
    ]


def anycast() -> dict:
    one = {"unicast": True, "unicast_peer": []}
    return {
        n: ok(doc({"VI_1": inst("MASTER", 100, f"10.0.0.1{i}", "10.255.0.2/32", **one)}))
        for i, n in enumerate(["node1", "node2", "node3"], 1)
    }


def test_anycast_vips_are_not_drilled_and_a_drain_keeps_one_holder() -> None:
    nodes = ["node1", "node2", "node3"]
    s = anycast()
    assert drill.vrrp_ops_holder_problems(s) == []
    assert drill.vrrp_drill_plan(s, nodes)["problems"] == [
        "no VIP to drill: every VIP is anycast (10.255.0.2): there is no failover to drill"
    ]
    assert "drill_vips: 10.255.0.2 is anycast" in drill.vrrp_drill_plan(s, nodes, ["10.255.0.2"])[
        "problems"][0]  # fmt: skip
    assert drill.vrrp_maintenance_problems(s, nodes, "node1") == []
    for n in ("node2", "node3"):
        s[n]["doc"]["instances"]["VI_1"].update(state="BACKUP", holds_vips=False)
    assert drill.vrrp_maintenance_problems(s, nodes, "node1") == [
        "anycast VIP 10.255.0.2: no other node holds it; draining node1 would take it down"
    ]
    assert drill.vrrp_ops_would_win(s, "node2") == {"VI_1": "MASTER"}
    s["node1"]["doc"]["instances"]["VI_1"].update(state="BACKUP", holds_vips=False)
    assert drill.vrrp_ops_holder_problems(s) == ["anycast VIP 10.255.0.2: no node holds it"]


def test_a_vrrp_vip_must_have_exactly_one_holder() -> None:
    s = pair()
    s["node2"]["doc"]["instances"]["VI_1"].update(state="MASTER", holds_vips=True)
    assert drill.vrrp_ops_holder_problems(s) == [
        "VIP 10.0.0.100: held by node1 and node2, not exactly one"
    ]


def test_the_agent_command_follows_the_nodes_vrrp_agent_variables() -> None:
    assert drill.vrrp_ops_agent({}, ["status", "--json"]) == [
        "/opt/vrrp-agent/bin/vrrp-agent", "status", "--json", "-c", "/etc/vrrp-agent/agent.yml"
    ]  # fmt: skip
    host = {"vrrp_agent_venv": "/srv/a b", "vrrp_agent_config_file": "/etc/x.yml"}
    assert (
        drill.vrrp_ops_put_back(host, "graceful")
        == "'/srv/a b/bin/vrrp-agent' undrain -c /etc/x.yml"
    )
    assert drill.vrrp_ops_put_back(host, "stop") == "systemctl start vrrp-agent"
    assert drill.vrrp_ops_put_back(host, "freeze").startswith("kill -CONT ")
