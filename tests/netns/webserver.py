"""A tiny HTTP server for namespace tests: answers every GET with
`Hello from NAME`, one thread per connection, no keep-alive (each request a
new connection, so a load balancer schedules every one).

    python webserver.py NAME [ADDRESS] [PORT]
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    name = sys.argv[1]
    address = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 80
    body = f"Hello from {name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    with ThreadingHTTPServer((address, port), Handler) as server:
        print(f"serving {name} on {address}:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
