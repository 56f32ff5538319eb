"""The `status` document as Prometheus metric families, pure.

The `keepalived_*` families are keepalived-exporter's (mehdy/keepalived-exporter
1.7.1): the same names, label names, types and value mappings, so dashboards
and alerts written for keepalived keep working. The `vrrp_agent_*` families
are what the agent knows beyond keepalived's counters.

Everything is read from the document `vrrp-agent status --json` shows, so a
scrape and a `status` can never disagree; nothing here reads a socket or a
clock (the I/O layer stamps the wall-clock times into the document).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

# keepalived-exporter's values for keepalived_vrrp_state (and ours for groups).
STATE_VALUES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
# keepalived_script_state: keepalived's idle, running, requested termination,
# forcing termination. The agent never asks politely (a timed-out check gets
# SIGKILL at once), so 2 does not occur.
SCRIPT_RUN_STATES = {"idle": 0, "running": 1, "requested_termination": 2,
                     "forcing_termination": 3}  # fmt: skip

INSTANCE_LABELS = ("iname", "intf", "vrid")
VIP_LABELS = (*INSTANCE_LABELS, "ip_address")

# keepalived's receive-error counters, from the instance's `rx_dropped` reasons.
# Reasons not listed (checksum, version, version_mismatch, own_address,
# not_peer, family, no_pseudo_header) have no keepalived counter; they are in
# vrrp_agent_rx_dropped_total with every other reason.
RX_COUNTERS = {
    "packet_length_errors": ("Packet length errors", ("truncated", "length", "ip_header")),
    "advertisements_interval_errors": (
        "Advertisement interval errors",
        ("interval", "zero_interval"),
    ),
    "ip_ttl_errors": ("TTL errors", ("ttl",)),
    "invalid_type_received": ("Invalid type errors", ("type",)),
    "authentication_invalid": ("Authentication invalid", ("auth_invalid",)),
    "authentication_mismatch": ("Authentication mismatch", ("auth_type",)),
    "authentication_failure": ("Authentication failure", ("auth",)),
}
# keepalived's counters read straight from the instance's `stats`.
STAT_COUNTERS = {
    "advertisements_received": ("Advertisements received", "adverts_received"),
    "advertisements_sent": ("Advertisements sent", "adverts_sent"),
    "become_master": ("Became master", "became_master"),
    "release_master": ("Released master", "released_master"),
    # keepalived counts an address list that differs from its own; so do we
    # (RFC 9568 7.1 says accept such an advert, and we do).
    "address_list_errors": ("Address list errors", "rx_address_mismatch"),
    "priority_zero_received": ("Priority zero received", "priority_zero_received"),
    "priority_zero_sent": ("Priority zero sent", "priority_zero_sent"),
}
NOTIFY_OUTCOMES = ("ok", "failed", "timed_out", "not_started")

Doc = Mapping[str, Any]


def families(doc: Doc) -> list[Metric]:
    """Every metric family for one status document, in a stable order."""
    out: list[Metric] = []
    up = GaugeMetricFamily("keepalived_up", "Status")
    up.add_metric([], 1)
    out.append(up)
    instances: Mapping[str, Doc] = doc.get("instances") or {}
    out += _vrrp_states(instances)
    out += _keepalived_counters(instances)
    out += _scripts(doc.get("vrrp_scripts") or {})
    out += _instance_extras(instances)
    out += _tracking(instances)
    out += _node_extras(doc)
    # A family without series is left out, as the exporter's Go client does.
    return [f for f in out if f.samples]


def render(doc: Doc) -> bytes:
    """The text format (0.0.4) of `families(doc)`, byte for byte what
    prometheus_client's generate_latest writes for them (a unit test holds
    the two together), at less than half its cost: a scrape runs on the
    agent's loop, adverts waiting meanwhile, and with 255 instances (5,621
    series) bench/failover.py's scrapes took 41 ms (median; p90 79 ms)
    through generate_latest and 25 ms (p90 37 ms) through this, on our
    2-core machine. The saving is in the label sets, formatted once per
    instance rather than once per series."""
    out: list[str] = []
    labelsets: dict[tuple[tuple[str, str], ...], str] = {}
    for fam in families(doc):
        # Counters are named without _total in the model and with it on the wire.
        name = f"{fam.name}_total" if fam.type == "counter" else fam.name
        text = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {text}\n# TYPE {name} {fam.type}\n")
        for sample in fam.samples:
            labels = ""
            if sample.labels:
                key = tuple(sample.labels.items())
                labels = labelsets.get(key, "")
                if not labels:
                    pairs = sorted(sample.labels.items())
                    labels = labelsets[key] = (
                        "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"
                    )
            out.append(f"{sample.name}{labels} {_number(sample.value)}\n")
    return "".join(out).encode()


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _number(value: float) -> str:
    # floatToGoString's result for the integers counters and gauges mostly
    # are, without its float round trip; it switches to exponents at 1e6.
    if type(value) is int and -(10**15) < value < 10**6:
        return f"{value}.0"
    return str(floatToGoString(value))


class StatusCollector(Collector):
    """A collector over a callable that returns the status document."""

    def __init__(self, status: Callable[[], Doc]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        yield from families(self._status())


def registry_for(status: Callable[[], Doc]) -> CollectorRegistry:
    """A private registry with only the agent's metrics: not the client's
    default one, whose process and platform collectors keepalived-exporter
    does not have and whose `_created` series it would not match."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status))
    return registry


# --------------------------------------------------------------------- parts


def ip_label(vip: str) -> str:
    """keepalived prints a host address bare and any other prefix as written."""
    addr, _, plen = vip.partition("/")
    if plen in ("", "32" if ":" not in addr else "128"):
        return addr
    return vip


def _intf(st: Doc) -> str:
    # keepalived's ifp: the vmac an instance sends on, else its interface.
    return str(st.get("vmac_interface") or st.get("interface") or "")


def _labels(name: str, st: Doc) -> list[str]:
    return [name, _intf(st), str(st.get("virtual_router_id", ""))]


def _vrrp_states(instances: Mapping[str, Doc]) -> list[Metric]:
    state = GaugeMetricFamily("keepalived_vrrp_state", "State of vrrp", labels=VIP_LABELS)
    excluded = GaugeMetricFamily(
        "keepalived_vrrp_excluded_state", "State of vrrp with excluded VIP", labels=VIP_LABELS
    )
    for name, st in instances.items():
        value = STATE_VALUES.get(str(st.get("state")), 0)
        iname, intf, vrid = _labels(name, st)
        devs: Mapping[str, str] = st.get("vip_dev") or {}
        vips = st.get("virtual_ipaddress") or []
        for vip in vips:
            state.add_metric([iname, devs.get(vip, intf), vrid, ip_label(vip)], value)
        if not vips:
            state.add_metric([iname, intf, vrid, ""], value)
        for vip in st.get("virtual_ipaddress_excluded") or []:
            excluded.add_metric([iname, devs.get(vip, intf), vrid, ip_label(vip)], value)
    return [state, excluded]


def _keepalived_counters(instances: Mapping[str, Doc]) -> list[Metric]:
    out: list[Metric] = []
    # Each instance's labels, stats and drops looked up once, not once per family.
    rows = [(_labels(name, st), st.get("stats") or {}, st.get("rx_dropped") or {}, st)
            for name, st in instances.items()]  # fmt: skip
    garp = CounterMetricFamily(
        "keepalived_gratuitous_arp_delay", "Gratuitous ARP delay", labels=INSTANCE_LABELS
    )
    for labels, _, _, st in rows:
        garp.add_metric(labels, float(st.get("garp_master_delay") or 0))
    out.append(garp)
    for metric, (text, key) in STAT_COUNTERS.items():
        fam = CounterMetricFamily(f"keepalived_{metric}", text, labels=INSTANCE_LABELS)
        for labels, stats, _, _ in rows:
            fam.add_metric(labels, stats.get(key) or 0)
        out.append(fam)
    for metric, (text, reasons) in RX_COUNTERS.items():
        fam = CounterMetricFamily(f"keepalived_{metric}", text, labels=INSTANCE_LABELS)
        for labels, _, dropped, _ in rows:
            fam.add_metric(labels, sum(dropped.get(r, 0) for r in reasons) if dropped else 0)
        out.append(fam)
    return out


def _scripts(scripts: Mapping[str, Doc]) -> list[Metric]:
    status = GaugeMetricFamily("keepalived_script_status", "Tracker Script Status",
                               labels=("name",))  # fmt: skip
    state = GaugeMetricFamily("keepalived_script_state", "Tracker Script State", labels=("name",))
    for name, sc in scripts.items():
        good = sc.get("state") == "UP" and not sc.get("disabled")
        status.add_metric([name], 1 if good else 0)
        state.add_metric([name], SCRIPT_RUN_STATES.get(str(sc.get("run_state")), 0))
    return [status, state]


def _gauge(name: str, text: str, labels: Iterable[str] = INSTANCE_LABELS) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"vrrp_agent_{name}", text, labels=tuple(labels))


def _counter(name: str, text: str, labels: Iterable[str] = INSTANCE_LABELS) -> CounterMetricFamily:
    return CounterMetricFamily(f"vrrp_agent_{name}", text, labels=tuple(labels))


def _instance_extras(instances: Mapping[str, Doc]) -> list[Metric]:
    prio = _gauge("priority", "Configured (base) priority")
    eff = _gauge("effective_priority", "Priority after tracking: what is advertised")
    when = _gauge(
        "last_transition_timestamp_seconds",
        "Wall-clock time of the last state transition (absent before the first)",
    )
    reason = _gauge("transition_reason_info", "Why the instance is in its state (always 1)",
                    labels=(*INSTANCE_LABELS, "reason"))  # fmt: skip
    dropped = _counter("rx_dropped", "Adverts dropped by reason (as status shows them)",
                       labels=(*INSTANCE_LABELS, "reason"))  # fmt: skip
    tx_errors = _counter("tx_errors", "Adverts the host failed to send")
    holds = _gauge("holds_vips", "1 while the instance's virtual addresses are configured",
                   labels=("iname",))  # fmt: skip
    blocked = _gauge(
        "exclusive_pair_blocked",
        "1 while an exclusive pair keeps this instance's claim to MASTER back",
        labels=("iname", "partner"),
    )
    for name, st in instances.items():
        labels = _labels(name, st)
        prio.add_metric(labels, st.get("priority") or 0)
        eff.add_metric(labels, st.get("effective_priority") or 0)
        if st.get("last_transition_at") is not None:
            when.add_metric(labels, st["last_transition_at"])
        reason.add_metric([*labels, str(st.get("last_transition_reason") or "")], 1)
        for why, n in sorted((st.get("rx_dropped") or {}).items()):
            dropped.add_metric([*labels, why], n)
        tx_errors.add_metric(labels, (st.get("stats") or {}).get("tx_errors") or 0)
        holds.add_metric([name], 1 if st.get("holds_vips") else 0)
        pair = st.get("exclusive")
        if isinstance(pair, dict):
            blocked.add_metric([name, str(pair.get("with"))], 1 if pair.get("held_back") else 0)
    return [prio, eff, when, reason, dropped, tx_errors, holds, blocked]


def _tracking(instances: Mapping[str, Doc]) -> list[Metric]:
    link = _gauge("track_interface_up", "1 while a tracked interface is up",
                  labels=("iname", "interface"))  # fmt: skip
    files = _gauge("track_file_value", "The value a track_file read last",
                   labels=("iname", "file"))  # fmt: skip
    for name, st in instances.items():
        for ifname, t in (st.get("track_interface") or {}).items():
            link.add_metric([name, ifname], 1 if t.get("state") == "UP" else 0)
        for path, t in (st.get("track_file") or {}).items():
            if t.get("value") is not None:
                files.add_metric([name, path], t["value"])
    return [link, files]


def _node_extras(doc: Doc) -> list[Metric]:
    out: list[Metric] = []
    info = _gauge("info", "The agent's version and router_id (always 1)",
                  labels=("version", "router_id"))  # fmt: skip
    info.add_metric([str(doc.get("version")), str(doc.get("router_id"))], 1)
    reloads = _counter("reloads", "Configuration reloads (SIGHUP) that took effect", labels=())
    reloads.add_metric([], doc.get("reloads") or 0)
    unattributed = _counter("rx_unattributed_dropped",
                            "Packets dropped before they could be attributed to an instance",
                            labels=("reason",))  # fmt: skip
    for why, n in sorted((doc.get("rx_dropped") or {}).items()):
        unattributed.add_metric([why], n)
    groups = _gauge("sync_group_state", "Sync group state (BACKUP 1, MASTER 2, FAULT 3)",
                    labels=("group",))  # fmt: skip
    for group, state in (doc.get("vrrp_sync_groups") or {}).items():
        groups.add_metric([group], STATE_VALUES.get(str(state), 0))
    drained = _gauge("drained", "1 while the node is drained (vrrp-agent drain): nothing becomes "
                     "MASTER here", labels=())  # fmt: skip
    drained.add_metric([], 1 if doc.get("drained") else 0)
    out += [info, reloads, unattributed, groups, drained]
    out += _notify(doc.get("notify") or {})
    out += _arbiter(doc.get("arbiter"))
    out += _virtual_servers(doc.get("virtual_servers") or [])
    out += _smtp(doc.get("smtp"))
    logging = _counter("logging_dropped", "Log lines dropped because stderr's reader lagged",
                       labels=())  # fmt: skip
    logging.add_metric([], (doc.get("logging") or {}).get("dropped") or 0)
    out.append(logging)
    return out


def _notify(notify: Doc) -> list[Metric]:
    queue = _gauge("notify_queue_length", "Notify hooks waiting to run", labels=())
    queue.add_metric([], (notify.get("queued") or 0) + (1 if notify.get("running") else 0))
    hooks = _counter("notify_hooks", "Notify hook runs by how they ended", labels=("outcome",))
    outcomes = notify.get("outcomes") or {}
    for outcome in NOTIFY_OUTCOMES:
        hooks.add_metric([outcome], outcomes.get(outcome, 0))
    coalesced = _counter("notify_coalesced", "Transitions whose hooks were superseded unrun",
                         labels=())  # fmt: skip
    coalesced.add_metric([], notify.get("coalesced") or 0)
    out: list[Metric] = [queue, hooks, coalesced]
    fifo = notify.get("fifo")
    if isinstance(fifo, dict):
        dropped = _counter("notify_fifo_dropped", "notify_fifo lines dropped", labels=())
        dropped.add_metric([], fifo.get("dropped") or 0)
        out.append(dropped)
    return out


def _arbiter(arbiter: Doc | None) -> list[Metric]:
    if not isinstance(arbiter, dict):
        return []
    up = _gauge("arbiter_up", "1 while the arbiter counts as reachable (after fall/rise)",
                labels=())  # fmt: skip
    up.add_metric([], 1 if arbiter.get("state") == "UP" else 0)
    reach = _gauge("arbiter_reachable", "1 when the address answered the last probe round",
                   labels=("address",))  # fmt: skip
    for addr, ref in (arbiter.get("addresses") or {}).items():
        ok = ref.get("error") is None and ref.get("last_answer_age") is not None
        reach.add_metric([addr], 1 if ok else 0)
    return [up, reach]


def _virtual_servers(servers: Iterable[Doc]) -> list[Metric]:
    programmed = _gauge("virtual_server_programmed",
                        "1 while this node programs the virtual server's data plane",
                        labels=("virtual_server",))  # fmt: skip
    real = _gauge("real_server_up", "1 while the real server's checker says UP",
                  labels=("virtual_server", "real_server"))  # fmt: skip
    for vs in servers:
        name = str(vs.get("virtual_server"))
        programmed.add_metric([name], 1 if vs.get("active") else 0)
        for rs, st in (vs.get("real_servers") or {}).items():
            real.add_metric([name, rs], 1 if st.get("state") == "UP" else 0)
    return [programmed, real]


def _smtp(smtp: Doc | None) -> list[Metric]:
    if not isinstance(smtp, dict):
        return []
    queue = _gauge("smtp_queue_length", "Alert mails waiting to be sent", labels=())
    queue.add_metric([], smtp.get("queued") or 0)
    out: list[Metric] = [queue]
    for key, text in (("sent", "Alert mails sent"), ("failed", "Alert mail attempts that failed"),
                      ("dropped", "Alert mails dropped (queue full or given up)")):  # fmt: skip
        fam = _counter(f"smtp_{key}", text, labels=())
        fam.add_metric([], smtp.get(key) or 0)
        out.append(fam)
    return out
