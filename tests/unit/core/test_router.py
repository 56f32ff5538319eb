"""The VRRP state machine, stepped on a fake clock between in-memory routers."""

from __future__ import annotations

import logging
from dataclasses import replace
from ipaddress import ip_address

import pytest

from tests.unit.core.sim import PROPAGATION, VIP, Segment, params
from vrrp_agent.core import RemoveVips, Router, SendAdvert, State
from vrrp_agent.core.timers import master_down_interval, skew_time
from vrrp_agent.wire import AUTH_PASS, Advertisement

EPS = 1e-9


def pair(p1: int = 200, p2: int = 100, **kw: object) -> Segment:
    seg = Segment()
    seg.add(params("A", p1, "10.0.0.1", **kw))
    seg.add(params("B", p2, "10.0.0.2", **kw))
    seg.start("A")
    seg.start("B")
    return seg


# ------------------------------------------------------------------ formulas


def test_timer_formulas_match_the_rfcs() -> None:
    # RFC 9568: Skew = ((256 - prio) * Master_Adver_Interval) / 256
    assert skew_time(3, 100, 1.0) == pytest.approx(156 / 256)
    assert skew_time(3, 100, 0.1) == pytest.approx(15.6 / 256)
    assert master_down_interval(3, 200, 1.0) == pytest.approx(3 + 56 / 256)
    # RFC 3768: Skew = (256 - prio) / 256, independent of the interval
    assert skew_time(2, 100, 5.0) == pytest.approx(156 / 256)
    assert master_down_interval(2, 100, 5.0) == pytest.approx(15 + 156 / 256)


# ------------------------------------------------------------------ election


def test_highest_priority_wins_election_after_its_master_down_interval() -> None:
    seg = pair()
    seg.run_until(10)
    assert seg.masters() == ["A"]
    assert seg.vip_holders() == ["A"]
    assert seg.became_master_at("A") == pytest.approx(master_down_interval(3, 200, 1.0))
    assert seg.nodes["B"].state == "BACKUP"
    assert not [t for t in seg.transitions("B") if t[1].new == "MASTER"]


def test_three_routers_elect_one_master_and_failover_goes_to_the_next_highest() -> None:
    seg = Segment()
    for name, prio, ip in (("A", 200, "10.0.0.1"), ("B", 150, "10.0.0.2"), ("C", 100, "10.0.0.3")):
        seg.add(params(name, prio, ip))
        seg.start(name)
    seg.run_until(10)
    assert seg.masters() == ["A"]
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    assert seg.masters() == ["A", "B"]  # A is frozen and still thinks it is master
    assert seg.nodes["C"].state == "BACKUP"
    assert [t for t in seg.transitions("C") if t[1].new == "MASTER"] == []


def test_address_owner_becomes_master_at_once() -> None:
    seg = pair(255, 100)
    assert seg.masters() == ["A"]
    assert seg.vip_holders() == ["A"]
    assert seg.became_master_at("A") == 0.0


def test_equal_priority_is_won_by_the_higher_primary_address() -> None:
    seg = pair(100, 100)
    seg.run_until(10)
    # Both time out together; the lower address yields on hearing the higher one.
    assert seg.masters() == ["B"]
    assert seg.vip_holders() == ["B"]
    reasons = [a.reason for _, a in seg.transitions("A") if a.new == "BACKUP"]
    assert reasons[-1] == "equal priority and higher address: priority 100 from 10.0.0.2"


def test_start_cleanup_removes_leftover_vips_unless_owner() -> None:
    backup = Router(params("A", 100, "10.0.0.1"))
    assert isinstance(backup.start(0.0)[0], RemoveVips)
    owner = Router(params("A", 255, "10.0.0.1"))
    assert not any(isinstance(a, RemoveVips) for a in owner.start(0.0))


def test_state_master_hint_claims_after_skew_time_only() -> None:
    seg = Segment()
    seg.add(params("A", 100, "10.0.0.1", start_as_master=True))
    seg.start("A")
    seg.run_until(5)
    assert seg.became_master_at("A") == pytest.approx(skew_time(3, 100, 1.0))


# ------------------------------------------------------------------ failover


def test_frozen_master_is_replaced_within_master_down_interval() -> None:
    seg = pair()
    seg.run_until(10.5)
    last_advert = max(t for t, who, _ in seg.sent if who == "A")
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    took_over = seg.became_master_at("B")
    bound = master_down_interval(3, 100, 1.0)
    assert took_over - (last_advert + PROPAGATION) == pytest.approx(bound)


def test_graceful_shutdown_hands_over_after_skew_time() -> None:
    seg = pair()
    seg.run_until(10.5)
    t_stop = seg.now
    seg.stop("A")
    assert seg.nodes["A"].state == "INIT"
    assert not seg.nodes["A"].holds_vips
    zero = [adv for t, who, adv in seg.sent if who == "A" and t == t_stop]
    assert [a.priority for a in zero] == [0]
    seg.run_until(20)
    assert seg.became_master_at("B") - (t_stop + PROPAGATION) == pytest.approx(
        skew_time(3, 100, 1.0)
    )
    assert seg.vip_holders() == ["B"]
    assert seg.transitions("B")[-1][1].reason == (
        "master 10.0.0.1 resigned (priority 0), skew time expired"
    )


def test_master_hearing_priority_zero_reasserts_at_once() -> None:
    seg = pair()
    seg.run_until(10.5)
    a = seg.nodes["A"].router
    actions = a.receive(a.advert(priority=0), ip_address("10.0.0.9"), seg.now)
    assert [type(x) for x in actions] == [SendAdvert]
    assert a.timers["adver"] == pytest.approx(seg.now + 1.0)


# ------------------------------------------------------------------ preemption


def test_failback_with_preempt() -> None:
    seg = pair()
    seg.run_until(10.5)
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    assert seg.nodes["B"].holds_vips
    t_restart = seg.now
    seg.restart("A")
    seg.run_until(40)
    assert seg.masters() == ["A"]
    assert seg.vip_holders() == ["A"]
    # A ignores the lower-priority master and takes over after its own Master_Down.
    assert seg.became_master_at("A") - t_restart == pytest.approx(master_down_interval(3, 200, 1.0))
    reasons = [a.reason for _, a in seg.transitions("B") if a.new == "BACKUP"]
    assert reasons[-1] == "higher priority 200 from 10.0.0.1"


def test_no_failback_with_nopreempt() -> None:
    seg = pair(preempt=False)
    seg.run_until(10.5)
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    seg.restart("A")
    seg.run_until(60)
    assert seg.masters() == ["B"]
    assert seg.vip_holders() == ["B"]
    assert seg.nodes["A"].state == "BACKUP"


def test_preempt_delay_is_honoured() -> None:
    seg = pair()
    seg.run_until(10.5)
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    t_restart = seg.now
    seg.restart("A", params("A", 200, "10.0.0.1", preempt_delay=8.0))
    seg.run_until(t_restart + 7.9)
    assert seg.masters() == ["B"], "preempted before preempt_delay"
    seg.run_until(t_restart + 30)
    assert seg.masters() == ["A"]
    took = seg.became_master_at("A") - t_restart
    # The delay counts from the first lower-priority advert, at most one interval after start.
    assert 8.0 <= took <= 8.0 + 1.0 + PROPAGATION
    assert "preempt delay expired" in seg.transitions("A")[-1][1].reason


def test_preempt_delay_does_not_hold_back_when_no_master_exists() -> None:
    seg = Segment()
    seg.add(params("A", 200, "10.0.0.1", preempt_delay=30.0))
    seg.start("A")
    seg.run_until(5)
    assert seg.became_master_at("A") == pytest.approx(master_down_interval(3, 200, 1.0))


def test_master_whose_priority_drops_is_preempted() -> None:
    seg = pair(150, 100)
    seg.run_until(10.5)
    a = seg.nodes["A"]
    seg._apply(a, a.router.set_priority_delta(-80, seg.now))
    assert a.router.effective_priority == 70
    seg.run_until(20)
    assert seg.masters() == ["B"]


def test_effective_priority_is_clamped_and_owner_is_not_adjusted() -> None:
    r = Router(params("A", 100, "10.0.0.1"))
    r.set_priority_delta(-500, 0)
    assert r.effective_priority == 1
    r.set_priority_delta(+500, 0)
    assert r.effective_priority == 254
    owner = Router(params("A", 255, "10.0.0.1"))
    owner.set_priority_delta(-50, 0)
    assert owner.effective_priority == 255


# ------------------------------------------------------------------ fault


def test_fault_on_master_sends_priority_zero_and_backup_takes_over_after_skew() -> None:
    seg = pair()
    seg.run_until(10.5)
    t = seg.now
    a = seg.nodes["A"]
    seg._apply(a, a.router.set_fault("link", "interface eth0 is down", seg.now))
    assert a.state == "FAULT"
    assert not a.holds_vips
    seg.run_until(20)
    assert seg.became_master_at("B") - (t + PROPAGATION) == pytest.approx(skew_time(3, 100, 1.0))
    # Clearing the fault returns to BACKUP, then preemption brings it back.
    seg._apply(a, a.router.set_fault("link", None, seg.now))
    assert a.state == "BACKUP"
    seg.run_until(40)
    assert seg.masters() == ["A"]


# ------------------------------------------------------------------ receive checks


def advert(**kw: object) -> Advertisement:
    base = Advertisement(version=3, vrid=51, priority=200, max_advert_int=100, addresses=(VIP,))
    return replace(base, **kw)


def test_backup_learns_the_masters_v3_interval() -> None:
    r = Router(params("B", 100, "10.0.0.2"))
    r.start(0.0)
    r.receive(advert(max_advert_int=20), ip_address("10.0.0.1"), 1.0)
    assert r.master_adver_interval == pytest.approx(0.2)
    assert r.timers["master_down"] == pytest.approx(1.0 + master_down_interval(3, 100, 0.2))


@pytest.mark.parametrize(
    ("router_kw", "adv_kw", "src", "reason"),
    [
        ({}, {"version": 2}, "10.0.0.1", "version_mismatch"),
        ({}, {}, "10.0.0.2", "own_address"),
        ({"unicast_peers": frozenset({ip_address("10.0.0.3")})}, {}, "10.0.0.1", "not_peer"),
        (
            {"version": 2, "auth_type": AUTH_PASS, "auth_data": b"1111"},
            {
                "version": 2,
                "max_advert_int": 1,
                "auth_type": AUTH_PASS,
                "auth_data": b"2222\0\0\0\0",
            },
            "10.0.0.1",
            "auth",
        ),
        (
            {"version": 2, "auth_type": AUTH_PASS, "auth_data": b"1111"},
            {"version": 2, "max_advert_int": 1},
            "10.0.0.1",
            "auth_type",
        ),
        (
            {"version": 2, "auth_type": AUTH_PASS, "auth_data": b"1111"},
            {"version": 2, "max_advert_int": 1, "auth_type": 3},
            "10.0.0.1",
            "auth_invalid",
        ),
        ({"version": 2}, {"version": 2, "max_advert_int": 2}, "10.0.0.1", "interval"),
    ],
)
def test_rejected_adverts_are_counted_and_change_nothing(router_kw, adv_kw, src, reason) -> None:
    r = Router(params("B", 100, "10.0.0.2", **router_kw))
    r.start(0.0)
    before = dict(r.timers)
    assert r.receive(advert(**adv_kw), ip_address(src), 1.0) == []
    assert r.stats.rx_dropped == {reason: 1}
    assert r.timers == before
    assert r.state is State.BACKUP
    assert r.master_ip is None


def test_v2_pass_auth_accepted_when_it_matches() -> None:
    kw = {"version": 2, "auth_type": AUTH_PASS, "auth_data": b"1111"}
    r = Router(params("B", 100, "10.0.0.2", **kw))
    r.start(0.0)
    adv = advert(version=2, max_advert_int=1, auth_type=AUTH_PASS, auth_data=b"1111\0\0\0\0")
    r.receive(adv, ip_address("10.0.0.1"), 1.0)
    assert r.stats.rx_dropped == {}
    assert r.master_ip == ip_address("10.0.0.1")
    assert r.timers["master_down"] == pytest.approx(1.0 + master_down_interval(2, 100, 1.0))


def test_v2_pair_elects_and_hands_over() -> None:
    seg = pair(version=2, auth_type=AUTH_PASS, auth_data=b"secret")
    seg.run_until(10.5)
    assert seg.masters() == ["A"]
    assert all(adv.version == 2 and adv.max_advert_int == 1 for _, _, adv in seg.sent)
    seg.stop("A")
    t = seg.now
    seg.run_until(20)
    assert seg.became_master_at("B") - t - PROPAGATION == pytest.approx(156 / 256)


def test_address_list_mismatch_is_counted_but_not_fatal() -> None:
    r = Router(params("B", 100, "10.0.0.2"))
    r.start(0.0)
    r.receive(advert(addresses=(ip_address("192.0.2.7"),)), ip_address("10.0.0.1"), 1.0)
    assert r.stats.rx_address_mismatch == 1
    assert r.master_ip == ip_address("10.0.0.1")
    assert r.state is State.BACKUP


V1, V2, V3 = (ip_address(f"192.0.2.{i}") for i in (1, 2, 3))
MASTER_A = ip_address("10.0.0.1")


def mismatch_router(**kw: object) -> Router:
    r = Router(params("B", 100, "10.0.0.2", addresses=(V1, V2), **kw))
    r.start(0.0)
    return r


@pytest.mark.parametrize(
    ("listed", "counted"),
    [
        ((V1, V2), 0),
        ((V2, V1), 0),  # order is not compared (keepalived: every VIP present)
        ((V1,), 1),  # fewer
        ((V1, V2, V3), 1),  # more
        ((V1, V3), 1),  # same count, another address
        ((V1, V1), 1),  # same count, V2 missing
        ((), 1),
    ],
)
def test_address_check_compares_count_then_set(listed: tuple, counted: int) -> None:
    for version in (2, 3):
        r = mismatch_router(version=version)
        r.receive(advert(version=version, max_advert_int=1 if version == 2 else 100,
                         addresses=listed), MASTER_A, 1.0)  # fmt: skip
        assert r.stats.rx_address_mismatch == counted, version
        assert r.stats.adverts_received == 1
        assert r.master_ip == MASTER_A  # accepted: the master is followed


def test_address_mismatch_every_advert_counts_without_skip() -> None:
    r = mismatch_router()
    for i in range(5):
        r.receive(advert(addresses=(V1, V3)), MASTER_A, 1.0 + i)
    assert r.stats.rx_address_mismatch == 5
    assert r.state is State.BACKUP


def test_skip_check_adv_addr_checks_only_a_new_masters_first_advert() -> None:
    """keepalived's vrrp_state_backup: the list is compared when the advert's
    source differs from the last master's, else skipped; a count mismatch is
    counted whatever the setting."""
    r = mismatch_router(skip_check_adv_addr=True)
    for i in range(5):
        r.receive(advert(addresses=(V1, V3)), MASTER_A, 1.0 + i)
    assert r.stats.rx_address_mismatch == 1  # the first, from a new master
    other = ip_address("10.0.0.9")
    r.receive(advert(priority=250, addresses=(V1, V3)), other, 6.0)
    assert r.master_ip == other
    assert r.stats.rx_address_mismatch == 2  # the master changed: checked again
    r.receive(advert(priority=250, addresses=(V1, V3)), other, 7.0)
    assert r.stats.rx_address_mismatch == 2
    r.receive(advert(priority=250, addresses=(V1,)), other, 8.0)
    assert r.stats.rx_address_mismatch == 3  # the count is always compared


def test_a_master_always_checks_even_with_skip() -> None:
    r = Router(params("A", 200, "10.0.0.1", addresses=(V1, V2), skip_check_adv_addr=True,
                      start_as_master=True))  # fmt: skip
    r.start(0.0)
    r.on_timer(5.0)
    assert r.state is State.MASTER
    low = ip_address("10.0.0.3")
    for i in range(3):
        r.receive(advert(priority=50, addresses=(V1, V3)), low, 6.0 + i)
    assert r.state is State.MASTER
    assert r.stats.rx_address_mismatch == 3


def test_a_master_logs_a_mismatch_once(caplog: pytest.LogCaptureFixture) -> None:
    r = Router(params("A", 200, "10.0.0.1", addresses=(V1, V2), start_as_master=True))
    r.start(0.0)
    r.on_timer(5.0)
    with caplog.at_level(logging.WARNING, logger="vrrp_agent.core.router"):
        for i in range(5):
            r.receive(advert(priority=50, addresses=(V1, V3)), ip_address("10.0.0.3"), 6.0 + i)
    assert r.stats.rx_address_mismatch == 5
    assert len(caplog.records) == 1


def test_address_mismatch_is_logged_once_per_condition(caplog: pytest.LogCaptureFixture) -> None:
    r = mismatch_router()
    with caplog.at_level(logging.WARNING, logger="vrrp_agent.core.router"):
        for i in range(10):
            r.receive(advert(addresses=(V1, V3)), MASTER_A, 1.0 + i)
        for i in range(10):
            r.receive(advert(addresses=(V1,)), MASTER_A, 11.0 + i)
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 2, lines
    assert "192.0.2.3" in lines[0] and "192.0.2.2" in lines[0]
    assert "1 address" in lines[1] and "2" in lines[1]
    assert r.stats.rx_address_mismatch == 20
    caplog.clear()
    # A new master is a new condition: logged again, once.
    with caplog.at_level(logging.WARNING, logger="vrrp_agent.core.router"):
        for i in range(3):
            r.receive(advert(priority=250, addresses=(V1, V3)), ip_address("10.0.0.9"), 30.0 + i)
    assert len(caplog.records) == 1


# ------------------------------------------------------------------ announcements


def test_garp_burst_then_repeat_after_delay_then_refresh() -> None:
    seg = Segment()
    seg.add(
        params(
            "A",
            255,
            "10.0.0.1",
            garp_master_delay=5.0,
            garp_master_repeat=3,
            garp_master_refresh=60.0,
            garp_master_refresh_repeat=2,
        )
    )
    seg.start("A")
    seg.run_until(130)
    assert seg.announces("A") == [(0.0, 3), (5.0, 3), (60.0, 2), (120.0, 2)]


def test_no_second_burst_when_delay_is_zero() -> None:
    seg = Segment()
    seg.add(params("A", 255, "10.0.0.1", garp_master_delay=0.0, garp_master_repeat=1))
    seg.start("A")
    seg.run_until(30)
    assert seg.announces("A") == [(0.0, 1)]


def test_adverts_are_sent_every_interval_by_the_master_only() -> None:
    seg = pair(advert_int=0.5)
    seg.run_until(20)
    times = [t for t, who, adv in seg.sent if who == "A"]
    # Indexes, not zip(strict=...): the tests run on Python 3.9 too.
    gaps = {round(times[i + 1] - times[i], 9) for i in range(len(times) - 1)}
    assert gaps == {0.5}
    assert not [1 for _, who, _ in seg.sent if who == "B"]
    assert all(adv.max_advert_int == 50 for _, _, adv in seg.sent)


def test_master_thawed_over_a_lower_priority_master_reannounces_once() -> None:
    """A frozen master comes back to find the backup in MASTER holding the VIP
    (hosts' ARP caches point there). It stays master by priority and must
    re-announce, or traffic keeps going to the node that just yielded."""
    seg = pair()
    seg.run_until(10)
    seg.nodes["A"].frozen = True
    seg.run_until(20)
    assert seg.masters() == ["A", "B"]  # A does not know yet
    seg.nodes["A"].frozen = False
    thawed = seg.now
    seg.run_until(thawed + 1.5)
    assert seg.masters() == ["A"]
    bursts = [t for t, _ in seg.announces("A") if t >= thawed]
    # One burst with its overdue advert, and B yields to that advert.
    assert len(bursts) == 1, bursts
    assert bursts[0] - thawed <= 1.0 + PROPAGATION


def test_repeated_lower_priority_adverts_do_not_flood_announcements() -> None:
    r = Router(params("A", 200, "10.0.0.1"))
    r.start(0.0)
    r.on_timer(master_down_interval(3, 200, 1.0))
    assert r.state is State.MASTER
    low = Advertisement(version=3, vrid=51, priority=100, max_advert_int=100, addresses=(VIP,))
    src = ip_address("10.0.0.2")
    announced = [
        t
        for t in range(5, 15)
        for a in r.receive(low, src, float(t))
        if type(a).__name__ == "Announce"
    ]
    # Once per Master_Down (3.6 s at priority 200): at 5, 9 and 13.
    assert announced == [5, 9, 13]
