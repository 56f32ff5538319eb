"""What the drill, maintenance and upgrade playbooks decide from the agents'
`vrrp-agent status --json` documents: who holds each VIP, who would take it
over and whether that node can, the bound each move must meet, and the
report. Pure functions of their arguments (no Ansible imports beyond the
plugin class), so tests call them directly.

A VIP is named by its address without the prefix, as in the report.
"""

from __future__ import annotations

from typing import Any

GRACEFUL, STOP, FREEZE = "graceful", "stop", "freeze"
MODES = (GRACEFUL, STOP, FREEZE)


def _skew(version: int, priority: int, interval: float) -> float:
    """RFC 3768 / RFC 9568 Skew_Time (vrrp_agent.core.timers.skew_time: the
    controller need not have the agent installed, so it is restated here)."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * interval / 256


def _addr(vip: str) -> str:
    return str(vip).split("/", 1)[0]


def vrrp_ops_agent(host: dict[str, Any], args: list[str]) -> list[str]:
    """The argv of `vrrp-agent ARGS -c CONFIG` on a node, from its hostvars:
    where the vrrp_agent role put the agent (its defaults, restated here
    once: these playbooks do not run that role)."""
    venv = host.get("vrrp_agent_venv", "/opt/vrrp-agent")
    config = host.get("vrrp_agent_config_file", "/etc/vrrp-agent/agent.yml")
    return [f"{venv}/bin/vrrp-agent", *args, "-c", config]


def vrrp_ops_put_back(host: dict[str, Any], mode: str) -> str:
    """The shell line that undoes a drill's step on a node: undrain, start
    the agent, or thaw it."""
    import shlex

    if mode == GRACEFUL:
        return shlex.join(vrrp_ops_agent(host, ["undrain"]))
    if mode == STOP:
        return "systemctl start vrrp-agent"
    return 'kill -CONT "$(systemctl show -p MainPID --value vrrp-agent)"'


def vrrp_ops_url(vip: str, port: object, path: str) -> str:
    """The probe's URL for a VIP (an IPv6 address in brackets)."""
    host = f"[{vip}]" if ":" in vip else vip
    return f"http://{host}:{port}{path}"


def vrrp_ops_statuses(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The registered loop of `vrrp-agent status --json` (one item per node)
    as {node: {"ok": bool, "doc": status or None, "error": why not}}."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for r in results:
        node = r["item"]
        if r.get("rc") != 0:
            why = (r.get("stderr") or r.get("msg") or "").strip().splitlines()
            out[node] = {"ok": False, "doc": None, "error": why[-1] if why else f"rc {r.get('rc')}"}
            continue
        try:
            doc = json.loads(r.get("stdout") or "")
        except ValueError as err:
            out[node] = {"ok": False, "doc": None, "error": f"status is not JSON: {err}"}
            continue
        out[node] = {"ok": True, "doc": doc, "error": None}
    return out


def vrrp_ops_vips(statuses: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every VIP any answering node configures: {vip: [{node, iname, inst}]},
    nodes in inventory order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for node, st in statuses.items():
        if not st["ok"]:
            continue
        for iname, inst in sorted(st["doc"].get("instances", {}).items()):
            for vip in inst.get("virtual_ipaddress", []):
                out.setdefault(_addr(vip), []).append({"node": node, "iname": iname, "inst": inst})
    return out


def _anycast(entries: list[dict[str, Any]]) -> bool:
    """An anycast VIP (vrrp_vip_routing_mode: anycast): every node's instance
    is unicast with no peer, so each healthy node holds it and routing
    spreads the clients; there is no election to drill."""
    return bool(entries) and all(
        e["inst"].get("unicast") and not e["inst"].get("unicast_peer") for e in entries
    )


def vrrp_ops_holder_problems(statuses: dict[str, dict[str, Any]]) -> list[str]:
    """Each VIP held otherwise than it should be: a VRRP VIP by exactly one
    node, an anycast VIP by one node at least."""
    out = []
    for vip, entries in vrrp_ops_vips(statuses).items():
        who = [e["node"] for e in entries if _holds(e["inst"])]
        if _anycast(entries):
            if not who:
                out.append(f"anycast VIP {vip}: no node holds it")
        elif len(who) != 1:
            out.append(f"VIP {vip}: held by {' and '.join(who) or 'no node'}, not exactly one")
    return out


def vrrp_ops_holders(statuses: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """{vip: [nodes whose instance for it is MASTER and holds its VIPs]}."""
    return {
        vip: [e["node"] for e in entries if _holds(e["inst"])]
        for vip, entries in vrrp_ops_vips(statuses).items()
    }


def _holds(inst: dict[str, Any]) -> bool:
    return inst.get("state") == "MASTER" and bool(inst.get("holds_vips", True))


def _unhealthy(node: str, iname: str, inst: dict[str, Any], doc: dict[str, Any]) -> str | None:
    """Why this instance could not take a VIP over, or None."""
    if inst.get("state") != "BACKUP":
        faults = "; ".join(f"{k}: {v}" for k, v in (inst.get("faults") or {}).items())
        return f"{node}: {iname} is {inst.get('state')}" + (f" ({faults})" if faults else "")
    if inst.get("faults"):
        return f"{node}: {iname} has faults {sorted(inst['faults'])}"
    if int(inst.get("effective_priority", 0)) < 1:
        return f"{node}: {iname} has effective priority {inst.get('effective_priority')}"
    down = [n for n, s in (doc.get("vrrp_scripts") or {}).items() if s.get("state") == "DOWN"]
    if down:
        return f"{node}: check {', '.join(sorted(down))} is DOWN"
    if doc.get("drained"):
        return f"{node}: is drained; it would not take anything over"
    return None


def _ip(inst: dict[str, Any]) -> tuple[int, ...]:
    """The source address as numbers, for the RFC's tie-break."""
    import ipaddress

    try:
        return tuple(ipaddress.ip_address(str(inst.get("source_ip"))).packed)
    except ValueError:
        return ()


def _taker(vip: str, holder: str, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The node that wins once the holder gives the VIP up: the highest
    effective priority among the others, the higher source address on a tie
    (RFC 5798 6.4.3), whatever its health (checked separately)."""
    others = [e for e in entries if e["node"] != holder]
    if not others:
        return None

    def rank(e: dict[str, Any]) -> tuple[int, int, tuple[int, ...]]:
        inst = e["inst"]
        ok = 1 if inst.get("state") == "BACKUP" else 0
        return ok, int(inst.get("effective_priority", 0)), _ip(inst)

    return max(others, key=rank)


# What a restarted agent takes to start and read its configuration before it
# competes (drill_mode stop), on a loaded host.
START_UP = 2.0


def _failback_bound(
    mode: str, version: int, prio: int, interval: float, inst: dict[str, Any]
) -> float:
    """Seconds until the holder has its VIP back. Thawed, it advertises at
    once (its advert timer is late) and the taker yields to the higher
    priority. Undrained or restarted, it is a backup that ignores the
    taker's lower-priority adverts until its own Master_Down runs out (RFC
    5798 6.4.2), then waits preempt_delay."""
    if mode == FREEZE:
        return interval
    down = 3 * interval + _skew(version, prio, interval)
    return down + float(inst.get("preempt_delay") or 0) + (START_UP if mode == STOP else 0.0)


def vrrp_drill_plan(
    statuses: dict[str, dict[str, Any]],
    nodes: list[str],
    only: list[str] | None = None,
    mode: str = GRACEFUL,
    slack: float = 0.85,
    max_downtime: float | None = None,
    extra_bound: float = 0.0,
) -> dict[str, Any]:
    """Check the cluster and plan one step per holder: draining (stopping,
    freezing) a node moves every VIP it holds, so all of them must have a
    healthy taker even when `only` selects some. `slack` is what the probe and
    the hosts add to the protocol's time (the probe's interval and timeout
    and a margin); `extra_bound` the routing protocol's part."""
    problems: list[str] = []
    if mode not in MODES:
        problems.append(f"drill_mode: {mode!r} is not one of {', '.join(MODES)}")
    for node in nodes:
        st = statuses.get(node)
        if st is None or not st["ok"]:
            why = st["error"] if st else "not read"
            problems.append(f"{node}: the agent does not answer `vrrp-agent status` ({why})")
        elif st["doc"].get("drained"):
            problems.append(
                f"{node}: drained since {st['doc'].get('drained_since')}; "
                "`vrrp-agent undrain` it (or playbooks/maintenance.yml -e maintenance=off) first"
            )
    vips = vrrp_ops_vips(statuses)
    wanted = [_addr(v) for v in (only or [])]
    for v in wanted:
        if v not in vips:
            problems.append(
                f"drill_vips: {v} is no instance's VIP on any node (they have: "
                f"{', '.join(sorted(vips)) or 'none'})"
            )
    anycast = sorted(v for v, entries in vips.items() if _anycast(entries))
    for v in wanted:
        if v in anycast:
            problems.append(
                f"drill_vips: {v} is anycast (each healthy node holds it, no election): "
                "there is no failover to drill; take a node out with playbooks/maintenance.yml"
            )
    chosen = [v for v in vips if (not wanted or v in wanted) and v not in anycast]
    if not chosen and not problems:
        problems.append(
            "no VIP to drill: "
            + (f"every VIP is anycast ({', '.join(anycast)}): there is no failover to drill"
               if anycast else "no answering node configures a virtual_ipaddress")
        )  # fmt: skip

    steps: dict[str, dict[str, Any]] = {}
    for vip, entries in vips.items():
        if vip in anycast:
            continue
        held_by = [e for e in entries if _holds(e["inst"])]
        if len(held_by) != 1:
            if vip in chosen or held_by:
                who = " and ".join(e["node"] for e in held_by) or "no node"
                states = ", ".join(
                    f"{e['node']}/{e['iname']} {e['inst'].get('state')}" for e in entries
                )
                problems.append(f"VIP {vip}: held by {who}, not exactly one ({states})")
            continue
        h = held_by[0]
        hinst = h["inst"]
        if hinst.get("exclusive"):
            partner = hinst["exclusive"]["with"]
            problems.append(
                f"VIP {vip}: {h['node']}/{h['iname']} is exclusive_with {partner}: "
                "a drained, stopped or frozen node's VIP stays unserved while its peer holds the "
                "partner, so the drill would take it down, not move it"
            )
            continue
        t = _taker(vip, h["node"], entries)
        if t is None:
            problems.append(
                f"VIP {vip}: no other answering node configures it; nothing can take it over"
            )
            continue
        why = _unhealthy(t["node"], t["iname"], t["inst"], statuses[t["node"]]["doc"])
        tinst = t["inst"]
        version = int(tinst.get("version", 3))
        interval = float(hinst.get("advert_int") or tinst.get("master_adver_interval") or 1.0)
        prio = int(tinst.get("effective_priority", 0))
        skew = _skew(version, max(prio, 1), interval)
        protocol = skew if mode in (GRACEFUL, STOP) else 3 * interval + skew
        bound = max_downtime if max_downtime is not None else protocol + slack + extra_bound
        hprio = int(hinst.get("effective_priority", 0))
        # A thawed master never left MASTER: its advert meets the taker's as
        # master against master (priority, then address: RFC 5798 6.4.3). A
        # drained or restarted one is a backup, which preempts only from above.
        if mode == FREEZE:
            failback = hprio > prio or (hprio == prio and _ip(hinst) > _ip(tinst))
        else:
            failback = hprio > prio and bool(hinst.get("preempt", True))
        step = steps.setdefault(h["node"], {"node": h["node"], "vips": [], "problems": []})
        step["vips"].append({
            "vip": vip,
            "drilled": vip in chosen,
            "from": h["node"],
            "from_iname": h["iname"],
            "to": t["node"],
            "to_iname": t["iname"],
            "protocol_s": round(protocol, 3),
            "bound_s": round(bound, 3),
            "failback": failback,
            "failback_bound_s": round(
                _failback_bound(mode, version, hprio, interval, hinst) + slack + extra_bound, 3
            ),
        })  # fmt: skip
        if why:
            step["problems"].append(f"VIP {vip} cannot move from {h['node']}: {why}")
    plan_steps = []
    for node in nodes:
        step = steps.get(node)
        if step is None or not any(v["drilled"] for v in step["vips"]):
            continue
        problems.extend(step.pop("problems"))
        plan_steps.append(step)
    return {"problems": problems, "steps": plan_steps, "mode": mode}


def vrrp_maintenance_problems(
    statuses: dict[str, dict[str, Any]], nodes: list[str], host: str
) -> list[str]:
    """Why `host` cannot be drained now: a node that does not answer, or a
    VIP it holds that no healthy peer would take."""
    if host not in nodes:
        return [f"maintenance_host: {host} is not a VRRP node (they are: {', '.join(nodes)})"]
    vips = vrrp_ops_vips(statuses)
    problems = []
    for vip, entries in vips.items():
        if not _anycast(entries):
            continue
        mine = [e for e in entries if e["node"] == host and _holds(e["inst"])]
        others = [
            e for e in entries
            if e["node"] != host and _holds(e["inst"])
            and not statuses[e["node"]]["doc"].get("drained")
        ]  # fmt: skip
        if mine and not others:
            problems.append(
                f"anycast VIP {vip}: no other node holds it; draining {host} would take it down"
            )
    held = [v for v, who in vrrp_ops_holders(statuses).items() if who == [host]]
    held = [v for v in held if not _anycast(vips[v])]
    plan = vrrp_drill_plan(statuses, nodes, held or None, GRACEFUL)
    return problems + [p for p in plan["problems"] if held or not p.startswith("no VIP")]


def vrrp_ops_would_win(statuses: dict[str, dict[str, Any]], host: str) -> dict[str, str]:
    """{iname: "MASTER"} for each instance on `host` that takes its VIP back
    once it competes again: preempting, and above the current holder (or no
    one holds it). What an undrain waits for."""
    out: dict[str, str] = {}
    for _vip, entries in vrrp_ops_vips(statuses).items():
        mine = [e for e in entries if e["node"] == host]
        if not mine:
            continue
        m = mine[0]["inst"]
        others = [e["inst"] for e in entries if e["node"] != host and _holds(e["inst"])]
        if not others or _anycast(entries):  # anycast: alone, it claims after Master_Down
            out[mine[0]["iname"]] = "MASTER"
            continue
        h = others[0]
        mp, hp = int(m.get("effective_priority", 0)), int(h.get("effective_priority", 0))
        # A backup preempts only from above: an equal priority waits (RFC 5798 6.4.2).
        if m.get("preempt", True) and mp > hp:
            out[mine[0]["iname"]] = "MASTER"
    return out


def vrrp_drill_plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan as an operator reads it (--check prints this)."""
    verb = {GRACEFUL: "drain", STOP: "stop the agent on", FREEZE: "freeze the agent on"}
    lines = []
    for step in plan["steps"]:
        lines.append(f"{verb.get(plan['mode'], plan['mode'])} {step['node']}:")
        for v in step["vips"]:
            back = "then back" if v["failback"] else "and stay there (no preemption back)"
            extra = "" if v["drilled"] else " (moves with it, not measured)"
            lines.append(
                f"  {v['vip']} moves to {v['to']} ({v['to_iname']}) within {v['bound_s']} s, "
                f"{back}{extra}"
            )
    return lines


def vrrp_drill_entry(
    v: dict[str, Any],
    acted_at: float,
    taker_doc: dict[str, Any],
    probe: dict[str, Any] | None,
    restored_at: float | None = None,
    after: dict[str, dict[str, Any]] | None = None,
    probe_back: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One VIP's line of the report. Times come from the agents' own wall
    clocks (the drain's `since`, the transitions' `last_transition_at`): a
    takeover is the taker's time minus the holder's, which assumes the nodes'
    clocks agree (NTP), as reading their logs side by side does."""
    taken = taker_doc["instances"][v["to_iname"]].get("last_transition_at")
    moved = None if taken is None else round(taken - acted_at, 3)
    back = None
    if v["failback"] and restored_at is not None and after is not None:
        times = [
            after[v["from"]]["doc"]["instances"][v["from_iname"]].get("last_transition_at"),
            after[v["to"]]["doc"]["instances"][v["to_iname"]].get("last_transition_at"),
        ]
        latest = max((t for t in times if t is not None), default=None)
        back = None if latest is None else round(max(latest - restored_at, 0.0), 3)
    return {
        "from": v["from"],
        "to": v["to"],
        "moved_after_s": moved,
        "client_downtime_s": probe["downtime_s"] if probe else None,
        "failback_after_s": back,
        "failback_downtime_s": probe_back["downtime_s"] if probe_back else None,
        "bound_s": v["bound_s"],
        "failback_bound_s": v["failback_bound_s"] if v["failback"] else None,
        "requests": (probe or {}).get("requests"),
        "failed_requests": (probe or {}).get("failed"),
        # False when the probe ended in failures: the client never got back.
        "client_recovered": all(p.get("recovered", True) for p in (probe or {}, probe_back or {})),
    }


def vrrp_drill_exceeded(report: dict[str, Any]) -> list[str]:
    """Every measured figure over its bound (and every move not measured)."""
    out = []
    for vip, e in report.get("vips", {}).items():
        if not e.get("client_recovered", True):
            out.append(f"{vip}: the client was still not answered when the probe stopped")
        for key in ("moved_after_s", "client_downtime_s"):
            if e.get(key) is None:
                out.append(f"{vip}: {key} was not measured")
            elif e[key] > e["bound_s"]:
                out.append(f"{vip}: {key} {e[key]} s > bound {e['bound_s']} s")
        if e.get("failback_bound_s") is not None:
            # Back: the holder's own timers; the client's downtime on the
            # way back: a handover as on the way out, at most.
            for key, bound in (("failback_after_s", e["failback_bound_s"]),
                               ("failback_downtime_s", e["bound_s"])):  # fmt: skip
                if e.get(key) is None:
                    out.append(f"{vip}: {key} was not measured")
                elif e[key] > bound:
                    out.append(f"{vip}: {key} {e[key]} s > bound {bound} s")
    return out


def vrrp_drill_table(report: dict[str, Any]) -> list[str]:
    """The report as a table, one line per VIP, then what the columns mean."""

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.2f}"

    cols = ("moved", "down", "back", "down", "bound")
    lines = [f"{'VIP':<18} {'from':<10} {'to':<10} " + " ".join(f"{c:>7}" for c in cols)]
    for vip, e in sorted(report.get("vips", {}).items()):
        lines.append(
            f"{vip:<18} {e['from']:<10} {e['to']:<10} {f(e['moved_after_s']):>7} "
            f"{f(e['client_downtime_s']):>7} {f(e['failback_after_s']):>7} "
            f"{f(e.get('failback_downtime_s')):>7} {f(e['bound_s']):>7}"
        )
    lines.append(
        "seconds: moved = takeover, down = what the client saw (away, then back), "
        "back = failback, bound = the timers' bound"
    )
    return lines


def vrrp_drill_finish(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the figures over their bounds listed under `exceeded`."""
    return {**report, "exceeded": vrrp_drill_exceeded(report)}


def vrrp_ops_in_states(doc: dict[str, Any], wanted: dict[str, str]) -> bool:
    """Whether each named instance of a status document is in its state."""
    instances = doc.get("instances", {})
    return all(instances.get(i, {}).get("state") == s for i, s in wanted.items())


def vrrp_ops_unreached(results: list[dict[str, Any]], probe_host: str) -> list[str]:
    """The registered `http_probe.py count` loop: a problem per VIP that did
    not answer every request."""
    import json

    out = []
    for r in results:
        try:
            answers = json.loads(r.get("stdout") or "")
        except ValueError:
            answers = None
        if r.get("rc") != 0 or not isinstance(answers, list):
            why = (r.get("stderr") or r.get("msg") or "").strip()
            out.append(f"{probe_host}: the probe could not run against {r['item']} ({why})")
        elif any(str(a).startswith("ERR: ") for a in answers):
            out.append(f"{probe_host} cannot reach VIP {r['item']}: {answers}")
    return out


def vrrp_ops_restored_line(touched: list[dict[str, Any]]) -> str:
    """What the always path put back, in words."""
    done = {GRACEFUL: "undrained", STOP: "agent started", FREEZE: "agent thawed"}
    if not touched:
        return "nothing left to restore: every node is as the drill found it"
    said = (f"{t['node']} {done.get(t['mode'], t['mode'])}" for t in touched)
    return "restored: " + ", ".join(said)


def vrrp_ops_unhealthy(doc: dict[str, Any], version: str) -> list[str]:
    """Why a freshly upgraded (and still drained) agent is not ready to be
    undrained: another version, not drained, an instance not BACKUP or with
    faults, a check DOWN."""
    out = []
    if str(doc.get("version")) != str(version):
        out.append(f"runs version {doc.get('version')}, not {version}")
    if not doc.get("drained"):
        out.append("is not drained (the drain file was lost across the restart)")
    for iname, inst in sorted(doc.get("instances", {}).items()):
        if inst.get("state") != "BACKUP" or inst.get("faults"):
            out.append(f"{iname} is {inst.get('state')} (faults {inst.get('faults') or {}})")
    down = [n for n, s in (doc.get("vrrp_scripts") or {}).items() if s.get("state") != "UP"]
    if down:
        out.append(f"check {', '.join(sorted(down))} is not UP")
    return out


def vrrp_ops_upgrade_vips(
    moving: list[dict[str, Any]], probed: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per VIP that moved off an upgraded node: where to, and what the
    client saw over the whole drain-upgrade-undrain."""
    return {
        v["vip"]: {
            "to": v["to"],
            "client_downtime_s": probed.get(v["vip"], {}).get("downtime_s"),
            "outages": probed.get(v["vip"], {}).get("outages"),
            "failed_requests": probed.get(v["vip"], {}).get("failed"),
            "requests": probed.get(v["vip"], {}).get("requests"),
            "bound_s": v["bound_s"],
            "failback": v["failback"],
            "recovered": probed.get(v["vip"], {}).get("recovered"),
        }
        for v in moving
    }


def vrrp_upgrade_exceeded(report: dict[str, Any]) -> list[str]:
    """Each VIP whose client saw more than its handovers: an outage over a
    graceful handover's bound, or more outages than handovers (away, and
    back where preemption applies)."""
    out = []
    for n in report.get("nodes", []):
        for vip, e in n.get("vips", {}).items():
            if e["client_downtime_s"] is None:
                out.append(f"{n['node']}: {vip} was not measured")
                continue
            if not e.get("recovered", True):
                out.append(f"{n['node']}: {vip} was still not answered when the probe stopped")
            if e["client_downtime_s"] > e["bound_s"]:
                out.append(
                    f"{n['node']}: {vip} down {e['client_downtime_s']} s > bound {e['bound_s']} s"
                )
            handovers = 2 if e["failback"] else 1
            if e["outages"] > handovers:
                out.append(
                    f"{n['node']}: {vip} had {e['outages']} outages for {handovers} handover(s)"
                )
    return out


def vrrp_upgrade_table(report: dict[str, Any]) -> list[str]:
    lines = [
        f"{'node':<10} {'from':<9} {'to':<9} {'VIP':<18} {'outages':>7} {'down':>7} {'bound':>7}"
    ]
    for n in report.get("nodes", []):
        rows = sorted(n.get("vips", {}).items()) or [("(held none)", None)]
        for vip, e in rows:
            down = (
                "-" if not e or e["client_downtime_s"] is None else f"{e['client_downtime_s']:.2f}"
            )
            lines.append(
                f"{n['node']:<10} {n['from_version']:<9} {n['to_version']:<9} {vip:<18} "
                f"{(e or {}).get('outages', '-')!s:>7} {down:>7} "
                f"{'-' if not e else format(e['bound_s'], '.2f'):>7}"
            )
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "vrrp_ops_statuses": vrrp_ops_statuses,
            "vrrp_ops_url": vrrp_ops_url,
            "vrrp_ops_agent": vrrp_ops_agent,
            "vrrp_ops_put_back": vrrp_ops_put_back,
            "vrrp_ops_vips": vrrp_ops_vips,
            "vrrp_ops_holders": vrrp_ops_holders,
            "vrrp_ops_holder_problems": vrrp_ops_holder_problems,
            "vrrp_drill_plan": vrrp_drill_plan,
            "vrrp_drill_plan_lines": vrrp_drill_plan_lines,
            "vrrp_maintenance_problems": vrrp_maintenance_problems,
            "vrrp_ops_would_win": vrrp_ops_would_win,
            "vrrp_drill_entry": vrrp_drill_entry,
            "vrrp_drill_exceeded": vrrp_drill_exceeded,
            "vrrp_drill_table": vrrp_drill_table,
            "vrrp_drill_finish": vrrp_drill_finish,
            "vrrp_ops_in_states": vrrp_ops_in_states,
            "vrrp_ops_unreached": vrrp_ops_unreached,
            "vrrp_ops_restored_line": vrrp_ops_restored_line,
            "vrrp_ops_unhealthy": vrrp_ops_unhealthy,
            "vrrp_ops_upgrade_vips": vrrp_ops_upgrade_vips,
            "vrrp_upgrade_exceeded": vrrp_upgrade_exceeded,
            "vrrp_upgrade_table": vrrp_upgrade_table,
        }
