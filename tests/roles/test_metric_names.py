"""scripts/metric_names.py: the names the dashboard and the alerting rules use,
the names an exposition serves, and the contract between them (issue 16)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import metric_names
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tests import needs

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards/vrrp-agent.json"
RULES = REPO / "prometheus/vrrp-agent.rules.yml"

# What an agent with one instance (one VIP), one check and one virtual server
# might serve: counters with _total and _created, as prometheus-client writes
# them, and a histogram (not in the contract) for the suffixes.
EXPOSITION = """\
# HELP keepalived_up Status
# TYPE keepalived_up gauge
keepalived_up 1.0
# HELP keepalived_vrrp_state State of vrrp
# TYPE keepalived_vrrp_state gauge
keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="10.0.0.100",vrid="51"} 2.0
# HELP keepalived_become_master_total Became master
# TYPE keepalived_become_master_total counter
keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"} 3.0
keepalived_become_master_created{iname="VI_1",intf="eth0",vrid="51"} 1.7e9
# HELP keepalived_script_status Tracker Script Status
# TYPE keepalived_script_status gauge
keepalived_script_status{name="chk_nginx"} 1.0
# HELP vrrp_agent_rx_dropped_total Packets dropped on receive
# TYPE vrrp_agent_rx_dropped_total counter
vrrp_agent_rx_dropped_total{iname="VI_1",intf="eth0",reason="ttl",vrid="51"} 0.0
# HELP vrrp_agent_check_seconds How long checks take
# TYPE vrrp_agent_check_seconds histogram
vrrp_agent_check_seconds_bucket{le="0.1"} 4.0
vrrp_agent_check_seconds_bucket{le="+Inf"} 5.0
vrrp_agent_check_seconds_count 5.0
vrrp_agent_check_seconds_sum 0.7
"""


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "round(sum by (job, vrid) (increase(keepalived_become_master_total[1h]))) > 6",
            {"keepalived_become_master_total"},
        ),
        (
            "increase(a_total[2m]) == 0\nand on (job, instance, iname, vrid)\n(b == 1)",
            {"a_total", "b"},
        ),
        ("x * on (a) group_left (ip_address) y offset 5m", {"x", "y"}),
        ("x * ignoring (a) group_right y", {"x", "y"}),
        ('sum without (instance) (foo{job="j"}) / bar', {"foo", "bar"}),
        ('{__name__="foo", job="x"}', {"foo"}),
        ('rate(foo{job=~"$job",le="0.5",by="on"}[$__rate_interval])', {"foo"}),
        (
            'time() - vrrp_agent_last_transition_timestamp_seconds{instance=~"$instance"}',
            {"vrrp_agent_last_transition_timestamp_seconds"},
        ),
        ('count_values("state", keepalived_vrrp_state)', {"keepalived_vrrp_state"}),
        ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ('up{job="vrrp-agent"} == bool 0 unless absent(z)', {"up", "z"}),
        ("max_over_time(foo[5m:30s]) > Inf or bar < NaN", {"foo", "bar"}),
        ("topk(3, foo) and bar offset 1h30m", {"foo", "bar"}),
        ("job:foo:rate5m > 1e3", {"job:foo:rate5m"}),
        ("# a comment naming nothing\nfoo", {"foo"}),
        ("vector(1) + scalar(count(foo))", {"foo"}),
    ],
)
def test_names_in_expr(expr, names):
    assert metric_names.names_in_expr(expr) == names


def test_served_names_are_sample_names():
    served = metric_names.served_names(EXPOSITION)
    assert "keepalived_become_master_total" in served
    assert "keepalived_become_master_created" in served
    assert "keepalived_become_master" not in served  # the family's name, not a sample's
    assert "vrrp_agent_rx_dropped_total" in served
    assert {"vrrp_agent_check_seconds_bucket", "vrrp_agent_check_seconds_count"} <= served
    assert "vrrp_agent_check_seconds_sum" in served
    assert "keepalived_vrrp_state" in served


def test_variable_queries(tmp_path):
    dashboard = {
        "panels": [{"type": "row", "panels": [{"targets": [{"expr": "rate(a_total[1m])"}]}]}],
        "templating": {
            "list": [
                {"type": "query", "query": 'label_values(b{job=~"$job", x="1,2"}, instance)'},
                {"type": "query", "query": {"query": "label_values(job)", "refId": "v"}},
                {"type": "query", "query": "query_result(topk(1, c))"},
                {"type": "query", "query": "", "definition": "label_values(d, job)"},
                {"type": "custom", "query": "e,f"},
            ]
        },
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    assert metric_names.used_names([path]) == {"a_total", "b", "c", "d"}


def _exposition(names):
    """`names` served as prometheus-client would serve them: counters declared
    without _total come out as NAME_total."""

    class Collector:
        def collect(self):
            for name in sorted(names):
                if name.endswith("_total"):
                    family = CounterMetricFamily(name[: -len("_total")], "h", labels=["vrid"])
                    family.add_metric(["51"], 1)
                else:
                    family = GaugeMetricFamily(name, "h", labels=["vrid"])
                    family.add_metric(["51"], 1)
                yield family

    registry = CollectorRegistry()
    registry.register(Collector())
    return generate_latest(registry).decode()


def test_missing_against_a_full_exposition():
    text = _exposition(metric_names.KEEPALIVED_NAMES | metric_names.AGENT_NAMES)
    assert "keepalived_become_master_total{" in text
    assert metric_names.missing(DASHBOARD, RULES, text) == set()


def test_missing_names_what_is_not_served():
    served = (metric_names.KEEPALIVED_NAMES | metric_names.AGENT_NAMES) - {
        "keepalived_become_master_total",
        "vrrp_agent_holds_vips",
    }
    gone = metric_names.missing(DASHBOARD, RULES, _exposition(served))
    assert gone == {"keepalived_become_master_total", "vrrp_agent_holds_vips"}
    # The small fixture serves a handful; `up` is Prometheus's, never missing.
    gone = metric_names.missing(DASHBOARD, RULES, EXPOSITION)
    assert "up" not in gone
    assert "keepalived_vrrp_state" not in gone
    assert "vrrp_agent_priority" in gone


def test_dashboard_and_rules_use_only_contract_names():
    used = metric_names.used_names([DASHBOARD, RULES])
    allowed = metric_names.KEEPALIVED_NAMES | metric_names.AGENT_NAMES | {"up"}
    assert used - allowed == set()
    # every name of the agent's own is shown or alerted on
    assert metric_names.AGENT_NAMES - used == set()
    # what keepalived-exporter's own dashboard queries works here too
    assert {
        "keepalived_up",
        "keepalived_script_status",
        "keepalived_script_state",
        "keepalived_vrrp_state",
    } <= metric_names.used_names([DASHBOARD])


def test_cli(tmp_path, capsys):
    assert metric_names.main([str(DASHBOARD), str(RULES)]) == 0
    assert "keepalived_vrrp_state" in capsys.readouterr().out.split()
    full = tmp_path / "full.prom"
    full.write_text(_exposition(metric_names.KEEPALIVED_NAMES | metric_names.AGENT_NAMES))
    assert metric_names.main([str(DASHBOARD), str(RULES), str(full)]) == 0
    small = tmp_path / "small.prom"
    small.write_text(EXPOSITION)
    assert metric_names.main([str(DASHBOARD), str(RULES), str(small)]) == 1
    assert "not served: vrrp_agent_priority" in capsys.readouterr().out
    assert metric_names.main([]) == 2


def test_dashboard_shape():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36 and dash["uid"] == "vrrp-agent"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert (
        variables["instance"]["definition"] == 'label_values(keepalived_up{job=~"$job"}, instance)'
    )
    assert variables["job"]["definition"] == "label_values(keepalived_up, job)"
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        mine = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        for t in p.get("targets", []):
            assert 'job=~"$job",instance=~"$instance"' in t["expr"], p["title"]
            assert t["datasource"]["uid"] == "${datasource}"
    (timeline,) = [
        p
        for p in panels
        if p["type"] == "state-timeline" and "keepalived_vrrp_state" in p["targets"][0]["expr"]
    ]
    assert timeline["targets"][0]["legendFormat"] == "{{instance}} {{iname}} {{ip_address}}"
    (mapping,) = timeline["fieldConfig"]["defaults"]["mappings"]
    assert {k: v["text"] for k, v in mapping["options"].items()} == {
        "0": "INIT",
        "1": "BACKUP",
        "2": "MASTER",
        "3": "FAULT",
    }


def test_every_alert_has_severity_summary_and_description():
    rules = yaml.safe_load(RULES.read_text())
    (group,) = rules["groups"]
    alerts = [r for r in group["rules"] if "alert" in r]
    assert len(alerts) == 9  # VRRPNodeDrained the ninth
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert "for" in rule, rule["alert"]


def _promtool():
    for path in (shutil.which("promtool"), REPO / ".tools/bin/promtool"):
        if path and Path(path).exists():
            return str(path)
    needs.unavailable("needs promtool (make deps unpacks it into .tools/bin)")


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every dashboard query, with Grafana's variables filled in, passes
    `promtool check rules` as a recording rule."""
    exprs = metric_names.dashboard_exprs(json.loads(DASHBOARD.read_text()))
    assert len(exprs) > 20
    rules = [
        {"record": f"dashboard:query{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
