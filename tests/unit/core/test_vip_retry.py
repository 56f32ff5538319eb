"""The retry schedule of a master's VIP adds, on a fake clock: the I/O layer
only says whether an add (or, in FAULT, a probe) worked; the router decides
when to try again and when to give up."""

from __future__ import annotations

import pytest

from tests.unit.core.sim import params
from vrrp_agent.core import AddVips, Announce, ProbeVips, Router, SendAdvert, State
from vrrp_agent.core.faults import VIPS_FAULT
from vrrp_agent.core.timers import VIP_RETRY, master_down_interval
from vrrp_agent.core.vip_retry import VipRetry

ENODEV = "10.0.0.100/24: ENODEV no such device eth1"


def master(advert_int: float = 1.0) -> tuple[Router, float]:
    r = Router(params("A", 255, "10.0.0.1", advert_int=advert_int))
    actions = r.start(0.0)
    assert r.state is State.MASTER and AddVips() in actions
    return r, 0.0


def fail_until_fault(r: Router, now: float) -> list[float]:
    """Fail every add the router asks for; the times it asked, until FAULT."""
    asked = [now]
    r.vips_result(ENODEV, now)
    while r.state is State.MASTER:
        now = r.timers[VIP_RETRY]
        # The Adver_Timer may fire at the same moment; adverts go on meanwhile.
        due = [a for a in r.on_timer(now) if not isinstance(a, SendAdvert)]
        assert due == [AddVips()]
        asked.append(now)
        r.vips_result(ENODEV, now)
    return asked


def test_schedule_doubles_from_100ms_to_one_interval_and_ends_at_master_down() -> None:
    s = VipRetry()
    bound, cap = 3.5, 1.0
    times, now = [], 10.0
    while (at := s.failed(now, bound, cap)) is not None:
        times.append(round(at - 10.0, 6))
        now = at
    assert times == [0.1, 0.3, 0.7, 1.5, 2.5, 3.5]


def test_a_master_that_cannot_add_its_vips_faults_after_master_down() -> None:
    r = Router(params("A", 200, "10.0.0.1"))
    r.start(0.0)
    actions = r.on_timer(r.timers["master_down"])
    assert r.state is State.MASTER and AddVips() in actions
    t0 = r.timers["adver"] - r.params.advert_int
    asked = fail_until_fault(r, t0)
    bound = master_down_interval(3, 200, 1.0)
    assert asked[-1] - t0 == pytest.approx(bound)
    assert r.state is State.FAULT
    assert "ENODEV" in r.faults[VIPS_FAULT]
    # Leaving for FAULT tells the backups (priority 0), so they take over at Skew_Time.
    assert r.stats.priority_zero_sent == 1


def test_a_retry_that_works_announces_and_keeps_master() -> None:
    r, now = master()
    r.vips_result(ENODEV, now)
    at = r.timers[VIP_RETRY]
    assert at == pytest.approx(0.1)
    assert r.on_timer(at) == [AddVips()]
    assert r.vips_result("", at) == [Announce(r.params.garp_master_repeat)]
    assert r.state is State.MASTER and VIP_RETRY not in r.timers
    # A later failure gets the whole budget again.
    assert r.vips_result(ENODEV, 50.0) == []
    assert r.timers[VIP_RETRY] == pytest.approx(50.1)


def test_in_fault_probes_back_off_and_a_good_probe_clears_to_backup() -> None:
    r, now = master()
    asked = fail_until_fault(r, now)
    now = asked[-1]
    probes = []
    for _ in range(4):
        now = r.timers[VIP_RETRY]
        # No Adver_Timer in FAULT: the probe is all that is due.
        assert r.on_timer(now) == [ProbeVips()]
        probes.append(now)
        assert r.vips_result(ENODEV, now) == []
        assert r.state is State.FAULT
    gaps = [round(b - a, 6) for a, b in zip(probes, probes[1:])]
    assert gaps == [1.0, 1.0, 1.0]  # capped at one interval
    now = r.timers[VIP_RETRY]
    r.on_timer(now)
    actions = r.vips_result("", now)
    # As after every fault: start over as a backup.
    assert r.state is State.BACKUP, actions
    assert VIPS_FAULT not in r.faults
    assert VIP_RETRY not in r.timers


def test_other_faults_keep_the_router_in_fault_after_the_vips_are_back() -> None:
    r, now = master()
    now = fail_until_fault(r, now)[-1]
    r.set_fault("link:eth0", "interface eth0 is down", now)
    now = r.timers[VIP_RETRY]
    r.on_timer(now)
    r.vips_result("", now)
    assert r.state is State.FAULT and list(r.faults) == ["link:eth0"]


def test_a_backup_ignores_add_outcomes_and_device_changes() -> None:
    r = Router(params("B", 100, "10.0.0.2"))
    r.start(0.0)
    assert r.vips_result(ENODEV, 1.0) == []
    assert r.vips_lost(1.0) == []
    assert VIP_RETRY not in r.timers and r.state is State.BACKUP


def test_a_master_re_adds_when_a_vip_device_changes() -> None:
    r, now = master()
    r.vips_result("", now)
    assert r.vips_lost(5.0) == [AddVips()]
    assert not any(isinstance(a, SendAdvert) for a in r.vips_lost(5.0))
