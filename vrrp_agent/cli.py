"""vrrp-agent run | validate | status | drain | undrain.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`validate` and `status` import neither asyncio nor the network layer, so they
answer quickly from a shell or an Ansible `validate:`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from vrrp_agent import __version__
from vrrp_agent.config import Config, ConfigError, GlobalDefs, load

DEFAULT_CONFIG = "/etc/vrrp-agent/agent.yml"
DEFAULT_CONTROL_SOCKET: str = GlobalDefs.__dataclass_fields__["control_socket"].default


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 2 (the CLI's contract), not argparse's own way."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vrrp-agent", description="A VRRP v2/v3 daemon with keepalived's vocabulary.")
    p.add_argument("--version", action="version", version=f"vrrp-agent {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (
        ("run", "run in the foreground, logging to stderr"),
        ("validate", "check a configuration file and exit"),
        ("status", "ask the running agent for its state"),
        ("drain", "node maintenance: every MASTER hands over, nothing becomes MASTER"),
        ("undrain", "end the maintenance: instances compete for MASTER again"),
    ):
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
        if name == "run":
            s.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
        if name in ("drain", "undrain"):
            s.add_argument("--json", action="store_true", help="print the agent's JSON answer")
        if name == "status":
            s.add_argument("--json", action="store_true", help="print the raw JSON document")
            s.add_argument(
                "--watch",
                action="store_true",
                help="redraw the table every --interval seconds until Ctrl-C",
            )
            s.add_argument("--interval", type=_seconds, default=1.0, metavar="S",
                           help="with --watch: seconds between redraws (default 1)")  # fmt: skip
        if name == "validate":
            s.add_argument(
                "--no-host-checks",
                action="store_true",
                help="skip the checks of this host (scripts' files and users,"
                " enable_script_security, the kernel's support for the LVS data plane):"
                " for a file meant for another host",
            )
    text = "convert a keepalived.conf to the agent's YAML"
    s = sub.add_parser("import-keepalived", help=text, description=text)
    s.add_argument("file", metavar="FILE", help="the keepalived.conf to convert")
    s.add_argument("-o", "--output", metavar="OUT", help="write the YAML here (default: stdout)")
    s.add_argument(
        "--config-id",
        metavar="ID",
        help="for @ID lines, as keepalived's --config-id"
        " (default: the host name up to the first '.')",
    )
    return p


def cmd_import_keepalived(args: argparse.Namespace) -> int:
    from vrrp_agent.keepalived.importer import import_file

    return import_file(args.file, args.output, args.config_id)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{value!r}: must be more than 0 and at most 3600")
    return seconds


def _load_or_exit(path: str) -> Config:
    try:
        return load(path)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        sys.exit(2)


def cmd_validate(args: argparse.Namespace) -> int:
    cfg = _load_or_exit(args.config)
    if not args.no_host_checks:
        # Like keepalived, judged on the host this runs on: the programs and
        # users the file names must exist here, safe from non-root users, and
        # the data plane lvs_backend gets here must do what the virtual
        # servers ask. A reload passes the same gate.
        from vrrp_agent.config.acceptance import accept

        verdict = accept(cfg)
        for line in verdict.warning_lines(args.config) + verdict.error_lines(args.config):
            print(line, file=sys.stderr)
        if not verdict.accepted:
            return 2
    print(
        f"{args.config}: OK ({len(cfg.vrrp_instances)} vrrp_instances, "
        f"{len(cfg.virtual_servers)} virtual_servers)"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # The configuration is checked completely before anything touches the network.
    cfg = _load_or_exit(args.config)
    import asyncio

    from vrrp_agent import daemon
    from vrrp_agent.io import log_sink, privileges

    # Before any child: the unit's ambient capabilities are the agent's, never
    # a check script's.
    privileges.drop_ambient()

    # Never a blocking write to stderr: a stalled log reader must not stop adverts.
    sink = log_sink.install(
        args.log_level, "%(asctime)s.%(msecs)03d %(levelname)s %(message)s", "%H:%M:%S"
    )

    async def main() -> int:
        sink.attach(asyncio.get_running_loop())
        try:
            return await daemon.run(cfg)
        finally:
            sink.detach()

    try:
        return asyncio.run(main())
    except PermissionError as err:
        logging.getLogger("vrrp_agent").error(
            "%s: vrrp-agent needs CAP_NET_RAW and CAP_NET_ADMIN", err
        )
        return 1
    finally:
        sink.drain(timeout=1.0)


def cmd_status(args: argparse.Namespace) -> int:
    from vrrp_agent.io.control import request

    path = _control_socket(args.config)
    if args.watch:
        return _watch(path, args.interval, args.json)
    try:
        answer = request(path)
    except (OSError, ValueError) as err:
        print(f"vrrp-agent status: no agent answers on {path}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    print(_table(answer))
    return 0


def cmd_drain(args: argparse.Namespace) -> int:
    """drain / undrain: one command over the control socket; exit 0 when the
    node is (now, or already) in the state asked for, 1 otherwise."""
    from vrrp_agent.io.control import request

    cmd = args.command
    path = _control_socket(args.config, cmd)
    try:
        answer = request(path, cmd)
    except (OSError, ValueError) as err:
        print(f"vrrp-agent {cmd}: no agent answers on {path}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    if "error" in answer:
        print(f"vrrp-agent {cmd}: the agent refused: {answer['error']}", file=sys.stderr)
        return 1
    if answer.get("drained") is not (cmd == "drain"):
        print(f"vrrp-agent {cmd}: unexpected answer {json.dumps(answer)}", file=sys.stderr)
        return 1
    if not args.json:
        print(_drain_line(answer))
    return 0


def _iso(when: object) -> str:
    if not isinstance(when, (int, float)):
        return "an unknown time"
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _drain_line(answer: dict[str, object]) -> str:
    """One line for drain's or undrain's answer."""
    since = _iso(answer.get("since"))
    if answer.get("drained"):
        if not answer.get("changed"):
            return f"drained since {since} (already; nothing changed)"
        released = answer.get("released") or []
        assert isinstance(released, list)
        if not released:
            return f"drained since {since}: no instance was MASTER"
        return f"drained since {since}: released {', '.join(map(str, released))}"
    if not answer.get("changed"):
        return "not drained (already; nothing changed)"
    return f"not drained (was drained since {since})"


def _watch(path: str, interval: float, as_json: bool) -> int:
    """Redraw until Ctrl-C. On a terminal the screen is cleared first (ANSI:
    home, erase); piped, each frame follows the last after a blank line, so
    a log or a test sees every one. An agent that does not answer (restarting)
    is a frame saying so, not the end of the watch."""
    import time

    from vrrp_agent.io.control import request

    clear = sys.stdout.isatty()
    first = True
    try:
        while True:
            try:
                answer = request(path)
                frame = json.dumps(answer, indent=2, sort_keys=True) if as_json else _table(answer)
            except (OSError, ValueError) as err:
                frame = f"no agent answers on {path}: {err}"
            if clear:
                sys.stdout.write("\x1b[H\x1b[2J")
            elif not first:
                sys.stdout.write("\n")
            sys.stdout.write(frame + "\n")
            sys.stdout.flush()
            first = False
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _control_socket(config_path: str, cmd: str = "status") -> str:
    """Where the agent listens. An operator asking for status while the file
    is half-edited still deserves an answer, so only this one key must be sound."""
    try:
        return load(config_path).global_defs.control_socket
    except ConfigError as err:
        import yaml

        try:
            with open(config_path) as f:
                raw = yaml.safe_load(f)
            path = raw["global_defs"]["control_socket"]
        except (OSError, yaml.YAMLError, TypeError, KeyError):
            path = DEFAULT_CONTROL_SOCKET
        if not isinstance(path, str):
            path = DEFAULT_CONTROL_SOCKET
        print(
            f"vrrp-agent {cmd}: {config_path} has {len(err.problems)} problem(s) "
            f"(see 'vrrp-agent validate'); asking {path}",
            file=sys.stderr,
        )
        return path


def _table(answer: dict[str, object]) -> str:
    rows = [("INSTANCE", "STATE", "PRIO", "EFF", "IFACE", "VRID", "VIPS", "MASTER", "REASON")]
    instances = answer.get("instances", {})
    assert isinstance(instances, dict)
    for name, st in instances.items():
        rows.append(
            (
                name,
                st["state"],
                str(st["priority"]),
                str(st["effective_priority"]),
                st["interface"],
                str(st["virtual_router_id"]),
                ",".join(st["virtual_ipaddress"]),
                st["master_ip"] or "-",
                _reason(st),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]
             for r in rows]  # fmt: skip
    dropped = answer.get("rx_dropped") or {}
    header = "router_id {}  pid {}  uptime {}s".format(
        answer.get("router_id"), answer.get("pid"), answer.get("uptime")
    )
    if dropped:
        header += f"  unattributed drops {dropped}"
    if answer.get("drained"):
        # Right under the header: whatever the table says, nothing becomes MASTER.
        since = _iso(answer.get("drained_since"))
        header += f"\nDRAINED since {since} (vrrp-agent undrain to end)"
    extra = []
    for name, st in instances.items():
        # A VIP the last add could not configure: the state alone would hide it.
        for vip, presence in (st.get("vips") or {}).items():
            if presence.startswith("configured, not present"):
                extra.append(f"{name}: {vip} {presence}")
        for route in st.get("virtual_routes") or []:
            if route.get("error"):
                extra.append(f"{name}: route {route['route']} not present: {route['error']}")
    groups = answer.get("vrrp_sync_groups") or {}
    if groups:
        extra.append("sync groups: " + ", ".join(f"{g} {s}" for g, s in groups.items()))
    arbiter = answer.get("arbiter")
    if isinstance(arbiter, dict):
        extra.append(f"arbiter: {arbiter.get('state')}")
    for vs in answer.get("virtual_servers") or []:
        reals = vs["real_servers"]
        down = [rs for rs, st in reals.items() if st.get("state") != "UP"]
        extra.append(
            f"virtual server {vs['virtual_server']} {vs['lb_kind']}/{vs['lb_algo']}"
            f" ({vs['data_plane']}, {'active' if vs['active'] else 'standby'}):"
            f" {len(reals) - len(down)}/{len(reals)} real servers up"
            + (f", down: {', '.join(down)}" if down else "")
            + (", on the sorry server" if vs["on_sorry_server"] else "")
        )
    return "\n".join([header, *lines, *extra])


def _reason(st: dict[str, object]) -> str:
    """Why the instance is where it is; a claim held back says what it waits for."""
    want = st.get("wants_master")
    if isinstance(want, dict) and want.get("waiting_for"):
        return f"held back: {want['waiting_for']}"
    return str(st["last_transition_reason"])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "run": cmd_run,
        "validate": cmd_validate,
        "status": cmd_status,
        "drain": cmd_drain,
        "undrain": cmd_drain,
        "import-keepalived": cmd_import_keepalived,
    }[args.command]
    try:
        code = handler(args)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        # `vrrp-agent status | head -1`: the reader has what it wanted. Nothing
        # failed, so no traceback and exit 0; stdout goes to /dev/null so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
