"""`Node.drain` / `Node.undrain` (node maintenance) on the fake fabric: a
drained node gives up mastership as on shutdown (priority 0, VIPs removed,
BACKUP "drained") and never becomes master again, by whatever path, until
undrained. Bounds come from the routers' timers (advert_int 1, VRRPv3)."""

from __future__ import annotations

from vrrp_agent.core import AddVips, RemoveVips, SendAdvert, State, StateChanged
from vrrp_agent.core.node import (
    InstanceActions,
    Node,
    NotifyInstance,
    TrackingInputs,
    released,
)
from vrrp_agent.core.router import DRAINED
from vrrp_agent.core.timers import master_down_interval, skew_time

from .fabric import Fabric
from .sim import PROPAGATION
from .test_coordination import exclusive_pair, sync_pair
from .test_node import config, inst, routers_for, started, to_master

MD = master_down_interval(3, 1, 1.0)  # the longest Master_Down at advert_int 1
LONG = 10 * MD  # "several Master_Down intervals", and then some


def pair(a_prio: int = 150, b_prio: int = 100, **kw: object) -> Fabric:
    """Host a (the master, by priority) and host b, one VRID, settled."""
    f = Fabric()
    f.add_host("a", "10.0.0.1", {"VI_1": (1, a_prio)}, **kw)
    f.add_host("b", "10.0.0.2", {"VI_1": (1, b_prio)}, **kw)
    f.start("a")
    f.start("b")
    f.run_until(2 * MD)
    assert f.holders() == {"VI_1": ["a"]}
    return f


def test_drain_from_master_sends_priority_zero_removes_vips_and_becomes_backup() -> None:
    f = pair()
    t0 = f.now
    out = f.drain("a")
    batch = [b for b in out if isinstance(b, InstanceActions)]
    assert [b.instance for b in batch] == ["VI_1"]
    acts = batch[0].actions
    assert isinstance(acts[0], SendAdvert) and acts[0].advert.priority == 0
    assert acts[1:] == (
        RemoveVips(DRAINED),
        StateChanged(State.MASTER, State.BACKUP, DRAINED),
    )
    notes = [(n.instance.name, n.state) for n in out if isinstance(n, NotifyInstance)]
    assert notes == [("VI_1", "BACKUP")]
    assert released(out) == ["VI_1"]
    a = f.hosts["a"].node
    st = a.status(f.now)
    assert st["drained"] is True and st["drained_since"] == 1000.0 + t0
    assert st["instances"]["VI_1"]["last_transition_reason"] == "drained"
    assert a.routers["VI_1"].stats.priority_zero_sent == 1
    # The peer takes over after its Skew_Time, not Master_Down.
    f.run_until(t0 + skew_time(3, 100, 1.0) + 2 * PROPAGATION)
    assert f.holders() == {"VI_1": ["b"]}
    assert f.longest_overlap == 0


def test_drain_twice_changes_nothing() -> None:
    f = pair()
    f.drain("a")
    f.run_until(f.now + MD)
    since = f.hosts["a"].node.drained_since
    assert f.drain("a") == []
    assert f.hosts["a"].node.drained_since == since
    f.undrain("a")
    assert f.undrain("a") == []  # undrained already
    assert f.hosts["a"].node.drained_since is None


def test_drained_backup_does_not_take_over_when_master_down_expires() -> None:
    f = pair()
    f.drain("a")
    f.run_until(f.now + MD)
    f.hosts["b"].frozen = True  # silent: no priority 0, Master_Down runs out
    f.hosts["b"].vips.clear()
    f.run_until(f.now + LONG)
    assert f.state("a", "VI_1") == "BACKUP"
    assert f.holders() == {}
    assert f.hosts["a"].routers["VI_1"].stats.became_master == 1  # only before the drain


def test_drained_backup_does_not_take_over_on_a_priority_zero_advert() -> None:
    f = pair()
    f.drain("a")
    f.run_until(f.now + MD)
    f.stop("b")  # b resigns with priority 0
    f.run_until(f.now + LONG)
    assert f.hosts["a"].routers["VI_1"].stats.priority_zero_received >= 1
    assert f.state("a", "VI_1") == "BACKUP"
    assert f.holders() == {}


def test_drained_backup_does_not_preempt_a_lower_priority_master() -> None:
    f = pair()
    f.drain("a")
    f.run_until(f.now + LONG)
    assert f.holders() == {"VI_1": ["b"]}
    a = f.hosts["a"].routers["VI_1"]
    # It still receives and counts adverts, and follows the master it hears.
    assert a.stats.adverts_received > 5 and a.master_priority == 100
    assert a.state is State.BACKUP and a.want is None


def test_drained_address_owner_starts_and_stays_backup() -> None:
    f = Fabric()
    f.add_host("a", "10.0.0.1", {"VI_1": (1, 255)})
    f.add_host("b", "10.0.0.2", {"VI_1": (1, 100)})
    f.hosts["a"].node.drain(0.0, since=None)  # e.g. the drain file found at start
    f.start("a")
    f.start("b")
    f.run_until(LONG)
    assert f.state("a", "VI_1") == "BACKUP"
    assert f.holders() == {"VI_1": ["b"]}
    assert f.hosts["a"].node.status(f.now)["drained_since"] is None
    # Undrained, the owner takes its address back (it preempts b).
    f.undrain("a")
    f.run_until(f.now + MD + 2 * PROPAGATION)
    assert f.holders() == {"VI_1": ["a"]}


def test_owner_master_drains_like_any_master() -> None:
    f = pair(a_prio=255)
    out = f.drain("a")
    assert released(out) == ["VI_1"]
    f.run_until(f.now + LONG)
    assert f.holders() == {"VI_1": ["b"]}


def test_drained_sync_group_releases_together_and_never_claims() -> None:
    f = sync_pair()
    assert f.holders() == {"V1": ["a"], "V2": ["a"]}
    out = f.drain("a")
    assert released(out) == ["V1", "V2"]
    changes = [c for _, _, c in f.hosts["a"].log if c.old is State.MASTER]
    assert [c.reason for c in changes] == [DRAINED, DRAINED]
    f.run_until(f.now + MD)
    assert f.holders() == {"V1": ["b"], "V2": ["b"]}
    f.stop("b")
    f.run_until(f.now + LONG)
    assert f.holders() == {}
    assert f.hosts["a"].node.group_states == {"G": "BACKUP"}
    assert f.hosts["a"].coordinator.waiting == {}


def test_drained_exclusive_pair_never_swaps_or_claims() -> None:
    f = exclusive_pair()
    assert f.holders() == {"X": ["a"], "Y": ["b"]}
    assert released(f.drain("a")) == ["X"]
    f.run_until(f.now + MD)
    # b's X claim is held back by exclusive_with (Y is master there): X is unserved.
    assert f.holders() == {"Y": ["b"]}
    # b degrades: undrained, a's Y would preempt it and swap the pair (a
    # contested win); drained, nothing moves.
    f.set_delta("b", -60)
    f.run_until(f.now + LONG)
    assert f.holders() == {"Y": ["b"]}
    assert all(r.state is State.BACKUP for r in f.hosts["a"].routers.values())
    # And b gone altogether: still nothing here.
    f.stop("b")
    f.run_until(f.now + LONG)
    assert f.holders() == {}


def test_undrain_preempts_back_with_preempt() -> None:
    f = pair()
    f.drain("a")
    f.run_until(f.now + MD)
    t0 = f.now
    f.undrain("a")
    f.run_until(t0 + MD + 2 * PROPAGATION)
    assert f.holders() == {"VI_1": ["a"]}
    assert f.hosts["a"].node.drained is False


def test_undrain_honours_preempt_delay() -> None:
    f = pair(preempt_delay=5.0)
    f.drain("a")
    f.run_until(f.now + MD)
    t0 = f.now
    f.undrain("a")
    f.run_until(t0 + 4.0)
    assert f.holders() == {"VI_1": ["b"]}, "preempted before preempt_delay"
    f.run_until(t0 + 5.0 + 1.0 + 2 * PROPAGATION)  # the delay starts at the next advert
    assert f.holders() == {"VI_1": ["a"]}


def test_undrain_with_nopreempt_stays_backup() -> None:
    f = pair(preempt=False)
    f.drain("a")
    f.run_until(f.now + MD)
    f.undrain("a")
    f.run_until(f.now + LONG)
    assert f.holders() == {"VI_1": ["b"]}
    # But it competes again: with b gone it takes over after Master_Down.
    f.hosts["b"].frozen = True
    f.hosts["b"].vips.clear()
    t0 = f.now
    f.run_until(t0 + MD + 0.1)
    assert f.holders() == {"VI_1": ["a"]}


def test_undrain_alone_takes_over_after_master_down() -> None:
    f = pair()
    f.drain("a")
    f.stop("b")
    f.run_until(f.now + LONG)
    assert f.holders() == {}
    t0 = f.now
    f.undrain("a")
    f.run_until(t0 + master_down_interval(3, 150, 1.0) + PROPAGATION)
    assert f.holders() == {"VI_1": ["a"]}


def test_reload_keeps_the_drain_and_new_instances_start_drained() -> None:
    cfg = config({"VI_1": inst(1)})
    node, _ = started(cfg)
    to_master(node)
    out = node.drain(20.0, since=1234.5)
    assert released(out) == ["VI_1"]
    new = config({"VI_1": inst(1), "VI_2": inst(2)})
    node.apply(new, 21.0, routers_for(node, new), TrackingInputs())
    assert node.routers["VI_1"].drained and node.routers["VI_2"].drained
    out = node.on_timer(100.0)
    assert all(r.state is State.BACKUP for r in node.routers.values())
    assert not any(
        isinstance(a, AddVips) for b in out if isinstance(b, InstanceActions) for a in b.actions
    )
    assert node.status(100.0)["drained_since"] == 1234.5
    node.undrain(100.0)
    to_master(node, 110.0)


def test_drain_before_start_starts_every_instance_drained() -> None:
    cfg = config({"VI_1": inst(1, state="MASTER")})
    node = Node(cfg)
    assert node.drain(0.0, since=None) == []
    node.apply(cfg, 0.0, routers_for(node, cfg), TrackingInputs())
    node.on_timer(100.0)
    assert node.routers["VI_1"].state is State.BACKUP
    st = node.status(100.0)
    assert st["drained"] is True and st["drained_since"] is None
