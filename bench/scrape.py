"""Scrape /metrics once a period from the observer's namespace, in a thread of
its own, and keep each scrape's latency: connect until the last byte of the
answer, as a Prometheus server sees it. Parsing (prometheus_client's own
parser, to prove the answer is whole) is done after the clock stops."""

from __future__ import annotations

import http.client
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from labkit.netns import inside


class Scraper:
    def __init__(self, ns: str, targets: dict[str, str], port: int, period: float = 1.0) -> None:
        self.ns = ns
        self.targets = targets  # name -> address
        self.port = port
        self.period = period
        self.latencies: dict[str, list[float]] = {name: [] for name in targets}
        self.errors: list[str] = []
        self.series: dict[str, int] = {}  # name -> samples in its last answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        # setns applies to this thread only: the main thread stays where it is.
        with inside(self.ns):
            due = time.monotonic()
            while not self._stop.is_set():
                for name, addr in self.targets.items():
                    self._scrape(name, addr)
                due += self.period
                self._stop.wait(max(0.0, due - time.monotonic()))

    def _scrape(self, name: str, addr: str) -> None:
        t = time.monotonic()
        try:
            conn = http.client.HTTPConnection(addr, self.port, timeout=2)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            took = time.monotonic() - t
            conn.close()
        except OSError as err:
            self.errors.append(f"{name}: {err}")
            return
        if resp.status != 200:
            self.errors.append(f"{name}: HTTP {resp.status}")
            return
        fams = list(text_string_to_metric_families(body.decode()))
        self.series[name] = sum(len(f.samples) for f in fams)
        self.latencies[name].append(took)
