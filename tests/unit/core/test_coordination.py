"""Sync groups, exclusive pairs and the arbiter gate on the fake fabric.

Times are derived from the routers' timers (advert_int 1, VRRPv3): a check
failure moves things within one Master_Down, a resignation within one Skew.
"""

from __future__ import annotations

from collections import Counter

from vrrp_agent.core.coordination import Coordinator
from vrrp_agent.core.router import MASTER_GONE, PREEMPTING, RESIGNED
from vrrp_agent.core.timers import master_down_interval

from .fabric import Fabric
from .sim import PROPAGATION

MD = master_down_interval(3, 1, 1.0)  # the longest Master_Down at advert_int 1
CHECK_WEIGHT = -60


def exclusive_pair() -> Fabric:
    """Node a is home of X, node b of Y; both instances track one node check."""
    f = Fabric()
    pairs = {"X": "Y"}
    f.add_host("a", "10.0.0.1", {"X": (1, 150), "Y": (2, 100)}, pairs=pairs)
    f.add_host("b", "10.0.0.2", {"X": (1, 100), "Y": (2, 150)}, pairs=pairs)
    f.start("a")
    f.start("b")
    f.run_until(2 * MD)
    return f


def flips(f: Fabric) -> Counter[str]:
    return Counter(f"{h.name}:{name}" for h in f.hosts.values() for _, name, _ in h.log)


def test_exclusive_pair_settles_each_vip_on_its_home_node() -> None:
    f = exclusive_pair()
    assert f.holders() == {"X": ["a"], "Y": ["b"]}
    assert f.longest_overlap == 0


def test_a_failing_check_swaps_both_vips_and_they_stay_swapped() -> None:
    f = exclusive_pair()
    t0 = f.now
    f.set_delta("a", CHECK_WEIGHT)
    f.run_until(t0 + 2 * MD)
    assert f.holders() == {"X": ["b"], "Y": ["a"]}
    assert all(len(h.vips) <= 1 for h in f.hosts.values())
    before = flips(f)
    f.run_until(f.now + 30)
    assert flips(f) == before, "the swapped pair must not flap"
    # The displaced instance says why it does not preempt back.
    assert "exclusive_with" in f.hosts["b"].coordinator.waiting.get("Y", "")


def test_the_pair_swaps_back_when_the_check_recovers() -> None:
    f = exclusive_pair()
    f.set_delta("a", CHECK_WEIGHT)
    f.run_until(f.now + 2 * MD)
    f.set_delta("a", 0)
    f.run_until(f.now + 2 * MD)
    assert f.holders() == {"X": ["a"], "Y": ["b"]}
    before = flips(f)
    f.run_until(f.now + 30)
    assert flips(f) == before


def test_either_node_failing_swaps_and_repeated_failures_keep_working() -> None:
    f = exclusive_pair()
    for node in ("b", "a", "b", "a"):
        f.set_delta(node, CHECK_WEIGHT)
        f.run_until(f.now + 2 * MD)
        assert f.holders() == {"X": ["b"], "Y": ["a"]}, f"{node} failing"
        f.set_delta(node, 0)
        f.run_until(f.now + 2 * MD)
        assert f.holders() == {"X": ["a"], "Y": ["b"]}, f"{node} recovered"
    # Never both VIPs on one node, and a VIP on two nodes only for the
    # propagation delay of a preemption.
    assert all(len(h.vips) <= 1 for h in f.hosts.values())
    assert f.longest_overlap <= 2 * PROPAGATION


def test_survivor_keeps_its_own_vip_when_the_peer_node_is_gone() -> None:
    f = exclusive_pair()
    f.hosts["b"].frozen = True
    f.run_until(f.now + 3 * MD)
    a = f.hosts["a"]
    assert a.vips == {"X"}
    assert f.state("a", "Y") == "BACKUP"
    assert a.routers["Y"].want is not None and a.routers["Y"].want.kind == MASTER_GONE
    assert "exclusive_with" in a.coordinator.waiting["Y"]
    # The peer comes back: Y goes home.
    f.hosts["b"].frozen = False
    f.run_until(f.now + 2 * MD)
    assert f.holders() == {"X": ["a"], "Y": ["b"]}


def test_graceful_stop_of_the_peer_is_a_silent_claim_too() -> None:
    f = exclusive_pair()
    f.stop("b")
    f.run_until(f.now + 3 * MD)
    assert f.hosts["a"].vips == {"X"}
    assert f.hosts["a"].routers["Y"].want is not None
    assert f.hosts["a"].routers["Y"].want.kind in (RESIGNED, MASTER_GONE)


def sync_pair() -> Fabric:
    f = Fabric()
    groups = {"G": ["V1", "V2"]}
    f.add_host("a", "10.0.0.1", {"V1": (1, 150), "V2": (2, 150)}, groups=groups)
    f.add_host("b", "10.0.0.2", {"V1": (1, 100), "V2": (2, 100)}, groups=groups)
    f.start("a")
    f.start("b")
    f.run_until(2 * MD)
    return f


def test_sync_group_members_go_master_together() -> None:
    f = sync_pair()
    assert f.holders() == {"V1": ["a"], "V2": ["a"]}
    assert f.hosts["a"].coordinator.group_state("G", f.hosts["a"].routers) == "MASTER"


def test_one_member_in_fault_pulls_the_whole_group() -> None:
    f = sync_pair()
    f.set_fault("a", "V1", "link down")
    assert f.state("a", "V2") == "FAULT"
    assert "sync group G: V1 in FAULT" in f.hosts["a"].routers["V2"].faults.values()
    f.run_until(f.now + MD)
    assert f.holders() == {"V1": ["b"], "V2": ["b"]}
    f.set_fault("a", "V1", None)
    assert f.state("a", "V2") != "FAULT"
    f.run_until(f.now + 2 * MD)
    assert f.holders() == {"V1": ["a"], "V2": ["a"]}


def test_one_member_losing_its_election_pulls_the_group_to_backup() -> None:
    f = sync_pair()
    # A router outside the group with a higher priority for V1 appears.
    f.add_host("c", "10.0.0.3", {"V1": (1, 200)})
    f.start("c")
    f.run_until(f.now + 2 * MD)
    assert f.state("a", "V1") == "BACKUP"
    assert f.state("a", "V2") == "BACKUP", "V2 follows V1 out of MASTER"
    assert f.hosts["a"].vips == set()
    assert f.hosts["a"].coordinator.group_state("G", f.hosts["a"].routers) == "BACKUP"
    # Neither grouped node takes V2 piecemeal (keepalived prefers backup to
    # thrashing), and nothing flaps.
    before = flips(f)
    f.run_until(f.now + 30)
    assert flips(f) == before
    assert "sync group G" in f.hosts["a"].coordinator.waiting["V2"]


def arbitrated() -> Fabric:
    f = Fabric()
    f.add_host("a", "10.0.0.1", {"V": (1, 150)}, arbiter=True)
    f.add_host("b", "10.0.0.2", {"V": (1, 100)}, arbiter=True)
    f.start("a")
    f.start("b")
    f.run_until(2 * MD)
    return f


def test_a_node_cut_off_from_peer_and_arbiter_never_claims_the_vip() -> None:
    f = arbitrated()
    assert f.holders() == {"V": ["a"]}
    f.cut.add(frozenset(("a", "b")))
    f.hosts["b"].arbiter_reachable = False
    f.run_until(f.now + 5 * MD)
    assert f.holders() == {"V": ["a"]}
    assert f.hosts["b"].routers["V"].want is not None
    assert "arbiter" in f.hosts["b"].coordinator.waiting["V"]
    # Heal: b hears a again and withdraws its claim.
    f.cut.clear()
    f.hosts["b"].arbiter_reachable = True
    f.run_until(f.now + 2)
    assert f.hosts["b"].routers["V"].want is None
    assert f.holders() == {"V": ["a"]}


def test_a_backup_that_still_reaches_the_arbiter_takes_over() -> None:
    f = arbitrated()
    f.hosts["a"].frozen = True
    t0 = f.now
    f.run_until(t0 + 2 * MD)
    assert "b" in f.holders()["V"]
    assert f.hosts["b"].log[-1][0] - t0 <= MD + 1.0


def test_ungated_instances_are_not_touched() -> None:
    c = Coordinator({"G": ["A", "B"]}, {"X": "Y"}, arbiter=False)
    assert [c.gated(n) for n in ("A", "B", "X", "Y", "Z")] == [True, True, True, True, False]
    assert Coordinator({}, {}, arbiter=True).gated("Z")


def test_want_kinds() -> None:
    f = exclusive_pair()
    f.set_delta("a", CHECK_WEIGHT)
    # b's X hears a lower, live master: its claim is a preemption.
    f.run_until(f.now + MD - 0.5)
    assert f.hosts["b"].routers["X"].want is None  # still counting down
    f.run_until(f.now + 1.0)
    kinds = [c.new for _, n, c in f.hosts["b"].log if n == "X"]
    assert kinds[-1] == "MASTER"
    assert PREEMPTING == "preempt"
