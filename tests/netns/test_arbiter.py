"""Split brain on real namespaces: two agents (n1 master, n2 backup) and a
reference host n3 for their arbiters. nftables in the switch namespace cuts
one node off from everything (its peer and the reference) silently, like a
failed switch port: its own sends succeed and go nowhere.

The property under test: two nodes never hold the VIP at the same time for
longer than one Master_Down interval, the cut-off node goes to FAULT and
drops the VIP, the other keeps (or takes) it, and after healing there is
exactly one master again. A sampler thread reads `ip addr` on both nodes
every few milliseconds for the whole scenario and measures every overlap.

Timings are chosen so that both halves of the arbiter matter:
- cutting the *backup*: its Master_Down (<= MD after the cut) expires long
  before its arbiter can count FALL failed rounds (>= (FALL-1)*INTERVAL +
  TIMEOUT), so only the takeover gate (a reference must answer after the
  claim) keeps it from becoming a second master until it faults;
- cutting the *master*: it keeps the VIP until its arbiter goes DOWN
  (<= FALL*INTERVAL + TIMEOUT), the backup takes over after Master_Down
  (>= MD - ADVERT_INT): the overlap is at most the difference, < MD.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from labkit.netns import Agent, Lab, sh, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval
from vrrp_agent.io.control import request

VIP = "10.99.0.100"
REFERENCE = "10.99.0.3"
ADVERT_INT = 0.5
INTERVAL, TIMEOUT, FALL, RISE = 0.4, 0.3, 6, 2
MARGIN = 0.5
# The backup's (priority 100): the longer of the two, the one that takes over.
MD = master_down_interval(3, 100, ADVERT_INT)

# The arithmetic in the module docstring, checked rather than trusted.
assert (FALL - 1) * INTERVAL + TIMEOUT > MD + 0.3
assert FALL * INTERVAL + TIMEOUT - (MD - ADVERT_INT) < MD - 0.3


def conf(priority: int) -> dict:
    return {
        "arbiter": {
            "addresses": [REFERENCE],
            "method": "icmp",
            "interval": INTERVAL,
            "timeout": TIMEOUT,
            "fall": FALL,
            "rise": RISE,
        },
        "vrrp_instances": {"VI_1": vrrp_instance(priority, VIP, ADVERT_INT)},
    }


@dataclass
class Sample:
    t: float
    n1: bool
    n2: bool


class Sampler:
    """Who holds the VIP, read as often as `ip` allows, plus what the
    agents' status says about pending claims (read over the control socket,
    no process start)."""

    def __init__(self, lab: Lab, agents: dict[str, Agent]) -> None:
        self.lab = lab
        self.agents = agents
        self.samples: list[Sample] = []
        self.waiting: dict[str, set[str]] = {name: set() for name in agents}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append(Sample(t, self.lab["n1"].has(VIP), self.lab["n2"].has(VIP)))
            n += 1
            if n % 4 == 0:
                for name, a in self.agents.items():
                    try:
                        inst = request(a.control_socket, timeout=1)["instances"]["VI_1"]
                    except (OSError, KeyError, ValueError):
                        continue
                    why = (inst.get("wants_master") or {}).get("waiting_for")
                    if why:
                        self.waiting[name].add(why)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def overlaps(self) -> list[tuple[float, float]]:
        """Each stretch where both held the VIP: (first sample, duration).
        The duration runs from the last sample before it (when at most one
        held it) to the first sample after it, so it is an upper bound."""
        out: list[tuple[float, float]] = []
        s = self.samples
        i = 0
        while i < len(s):
            if s[i].n1 and s[i].n2:
                j = i
                while j < len(s) and s[j].n1 and s[j].n2:
                    j += 1
                start = s[i - 1].t if i > 0 else s[i].t
                end = s[j].t if j < len(s) else s[j - 1].t
                out.append((s[i].t, end - start))
                i = j
            else:
                i += 1
        return out

    def first(self, after: float, predicate: object) -> float:
        """Seconds from `after` to the first sample that satisfies predicate
        (waiting a little: the caller may have seen it before the sampler)."""
        found: list[float] = []

        def seen() -> bool:
            found.extend(x.t for x in list(self.samples) if x.t >= after and predicate(x))  # type: ignore[operator]
            return bool(found)

        wait_for("the sampler to see it", seen, 2)
        return found[0] - after

    def step(self) -> float:
        gaps = [b.t - a.t for a, b in zip(self.samples, self.samples[1:], strict=False)]
        return max(gaps, default=0.0)


def port(host: str) -> str:
    """The host's eth0 peer in the switch namespace (see Lab.add_host)."""
    return f"p{int(host.removeprefix('n'))}k0"


def cut(lab: Lab, host: str) -> None:
    """Drop every frame to and from the host's switch port, flooded ones
    (VRRP multicast, ARP broadcasts) included: the bridge forward hook sees
    each copy."""
    p = port(host)
    ruleset = (
        "table bridge cut {\n"
        "  chain cutport {\n"
        "    type filter hook forward priority 0;\n"
        f'    iifname "{p}" drop\n'
        f'    oifname "{p}" drop\n'
        "  }\n"
        "}\n"
    )
    r = subprocess.run(
        ["ip", "netns", "exec", lab.switch, "nft", "-f", "-"],
        input=ruleset,
        text=True,
        capture_output=True,
    )
    assert r.returncode == 0, r.stderr


def heal(lab: Lab) -> None:
    sh("ip", "netns", "exec", lab.switch, "nft", "delete", "table", "bridge", "cut")


@pytest.fixture
def pair(lab: Lab) -> Iterator[tuple[Agent, Agent]]:
    a1 = lab.agent("n1", conf(150))
    a2 = lab.agent("n2", conf(100))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 3)
    wait_for("n2 backup", lambda: state(a2) == "BACKUP", 3)
    for a in (a1, a2):
        arb = a.status()["arbiter"]
        assert arb["state"] == "UP" and arb["last_success_age"] < INTERVAL + TIMEOUT, arb
    yield a1, a2


def state(a: Agent) -> str:
    """Over the control socket: no process start, so polling stays fine-grained."""
    return request(a.control_socket, timeout=2)["instances"]["VI_1"]["state"]


def one_master(lab: Lab, a1: Agent, a2: Agent, expected: str, hold: float) -> None:
    """Exactly one node holds the VIP and is MASTER, the other BACKUP, and it
    stays that way for `hold` seconds."""
    agents = {"n1": a1, "n2": a2}
    other = "n2" if expected == "n1" else "n1"
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        assert lab[expected].has(VIP) and not lab[other].has(VIP)
        time.sleep(0.05)
    assert agents[expected].state() == "MASTER"
    assert agents[other].state() == "BACKUP"


def report(sampler: Sampler, what: str) -> float:
    overlaps = sampler.overlaps()
    worst = max((d for _, d in overlaps), default=0.0)
    print(
        f"{what}: {len(sampler.samples)} samples, largest gap {sampler.step() * 1000:.0f} ms; "
        f"overlaps {[round(d, 3) for _, d in overlaps]} (bound: Master_Down {MD:.3f}s)"
    )
    return worst


@pytest.mark.netns
def test_cut_off_master_faults_and_the_backup_takes_over(
    lab: Lab, pair: tuple[Agent, Agent]
) -> None:
    a1, a2 = pair
    sampler = Sampler(lab, {"n1": a1, "n2": a2})
    try:
        time.sleep(0.3)
        t_cut = time.monotonic()
        cut(lab, "n1")

        # n1 can reach nobody: FAULT after FALL failed rounds, VIP dropped;
        # n2 still reaches the reference: it takes over after Master_Down.
        # (n2 first: it is due sooner.) Times from the sampler's record.
        wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), MD + MARGIN + 3)
        bound = FALL * INTERVAL + TIMEOUT + MARGIN
        wait_for("n1 to drop the VIP", lambda: not lab["n1"].has(VIP), bound + 3)
        dropped = sampler.first(t_cut, lambda x: not x.n1)
        print(f"n1 dropped the VIP {dropped:.3f}s after the cut (bound {bound:.3f}s)")
        assert dropped <= bound
        took = sampler.first(t_cut, lambda x: x.n2)
        bound = MD + MARGIN
        print(
            f"n2 took the VIP {took:.3f}s after the cut (bounds {MD - ADVERT_INT:.3f}s, {bound:.3f}s)"
        )
        # Not before Master_Down counted from n2's last advert, sent at most
        # an interval before the cut (50 ms for the timers being late under load).
        assert MD - ADVERT_INT - 0.05 <= took <= bound
        s1 = a1.status()
        assert s1["instances"]["VI_1"]["state"] == "FAULT"
        assert s1["instances"]["VI_1"]["faults"] == {
            "arbiter": f"arbiter: none of {REFERENCE} answers"
        }
        assert s1["arbiter"]["state"] == "DOWN"
        assert s1["arbiter"]["failures"] >= FALL
        assert a2.state() == "MASTER"
        assert a2.status()["arbiter"]["state"] == "UP"
        time.sleep(1.0)  # n1 stays in FAULT, without the VIP
        assert not lab["n1"].has(VIP) and a1.state() == "FAULT"

        # Healed: n1's arbiter rises, it leaves FAULT, preempts (150 > 100).
        t_heal = time.monotonic()
        heal(lab)
        bound = RISE * INTERVAL + master_down_interval(3, 150, ADVERT_INT) + MARGIN
        wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP), bound + 3)
        took = time.monotonic() - t_heal
        print(f"n1 took the VIP back {took:.3f}s after healing (bound {bound:.3f}s)")
        assert took <= bound
        wait_for("n2 to release", lambda: not lab["n2"].has(VIP), 2)
        one_master(lab, a1, a2, "n1", hold=2.0)
    finally:
        sampler.stop()

    worst = report(sampler, "cut master")
    assert sampler.step() < 0.1, "sampling too coarse to measure an overlap"
    assert worst <= MD
    log = a1.log()
    assert "arbiter: DOWN after 6 failed rounds" in log
    assert f"(VI_1) Entering FAULT STATE (arbiter: none of {REFERENCE} answers)" in log
    assert "arbiter: UP after 2 successful rounds" in log


@pytest.mark.netns
def test_cut_off_backup_faults_and_never_takes_the_vip(lab: Lab, pair: tuple[Agent, Agent]) -> None:
    a1, a2 = pair
    sampler = Sampler(lab, {"n1": a1, "n2": a2})
    try:
        time.sleep(0.3)
        t_cut = time.monotonic()
        cut(lab, "n2")

        # n2 stops hearing n1: Master_Down expires first, but its claim waits
        # for the reference, which never answers; then it faults.
        bound = FALL * INTERVAL + TIMEOUT + MARGIN
        wait_for("n2 FAULT", lambda: state(a2) == "FAULT", bound + 3)
        took = time.monotonic() - t_cut
        print(f"n2 in FAULT {took:.3f}s after the cut (bound {bound:.3f}s)")
        assert took <= bound
        assert took > MD, "the arbiter faulted before Master_Down: the gate was not exercised"
        s2 = a2.status()
        assert s2["instances"]["VI_1"]["faults"] == {
            "arbiter": f"arbiter: none of {REFERENCE} answers"
        }
        assert s2["arbiter"]["state"] == "DOWN"
        time.sleep(1.0)
        assert state(a2) == "FAULT"
        # n1 reaches the reference and kept everything.
        assert a1.state() == "MASTER" and a1.status()["arbiter"]["state"] == "UP"

        t_heal = time.monotonic()
        heal(lab)
        bound = RISE * INTERVAL + MARGIN
        wait_for("n2 to leave FAULT", lambda: state(a2) == "BACKUP", bound + 3)
        took = time.monotonic() - t_heal
        print(f"n2 back to BACKUP {took:.3f}s after healing (bound {bound:.3f}s)")
        assert took <= bound
        one_master(lab, a1, a2, "n1", hold=MD + 1.0)
    finally:
        sampler.stop()

    report(sampler, "cut backup")
    assert sampler.step() < 0.1, "sampling too coarse to measure an overlap"
    assert sampler.overlaps() == []
    # The VIP never moved: n1 held it in every sample, n2 in none.
    assert all(x.n1 and not x.n2 for x in sampler.samples)
    print(f"n2 waiting_for seen: {sorted(sampler.waiting['n2'])}")
    assert "arbiter: waiting for a reference address to answer" in sampler.waiting["n2"]
    log = a2.log()
    assert "(VI_1) Entering MASTER STATE" not in log
    assert f"(VI_1) Entering FAULT STATE (arbiter: none of {REFERENCE} answers)" in log
