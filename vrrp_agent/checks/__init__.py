"""Ready-made health checks for `vrrp_scripts`: what keepalived users write by hand.

Run one as ``python -m vrrp_agent.checks KIND [options] ARGS``; the Ansible role
installs a wrapper per kind, ``/usr/local/lib/vrrp-agent/checks/check_<kind>``,
that execs exactly that, so a config only names the wrapper::

    vrrp_scripts:
      chk_web:
        script: "/usr/local/lib/vrrp-agent/checks/check_http http://127.0.0.1/"
        interval: 2
        timeout: 3     # keep the script timeout above the check's --timeout (default 2)
        fall: 2
        rise: 1

Kinds: ``http``, ``tcp``, ``process``, ``systemd``, ``container`` (one module each,
``--help`` on any of them shows its options and a config example).

The contract every check keeps:

* exit 0 healthy, 1 unhealthy, 2 usage error (bad arguments, from argparse);
* exactly one short line on stdout saying why, e.g. ``http://127.0.0.1/: 503, expected 2xx``;
* ``--timeout SECONDS`` (default 2): the check never runs longer than that; a
  watchdog ends it with exit 1 even when a call cannot be interrupted (DNS);
* standard library only, and only what the chosen check needs is imported, so a
  check starting every second costs little.

This module stays import-free at module level: it is imported by every check.
"""

from __future__ import annotations

DEFAULT_TIMEOUT = 2.0
MAX_LINE = 300


def seconds(value: float) -> str:
    """2.0 -> '2s', 0.5 -> '0.5s'."""
    return f"{value:g}s"


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """Whitespace (newlines included) collapsed, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def first_line(text: str) -> str:
    """The first non-blank line of a tool's output, stripped ('' if none)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def run_tool(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a command, return (returncode, stdout, stderr) as text.

    Raises FileNotFoundError when the binary is missing and TimeoutError when it
    has not finished within `timeout` seconds (it is killed first). The command
    runs with stdin from /dev/null and LC_ALL=C, so its messages are stable.
    """
    import os
    import subprocess

    env = dict(os.environ, LC_ALL="C")
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{argv[0]} did not finish within {timeout:.3g}s") from None
    return done.returncode, done.stdout, done.stderr
