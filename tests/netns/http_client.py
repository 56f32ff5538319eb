"""Requests for namespace tests, run inside the client namespace: N GETs to
one URL, each on a new connection (optionally from a given source address),
printed as one JSON list of answers ("Hello from web1", or "ERR: reason").

    python http_client.py URL N [SOURCE_ADDRESS] [TIMEOUT]
"""

from __future__ import annotations

import http.client
import json
import sys
from urllib.parse import urlsplit


def main() -> None:
    url, n = urlsplit(sys.argv[1]), int(sys.argv[2])
    source = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    answers = []
    for _ in range(n):
        conn = http.client.HTTPConnection(
            url.hostname or "", url.port or 80, timeout=timeout,
            source_address=(source, 0) if source else None,
        )  # fmt: skip
        try:
            conn.request("GET", url.path or "/")
            answers.append(conn.getresponse().read().decode().strip())
        except OSError as err:
            answers.append(f"ERR: {err}")
        finally:
            conn.close()
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
