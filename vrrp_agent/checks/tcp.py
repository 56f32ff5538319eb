"""tcp: a TCP connection to HOST PORT succeeds (keepalived's TCP_CHECK, as a script).

Synopsis: check_tcp [--timeout SECONDS] HOST PORT

HOST is a name, an IPv4 address or an IPv6 address (``::1`` or ``[::1]``). The
connection is closed as soon as it is established; nothing is sent.

In a vrrp-agent config (keepalived's vrrp_script block)::

    vrrp_scripts:
      chk_db:
        script: "/usr/local/lib/vrrp-agent/checks/check_tcp 127.0.0.1 5432"
        interval: 2
        timeout: 3
        fall: 3

Output, e.g.: ``127.0.0.1:5432: connected`` or ``[::1]:5432: connection refused``.
"""

from __future__ import annotations

import argparse

from vrrp_agent.checks import seconds


def _host(text: str) -> str:
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if not host:
        raise argparse.ArgumentTypeError("empty host")
    return host


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1..65535: {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", type=_host, metavar="HOST", help="name or IPv4/IPv6 address")
    parser.add_argument("port", type=_port, metavar="PORT", help="1..65535")


def label(args: argparse.Namespace) -> str:
    host: str = args.host
    return f"[{host}]:{args.port}" if ":" in host else f"{host}:{args.port}"


def run(args: argparse.Namespace, budget: float) -> tuple[bool, str]:
    import socket

    try:
        with socket.create_connection((args.host, args.port), timeout=budget):
            return True, "connected"
    except (socket.timeout, TimeoutError):  # one class from 3.10 on, two before
        return False, f"no connection within {seconds(args.timeout)}"
    except ConnectionRefusedError:
        return False, "connection refused"
    except socket.gaierror as exc:
        return False, f"cannot resolve {args.host}: {exc.strerror}"
    except OSError as exc:
        return False, exc.strerror or str(exc)
