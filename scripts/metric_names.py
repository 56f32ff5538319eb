"""The metric names a Grafana dashboard and a Prometheus rules file use, and
whether an agent's /metrics serves them.

    python3 scripts/metric_names.py dashboards/vrrp-agent.json prometheus/vrrp-agent.rules.yml
    curl -s http://NODE:PORT/metrics | python3 scripts/metric_names.py \\
        dashboards/vrrp-agent.json prometheus/vrrp-agent.rules.yml -

The first prints every name used; the second the names used but not served
(exit 1 if any). From Python (a test that scrapes a running agent):
`missing(dashboard_path, rules_path, exposition_text) -> set[str]`.

Names are found by a small PromQL tokenizer, not a full parser: strings,
label matchers `{...}`, ranges and subqueries `[...]`, the label lists of
by/without/on/ignoring/group_left/group_right, numbers and durations are
skipped, and so are function names (an identifier before `(`), keywords and
Grafana's `$variables`. A `{__name__="x"}` matcher counts as the name x.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

# keepalived-exporter's names (mehdy/keepalived-exporter v1.7.1,
# internal/collector/collector.go), as served: counters with their _total.
KEEPALIVED_NAMES = frozenset(
    {
        "keepalived_up",
        "keepalived_vrrp_state",
        "keepalived_vrrp_excluded_state",
        "keepalived_exporter_check_script_status",
        "keepalived_gratuitous_arp_delay_total",
        "keepalived_advertisements_received_total",
        "keepalived_advertisements_sent_total",
        "keepalived_become_master_total",
        "keepalived_release_master_total",
        "keepalived_packet_length_errors_total",
        "keepalived_advertisements_interval_errors_total",
        "keepalived_ip_ttl_errors_total",
        "keepalived_invalid_type_received_total",
        "keepalived_address_list_errors_total",
        "keepalived_authentication_invalid_total",
        "keepalived_authentication_mismatch_total",
        "keepalived_authentication_failure_total",
        "keepalived_priority_zero_received_total",
        "keepalived_priority_zero_sent_total",
        "keepalived_script_status",
        "keepalived_script_state",
    }
)
# The agent's own names (issue 16).
AGENT_NAMES = frozenset(
    {
        "vrrp_agent_priority",
        "vrrp_agent_effective_priority",
        "vrrp_agent_last_transition_timestamp_seconds",
        "vrrp_agent_rx_dropped_total",
        "vrrp_agent_real_server_up",
        "vrrp_agent_virtual_server_programmed",
        "vrrp_agent_holds_vips",
        "vrrp_agent_drained",
    }
)
# Series Prometheus makes itself for every target; no exporter serves them.
SCRAPE_NAMES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)

KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
# Keywords followed by a parenthesised list of label names.
LABEL_LIST = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:[a-zA-Z]+\d*)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<punct>[(){}\[\],])
  | (?P<op>[-+*/%^=!<>~@]+)
    """,
    re.VERBOSE,
)
_NAME_MATCHER = re.compile(r"""__name__\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:  # a character PromQL does not have: skip it
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup or ""
        if kind not in ("space", "comment"):
            yield kind, m.group()


def names_in_expr(expr: str) -> set[str]:
    """The metric names one PromQL expression selects."""
    tokens = list(_tokens(expr))
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if text == "{":  # label matchers: only __name__ names a metric
            j = _close(tokens, i, "{", "}")
            inner = "".join(t for _, t in tokens[i + 1 : j])
            names.update(a or b for a, b in _NAME_MATCHER.findall(inner))
            i = j + 1
            continue
        if text == "[":  # a range or subquery: durations and $__rate_interval
            i = _close(tokens, i, "[", "]") + 1
            continue
        if kind == "ident":
            low = text.lower()
            nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
            if low in LABEL_LIST and nxt == "(":
                i = _close(tokens, i + 1, "(", ")") + 1
                continue
            if low not in KEYWORDS and text not in AGGREGATIONS and nxt != "(":
                names.add(text)
        i += 1
    return names


def _close(tokens: list[tuple[str, str]], start: int, open_: str, close: str) -> int:
    """The index of the bracket closing the one at `start` (or the last token)."""
    depth = 0
    for j in range(start, len(tokens)):
        if tokens[j][1] == open_:
            depth += 1
        elif tokens[j][1] == close:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _variable_query_exprs(query: str) -> Iterator[str]:
    """The PromQL inside a Grafana Prometheus variable query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*", query, re.S)
    if m:
        yield m.group(1)
        return
    # label_values(LABEL), label_names(), metrics(REGEX): no metric selected
    if re.fullmatch(r"\s*(label_values\(\s*\w+\s*\)|label_names\(\s*\)|metrics\(.*\))\s*", query):
        return
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
    yield m.group(1) if m else query


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboard_exprs(dashboard: dict) -> list[str]:
    """The PromQL of every panel target (rows' nested panels too) and every query variable."""
    exprs = []
    for panel in _walk(dashboard.get("panels", [])):
        for target in panel.get("targets", []) or []:
            if isinstance(target, dict) and target.get("expr"):
                exprs.append(target["expr"])
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        exprs.extend(_variable_query_exprs(query or var.get("definition", "")))
    return exprs


def rules_exprs(rules: dict) -> list[str]:
    """The expr of every alerting and recording rule."""
    return [rule["expr"] for group in rules.get("groups", []) for rule in group.get("rules", [])]


def used_names(paths: Iterable[str | Path]) -> set[str]:
    """The metric names used by dashboards (*.json) and rules files (YAML)."""
    names: set[str] = set()
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            exprs = dashboard_exprs(json.loads(text))
        else:
            exprs = rules_exprs(yaml.safe_load(text))
        for expr in exprs:
            names |= names_in_expr(expr)
    return names


def served_names(exposition: str) -> set[str]:
    """The sample names a Prometheus text exposition serves: counters as NAME_total
    (and NAME_created), histograms and summaries with their suffixes."""
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for family in text_string_to_metric_families(exposition) for s in family.samples}


def missing(dashboard_path: str | Path, rules_path: str | Path, exposition_text: str) -> set[str]:
    """The names the dashboard and the rules use that the exposition does not serve
    (Prometheus's own per-target series, such as `up`, aside)."""
    return used_names([dashboard_path, rules_path]) - served_names(exposition_text) - SCRAPE_NAMES


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        print("\n".join(sorted(used_names(argv))))
        return 0
    if len(argv) == 3:
        exposition = sys.stdin.read() if argv[2] == "-" else Path(argv[2]).read_text()
        gone = missing(argv[0], argv[1], exposition)
        for name in sorted(gone):
            print(f"not served: {name}")
        return 1 if gone else 0
    print("usage: metric_names.py DASHBOARD RULES [EXPOSITION|-]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
