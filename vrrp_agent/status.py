"""The `status` document: what an operator needs to see at a glance.

Composed from the parts' own `status()`: the node (instances, sync groups,
unattributed drops), the scripts, the notifier, the arbiter prober, the
virtual servers and the alert mail. Nothing here knows the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from vrrp_agent import __version__
from vrrp_agent.config import Config
from vrrp_agent.core.node import Node
from vrrp_agent.io import log_sink


class _Part(Protocol):
    """Anything that reports its own part of the status document."""

    def status(self) -> object: ...


def agent_status(
    node: Node,
    now: float,
    *,
    config: Config,
    uptime: float,
    reloads: int,
    scripts: _Part,
    notifier: _Part,
    arbiter: _Part | None,
    lvs: _Part | None,
    mail: _Part | None = None,
    transitions: Mapping[str, float] | None = None,
) -> dict[str, object]:
    own = node.status(now)
    instances = own["instances"]
    assert isinstance(instances, dict)
    for name, when in (transitions or {}).items():
        # The wall-clock time of the instance's last transition, stamped by
        # the daemon (the node keeps no clock of its own).
        if name in instances:
            instances[name]["last_transition_at"] = round(when, 3)
    return {
        "version": __version__,
        "pid": os.getpid(),
        "router_id": config.global_defs.router_id,
        "config": config.path,
        "uptime": round(uptime, 3),
        "reloads": reloads,
        # `vrrp-agent drain`: no instance becomes MASTER until undrain;
        # drained_since is unix time (null: unknown, e.g. an unreadable drain file).
        "drained": own["drained"],
        "drained_since": own["drained_since"],
        "instances": instances,
        "vrrp_sync_groups": own["vrrp_sync_groups"],
        "vrrp_scripts": scripts.status(),
        # Whom scripts and hooks without a `user` run as: root when the
        # default user does not exist here (keepalived's fallback).
        "script_user": _script_user(config.global_defs.script_user),
        # Hooks waiting, running, and the last outcomes with exit codes; the fifo.
        "notify": notifier.status(),
        "arbiter": arbiter.status() if arbiter is not None else None,
        "virtual_servers": lvs.status() if lvs is not None else [],
        # Alert mail (smtp_alert): server, queued, sent, failed (attempts), dropped;
        # null without smtp_server and notification_email.
        "smtp": mail.status() if mail is not None else None,
        # Packets that could not be attributed to an instance.
        "rx_dropped": own["rx_dropped"],
        # Log lines dropped because the reader of stderr did not keep up.
        "logging": log_sink.stats(),
    }


def _script_user(spec: str) -> dict[str, object]:
    from vrrp_agent.io.scripts import effective_user

    name, fallback = effective_user(spec)
    return {"name": name, "fallback": fallback}
