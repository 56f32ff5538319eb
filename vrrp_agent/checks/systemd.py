"""systemd: a systemd unit is active (``systemctl is-active --quiet UNIT``, as a script).

Synopsis: check_systemd [--timeout SECONDS] UNIT

Runs ``systemctl is-active UNIT`` and reports the state word it prints
(active, inactive, failed, activating, ...). Healthy exactly when systemctl
exits 0, as with ``--quiet``: "active" (systemctl also counts "reloading").
A UNIT without a suffix means NAME.service, as systemctl has it. Querying the
state needs no privileges, so the unprivileged script_user is fine.

In a vrrp-agent config (keepalived's vrrp_script block)::

    vrrp_scripts:
      chk_nginx:
        script: "/usr/local/lib/vrrp-agent/checks/check_systemd nginx.service"
        interval: 2
        timeout: 3
        weight: -20

Output, e.g.: ``unit nginx.service: active`` or ``unit nginx.service: failed``.
"""

from __future__ import annotations

import argparse

from vrrp_agent.checks import first_line, run_tool, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("unit", metavar="UNIT", help="unit name, e.g. nginx.service")


def label(args: argparse.Namespace) -> str:
    return f"unit {args.unit}"


def run(args: argparse.Namespace, budget: float) -> tuple[bool, str]:
    try:
        rc, out, err = run_tool(["systemctl", "is-active", args.unit], budget)
    except FileNotFoundError:
        return False, "systemctl not found (not a systemd system?)"
    except TimeoutError:
        return False, f"systemctl did not answer within {seconds(args.timeout)}"
    word = first_line(out) or first_line(err) or f"systemctl is-active exited {rc}"
    return rc == 0, word
