"""process: at least N processes named NAME are running (like pidof, or keepalived's
track_process, as a script).

Synopsis: check_process [--min N] [--timeout SECONDS] NAME

A process counts when its comm (``/proc/PID/comm``, the kernel's name, at most
15 characters) or the basename of its argv[0] equals NAME; a NAME containing a
slash is compared with the whole argv[0] instead. Zombies do not count, nor
does the check itself (so ``check_process python3`` is not fooled by its own
interpreter). /proc is read directly; on a /proc mounted with hidepid, run the
check as root or it only sees its own user's processes.

In a vrrp-agent config (keepalived's vrrp_script block)::

    vrrp_scripts:
      chk_haproxy:
        script: "/usr/local/lib/vrrp-agent/checks/check_process haproxy"
        interval: 1
        timeout: 2
        weight: 0          # FAULT while haproxy is gone

Output, e.g.: ``process haproxy: 2 running`` or
``process haproxy: 0 running, expected at least 1``.
"""

from __future__ import annotations

import argparse
import os


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {n}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="process name (comm or argv[0] basename)")
    parser.add_argument(
        "--min",
        type=_count,
        default=1,
        metavar="N",
        help="healthy when at least N such processes run (default: 1)",
    )


def label(args: argparse.Namespace) -> str:
    return f"process {args.name}"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone meanwhile, or hidden from us
        return None


def _is_zombie(piddir: str) -> bool:
    stat = _read(f"{piddir}/stat")
    if stat is None:
        return True  # gone
    # "PID (comm) S ...": comm may contain spaces and parentheses, the state
    # follows the last ')'.
    end = stat.rfind(b")")
    state = stat[end + 2 : end + 3]
    return state in (b"Z", b"X")


def matches(name: str, comm: bytes | None, cmdline: bytes | None) -> bool:
    wanted = os.fsencode(name)
    argv0 = (cmdline or b"").split(b"\0", 1)[0]
    if b"/" in wanted:
        return argv0 == wanted
    if comm is not None and comm.rstrip(b"\n") == wanted:
        return True
    return bool(argv0) and argv0.rsplit(b"/", 1)[-1] == wanted


def pids(name: str, proc: str = "/proc") -> list[int]:
    """The PIDs of live processes called `name`, this process excluded."""
    me = os.getpid()
    found = []
    with os.scandir(proc) as entries:
        for entry in entries:
            pid = entry.name
            if not pid.isdigit() or int(pid) == me:
                continue
            piddir = f"{proc}/{pid}"
            comm, cmdline = _read(f"{piddir}/comm"), _read(f"{piddir}/cmdline")
            if matches(name, comm, cmdline) and not _is_zombie(piddir):
                found.append(int(pid))
    return sorted(found)


def run(args: argparse.Namespace, budget: float) -> tuple[bool, str]:
    n = len(pids(args.name))
    if n >= args.min:
        return True, f"{n} running"
    return False, f"{n} running, expected at least {args.min}"
