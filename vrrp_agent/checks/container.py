"""container: a podman or docker container is running.

Synopsis: check_container [--runtime auto|podman|docker] [--timeout SECONDS] NAME

Runs ``RUNTIME container inspect --format '{{.State.Running}} {{.State.Status}}' NAME``
(NAME or ID). Healthy when the container exists and is running; a missing
container, a stopped one, an unreachable docker daemon and a host without any
runtime are all unhealthy (exit 1) with a one-line reason. ``--runtime auto``
(the default) uses podman when installed, else docker.

Mind the user the check runs as: rootless podman only sees that user's own
containers and docker needs access to its socket. For containers started by
root, give the script ``user: root`` (or the docker group) in its vrrp_script.

In a vrrp-agent config (keepalived's vrrp_script block)::

    vrrp_scripts:
      chk_web_container:
        script: "/usr/local/lib/vrrp-agent/checks/check_container --runtime podman web"
        interval: 2
        timeout: 5
        user: root
        weight: -20

Output, e.g.: ``container web: running (podman)`` or
``container web: not running, exited (podman)`` or ``container web: not found (docker)``.
"""

from __future__ import annotations

import argparse

from vrrp_agent.checks import first_line, run_tool, seconds

RUNTIMES = ("podman", "docker")  # the order `auto` tries them in
FORMAT = "{{.State.Running}} {{.State.Status}}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="container name or ID")
    parser.add_argument(
        "--runtime",
        choices=("auto", *RUNTIMES),
        default="auto",
        help="container CLI to ask (default: auto, podman first)",
    )


def label(args: argparse.Namespace) -> str:
    return f"container {args.name}"


def _runtime(choice: str) -> tuple[str, str] | None:
    """(name, path) of the runtime binary to use, None when none is installed."""
    import shutil

    for name in RUNTIMES if choice == "auto" else (choice,):
        path = shutil.which(name)
        if path is not None:
            return name, path
    return None


def run(args: argparse.Namespace, budget: float) -> tuple[bool, str]:
    found = _runtime(args.runtime)
    if found is None:
        if args.runtime == "auto":
            return False, "no container runtime found (podman, docker)"
        return False, f"{args.runtime} not found"
    runtime, path = found
    argv = [path, "container", "inspect", "--format", FORMAT, args.name]
    try:
        rc, out, err = run_tool(argv, budget)
    except FileNotFoundError:
        return False, f"{runtime} not found"
    except TimeoutError:
        return False, f"{runtime} did not answer within {seconds(args.timeout)}"
    if rc != 0:
        why = first_line(err) or first_line(out) or f"{runtime} exited {rc}"
        if "no such" in why.lower():
            why = "not found"
        return False, f"{why} ({runtime})"
    words = first_line(out).split()
    running = bool(words) and words[0] == "true"
    status = words[1] if len(words) > 1 else ""
    if running:
        return True, f"running ({runtime})"
    return False, f"not running{', ' + status if status else ''} ({runtime})"
