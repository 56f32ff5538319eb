"""What a VRRP router does in each of its states: one class per state, one
method per event (as Ryu's VRRP router is built).

`Router` keeps the data and the timers, checks what it receives, and hands
every event to the object of its current state. A state object acts only
through the router's public surface (timers, adverts, VIPs, the master it
follows, a claim, `transition`), so the rules of RFC 9568 section 6.4 read
state by state here, and the router's bookkeeping stays in one place.

Entering and leaving a state are events too: `Router.transition` calls the
old state's `leave`, records the change, then the new state's `enter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vrrp_agent.core.actions import Action, Announce
from vrrp_agent.core.state import State
from vrrp_agent.core.timers import GARP_DELAY, GARP_REFRESH, MASTER_DOWN, PREEMPT

if TYPE_CHECKING:
    from vrrp_agent.core.router import Router
    from vrrp_agent.wire import Advertisement
    from vrrp_agent.wire.addresses import IPAddr

# Why a gated backup wants to become master (see `router.Want`).
PREEMPTING = "preempt"  # a live master with a lower priority is heard
MASTER_GONE = "master_down"  # nobody has been heard for Master_Down_Interval
RESIGNED = "resigned"  # the master left with priority 0

SHUTTING_DOWN = "shutting down"
# The reason a master gives when the node is drained (`vrrp-agent drain`).
DRAINED = "drained"


@runtime_checkable
class RouterState(Protocol):
    """The events every state of a router handles. Each returns the actions
    the I/O layer must carry out, in order; `now` is the current time."""

    def enter(self, now: float) -> list[Action]:
        """The router has just entered this state (its `StateChanged` is out)."""
        ...

    def leave(self, reason: str) -> list[Action]:
        """The router is about to leave this state for `reason`."""
        ...

    def start(self, now: float) -> list[Action]:
        """The router starts (RFC 9568 6.4.1, Initialize)."""
        ...

    def advert(self, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        """An advertisement that passed the receive checks arrived from `src`."""
        ...

    def master_down(self, now: float) -> list[Action]:
        """The Master_Down_Timer fired."""
        ...

    def adver(self, now: float) -> list[Action]:
        """The Adver_Timer fired."""
        ...

    def preempt(self, now: float) -> list[Action]:
        """The preempt delay ran out."""
        ...

    def garp(self, now: float) -> list[Action]:
        """The second gratuitous ARP burst after becoming master is due."""
        ...

    def garp_refresh(self, now: float) -> list[Action]:
        """A periodic gratuitous ARP refresh is due."""
        ...

    def priority_changed(self, before: int, now: float) -> list[Action]:
        """Tracking moved the effective priority (it was `before`)."""
        ...

    def fault(self, reason: str, now: float) -> list[Action]:
        """A fault condition is present; `reason` sums up all of them."""
        ...

    def fault_cleared(self, reason: str, now: float) -> list[Action]:
        """The last fault condition cleared."""
        ...

    def take_over(self, now: float) -> list[Action]:
        """The agent grants a gated backup's claim."""
        ...

    def step_down(self, reason: str, now: float) -> list[Action]:
        """Something outside this VRID asks a master to leave MASTER."""
        ...

    def shutdown(self, now: float) -> list[Action]:
        """The router stops (the agent exits, or the instance was removed)."""
        ...

    def drain(self, now: float) -> list[Action]:
        """The node was drained: a master gives up mastership (the router's
        `drained` flag is set already and keeps every state from claiming)."""
        ...


def _describe(adv: Advertisement, src: IPAddr) -> str:
    return f"priority {adv.priority} from {src}"


class Quiet:
    """The default for every event: ignore it (RFC 9568 lists, per state, only
    the events a state acts on). Only `shutdown` acts in every state: the
    router leaves for INIT. Holds the router whose state it is."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def enter(self, now: float) -> list[Action]:
        return []

    def leave(self, reason: str) -> list[Action]:
        return []

    def start(self, now: float) -> list[Action]:
        # Only INIT starts; a running router is already past Initialize.
        return []

    def advert(self, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        return []

    def master_down(self, now: float) -> list[Action]:
        return []

    def adver(self, now: float) -> list[Action]:
        return []

    def preempt(self, now: float) -> list[Action]:
        return []

    def garp(self, now: float) -> list[Action]:
        return []

    def garp_refresh(self, now: float) -> list[Action]:
        return []

    def priority_changed(self, before: int, now: float) -> list[Action]:
        return []

    def fault(self, reason: str, now: float) -> list[Action]:
        return []

    def fault_cleared(self, reason: str, now: float) -> list[Action]:
        return []

    def take_over(self, now: float) -> list[Action]:
        return []

    def step_down(self, reason: str, now: float) -> list[Action]:
        return []

    def shutdown(self, now: float) -> list[Action]:
        return self.router.transition(State.INIT, now, SHUTTING_DOWN)

    def drain(self, now: float) -> list[Action]:
        return []


class Init(Quiet):
    """Not started yet, or stopped. Faults raised here are only recorded:
    `start` looks at them."""

    def enter(self, now: float) -> list[Action]:
        self.router.clear_timers()
        return []

    def start(self, now: float) -> list[Action]:
        r = self.router
        if r.faults:
            # Fault reasons set before start (e.g. a link already down).
            return r.transition(State.FAULT, now, r.fault_summary)
        if r.is_owner and not r.drained:
            return r.transition(State.MASTER, now, "address owner (priority 255)")
        # Whatever an earlier, crashed run left configured is not ours to hold yet.
        actions = r.remove_vips("start-up cleanup")
        actions += r.transition(State.BACKUP, now, "initial state")
        if r.params.start_as_master:
            # keepalived's `state MASTER`: claim after Skew_Time unless a master speaks first.
            r.set_timer(MASTER_DOWN, now + r.skew)
        return actions


class Fault(Quiet):
    """Adverts and timers are ignored until the last fault clears; then the
    router starts over as a backup."""

    def enter(self, now: float) -> list[Action]:
        self.router.clear_timers()
        self.router.forget_master()
        return []

    def fault_cleared(self, reason: str, now: float) -> list[Action]:
        return self.router.transition(State.BACKUP, now, reason)


class Backup(Quiet):
    """Follows the master it hears and claims mastership when the master goes
    quiet, resigns, or (with preemption) has a lower priority than ours.

    Remembers who resigned (the master-down timer then runs only Skew_Time)
    and when a weaker master was last heard, for the reason given on claiming.
    """

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        # Why the master-down timer runs short, for the log when it fires.
        self.resigned_by: str | None = None
        # When a lower-priority master was last heard (and ignored to preempt it).
        self.lower_seen_at: float | None = None

    def enter(self, now: float) -> list[Action]:
        r = self.router
        r.clear_timers()
        self.resigned_by = None
        r.set_timer(MASTER_DOWN, now + r.master_down)
        return []

    def advert(self, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        r = self.router
        if adv.priority == 0:
            # The master is leaving: take over after Skew_Time only.
            r.set_timer(MASTER_DOWN, now + r.skew)
            r.cancel_timer(PREEMPT)
            self.resigned_by = str(src)
            r.withdraw_claim()
            return []
        r.last_seen_priority = adv.priority
        # Drained, a backup follows whoever is master, as without preemption:
        # it will not claim, and status shows the master it hears.
        if not r.params.preempt or r.drained or adv.priority >= r.effective_priority:
            self._follow(adv, src, now)
            self.resigned_by = None
            r.withdraw_claim()
            r.cancel_timer(PREEMPT)
            return []
        # A lower-priority master and we preempt.
        self.lower_seen_at = now
        if r.want is not None and r.want.kind != PREEMPTING:
            # A claim made in silence now competes with a live, weaker master.
            r.restate_claim(PREEMPTING, f"preempting {_describe(adv, src)}")
        if r.params.preempt_delay > 0:
            deadline = r.set_timer_once(PREEMPT, now + r.params.preempt_delay)
            if now < deadline:
                # Keep following the current master until the delay is over.
                self._follow(adv, src, now)
        # Otherwise discard: Master_Down_Timer runs out and we take over.
        return []

    def _follow(self, adv: Advertisement, src: IPAddr, now: float) -> None:
        self.router.learn_master(adv, src)
        self.router.set_timer(MASTER_DOWN, now + self.router.master_down)

    def master_down(self, now: float) -> list[Action]:
        r = self.router
        if self.resigned_by is not None:
            why = f"master {self.resigned_by} resigned (priority 0), skew time expired"
            self.resigned_by = None
            return r.claim(now, RESIGNED, why)
        if self.lower_seen_at is not None and now - self.lower_seen_at <= r.master_down:
            return r.claim(
                now,
                PREEMPTING,
                f"master down timer expired while preempting a master with priority "
                f"{r.last_seen_priority} (ours {r.effective_priority})",
            )
        return r.claim(now, MASTER_GONE, "master down timer expired")

    def preempt(self, now: float) -> list[Action]:
        r = self.router
        return r.claim(
            now,
            PREEMPTING,
            f"preempt delay expired, master {r.master_ip} has lower priority "
            f"{r.master_priority} than ours {r.effective_priority}",
        )

    def take_over(self, now: float) -> list[Action]:
        want = self.router.want
        if want is None or self.router.drained:
            return []
        return self.router.transition(State.MASTER, now, want.why)

    def fault(self, reason: str, now: float) -> list[Action]:
        return self.router.transition(State.FAULT, now, reason)


class Master(Quiet):
    """Holds the VIPs and advertises every interval; yields to a higher
    priority (or an equal one from a higher address).

    Remembers when it last re-announced over a weaker master, to do that at
    most once per Master_Down.
    """

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        # When we last re-announced as master over a lower-priority one.
        self.lower_announced_at: float | None = None

    def enter(self, now: float) -> list[Action]:
        r = self.router
        p = r.params
        r.clear_timers()
        r.stats.became_master += 1
        r.assume_master()
        # Advertise before taking the addresses so a competing master yields quickly.
        actions = r.send_advert(now)
        actions += r.add_vips(p.garp_master_repeat)
        if p.garp_master_delay > 0:
            r.set_timer(GARP_DELAY, now + p.garp_master_delay)
        if p.garp_master_refresh > 0:
            r.set_timer(GARP_REFRESH, now + p.garp_master_refresh)
        return actions

    def leave(self, reason: str) -> list[Action]:
        return self.router.remove_vips(reason)

    def advert(self, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        r = self.router
        if adv.priority == 0:
            # Another router gave up the VRID: assert ourselves at once.
            return r.send_advert(now)
        ours = r.effective_priority
        higher = adv.priority > ours
        tie_won = adv.priority == ours and int(src) > int(r.params.local_ip)
        if higher or tie_won:
            r.learn_master(adv, src)
            why = "higher" if higher else "equal priority and higher address:"
            return r.transition(State.BACKUP, now, f"{why} {_describe(adv, src)}")
        # Another master with a lower priority: we stay (RFC 9568 6.4.3), but it
        # has been announcing our VIPs (we were frozen or cut off, say), so
        # hosts' ARP/ND caches point at it. Assert ourselves at once and
        # re-announce (keepalived's garp_lower_prio), at most once per
        # Master_Down: the other side yields on our first advert.
        last = self.lower_announced_at
        if last is not None and now - last < r.master_down:
            return []
        self.lower_announced_at = now
        return [*r.send_advert(now), Announce(r.params.garp_master_repeat)]

    def adver(self, now: float) -> list[Action]:
        r = self.router
        actions = r.send_advert(now)
        if r.timer_lateness > 3 * r.params.advert_int:
            # We were not running (SIGSTOP, a stalled VM) for longer than
            # any backup waits: one has taken the VIPs and hosts' caches
            # point at it. It yields to this advert; re-announce ours.
            self.lower_announced_at = now
            actions.append(Announce(r.params.garp_master_repeat))
        return actions

    def garp(self, now: float) -> list[Action]:
        return [Announce(self.router.params.garp_master_repeat)]

    def garp_refresh(self, now: float) -> list[Action]:
        p = self.router.params
        self.router.set_timer(GARP_REFRESH, now + p.garp_master_refresh)
        return [Announce(p.garp_master_refresh_repeat)]

    def priority_changed(self, before: int, now: float) -> list[Action]:
        # Advertise the change at once, so a backup that should now preempt
        # does not wait for the next interval.
        if self.router.effective_priority != before:
            return self.router.send_advert(now)
        return []

    def fault(self, reason: str, now: float) -> list[Action]:
        # As keepalived does: let the backups take over after Skew_Time, not Master_Down.
        actions = self.router.send_priority_zero()
        return actions + self.router.transition(State.FAULT, now, reason)

    def step_down(self, reason: str, now: float) -> list[Action]:
        # Priority 0 first, so the peer takes over after Skew_Time instead of Master_Down.
        r = self.router
        actions = r.send_priority_zero()
        r.last_seen_priority = None
        return actions + r.transition(State.BACKUP, now, reason)

    def shutdown(self, now: float) -> list[Action]:
        # Tell the backups with priority 0 (RFC 9568 6.4.3), then leave as every state does.
        return self.router.send_priority_zero() + super().shutdown(now)

    def drain(self, now: float) -> list[Action]:
        # As on shutdown: priority 0, so the peer takes over after Skew_Time;
        # leaving MASTER removes the VIPs (and their routes).
        r = self.router
        actions = r.send_priority_zero()
        r.last_seen_priority = None
        return actions + r.transition(State.BACKUP, now, DRAINED)


# The object that handles each state's events; `Router` makes one of each.
STATE_CLASSES: dict[State, Callable[[Router], RouterState]] = {
    State.INIT: Init,
    State.BACKUP: Backup,
    State.MASTER: Master,
    State.FAULT: Fault,
}
