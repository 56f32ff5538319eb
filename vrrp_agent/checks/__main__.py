"""python -m vrrp_agent.checks KIND [options] ARGS: run one health check.

Only the module of the chosen KIND is imported. It provides:

* ``add_arguments(parser)``: its positional arguments and options;
* ``label(args) -> str``: what is checked, the prefix of the output line;
* ``run(args, budget) -> (healthy, message)``: the check, its blocking calls
  bounded by `budget` seconds (a little less than --timeout).

Here: the common ``--timeout``, a watchdog that ends the process at --timeout
whatever the check is stuck in, and the one output line.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from types import ModuleType

from vrrp_agent.checks import DEFAULT_TIMEOUT, one_line, seconds

PROG = "python -m vrrp_agent.checks"

KINDS: dict[str, str] = {
    "http": "an HTTP(S) GET answers with the expected status (and body text)",
    "tcp": "a TCP connection to HOST PORT succeeds",
    "process": "at least N processes named NAME are running",
    "systemd": "a systemd unit is active (systemctl is-active)",
    "container": "a podman/docker container is running",
}


def _top_parser() -> argparse.ArgumentParser:
    kinds = "\n".join(f"  {k:<10} {v}" for k, v in KINDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Health checks for vrrp_scripts: exit 0 healthy, 1 unhealthy, 2 usage error;"
        " one line on stdout says why.",
        epilog=f"kinds:\n{kinds}\n\n`{PROG} KIND --help` shows the options of one kind.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=list(KINDS), metavar="KIND", help="what to check")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of that check")
    return parser


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _kind_parser(kind: str, module: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {kind}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up (unhealthy) after this long (default: {DEFAULT_TIMEOUT:g})",
    )
    return parser


class _Output:
    """Exactly one line gets out: the check's, or the watchdog's if it fires first."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._threading = threading

    def emit(self, line: str) -> None:
        self._lock.acquire()  # never released: a second line cannot follow
        os.write(1, (one_line(line) + "\n").encode("utf-8", "replace"))

    def watchdog(self, line: str, timeout: float) -> None:
        def fire() -> None:
            if self._lock.acquire(blocking=False):
                os.write(1, (one_line(line) + "\n").encode("utf-8", "replace"))
                os._exit(1)

        timer = self._threading.Timer(timeout, fire)
        timer.daemon = True
        timer.start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in KINDS:
        _top_parser().parse_args(argv)  # -h: help, exit 0; anything else: exit 2
        return 2
    kind = argv[0]
    module = importlib.import_module(f"vrrp_agent.checks.{kind}")
    args = _kind_parser(kind, module).parse_args(argv[1:])

    label: str = module.label(args)
    timeout: float = args.timeout
    out = _Output()
    out.watchdog(f"{label}: timed out after {seconds(timeout)}", timeout)
    # The check's own timeouts expire a little earlier than the watchdog, so it
    # reports what it was waiting for and reaps the commands it started.
    budget = timeout - min(0.2, timeout / 4)
    try:
        healthy, message = module.run(args, budget)
    except Exception as exc:  # a bug or an unforeseen OSError: still one line, exit 1
        healthy, message = False, f"{type(exc).__name__}: {exc}"
    out.emit(f"{label}: {message}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
