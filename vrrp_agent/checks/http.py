"""http: an HTTP(S) GET of URL answers with the expected status (and body text).

Synopsis: check_http [--status CODES] [--expect TEXT] [--insecure] [--timeout SECONDS] URL

Healthy when the status is one of CODES (default 2xx; e.g. 200, 2xx,3xx or
200,301) and, with --expect, the first MiB of the body contains TEXT. Redirects
are not followed (as keepalived's HTTP_GET and curl without -L): a 301 is just a
status. https:// URLs verify the certificate against the system CAs unless
--insecure is given.

In a vrrp-agent config (keepalived's vrrp_script block)::

    vrrp_scripts:
      chk_web:
        script: "/usr/local/lib/vrrp-agent/checks/check_http --expect nodeA http://127.0.0.1/"
        interval: 2
        timeout: 3
        weight: -20

Output, e.g.: ``http://127.0.0.1/: 200 OK`` or ``http://127.0.0.1/: 503, expected 2xx``.
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import SplitResult, urlsplit

from vrrp_agent.checks import seconds

MAX_BODY = 1 << 20  # enough for any health page; a stream never ends otherwise
USER_AGENT = "vrrp-agent-check/1"


def _url(text: str) -> SplitResult:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad URL {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise argparse.ArgumentTypeError(f"bad URL {text!r}: only http:// and https://")
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"bad URL {text!r}: no host")
    return parts


def _status(text: str) -> tuple[str, ...]:
    """'200', '2xx', '200,3xx' -> patterns of 3 characters, x matches any digit."""
    patterns = tuple(p.strip().lower() for p in text.split(","))
    for p in patterns:
        if not (len(p) == 3 and p[0] in "12345" and all(c.isdigit() or c == "x" for c in p[1:])):
            raise argparse.ArgumentTypeError(
                f"bad status {p!r}: want a code like 200 or a class like 2xx, comma-separated"
            )
    return patterns


def _matches(code: int, patterns: tuple[str, ...]) -> bool:
    digits = str(code)
    return any(
        len(digits) == 3 and all(p == "x" or p == d for p, d in zip(pat, digits))
        for pat in patterns
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", type=_url, metavar="URL", help="http://HOST[:PORT]/PATH or https://")
    parser.add_argument(
        "--status",
        type=_status,
        default=("2xx",),
        metavar="CODES",
        help="healthy status codes: 200, 2xx, or a comma-separated list (default: 2xx)",
    )
    parser.add_argument("--expect", metavar="TEXT", help="the body must contain TEXT")
    parser.add_argument(
        "--insecure", action="store_true", help="https: do not verify the certificate"
    )


def label(args: argparse.Namespace) -> str:
    url: str = args.url.geturl()
    return url


def run(args: argparse.Namespace, budget: float) -> tuple[bool, str]:
    deadline = time.monotonic() + budget
    import http.client
    import socket

    parts: SplitResult = args.url
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, parts.port, timeout=budget, context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=budget)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        if conn.sock is not None:  # each later recv waits at most what is left
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = conn.getresponse()
        code, reason = response.status, response.reason
        if not _matches(code, args.status):
            return False, f"{code}, expected {','.join(args.status)}"
        if args.expect is None:
            return True, f"{code} {reason}".rstrip()
        body = b""
        while len(body) < MAX_BODY:
            if time.monotonic() > deadline:
                raise TimeoutError
            chunk = response.read1(min(65536, MAX_BODY - len(body)))
            if not chunk:
                break
            body += chunk
            if args.expect.encode() in body:
                return True, f"{code}, body contains {args.expect!r}"
        return False, f"{code}, body lacks {args.expect!r}"
    # socket.timeout is TimeoutError from 3.10 on; on 3.9 it is its own OSError.
    except (socket.timeout, TimeoutError):
        return False, f"no answer within {seconds(args.timeout)}"
    except ConnectionRefusedError:
        return False, "connection refused"
    except socket.gaierror as exc:
        return False, f"cannot resolve {host}: {exc.strerror}"
    except http.client.HTTPException as exc:
        return False, f"bad HTTP response ({type(exc).__name__}: {exc})"
    except OSError as exc:  # ssl.SSLError is an OSError too
        reason = getattr(exc, "verify_message", None) or exc.strerror or str(exc)
        return False, f"{type(exc).__name__}: {reason}"
    finally:
        conn.close()
