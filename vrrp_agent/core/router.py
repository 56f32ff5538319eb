"""One VRRP virtual router (a keepalived `vrrp_instance`), sans I/O.

Every public method takes the current time and returns the actions the I/O
layer must carry out, in order. Timers are plain deadlines in `self.timers`;
the caller asks `next_deadline()` and calls `on_timer(now)` when it passes.
What each event does in each state is in `router_states`, one class per state.

The behaviour follows RFC 9568 section 6.4 (and RFC 3768 for VRRPv2), with
keepalived's extensions where keepalived users expect them: `preempt_delay`,
the `state MASTER` start hint, priority 0 when leaving MASTER for FAULT, and
the GARP repeat/refresh knobs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from vrrp_agent.core.actions import (
    Action,
    AddVips,
    Announce,
    ProbeVips,
    RemoveVips,
    SendAdvert,
    StateChanged,
)
from vrrp_agent.core.faults import VIPS_FAULT
from vrrp_agent.core.router_states import (
    DRAINED,
    MASTER_GONE,
    PREEMPTING,
    RESIGNED,
    STATE_CLASSES,
    RouterState,
)
from vrrp_agent.core.state import State
from vrrp_agent.core.timers import (
    ADVER,
    GARP_DELAY,
    GARP_REFRESH,
    MASTER_DOWN,
    PREEMPT,
    VIP_RETRY,
    interval_from_wire,
    interval_on_wire,
    master_down_interval,
    skew_time,
)
from vrrp_agent.core.vip_retry import VipRetry
from vrrp_agent.wire import AUTH_NONE, Advertisement
from vrrp_agent.wire.addresses import IPAddr

# Names other modules import from here, although they are defined next door.
__all__ = [
    "ADVER",
    "DRAINED",
    "GARP_DELAY",
    "GARP_REFRESH",
    "MASTER_DOWN",
    "MASTER_GONE",
    "OWNER_PRIORITY",
    "PREEMPT",
    "PREEMPTING",
    "RESIGNED",
    "Router",
    "RouterParams",
    "State",
    "Stats",
    "Want",
]

log = logging.getLogger(__name__)

OWNER_PRIORITY = 255


@dataclass(frozen=True)
class Want:
    """A gated backup's claim to mastership, waiting for the agent to grant it.

    Sync groups, exclusive pairs and the arbiter decide across instances
    whether a backup may take over; the router only says that, by its own
    protocol rules, it would. `kind` is one of `router_states`' PREEMPTING,
    MASTER_GONE and RESIGNED.
    """

    kind: str
    why: str
    since: float


@dataclass(frozen=True)
class RouterParams:
    """One instance's protocol settings, fixed for the router's lifetime."""

    name: str
    vrid: int
    version: int
    priority: int
    advert_int: float
    addresses: tuple[IPAddr, ...]
    local_ip: IPAddr
    preempt: bool = True
    preempt_delay: float = 0.0
    start_as_master: bool = False
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    unicast_peers: frozenset[IPAddr] = frozenset()
    # Unicast with no peers at all (`unicast_peer: []`): nobody to send to, and
    # every advert heard comes from a stranger.
    unicast_no_peer: bool = False
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    # keepalived's skip_check_adv_addr: a backup does not compare the address
    # list of an advert from the master it last heard (see `_check_addresses`).
    skip_check_adv_addr: bool = False


@dataclass
class Stats:
    """Counters shown in `status`."""

    adverts_sent: int = 0
    adverts_received: int = 0
    became_master: int = 0
    # Left MASTER for any other state (keepalived's release_master).
    released_master: int = 0
    priority_zero_received: int = 0
    priority_zero_sent: int = 0
    # Adverts accepted although their address list differs from ours.
    rx_address_mismatch: int = 0
    tx_errors: int = 0
    last_rx_ttl: int | None = None
    rx_dropped: Counter[str] = field(default_factory=Counter)


class Router:
    """One virtual router's data, timers and receive checks.

    Its events (the methods under "events") return the actions to carry out;
    what an event does depends on the state, so each is handed to the object
    of the current state (`handler`, see `router_states`). Those objects act
    through the methods under "for the states" and keep their own memory.
    """

    def __init__(self, params: RouterParams) -> None:
        self.params = params
        self.state = State.INIT
        self.priority_delta = 0
        self.faults: dict[str, str] = {}
        self.timers: dict[str, float] = {}
        self.master_ip: IPAddr | None = None
        self.master_priority: int | None = None
        self.master_adver_interval = params.advert_int
        self.last_reason = ""
        # Gated: becoming master needs the agent's consent (`take_over`).
        self.gated = False
        # The node is drained (`drain`): never become master, whatever happens.
        self.drained = False
        self.want: Want | None = None
        # The priority in the last non-zero advert heard as a backup.
        self.last_seen_priority: int | None = None
        # How late the timer being handled fired (a frozen or starved process).
        self.timer_lateness = 0.0
        self.stats = Stats()
        # Failed VIP adds since the last success: the retry schedule.
        self.vip_retry = VipRetry()
        # Address-list mismatches logged ("count", "addresses") since the last
        # transition or change of sender: one warning per condition.
        self._mismatch_logged: set[str] = set()
        self._mismatch_src: IPAddr | None = None
        # One object per state, kept for the router's lifetime: a state's
        # memory (who resigned, when a weaker master was heard) survives
        # leaving it, as it did when that memory lived on the router.
        self._states: dict[State, RouterState] = {
            state: make(self) for state, make in STATE_CLASSES.items()
        }

    # ----------------------------------------------------------------- derived

    @property
    def handler(self) -> RouterState:
        """The object that handles events in the current state."""
        return self._states[self.state]

    @property
    def is_owner(self) -> bool:
        """The address owner (priority 255) is master at once and never adjusted."""
        return self.params.priority == OWNER_PRIORITY

    @property
    def effective_priority(self) -> int:
        """Base priority plus tracking weights, kept inside 1..254 like keepalived.

        An address owner (255) is not adjusted: it owns the addresses.
        """
        if self.is_owner:
            return OWNER_PRIORITY
        return max(1, min(254, self.params.priority + self.priority_delta))

    @property
    def skew(self) -> float:
        return skew_time(self.params.version, self.effective_priority, self.master_adver_interval)

    @property
    def master_down(self) -> float:
        return master_down_interval(
            self.params.version, self.effective_priority, self.master_adver_interval
        )

    @property
    def fault_summary(self) -> str:
        """Every present fault's reason, as the FAULT transition reports them."""
        return "; ".join(self.faults.values())

    def next_deadline(self) -> float | None:
        return min(self.timers.values(), default=None)

    def advert(self, priority: int | None = None) -> Advertisement:
        p = self.params
        return Advertisement(
            version=p.version,
            vrid=p.vrid,
            priority=self.effective_priority if priority is None else priority,
            max_advert_int=interval_on_wire(p.version, p.advert_int),
            addresses=p.addresses,
            auth_type=p.auth_type,
            auth_data=p.auth_data,
        )

    # ------------------------------------------------------------------ events

    def start(self, now: float) -> list[Action]:
        """Initialize (RFC 9568 6.4.1)."""
        return self.handler.start(now)

    def receive(
        self, adv: Advertisement, src: IPAddr, now: float, ttl: int | None = None
    ) -> list[Action]:
        reason = self._reject_reason(adv, src)
        if reason:
            self.stats.rx_dropped[reason] += 1
            return []
        self.stats.adverts_received += 1
        if ttl is not None:
            self.stats.last_rx_ttl = ttl
        if adv.priority == 0:
            self.stats.priority_zero_received += 1
        self._check_addresses(adv, src)
        return self.handler.advert(adv, src, now)

    def drop(self, reason: str) -> None:
        """Count a packet the I/O layer rejected for this router (e.g. TTL)."""
        self.stats.rx_dropped[reason] += 1

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while True:
            due = [(t, name) for name, t in self.timers.items() if t <= now]
            if not due:
                return actions
            deadline, name = min(due)
            del self.timers[name]
            self.timer_lateness = now - deadline
            actions += self._fire(name, now)

    def set_priority_delta(self, delta: int, now: float) -> list[Action]:
        """Tracking changed the priority (a master advertises the change at once)."""
        before = self.effective_priority
        self.priority_delta = delta
        return self.handler.priority_changed(before, now)

    def set_fault(self, key: str, reason: str | None, now: float) -> list[Action]:
        """Raise (`reason` set) or clear (`reason` None) one fault condition."""
        if reason is None:
            self.faults.pop(key, None)
        else:
            self.faults[key] = reason
        if self.faults:
            return self.handler.fault(self.fault_summary, now)
        return self.handler.fault_cleared(f"fault cleared ({key})", now)

    def vips_result(self, error: str, now: float) -> list[Action]:
        """The I/O layer carried out an AddVips or ProbeVips: `error` is empty
        on success, else what failed. A master retries (see `vip_retry`) and
        goes to FAULT past the bound; in FAULT a successful probe clears it."""
        retrying = self.vip_retry.failing_since is not None
        if not error:
            self.vip_retry.reset()
            self.cancel_timer(VIP_RETRY)
            if VIPS_FAULT in self.faults:
                return self.set_fault(VIPS_FAULT, None, now)
            if retrying and self.state is State.MASTER:
                # The first announcements went out for addresses we did not have.
                return [Announce(self.params.garp_master_repeat)]
            return []
        cap = self.params.advert_int
        if self.state is State.MASTER:
            at = self.vip_retry.failed(now, self.master_down, cap)
            if at is not None:
                self.set_timer(VIP_RETRY, at)
                return []
            tries = self.vip_retry.attempts
            why = f"virtual addresses not added after {tries} attempts: {error}"
            actions = self.set_fault(VIPS_FAULT, why, now)
            # After the transition: entering FAULT clears the timers.
            self.set_timer(VIP_RETRY, self.vip_retry.next_probe(now, cap))
            return actions
        if VIPS_FAULT in self.faults:
            self.set_timer(VIP_RETRY, self.vip_retry.next_probe(now, cap))
        return []

    def vips_lost(self, now: float) -> list[Action]:
        """A device our VIPs live on changed (gone, or back under a new index):
        a master adds them again, and the outcome follows `vips_result`."""
        if self.state is State.MASTER:
            return [AddVips()]
        return []

    def take_over(self, now: float) -> list[Action]:
        """The agent grants a gated backup's `want`."""
        return self.handler.take_over(now)

    def step_down(self, now: float, reason: str) -> list[Action]:
        """Leave MASTER for a reason outside this VRID (a sync group mate lost
        its election, an exclusive partner won here)."""
        return self.handler.step_down(reason, now)

    def shutdown(self, now: float) -> list[Action]:
        """Leave gracefully: a master tells the backups with priority 0 (RFC 9568 6.4.3)."""
        return self.handler.shutdown(now)

    def drain(self, now: float) -> list[Action]:
        """Give up mastership and never claim it until `undrain`: a master
        sends priority 0, removes its VIPs and becomes BACKUP ("drained");
        any other state only stops claiming (a pending claim is withdrawn)."""
        if self.drained:
            return []
        self.drained = True
        self.withdraw_claim()
        self.cancel_timer(PREEMPT)
        return self.handler.drain(now)

    def undrain(self, now: float) -> list[Action]:
        """Compete again: a backup arms its Master_Down timer (unless a master
        it follows keeps it running), and the usual rules apply from there."""
        if not self.drained:
            return []
        self.drained = False
        if self.state is State.BACKUP:
            self.set_timer_once(MASTER_DOWN, now + self.master_down)
        return []

    # ---------------------------------------------------------- for the states

    def transition(self, new: State, now: float, reason: str) -> list[Action]:
        """Leave the current state for `new`: the old state's exit actions,
        the `StateChanged`, then the new state's entry actions."""
        old = self.state
        self._mismatch_logged.clear()
        actions = self.handler.leave(reason)
        self.state = new
        self.last_reason = reason
        self.want = None
        if new is State.MASTER:
            # A new term as master: a fresh retry budget for its VIP adds.
            self.vip_retry.reset()
        if old is not new:
            if old is State.MASTER:
                self.stats.released_master += 1
            actions.append(StateChanged(old, new, reason))
        return actions + self.handler.enter(now)

    def set_timer(self, name: str, at: float) -> None:
        self.timers[name] = at

    def set_timer_once(self, name: str, at: float) -> float:
        """Start timer `name` unless it runs already; returns its deadline."""
        return self.timers.setdefault(name, at)

    def cancel_timer(self, name: str) -> None:
        self.timers.pop(name, None)

    def clear_timers(self) -> None:
        self.timers.clear()

    def send_advert(self, now: float) -> list[Action]:
        """Advertise our priority and restart the Adver_Timer."""
        self.timers[ADVER] = now + self.params.advert_int
        if self.params.unicast_no_peer:
            return []  # nobody to tell: nothing sent, nothing counted
        self.stats.adverts_sent += 1
        return [SendAdvert(self.advert())]

    def send_priority_zero(self) -> list[Action]:
        """Tell the backups we leave: they take over after Skew_Time."""
        if self.params.unicast_no_peer:
            return []
        self.stats.adverts_sent += 1
        self.stats.priority_zero_sent += 1
        return [SendAdvert(self.advert(priority=0))]

    def add_vips(self, announce: int) -> list[Action]:
        """Take the virtual addresses and announce them `announce` times."""
        return [AddVips(), Announce(announce)]

    def remove_vips(self, reason: str) -> list[Action]:
        return [RemoveVips(reason)]

    def learn_master(self, adv: Advertisement, src: IPAddr) -> None:
        """Follow the master that sent `adv` (v3: at its advertisement interval)."""
        self.master_ip = src
        self.master_priority = adv.priority
        if self.params.version == 3:
            self.master_adver_interval = interval_from_wire(3, adv.max_advert_int)

    def assume_master(self) -> None:
        """We are the master now: at our own priority and interval."""
        self.master_ip = self.params.local_ip
        self.master_priority = self.effective_priority
        self.master_adver_interval = self.params.advert_int

    def forget_master(self) -> None:
        self.master_ip = None

    def claim(self, now: float, kind: str, why: str) -> list[Action]:
        """Our protocol rules say: become master. Ungated, do it; gated, ask.
        Drained, neither: the router stays where it is."""
        if self.drained:
            log.debug("(%s) drained: not claiming mastership (%s)", self.params.name, why)
            return []
        if not self.gated:
            return self.transition(State.MASTER, now, why)
        self.want = Want(kind, why, now)
        return []

    def restate_claim(self, kind: str, why: str) -> None:
        """The pending claim stands, for another reason (since the same time)."""
        if self.want is not None:
            self.want = Want(kind, why, self.want.since)

    def withdraw_claim(self) -> None:
        self.want = None

    # --------------------------------------------------------------- internals

    def _fire(self, name: str, now: float) -> list[Action]:
        h = self.handler
        events: dict[str, Callable[[float], list[Action]]] = {
            MASTER_DOWN: h.master_down,
            ADVER: h.adver,
            PREEMPT: h.preempt,
            GARP_DELAY: h.garp,
            GARP_REFRESH: h.garp_refresh,
        }
        if name == VIP_RETRY:
            return self._vip_retry_due()
        event = events.get(name)
        return event(now) if event is not None else []

    def _vip_retry_due(self) -> list[Action]:
        if self.state is State.MASTER:
            return [AddVips()]
        if VIPS_FAULT in self.faults:
            return [ProbeVips()]
        return []

    def _check_addresses(self, adv: Advertisement, src: IPAddr) -> None:
        """Compare the advert's address list with ours; a difference is
        counted and warned about (once per condition), never a reason to drop.

        RFC 9568 7.1: the receiver MAY verify the addresses and, if they
        differ, SHOULD log (rate-limited); nothing says to drop. keepalived
        does the same since 2.3.3, for VRRPv2 as well, and so do we (RFC
        3768 7.1 still says to drop a v2 mismatch not from the owner).
        keepalived 2.2.7 and older DROPPED such adverts (unless the check was
        skipped): a 2.2.7 backup whose VIP list differs from its master's
        ignores the master and becomes a second master, while we stay backup.
        This only matters when the two sides' VIP lists differ (a change
        rolled out to one node first).

        What is compared, as keepalived's vrrp_check_packet does: the count
        first, always; then, with equal counts, that each of our VIPs is in
        the advert (a set: order does not matter). The address bytes are
        compared as they are, IPv6 link-local ones included: nothing is added
        to or taken from either list. `skip_check_adv_addr` skips only the
        second step, only in BACKUP, and only for an advert from the master
        heard last (keepalived: the check "won't be carried out if the advert
        is from the same master router as the previous advert received"); a
        master always checks.
        """
        ours = self.params.addresses
        theirs = adv.addresses
        if len(theirs) != len(ours):
            kind = "count"
            why = (
                f"lists {len(theirs)} address{'es' if len(theirs) != 1 else ''},"
                f" we have {len(ours)}"
            )
        elif (
            self.params.skip_check_adv_addr and self.state is State.BACKUP and src == self.master_ip
        ):
            return
        elif missing := [a for a in ours if a not in theirs]:
            kind = "addresses"
            why = f"does not list {', '.join(map(str, missing))}"
        else:
            return
        self.stats.rx_address_mismatch += 1
        if src != self._mismatch_src:
            # Another sender: its conditions are new ones (keepalived resets
            # its rate-limited log flags on a change of master too).
            self._mismatch_logged.clear()
            self._mismatch_src = src
        if kind in self._mismatch_logged:
            return
        self._mismatch_logged.add(kind)
        log.warning(
            "(%s) advert from %s %s (it lists [%s], we have [%s]); accepted"
            " (RFC 9568 7.1; keepalived before 2.3.3 would drop it)",
            self.params.name,
            src,
            why,
            ", ".join(map(str, theirs)),
            ", ".join(map(str, ours)),
        )

    def _reject_reason(self, adv: Advertisement, src: IPAddr) -> str | None:
        p = self.params
        if adv.version != p.version:
            return "version_mismatch"
        if src == p.local_ip:
            return "own_address"
        if (p.unicast_peers or p.unicast_no_peer) and src not in p.unicast_peers:
            return "not_peer"
        if p.version == 2:
            # keepalived's three counters: a type no VRRPv2 defines (invalid),
            # another defined type (mismatch), the wrong password (failure).
            if adv.auth_type not in _AUTH_TYPES:
                return "auth_invalid"
            if adv.auth_type != p.auth_type:
                return "auth_type"
            if p.auth_type != AUTH_NONE and _pad8(adv.auth_data) != _pad8(p.auth_data):
                return "auth"
            # RFC 3768 7.1: a differing Adver Int MUST be discarded.
            if adv.max_advert_int != interval_on_wire(2, p.advert_int):
                return "interval"
        return None


# RFC 3768 5.3.6: 0 none, 1 simple text password, 2 IP Authentication Header.
_AUTH_TYPES = (0, 1, 2)


def _pad8(auth_data: bytes) -> bytes:
    # The wire carries 8 bytes, NUL-padded; a configured password may be shorter.
    return auth_data.ljust(8, b"\0")[:8]
