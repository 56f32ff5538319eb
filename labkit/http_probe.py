"""The HTTP probe: requests from a client through a VIP, each on a new
connection (a new source port, so a load balancer schedules every one).
Stand-alone (standard library only; Python 3.9+, annotations unevaluated):
it runs inside the client, a lab namespace (`python3 labkit/http_probe.py ...`) or a container it is
copied into (labkit.podman.Probe), where the lab kit is not installed.

    python3 http_probe.py count URL N [--source ADDR] [--timeout S]
        N requests, one after the other; one JSON list of answers on stdout.
    python3 http_probe.py watch URL SECONDS OUT [--timeout S] [--every S]
        Requests for SECONDS; OUT gets a JSON header line {"wall": time.time()
        at the start}, then one line [seconds since the start, ok, answer] per
        request as it completes, then {"done": true}.

An answer is the page ("Hello from web1") or "ERR: reason" (no answer, or an
HTTP status other than 200).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

PATH = Path(__file__).resolve()
FAILED = "ERR: "


def get(url: str, timeout: float, source: str | None = None) -> tuple[bool, str]:
    """One GET on a fresh connection: (ok, page or "ERR: reason")."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "",
        parts.port or 80,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode(errors="replace").strip()
        if response.status != 200:
            return False, f"{FAILED}HTTP {response.status}"
        return True, body
    except OSError as err:  # timeouts and refusals; http.client's errors are not OSErrors
        return False, f"{FAILED}{type(err).__name__}: {err}"
    except http.client.HTTPException as err:
        return False, f"{FAILED}{type(err).__name__}: {err}"
    finally:
        conn.close()


def count(url: str, n: int, timeout: float, source: str | None) -> list[str]:
    return [get(url, timeout, source)[1] for _ in range(n)]


def watch(url: str, seconds: float, out: Path, timeout: float, every: float) -> None:
    """Probe for `seconds`, a line per request, flushed as it completes, so a
    test can read how far the client got while the probe still runs."""
    start, wall = time.monotonic(), time.time()
    with out.open("w") as f:
        f.write(json.dumps({"wall": wall}) + "\n")
        while True:
            t = time.monotonic() - start
            if t >= seconds:
                break
            ok, answer = get(url, timeout)
            f.write(json.dumps([round(t, 3), ok, answer]) + "\n")
            f.flush()
            time.sleep(every)
        f.write(json.dumps({"done": True}) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("count")
    c.add_argument("url")
    c.add_argument("n", type=int)
    c.add_argument("--source", default=None)
    c.add_argument("--timeout", type=float, default=2.0)
    w = sub.add_parser("watch")
    w.add_argument("url")
    w.add_argument("seconds", type=float)
    w.add_argument("out", type=Path)
    w.add_argument("--timeout", type=float, default=0.3)
    w.add_argument("--every", type=float, default=0.05)
    args = parser.parse_args(argv)
    if args.mode == "count":
        print(json.dumps(count(args.url, args.n, args.timeout, args.source or None)))
    else:
        watch(args.url, args.seconds, args.out, args.timeout, args.every)


if __name__ == "__main__":
    main(sys.argv[1:])
