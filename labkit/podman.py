"""podman containers as lab nodes: commands inside them, their addresses and
ARP entries, a freeze that looks like a dead node on the wire, and the HTTP
probe (labkit/http_probe.py) run inside a client container."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from labkit import http_probe
from labkit.poll import wait_for

# Where the probe script is copied to in a client container (which has python3
# but not the lab kit).
PROBE_PATH = "/usr/local/lib/labkit-http-probe.py"
FREEZE_TABLE = "labkit_freeze"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, capture_output=True, text=True)


def run(container: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`cmd` inside `container` (podman exec); fails, rc 255, when it is paused."""
    return podman("exec", container, *cmd, check=check)


def addresses(container: str, ifname: str = "eth0") -> set[str] | None:
    """The container's addresses on `ifname`; None when it cannot answer
    (paused, or no such interface). One exec per call: polling resolution is
    what the drills' margin has to cover."""
    r = run(container, "ip", "-j", "addr", "show", "dev", ifname)
    if r.returncode != 0:
        return None
    return {a["local"] for link in json.loads(r.stdout) for a in link.get("addr_info", [])}


def mac(container: str, ifname: str = "eth0") -> str:
    return run(container, "cat", f"/sys/class/net/{ifname}/address", check=True).stdout.strip()


def neighbour(container: str, ip: str, ifname: str = "eth0") -> str | None:
    """The MAC address `container` sends to for `ip` now (its ARP/ND entry), if
    any: which node a client's packets to a VIP actually reach."""
    r = run(container, "ip", "-j", "neigh", "show", "to", ip, "dev", ifname)
    entries = json.loads(r.stdout or "[]") if r.returncode == 0 else []
    return next((e["lladdr"] for e in entries if "lladdr" in e), None)


def pid(container: str) -> int:
    """The container's init as the host sees it: the handle on its namespaces
    that works while it is paused."""
    return int(podman("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())


def in_netns(container: str, *cmd: str, stdin: str | None = None) -> str:
    """A host tool (nft, ip) run in the container's network namespace: it works
    while the container is paused, and needs nothing installed inside it."""
    r = subprocess.run(
        ["nsenter", "-t", str(pid(container)), "-n", *cmd],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
    )
    return r.stdout


# A paused container's processes stop but its kernel does not: it still answers
# ARP for the VIPs it holds, completes TCP handshakes into a frozen server's
# backlog, queues the peer's adverts in the agent's socket and ACKs the client.
# A frozen VM or a dead host does none of that. So a freeze first drops every
# frame in and out of the container's interfaces (nftables netdev hooks in its
# namespace, below the IP stack, so ARP and raw-socket sends are caught too),
# then pauses it.


def freeze(container: str) -> None:
    """Freeze `container` as a dead node looks on the wire: silent both ways."""
    links = json.loads(in_netns(container, "ip", "-j", "link", "show"))
    devices = [link["ifname"] for link in links if link["ifname"] != "lo"]
    chains = "".join(
        f'  chain {hook}_{i} {{ type filter hook {hook} device "{dev}" priority -500; '
        "policy drop; }\n"
        for i, dev in enumerate(devices)
        for hook in ("ingress", "egress")
    )
    in_netns(container, "nft", "-f", "-", stdin=f"table netdev {FREEZE_TABLE} {{\n{chains}}}\n")
    podman("pause", container)


def thaw(container: str) -> None:
    """Undo `freeze`. The wire opens first, then the processes run: a thawed VM's
    kernel and processes resume together, and what the agent sends at once (its
    late advert and the gratuitous ARPs that win the clients back) must get out.
    Between the two the kernel runs without its processes for one podman call."""
    in_netns(container, "nft", "delete", "table", "netdev", FREEZE_TABLE)
    podman("unpause", container)


def install_probe(container: str) -> None:
    """Copy the probe script into `container` (cheap; done before each use, so
    a re-created container always has it)."""
    podman("cp", str(http_probe.PATH), f"{container}:{PROBE_PATH}")


def answers(vip: str, n: int, client: str = "client", timeout: float = 2.0) -> list[str]:
    """`n` HTTP requests from `client` through `vip`, one after the other, each
    on a fresh connection (new source port): the pages, or `ERR: ...`."""
    install_probe(client)
    r = run(
        client, "python3", PROBE_PATH, "count", f"http://{vip}/", str(n), "--timeout", str(timeout)
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@dataclass
class Probe:
    """HTTP probes from a client container through a VIP for `seconds`, every
    50 ms with a 0.3 s timeout (http_probe's `watch`); its record, a line per
    request, is read back from the container while it runs and after."""

    client: str
    vip: str
    seconds: float
    out: str

    @classmethod
    def start(cls, vip: str, seconds: float, client: str = "client") -> Probe:
        install_probe(client)
        out = f"/tmp/probe-{time.monotonic_ns()}.jsonl"
        podman(
            "exec", "-d", client, "python3", PROBE_PATH, "watch", f"http://{vip}/",
            str(seconds), out,
        )  # fmt: skip
        return cls(client, vip, seconds, out)

    def _lines(self) -> list:
        r = run(self.client, "cat", self.out)
        if r.returncode != 0:
            return []
        # The last line may be half written while the probe runs.
        lines = []
        for text in r.stdout.splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                break
        return lines

    def so_far(self) -> list[list]:
        """The rows recorded until now, while the probe runs."""
        return [row for row in self._lines() if isinstance(row, list)]

    def answered_so_far(self) -> set[str]:
        return {body for _, ok, body in self.so_far() if ok}

    def record(self) -> dict:
        """{"wall": time.time() at the probe's start, "rows": [...]}, once done."""
        lines: list = []

        def done() -> bool:
            lines[:] = self._lines()
            return bool(lines) and lines[-1] == {"done": True}

        wait_for("the probe to finish", done, self.seconds + 10, 0.2)
        return {"wall": lines[0]["wall"], "rows": [r for r in lines if isinstance(r, list)]}

    def rows(self) -> list[list]:
        """[seconds since the probe started, ok, page or error] per request."""
        return self.record()["rows"]

    def since(self, wall: float) -> list[list]:
        """The rows from `wall` (a time.time() taken here: the containers share
        the host's clock) on, timed from it."""
        record = self.record()
        shift = wall - record["wall"]
        return [[round(t - shift, 3), ok, body] for t, ok, body in record["rows"] if t >= shift]

    def downtime(self) -> tuple[float, list[str]]:
        """The longest gap between two successful probes, and who answered."""
        rows = self.rows()
        ok = [t for t, good, _ in rows if good]
        assert ok, f"no probe through {self.vip} ever succeeded"
        gaps = [ok[i + 1] - ok[i] for i in range(len(ok) - 1)] or [0.0]
        answered = sorted({body for _, good, body in rows if good})
        return max(gaps), answered


def containers(prefix: str) -> list[str]:
    """The names of all containers (running or not) starting with `prefix`."""
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [n for n in names if n.startswith(prefix)]
