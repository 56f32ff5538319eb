"""The HTTP probe: requests from a client through a VIP, each on a new
connection (a new source port, so a load balancer schedules every one).
Stand-alone (standard library only; Python 3.9+, annotations unevaluated):
the drill, maintenance and upgrade playbooks copy it to their probe host, and
the lab kit runs it inside a client, a lab namespace or a container
(labkit/http_probe.py is a link to this file).

    python3 http_probe.py count URL N [--source ADDR] [--timeout S]
        N requests, one after the other; one JSON list of answers on stdout.
    python3 http_probe.py watch URL SECONDS OUT [--timeout S] [--every S] [--until FILE]
        Requests for SECONDS (or until FILE exists); OUT gets a JSON header
        line {"wall": time.time() at the start}, then one line [seconds since
        the start, ok, answer] per request as it completes, then {"done": true}.
    python3 http_probe.py summary OUT
        What a `watch` record shows, as one JSON object: requests, failed,
        downtime_s (the longest run of failures, from the start of its first
        request to the start of the first answered one after it), outages
        (how many runs of failures), recovered
        (false when the record ends in failures), answers (count per page).

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


def watch(
    url: str, seconds: float, out: Path, timeout: float, every: float, until: Path | None = None
) -> None:
    """Probe for `seconds`, a line per request, flushed as it completes, so a
    test can read how far the client got while the probe still runs."""
    start, wall = time.monotonic(), time.time()
    with out.open("w") as f:
        f.write(json.dumps({"wall": wall}) + "\n")
        while True:
            t = time.monotonic() - start
            if t >= seconds or (until is not None and until.exists()):
                break
            ok, answer = get(url, timeout)
            f.write(json.dumps([round(t, 3), ok, answer]) + "\n")
            f.flush()
            time.sleep(every)
        f.write(json.dumps({"done": True}) + "\n")


def summary(lines: list[str]) -> dict[str, object]:
    """The downtime a `watch` record shows. A run of failures lasts from the
    start of its first request to the start of the next answered one: what a
    client retrying every `every` seconds would have waited, give or take one
    interval and one timeout."""
    rows = [json.loads(line) for line in lines if line.strip()]
    requests = [r for r in rows if isinstance(r, list)]
    header = rows[0] if rows and isinstance(rows[0], dict) else {}
    answers: dict[str, int] = {}
    longest, failed_since, failed, outages = 0.0, None, 0, 0
    for t, ok, answer in requests:
        answers[answer] = answers.get(answer, 0) + 1
        if not ok:
            failed += 1
            if failed_since is None:
                failed_since = t
                outages += 1
        elif failed_since is not None:
            longest = max(longest, t - failed_since)
            failed_since = None
    if failed_since is not None:
        longest = max(longest, requests[-1][0] - failed_since)
    return {
        "wall": header.get("wall"),
        "requests": len(requests),
        "failed": failed,
        "downtime_s": round(longest, 3),
        "outages": outages,
        "recovered": failed_since is None,
        "done": any(isinstance(r, dict) and r.get("done") for r in rows),
        "answers": answers,
    }


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
    w.add_argument("--until", type=Path, default=None)
    s = sub.add_parser("summary")
    s.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "count":
        print(json.dumps(count(args.url, args.n, args.timeout, args.source or None)))
    elif args.mode == "summary":
        print(json.dumps(summary(args.out.read_text().splitlines())))
    else:
        watch(args.url, args.seconds, args.out, args.timeout, args.every, args.until)


if __name__ == "__main__":
    main(sys.argv[1:])
