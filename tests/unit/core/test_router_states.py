"""Each router state's event methods, one router on a hand-stepped clock, and
the rule that state classes act only through the router's public surface."""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace
from ipaddress import ip_address

import pytest

from tests.unit.core.sim import VIP, params
from vrrp_agent.core import (
    AddVips,
    Announce,
    RemoveVips,
    Router,
    SendAdvert,
    State,
    StateChanged,
    router_states,
)
from vrrp_agent.core.router import MASTER_GONE, PREEMPTING, RESIGNED
from vrrp_agent.core.router_states import (
    STATE_CLASSES,
    Backup,
    Fault,
    Init,
    Master,
    RouterState,
)
from vrrp_agent.core.timers import master_down_interval, skew_time
from vrrp_agent.wire import Advertisement

PEER = ip_address("10.0.0.2")
LOWER_PEER = ip_address("10.0.0.0")
MD_200 = master_down_interval(3, 200, 1.0)


def adv(priority: int, **kw: object) -> Advertisement:
    base = Advertisement(
        version=3, vrid=51, priority=priority, max_advert_int=100, addresses=(VIP,)
    )
    return replace(base, **kw)


def backup(priority: int = 200, **kw: object) -> Router:
    r = Router(params("A", priority, "10.0.0.1", **kw))
    r.start(0.0)
    assert r.state is State.BACKUP
    return r


def master(priority: int = 200, **kw: object) -> Router:
    r = backup(priority, **kw)
    r.on_timer(master_down_interval(3, priority, 1.0))
    assert r.state is State.MASTER
    return r


def fault(**kw: object) -> Router:
    r = backup(**kw)
    r.set_fault("link", "interface eth0 is down", 1.0)
    assert r.state is State.FAULT
    return r


def kinds(actions: list[object]) -> list[type]:
    return [type(a) for a in actions]


# ------------------------------------------------------------------ structure


def test_every_state_has_a_handler_that_implements_the_protocol() -> None:
    assert set(STATE_CLASSES) == set(State)
    assert {cls for cls in STATE_CLASSES.values()} == {Init, Backup, Master, Fault}
    r = Router(params("A", 100, "10.0.0.1"))
    for state, cls in STATE_CLASSES.items():
        handler = cls(r)
        assert isinstance(handler, RouterState), state
    assert type(r.handler) is Init
    r.start(0.0)
    assert type(r.handler) is Backup


def test_state_classes_touch_no_private_attribute_but_their_own() -> None:
    """`router._x` or `self.router._x` inside a state class would tie the
    state to the router's internals; only `self._x` (the state's own) is fine."""
    tree = ast.parse(inspect.getsource(router_states))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {"Init", "Backup", "Master", "Fault"} <= set(classes)
    offending = []
    for name, cls in classes.items():
        for node in ast.walk(cls):
            if not isinstance(node, ast.Attribute):
                continue
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if private and not on_self:
                offending.append(f"{name} line {node.lineno}: .{node.attr}")
    assert offending == []
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert imported == []


def test_the_check_above_would_catch_a_private_access() -> None:
    # The rule's own test: the same walk flags `self.router._x` and `r._x`.
    source = "class S:\n    def f(self, r):\n        self.router._claim()\n        r._to_master()\n"
    attrs = [
        n.attr
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Attribute)
        and n.attr.startswith("_")
        and not (isinstance(n.value, ast.Name) and n.value.id == "self")
    ]
    assert attrs == ["_claim", "_to_master"]


def test_state_changed_carries_the_enum_which_still_reads_as_its_name() -> None:
    r = Router(params("A", 255, "10.0.0.1"))
    change = next(a for a in r.start(0.0) if isinstance(a, StateChanged))
    assert change.old is State.INIT and change.new is State.MASTER
    assert change.new == "MASTER"
    # logging formats with %s, notify scripts and the FIFO with f-strings.
    assert (str(change.new), f"{change.new}", "%s" % change.new) == ("MASTER",) * 3  # noqa: UP031
    assert f"{change.new:>8}" == "  MASTER"


# ------------------------------------------------------------------ init


def test_init_records_faults_and_start_enters_fault_with_all_of_them() -> None:
    r = Router(params("A", 100, "10.0.0.1"))
    assert r.set_fault("link", "interface eth0 is down", 0.0) == []
    assert r.set_fault("script", "chk_nginx failed", 0.0) == []
    assert r.state is State.INIT
    actions = r.start(1.0)
    assert actions == [
        StateChanged(State.INIT, State.FAULT, "interface eth0 is down; chk_nginx failed")
    ]
    assert r.timers == {}


def test_init_ignores_adverts_and_timer_events() -> None:
    r = Router(params("A", 100, "10.0.0.1"))
    assert r.receive(adv(200), PEER, 1.0) == []
    assert r.handler.master_down(1.0) == []
    assert r.handler.adver(1.0) == []
    assert r.take_over(1.0) == []
    assert r.step_down(1.0, "mate lost") == []
    assert r.state is State.INIT
    assert r.master_ip is None


def test_a_running_router_ignores_a_second_start() -> None:
    r = backup()
    timers = dict(r.timers)
    assert r.start(5.0) == []
    assert r.timers == timers


# ------------------------------------------------------------------ fault


def test_fault_ignores_adverts_of_any_priority() -> None:
    r = fault()
    for priority in (0, 100, 254):
        assert r.receive(adv(priority), PEER, 2.0) == []
    assert r.state is State.FAULT
    assert r.master_ip is None
    assert r.timers == {}
    # They were valid adverts: counted as received, not dropped.
    assert r.stats.adverts_received == 3 and r.stats.rx_dropped == {}


def test_fault_ignores_timers_priority_changes_and_take_over() -> None:
    r = fault()
    h = r.handler
    assert type(h) is Fault
    for event in (h.master_down, h.adver, h.preempt, h.garp, h.garp_refresh, r.take_over):
        assert event(3.0) == []
    assert r.set_priority_delta(-50, 3.0) == []
    assert r.step_down(3.0, "mate lost") == []
    assert r.state is State.FAULT


def test_fault_stays_until_the_last_condition_clears() -> None:
    r = fault()
    assert r.set_fault("script", "chk_nginx failed", 2.0) == []
    assert r.last_reason == "interface eth0 is down"
    assert r.set_fault("link", None, 3.0) == []
    assert r.state is State.FAULT
    actions = r.set_fault("script", None, 4.0)
    assert actions == [StateChanged(State.FAULT, State.BACKUP, "fault cleared (script)")]
    assert r.timers == {"master_down": pytest.approx(4.0 + MD_200)}


# ------------------------------------------------------------------ backup


def test_backup_follows_a_higher_master_and_restarts_master_down() -> None:
    r = backup(100)
    assert r.receive(adv(200, max_advert_int=50), PEER, 2.0) == []
    assert (r.master_ip, r.master_priority, r.last_seen_priority) == (PEER, 200, 200)
    assert r.master_adver_interval == pytest.approx(0.5)
    assert r.timers == {"master_down": pytest.approx(2.0 + master_down_interval(3, 100, 0.5))}


def test_backup_hearing_priority_zero_waits_skew_time_and_says_who_resigned() -> None:
    r = backup(100)
    r.receive(adv(200), PEER, 2.0)
    assert r.receive(adv(0), PEER, 3.0) == []
    assert r.timers["master_down"] == pytest.approx(3.0 + skew_time(3, 100, 1.0))
    actions = r.on_timer(3.0 + skew_time(3, 100, 1.0))
    assert r.state is State.MASTER
    assert actions[0] == StateChanged(
        State.BACKUP, State.MASTER, "master 10.0.0.2 resigned (priority 0), skew time expired"
    )


def test_backup_preempt_delay_follows_the_weaker_master_until_it_runs_out() -> None:
    r = backup(200, preempt_delay=5.0)
    assert r.receive(adv(100), PEER, 1.0) == []
    assert r.timers["preempt"] == pytest.approx(6.0)
    # Later adverts keep the first deadline and keep the master-down timer fresh.
    r.receive(adv(100), PEER, 2.0)
    r.receive(adv(100), PEER, 5.0)
    assert r.timers["preempt"] == pytest.approx(6.0)
    assert r.timers["master_down"] == pytest.approx(5.0 + MD_200)
    assert r.master_ip == PEER and r.state is State.BACKUP
    actions = r.on_timer(6.0)
    assert r.state is State.MASTER
    assert actions[0] == StateChanged(
        State.BACKUP,
        State.MASTER,
        "preempt delay expired, master 10.0.0.2 has lower priority 100 than ours 200",
    )
    assert kinds(actions[1:]) == [SendAdvert, AddVips, Announce]


def test_backup_preempt_delay_is_cancelled_by_a_stronger_master() -> None:
    r = backup(200, preempt_delay=5.0)
    r.receive(adv(100), PEER, 1.0)
    assert "preempt" in r.timers
    r.receive(adv(250), ip_address("10.0.0.3"), 2.0)
    assert "preempt" not in r.timers
    assert r.master_ip == ip_address("10.0.0.3")


def test_backup_without_delay_ignores_a_weaker_master_and_preempts_on_master_down() -> None:
    r = backup(200)
    deadline = r.timers["master_down"]
    assert r.receive(adv(100), PEER, 1.0) == []
    assert r.timers == {"master_down": deadline}  # discarded: not followed
    assert r.master_ip is None
    actions = r.on_timer(deadline)
    assert actions[0].reason == (
        "master down timer expired while preempting a master with priority 100 (ours 200)"
    )


def test_backup_with_nopreempt_follows_a_weaker_master() -> None:
    r = backup(200, preempt=False)
    r.receive(adv(100), PEER, 1.0)
    assert r.master_ip == PEER
    assert r.timers == {"master_down": pytest.approx(1.0 + MD_200)}


def test_gated_backup_claims_and_take_over_grants_it() -> None:
    r = backup(200)
    r.gated = True
    assert r.on_timer(MD_200) == []
    assert r.state is State.BACKUP
    assert r.want is not None and r.want.kind == MASTER_GONE
    # A weaker master shows up: the claim stands, now as a preemption, since the same time.
    r.receive(adv(100), PEER, MD_200 + 0.5)
    assert (r.want.kind, r.want.since) == (PREEMPTING, MD_200)
    actions = r.take_over(MD_200 + 1)
    assert actions[0] == StateChanged(
        State.BACKUP, State.MASTER, "preempting priority 100 from 10.0.0.2"
    )
    assert r.want is None


def test_gated_backups_claim_is_withdrawn_when_a_master_speaks() -> None:
    r = backup(100)
    r.gated = True
    r.on_timer(master_down_interval(3, 100, 1.0))
    assert r.want is not None
    r.receive(adv(200), PEER, 5.0)
    assert r.want is None
    assert r.take_over(5.0) == []
    r.receive(adv(0), PEER, 6.0)
    r.on_timer(6.0 + skew_time(3, 100, 1.0))
    assert r.want is not None and r.want.kind == RESIGNED


def test_backup_ignores_master_only_events() -> None:
    r = backup()
    h = r.handler
    assert type(h) is Backup
    assert h.adver(1.0) == h.garp(1.0) == h.garp_refresh(1.0) == []
    assert r.set_priority_delta(-20, 1.0) == []
    assert r.step_down(1.0, "mate lost") == []
    assert r.state is State.BACKUP


def test_backup_fault_enters_fault_without_priority_zero() -> None:
    r = backup()
    actions = r.set_fault("link", "interface eth0 is down", 1.0)
    assert actions == [StateChanged(State.BACKUP, State.FAULT, "interface eth0 is down")]
    assert r.stats.priority_zero_sent == 0


# ------------------------------------------------------------------ master


def test_master_receiving_a_higher_priority_advert_yields_at_once() -> None:
    r = master(150)
    now = 10.0
    actions = r.receive(adv(200, max_advert_int=50), PEER, now)
    reason = "higher priority 200 from 10.0.0.2"
    assert actions == [RemoveVips(reason), StateChanged(State.MASTER, State.BACKUP, reason)]
    assert r.state is State.BACKUP
    assert (r.master_ip, r.master_priority) == (PEER, 200)
    assert r.timers == {"master_down": pytest.approx(now + master_down_interval(3, 150, 0.5))}


def test_master_keeps_an_equal_priority_from_a_lower_address_and_reasserts() -> None:
    r = master(150)
    actions = r.receive(adv(150), LOWER_PEER, 10.0)
    assert kinds(actions) == [SendAdvert, Announce]
    assert r.state is State.MASTER
    actions = r.receive(adv(150), PEER, 11.0)
    assert actions[-1] == StateChanged(
        State.MASTER, State.BACKUP, "equal priority and higher address: priority 150 from 10.0.0.2"
    )


def test_master_advertises_every_interval_and_reannounces_after_a_long_stall() -> None:
    r = master(garp_master_delay=0.0)
    t0 = r.timers["adver"]
    assert kinds(r.on_timer(t0)) == [SendAdvert]
    assert r.timers["adver"] == pytest.approx(t0 + 1.0)
    # Resumed 5 s late: longer than any backup waits, so announce the VIPs again.
    assert kinds(r.on_timer(t0 + 6.0)) == [SendAdvert, Announce]


def test_master_advertises_a_priority_change_only_when_it_changes() -> None:
    r = master(250)
    actions = r.set_priority_delta(-10, 5.0)
    assert kinds(actions) == [SendAdvert] and actions[0].advert.priority == 240
    assert kinds(r.set_priority_delta(+10, 6.0)) == [SendAdvert]  # 260, clamped to 254
    # Clamped at 254 again: the priority on the wire does not change, nothing to say.
    assert r.set_priority_delta(+20, 7.0) == []
    assert r.effective_priority == 254


def test_master_fault_sends_priority_zero_then_removes_the_vips() -> None:
    r = master()
    actions = r.set_fault("link", "interface eth0 is down", 5.0)
    assert kinds(actions) == [SendAdvert, RemoveVips, StateChanged]
    assert actions[0].advert.priority == 0
    assert actions[2] == StateChanged(State.MASTER, State.FAULT, "interface eth0 is down")
    assert r.master_ip is None and r.timers == {}


def test_master_step_down_sends_priority_zero_and_becomes_backup() -> None:
    r = master()
    r.last_seen_priority = 100
    actions = r.step_down(5.0, "sync group VG1: VI_2 lost")
    assert kinds(actions) == [SendAdvert, RemoveVips, StateChanged]
    assert actions[0].advert.priority == 0
    assert r.state is State.BACKUP and r.last_seen_priority is None
    assert r.timers == {"master_down": pytest.approx(5.0 + MD_200)}


# ------------------------------------------------------------------ shutdown


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Router(params("A", 200, "10.0.0.1")), []),
        (backup, [StateChanged]),
        (fault, [StateChanged]),
        (master, [SendAdvert, RemoveVips, StateChanged]),
    ],
    ids=["init", "backup", "fault", "master"],
)
def test_shutdown_from_each_state_ends_in_init_with_no_timers(make, expected) -> None:
    r = make()
    old = r.state
    actions = r.shutdown(20.0)
    assert kinds(actions) == expected
    assert r.state is State.INIT
    assert r.timers == {} and r.next_deadline() is None
    if expected:
        assert actions[-1] == StateChanged(old, State.INIT, "shutting down")
    if old is State.MASTER:
        assert actions[0].advert.priority == 0
        assert actions[1] == RemoveVips("shutting down")
    # Stopped for good: nothing it hears or any timer does moves it.
    assert r.receive(adv(100), PEER, 21.0) == []
    assert r.on_timer(100.0) == []
