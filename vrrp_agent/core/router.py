"""One VRRP virtual router (a keepalived `vrrp_instance`), sans I/O.

Every public method takes the current time and returns the actions the I/O
layer must carry out, in order. Timers are plain deadlines in `self.timers`;
the caller asks `next_deadline()` and calls `on_timer(now)` when it passes.

The behaviour follows RFC 9568 section 6.4 (and RFC 3768 for VRRPv2), with
keepalived's extensions where keepalived users expect them: `preempt_delay`,
the `state MASTER` start hint, priority 0 when leaving MASTER for FAULT, and
the GARP repeat/refresh knobs.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vrrp_agent.core.actions import (
    Action,
    AddVips,
    Announce,
    RemoveVips,
    SendAdvert,
    StateChanged,
)
from vrrp_agent.core.timers import (
    interval_from_wire,
    interval_on_wire,
    master_down_interval,
    skew_time,
)
from vrrp_agent.wire import AUTH_NONE, Advertisement

IPAddr = IPv4Address | IPv6Address

OWNER_PRIORITY = 255

# Timer names, also shown in `status` so an operator sees what the router waits for.
MASTER_DOWN = "master_down"
ADVER = "adver"
PREEMPT = "preempt"
GARP_DELAY = "garp_delay"
GARP_REFRESH = "garp_refresh"


# Why a gated backup wants to become master (see `Want`).
PREEMPTING = "preempt"  # a live master with a lower priority is heard
MASTER_GONE = "master_down"  # nobody has been heard for Master_Down_Interval
RESIGNED = "resigned"  # the master left with priority 0


@dataclass(frozen=True, slots=True)
class Want:
    """A gated backup's claim to mastership, waiting for the agent to grant it.

    Sync groups, exclusive pairs and the arbiter decide across instances
    whether a backup may take over; the router only says that, by its own
    protocol rules, it would.
    """

    kind: str
    why: str
    since: float


class State(enum.StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


@dataclass(frozen=True, slots=True)
class RouterParams:
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
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1


@dataclass(slots=True)
class Stats:
    adverts_sent: int = 0
    adverts_received: int = 0
    became_master: int = 0
    priority_zero_received: int = 0
    priority_zero_sent: int = 0
    address_list_mismatch: int = 0
    tx_errors: int = 0
    rx_dropped: Counter[str] = field(default_factory=Counter)


class Router:
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
        # Why the master-down timer runs short, for the log when it fires.
        self.resigned_by: str | None = None
        # Gated: becoming master needs the agent's consent (`take_over`).
        self.gated = False
        self.want: Want | None = None
        # When a lower-priority master was last heard (and ignored to preempt it).
        self.lower_seen_at: float | None = None
        # The priority in the last non-zero advert heard as a backup.
        self.last_seen_priority: int | None = None
        # When we last re-announced as master over a lower-priority one.
        self.lower_announced_at: float | None = None
        # How late the timer being handled fired (a frozen or starved process).
        self.timer_lateness = 0.0
        self.stats = Stats()

    # ----------------------------------------------------------------- derived

    @property
    def effective_priority(self) -> int:
        """Base priority plus tracking weights, kept inside 1..254 like keepalived.

        An address owner (255) is not adjusted: it owns the addresses.
        """
        if self.params.priority == OWNER_PRIORITY:
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
        if self.faults:
            # Fault reasons set before start (e.g. a link already down).
            return self._to_fault(now, "; ".join(self.faults.values()))
        if self.params.priority == OWNER_PRIORITY:
            return self._to_master(now, "address owner (priority 255)")
        # Whatever an earlier, crashed run left configured is not ours to hold yet.
        actions: list[Action] = [RemoveVips("start-up cleanup")]
        actions += self._to_backup(now, "initial state")
        if self.params.start_as_master:
            # keepalived's `state MASTER`: claim after Skew_Time unless a master speaks first.
            self.timers[MASTER_DOWN] = now + self.skew
        return actions

    def receive(self, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        reason = self._reject_reason(adv, src)
        if reason:
            self.stats.rx_dropped[reason] += 1
            return []
        self.stats.adverts_received += 1
        if adv.priority == 0:
            self.stats.priority_zero_received += 1
        if self.params.version == 3 and set(adv.addresses) != set(self.params.addresses):
            # RFC 9568 6.4.2/6.4.3: a mismatch is logged, not fatal; count it for `status`.
            self.stats.address_list_mismatch += 1
        handler = _HANDLERS[self.state]
        return handler.advert(self, adv, src, now)

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
            actions += _HANDLERS[self.state].timer(self, name, now)

    def set_priority_delta(self, delta: int, now: float) -> list[Action]:
        """Tracking changed the priority. A master advertises the change at once,
        so a backup that should now preempt does not wait for the next interval."""
        before = self.effective_priority
        self.priority_delta = delta
        if self.state is State.MASTER and self.effective_priority != before:
            return self._send_advert(now)
        return []

    def set_fault(self, key: str, reason: str | None, now: float) -> list[Action]:
        """Raise (`reason` set) or clear (`reason` None) one fault condition."""
        if reason is None:
            self.faults.pop(key, None)
        else:
            self.faults[key] = reason
        if self.state is State.INIT:
            return []
        if self.faults and self.state is not State.FAULT:
            return self._to_fault(now, "; ".join(self.faults.values()))
        if not self.faults and self.state is State.FAULT:
            return self._to_backup(now, f"fault cleared ({key})")
        return []

    def take_over(self, now: float) -> list[Action]:
        """The agent grants a gated backup's `want`."""
        if self.state is not State.BACKUP or self.want is None:
            return []
        return self._to_master(now, self.want.why)

    def step_down(self, now: float, reason: str) -> list[Action]:
        """Leave MASTER for a reason outside this VRID (a sync group mate lost
        its election, an exclusive partner won here). Priority 0 first, so the
        peer takes over after Skew_Time instead of Master_Down."""
        if self.state is not State.MASTER:
            return []
        actions = self._send_priority_zero()
        self.last_seen_priority = None
        return actions + self._to_backup(now, reason, was_master=True)

    def shutdown(self, now: float) -> list[Action]:
        """Leave gracefully: a master tells the backups with priority 0 (RFC 9568 6.4.3)."""
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions += self._send_priority_zero()
            actions.append(RemoveVips("shutting down"))
        actions += self._change(State.INIT, "shutting down")
        self.timers.clear()
        return actions

    # --------------------------------------------------------------- internals

    def _reject_reason(self, adv: Advertisement, src: IPAddr) -> str | None:
        p = self.params
        if adv.version != p.version:
            return "version_mismatch"
        if src == p.local_ip:
            return "own_address"
        if p.unicast_peers and src not in p.unicast_peers:
            return "not_peer"
        if p.version == 2:
            if adv.auth_type != p.auth_type:
                return "auth"
            if p.auth_type != AUTH_NONE and _pad8(adv.auth_data) != _pad8(p.auth_data):
                return "auth"
            # RFC 3768 7.1: a differing Adver Int MUST be discarded.
            if adv.max_advert_int != interval_on_wire(2, p.advert_int):
                return "interval"
        return None

    def _claim(self, now: float, kind: str, why: str) -> list[Action]:
        """Our protocol rules say: become master. Ungated, do it; gated, ask."""
        if not self.gated:
            return self._to_master(now, why)
        self.want = Want(kind, why, now)
        return []

    def _change(self, new: State, reason: str) -> list[Action]:
        old = self.state
        self.state = new
        self.last_reason = reason
        self.want = None
        if old is new:
            return []
        return [StateChanged(old.value, new.value, reason)]

    def _send_advert(self, now: float) -> list[Action]:
        self.stats.adverts_sent += 1
        self.timers[ADVER] = now + self.params.advert_int
        return [SendAdvert(self.advert())]

    def _send_priority_zero(self) -> list[Action]:
        self.stats.adverts_sent += 1
        self.stats.priority_zero_sent += 1
        return [SendAdvert(self.advert(priority=0))]

    def _to_master(self, now: float, reason: str) -> list[Action]:
        self.timers.clear()
        self.stats.became_master += 1
        self.master_ip = self.params.local_ip
        self.master_priority = self.effective_priority
        self.master_adver_interval = self.params.advert_int
        actions = self._change(State.MASTER, reason)
        # Advertise before taking the addresses so a competing master yields quickly.
        actions += self._send_advert(now)
        actions += [AddVips(), Announce(self.params.garp_master_repeat)]
        if self.params.garp_master_delay > 0:
            self.timers[GARP_DELAY] = now + self.params.garp_master_delay
        if self.params.garp_master_refresh > 0:
            self.timers[GARP_REFRESH] = now + self.params.garp_master_refresh
        return actions

    def _to_backup(self, now: float, reason: str, was_master: bool = False) -> list[Action]:
        self.timers.clear()
        self.resigned_by = None
        actions: list[Action] = []
        if was_master:
            actions.append(RemoveVips(reason))
        actions += self._change(State.BACKUP, reason)
        self.timers[MASTER_DOWN] = now + self.master_down
        return actions

    def _to_fault(self, now: float, reason: str) -> list[Action]:
        actions: list[Action] = []
        if self.state is State.MASTER:
            # As keepalived does: let the backups take over after Skew_Time, not Master_Down.
            actions += self._send_priority_zero()
            actions.append(RemoveVips(reason))
        self.timers.clear()
        self.master_ip = None
        return actions + self._change(State.FAULT, reason)

    def _learn_master(self, adv: Advertisement, src: IPAddr) -> None:
        self.master_ip = src
        self.master_priority = adv.priority
        if self.params.version == 3:
            self.master_adver_interval = interval_from_wire(3, adv.max_advert_int)


def _pad8(auth_data: bytes) -> bytes:
    # The wire carries 8 bytes, NUL-padded; a configured password may be shorter.
    return auth_data.ljust(8, b"\0")[:8]


def _describe(adv: Advertisement, src: IPAddr) -> str:
    return f"priority {adv.priority} from {src}"


class _Init:
    @staticmethod
    def advert(r: Router, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        return []

    @staticmethod
    def timer(r: Router, name: str, now: float) -> list[Action]:
        return []


class _Fault(_Init):
    """Adverts and timers are ignored until the fault clears."""


class _Backup:
    @staticmethod
    def advert(r: Router, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        if adv.priority == 0:
            # The master is leaving: take over after Skew_Time only.
            r.timers[MASTER_DOWN] = now + r.skew
            r.timers.pop(PREEMPT, None)
            r.resigned_by = str(src)
            r.want = None
            return []
        r.last_seen_priority = adv.priority
        ours = r.effective_priority
        if not r.params.preempt or adv.priority >= ours:
            r._learn_master(adv, src)
            r.resigned_by = None
            r.want = None
            r.timers.pop(PREEMPT, None)
            r.timers[MASTER_DOWN] = now + r.master_down
            return []
        # A lower-priority master and we preempt.
        r.lower_seen_at = now
        if r.want is not None and r.want.kind != PREEMPTING:
            # A claim made in silence now competes with a live, weaker master.
            r.want = Want(PREEMPTING, f"preempting {_describe(adv, src)}", r.want.since)
        if r.params.preempt_delay > 0:
            deadline = r.timers.setdefault(PREEMPT, now + r.params.preempt_delay)
            if now < deadline:
                # Keep following the current master until the delay is over.
                r._learn_master(adv, src)
                r.timers[MASTER_DOWN] = now + r.master_down
        # Otherwise discard: Master_Down_Timer runs out and we take over.
        return []

    @staticmethod
    def timer(r: Router, name: str, now: float) -> list[Action]:
        if name == MASTER_DOWN:
            if r.resigned_by is not None:
                why = f"master {r.resigned_by} resigned (priority 0), skew time expired"
                r.resigned_by = None
                return r._claim(now, RESIGNED, why)
            if r.lower_seen_at is not None and now - r.lower_seen_at <= r.master_down:
                return r._claim(
                    now,
                    PREEMPTING,
                    f"master down timer expired while preempting a master with priority "
                    f"{r.last_seen_priority} (ours {r.effective_priority})",
                )
            return r._claim(now, MASTER_GONE, "master down timer expired")
        if name == PREEMPT:
            return r._claim(
                now,
                PREEMPTING,
                f"preempt delay expired, master {r.master_ip} has lower priority "
                f"{r.master_priority} than ours {r.effective_priority}",
            )
        return []


class _Master:
    @staticmethod
    def advert(r: Router, adv: Advertisement, src: IPAddr, now: float) -> list[Action]:
        if adv.priority == 0:
            # Another router gave up the VRID: assert ourselves at once.
            return r._send_advert(now)
        ours = r.effective_priority
        higher = adv.priority > ours
        tie_won = adv.priority == ours and int(src) > int(r.params.local_ip)
        if higher or tie_won:
            r._learn_master(adv, src)
            why = "higher" if higher else "equal priority and higher address:"
            return r._to_backup(now, f"{why} {_describe(adv, src)}", was_master=True)
        # Another master with a lower priority: we stay (RFC 9568 6.4.3), but it
        # has been announcing our VIPs (we were frozen or cut off, say), so
        # hosts' ARP/ND caches point at it. Assert ourselves at once and
        # re-announce (keepalived's garp_lower_prio), at most once per
        # Master_Down: the other side yields on our first advert.
        last = r.lower_announced_at
        if last is not None and now - last < r.master_down:
            return []
        r.lower_announced_at = now
        return [*r._send_advert(now), Announce(r.params.garp_master_repeat)]

    @staticmethod
    def timer(r: Router, name: str, now: float) -> list[Action]:
        if name == ADVER:
            actions = r._send_advert(now)
            if r.timer_lateness > 3 * r.params.advert_int:
                # We were not running (SIGSTOP, a stalled VM) for longer than
                # any backup waits: one has taken the VIPs and hosts' caches
                # point at it. It yields to this advert; re-announce ours.
                r.lower_announced_at = now
                actions.append(Announce(r.params.garp_master_repeat))
            return actions
        if name == GARP_DELAY:
            return [Announce(r.params.garp_master_repeat)]
        if name == GARP_REFRESH:
            r.timers[GARP_REFRESH] = now + r.params.garp_master_refresh
            return [Announce(r.params.garp_master_refresh_repeat)]
        return []


_HANDLERS: dict[State, type[_Init] | type[_Backup] | type[_Master]] = {
    State.INIT: _Init,
    State.BACKUP: _Backup,
    State.MASTER: _Master,
    State.FAULT: _Fault,
}
