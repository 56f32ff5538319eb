"""The split-brain arbiter's prober on real namespaces: ICMP, ICMPv6 and ARP
probes against a reference host, silenced with nftables in the prober's own
namespace.

n1 runs an ArbiterProber (tests/netns/arbiter_helper.py, one JSON line per
round); n2 and n3 are reference hosts. Bounds follow from the settings: the
first round entirely after a cut starts within one interval, the state flips
on the fall-th (rise-th) round, which ends at its timeout at the latest; so
fall*interval + timeout, plus MARGIN for process scheduling and for reading
the helper's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.netns import Lab
from labkit.poll import wait_for

HELPER = Path(__file__).with_name("arbiter_helper.py")
INTERVAL, TIMEOUT, FALL, RISE = 0.3, 0.2, 2, 2
MARGIN = 0.5

N2, N3 = "10.99.0.2", "10.99.0.3"
N3_V6 = "fd99::3"


class Prober:
    """The helper in a namespace; rounds arrive as dicts in `rounds`."""

    def __init__(self, lab: Lab, host: str, log: Path, **arbiter: object) -> None:
        spec = {"interval": INTERVAL, "timeout": TIMEOUT, "fall": FALL, "rise": RISE, **arbiter}
        self.log_path = log
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab[host].ns, sys.executable, str(HELPER), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        )
        self.rounds: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.rounds.append(json.loads(line))

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.rounds)

    def since(self, t: float) -> list[dict]:
        return [r for r in self.snapshot() if r["t"] >= t]

    def wait_round(self, what: str, predicate: object, after: float, timeout: float) -> dict:
        """The first round after `after` (time.monotonic) that satisfies predicate."""
        found: list[dict] = []

        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"helper exited {self.proc.returncode}:\n{self.log()}")
            for r in self.since(after):
                if predicate(r):  # type: ignore[operator]
                    found.append(r)
                    return True
            return False

        wait_for(what, check, timeout, step=0.01)
        return found[0]

    def request_round(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"round\n")
        self.proc.stdin.flush()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the helper stops the prober
            try:
                assert self.proc.wait(5) == 0, self.log()
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
        self._reader.join(5)


@pytest.fixture
def probers(lab: Lab) -> Iterator[list[Prober]]:
    started: list[Prober] = []
    try:
        yield started
    finally:
        for p in started:
            p.close()
            print(f"===== prober log\n{p.log()}")


def start(lab: Lab, probers: list[Prober], **arbiter: object) -> Prober:
    p = Prober(lab, "n1", lab.tmp / f"prober-{len(probers)}.log", **arbiter)
    probers.append(p)
    return p


def table(addr: str) -> str:
    return "arb_" + addr.replace(".", "_").replace(":", "_")


def nft(lab: Lab, host: str, ruleset: str) -> None:
    r = subprocess.run(
        ["ip", "netns", "exec", lab[host].ns, "nft", "-f", "-"],
        input=ruleset,
        text=True,
        capture_output=True,
    )
    assert r.returncode == 0, f"nft -f failed:\n{ruleset}\n{r.stderr}"


def drop_icmp_from(lab: Lab, addr: str) -> None:
    """Echo replies from `addr` never reach n1's sockets (silent loss: a drop
    in the output hook would fail our sendto with EPERM instead)."""
    match = f"ip6 saddr {addr} icmpv6" if ":" in addr else f"ip saddr {addr} icmp"
    nft(
        lab,
        "n1",
        f"table inet {table(addr)} {{\n"
        f"  chain in {{\n"
        f"    type filter hook input priority 0;\n"
        f"    {match} type echo-reply drop\n"
        f"  }}\n"
        f"}}\n",
    )


def drop_arp_from(lab: Lab, addr: str) -> None:
    """ARP from `addr` dropped at n1's eth0 ingress. The `arp` family's hooks
    would not do: packet sockets send past arp_xmit and receive beside
    arp_rcv, but behind netdev ingress."""
    nft(
        lab,
        "n1",
        f"table netdev {table(addr)} {{\n"
        f"  chain in {{\n"
        f"    type filter hook ingress device eth0 priority 0;\n"
        f"    arp saddr ip {addr} drop\n"
        f"  }}\n"
        f"}}\n",
    )


def heal(lab: Lab, addr: str) -> None:
    tables = lab["n1"].run("nft", "list", "tables").stdout.splitlines()
    mine = [t.split()[1:] for t in tables if t.endswith(f" {table(addr)}")]
    assert mine, tables
    for family, name in mine:
        lab["n1"].run("nft", "delete", "table", family, name)


def cut_and_heal(p: Prober, lab: Lab, drop: object, addr: str) -> None:
    """The shared scenario: UP while reachable, DOWN after exactly FALL
    failed rounds once cut, UP after exactly RISE good rounds once healed."""
    # Reachable: several answered rounds, never DOWN.
    first = p.wait_round("3 answered rounds", lambda r: r["status"]["rounds"] >= 3, 0, 5)
    assert all(r["ok"] and r["up"] for r in p.snapshot()), p.snapshot()
    assert first["status"]["state"] == "UP"
    assert first["status"]["addresses"][addr]["last_answer_age"] is not None

    cut = time.monotonic()
    drop(lab, addr)  # type: ignore[operator]
    applied = time.monotonic()
    bound = FALL * INTERVAL + TIMEOUT + MARGIN
    down = p.wait_round("DOWN", lambda r: not r["up"], cut, bound + 3)
    took = down["t"] - cut
    print(f"DOWN {took:.3f}s after the cut (bound {bound:.3f}s)")
    assert took <= bound
    # Hysteresis: it takes FALL rounds, the first starting after the cut.
    assert took >= (FALL - 1) * INTERVAL
    assert down["status"]["failures"] == FALL
    failed = [r for r in p.since(cut) if r["t"] <= down["t"] and not r["ok"]]
    assert len(failed) == FALL
    assert all(r["up"] for r in failed[:-1])
    # While DOWN, nothing answers and last_success stops moving.
    assert down["last_success"] is not None and down["last_success"] < applied + TIMEOUT
    assert "arbiter: DOWN after 2 failed rounds" in p.log()
    line = next(x for x in p.log().splitlines() if "arbiter: DOWN" in x)
    assert "WARNING" in line and addr in line and "no answer within 0.2s" in line

    healed = time.monotonic()
    heal(lab, addr)
    bound = RISE * INTERVAL + TIMEOUT + MARGIN
    up = p.wait_round("UP", lambda r: r["up"], healed, bound + 3)
    took = up["t"] - healed
    print(f"UP {took:.3f}s after healing (bound {bound:.3f}s)")
    assert took <= bound
    assert up["status"]["successes"] == RISE
    good = [r for r in p.since(healed) if r["t"] <= up["t"] and r["ok"]]
    assert len(good) == RISE
    assert up["last_success"] >= healed
    line = next(x for x in p.log().splitlines() if "arbiter: UP" in x)
    assert "INFO" in line and "after 2 successful rounds" in line and addr in line


@pytest.mark.netns
@pytest.mark.parametrize(
    ("addr", "interface"),
    [(N3, None), (N3, "eth0"), (N3_V6, None)],
    ids=["ipv4", "ipv4-bound-to-eth0", "ipv6"],
)
def test_icmp_reachable_cut_healed(
    lab: Lab, probers: list[Prober], addr: str, interface: str | None
) -> None:
    p = start(lab, probers, addresses=[addr], method="icmp", interface=interface)
    cut_and_heal(p, lab, drop_icmp_from, addr)


@pytest.mark.netns
def test_arp_reachable_cut_healed_without_touching_neighbour_caches(
    lab: Lab, probers: list[Prober]
) -> None:
    p = start(lab, probers, addresses=[N3], method="arp", interface="eth0")
    cut_and_heal(p, lab, drop_arp_from, N3)
    # Sender IP 0.0.0.0: n3 answered every probe without learning n1, and
    # n1's kernel never resolved n3 either (the probes bypass it).
    assert lab["n3"].neighbour("10.99.0.1") is None
    assert lab["n1"].neighbour(N3) is None


@pytest.mark.netns
@pytest.mark.parametrize("method", ["icmp", "arp"])
def test_one_of_two_answering_keeps_it_up(lab: Lab, probers: list[Prober], method: str) -> None:
    drop = drop_arp_from if method == "arp" else drop_icmp_from
    p = start(lab, probers, addresses=[N2, N3], method=method, interface="eth0")
    p.wait_round("an answered round", lambda r: r["ok"], 0, 5)

    cut = time.monotonic()
    drop(lab, N3)
    # Many times FALL rounds with n3 silent: every round still succeeds.
    rounds = 4 * FALL
    wait_for(f"{rounds} rounds", lambda: len(p.since(cut)) >= rounds, rounds * INTERVAL + 5)
    after = p.since(cut)
    assert all(r["ok"] and r["up"] for r in after)
    last = after[-1]["status"]["addresses"]
    assert last[N2]["last_answer_age"] < INTERVAL + TIMEOUT
    # n3's last answer is from before the cut.
    assert last[N3]["last_answer_age"] >= (rounds - 1) * INTERVAL
    print(
        f"{len(after)} rounds with {N3} silent, all UP; "
        f"ages {last[N2]['last_answer_age']}s / {last[N3]['last_answer_age']}s"
    )

    # Both silent: DOWN, and the warning names both.
    cut = time.monotonic()
    drop(lab, N2)
    bound = FALL * INTERVAL + TIMEOUT + MARGIN
    down = p.wait_round("DOWN", lambda r: not r["up"], cut, bound + 3)
    print(f"DOWN {down['t'] - cut:.3f}s after the second cut (bound {bound:.3f}s)")
    assert down["t"] - cut <= bound
    line = next(x for x in p.log().splitlines() if "arbiter: DOWN" in x)
    assert N2 in line and N3 in line

    # One of them back is enough.
    healed = time.monotonic()
    heal(lab, N3)
    bound = RISE * INTERVAL + TIMEOUT + MARGIN
    up = p.wait_round("UP", lambda r: r["up"], healed, bound + 3)
    print(f"UP {up['t'] - healed:.3f}s after {N3} came back (bound {bound:.3f}s)")
    assert up["t"] - healed <= bound


@pytest.mark.netns
def test_request_round_probes_at_once(lab: Lab, probers: list[Prober]) -> None:
    interval = 5.0
    p = start(lab, probers, addresses=[N3], method="icmp", interval=interval)
    first = p.wait_round("the first round", lambda r: True, 0, 5)
    asked = time.monotonic()
    p.request_round()
    second = p.wait_round("the requested round", lambda r: r["seq"] == 2, asked, 2)
    print(f"requested round done {second['t'] - asked:.3f}s after asking")
    assert second["t"] - asked < 0.5
    assert second["ok"] and second["last_success"] > first["last_success"]
    # The cadence restarts from the requested round: no round right after it.
    time.sleep(1.0)
    assert [r["seq"] for r in p.snapshot()] == [1, 2]


@pytest.mark.netns
def test_missing_interface_is_a_failed_round_with_a_reason(lab: Lab, probers: list[Prober]) -> None:
    p = start(lab, probers, addresses=[N3], method="arp", interface="nosuch0")
    down = p.wait_round("DOWN", lambda r: not r["up"], 0, FALL * INTERVAL + 3)
    assert down["status"]["addresses"][N3]["error"].startswith(
        "cannot open the arp socket on nosuch0:"
    )
    log = p.log()
    # Reported once, not every round.
    assert log.count("ERROR arbiter: cannot open the arp socket on nosuch0") == 1
    line = next(x for x in log.splitlines() if "arbiter: DOWN" in x)
    assert "cannot open the arp socket on nosuch0" in line
