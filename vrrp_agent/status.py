"""The `status` document: what an operator needs to see at a glance."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vrrp_agent import __version__
from vrrp_agent.core.tracking import file_weight

if TYPE_CHECKING:
    from vrrp_agent.daemon import Agent
    from vrrp_agent.io.executor import InstanceIO
    from vrrp_agent.io.scripts import ScriptRunner


def instance_status(io: InstanceIO, now: float) -> dict[str, object]:
    r = io.router
    st = r.stats
    return {
        "state": r.state.value,
        "priority": r.params.priority,
        "effective_priority": r.effective_priority,
        "interface": io.inst.interface,
        "virtual_router_id": r.params.vrid,
        "version": r.params.version,
        "advert_int": r.params.advert_int,
        "source_ip": str(r.params.local_ip),
        "unicast_peer": [str(p) for p in io.inst.unicast_peer],
        "virtual_ipaddress": [str(v.interface) for v in io.vips if v.advertised],
        "holds_vips": io.holds_vips,
        "preempt": r.params.preempt,
        "preempt_delay": r.params.preempt_delay,
        "accept": io.inst.accept,
        "master_ip": str(r.master_ip) if r.master_ip is not None else None,
        "master_priority": r.master_priority,
        "master_adver_interval": r.master_adver_interval,
        "last_transition_reason": r.last_reason,
        "faults": dict(r.faults),
        "timers": {name: round(t - now, 3) for name, t in sorted(r.timers.items())},
        "stats": {
            "adverts_sent": st.adverts_sent,
            "adverts_received": st.adverts_received,
            "became_master": st.became_master,
            "priority_zero_sent": st.priority_zero_sent,
            "priority_zero_received": st.priority_zero_received,
            "address_list_mismatch": st.address_list_mismatch,
            "tx_errors": st.tx_errors,
        },
        "rx_dropped": dict(st.rx_dropped),
    }


def coordination_status(agent: Agent, name: str) -> dict[str, object]:
    """A gated instance's pending claim and, for an exclusive pair, whether
    this node keeps it back (and why)."""
    c = agent.coordinator
    r = agent.instances[name].router
    out: dict[str, object] = {}
    if r.want is not None:
        out["wants_master"] = {
            "kind": r.want.kind,
            "since": round(agent.loop.time() - r.want.since, 3),
            "waiting_for": c.waiting.get(name),
        }
    partner = c.pairs.get(name)
    if partner is not None:
        # Held back: a claim this node would make by the protocol's rules is
        # refused because of the pair (not for a sync group or the arbiter).
        reason = c.waiting.get(name) if r.want is not None else None
        if reason is not None and "exclusive_with" not in reason:
            reason = None
        out["exclusive"] = {
            "with": partner,
            "held_back": reason is not None,
            "reason": reason,
            # Stepped down for its partner earlier; it competes again once the
            # peer that took its VIP degrades or the partner leaves MASTER.
            "displaced": name in c.holds,
        }
    return out


def tracking_status(agent: Agent, io: InstanceIO) -> dict[str, object]:
    """What the instance's interfaces and files read at the last poll, and
    what each kind of tracker adds to its priority."""
    inst = io.inst
    links, files = agent.links, agent.files
    return {
        "link": links[inst.interface].value if inst.interface in links else None,
        "track_interface": {
            ref.name: {
                "state": links[ref.name].value if ref.name in links else None,
                "weight": ref.weight or 0,
            }
            for ref in inst.track_interface
        },
        "track_file": {
            ref.name: {
                "value": files[ref.name].value if ref.name in files else None,
                "weight": file_weight(ref),
                # How the content was read when it was not a plain integer.
                "note": files[ref.name].note if ref.name in files else None,
            }
            for ref in inst.track_file
        },
        "track_delta": agent.track_deltas.get(io, {}),
    }


def script_status(runner: ScriptRunner) -> dict[str, object]:
    t = runner.tracker
    return {
        "state": t.state.value,
        # Exit status of the last run; None when it timed out, could not be
        # started, or has not run yet (negative: killed by that signal).
        "last_exit": runner.last_exit,
        # Consecutive results, the counts that fall and rise compare against.
        "failures": t.failures,
        "successes": t.successes,
    }


def agent_status(agent: Agent) -> dict[str, object]:
    now = agent.loop.time()
    return {
        "version": __version__,
        "pid": os.getpid(),
        "router_id": agent.cfg.global_defs.router_id,
        "config": agent.cfg.path,
        "uptime": round(now - agent.started_at, 3),
        "reloads": agent.reloads,
        "instances": {
            name: instance_status(io, now)
            | coordination_status(agent, name)
            | tracking_status(agent, io)
            for name, io in sorted(agent.instances.items())
        },
        "vrrp_sync_groups": dict(sorted(agent.group_states.items())),
        # Only tracked scripts run, so only they are listed.
        "vrrp_scripts": {
            # disabled: why it never runs (enable_script_security), or None.
            name: script_status(runner) | {"disabled": agent.disabled_scripts.get(name)}
            for name, runner in sorted(agent.scripts.items())
        },
        # Hooks waiting, running, and the last outcomes with exit codes; the fifo.
        "notify": agent.notifier.status(),
        "arbiter": agent.arbiter.status() if agent.arbiter is not None else None,
        "virtual_servers": agent.lvs.status() if agent.lvs is not None else [],
        # Packets that could not be attributed to an instance.
        "rx_dropped": dict(agent.rx_dropped),
    }
