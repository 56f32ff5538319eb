"""Decisions across instances, sans I/O: sync groups, exclusive pairs, the arbiter.

Each `Router` runs its own VRID by the RFC. Some instances are *gated*: when
their protocol rules say "become master" they only record a `Want`, and this
module decides whether, and together with what, to grant it:

- **Sync groups** (keepalived's `vrrp_sync_group`): members move together.
  One member in FAULT puts the others in FAULT; one member losing its
  election makes the others step down; a member becomes master only when
  every other member is master already or wants to be (keepalived prefers
  backup to thrashing: a group never goes master piecemeal).
- **Exclusive pairs** (`exclusive_with`): this node never holds both. A
  partner that wins a *contested* election here (it preempts a live,
  lower-priority master elsewhere) displaces the other one, which steps
  down so the peer can take it: the two VIPs swap nodes on one detection.
  The displaced instance stays held back while its partner is master here
  and the peer that took over keeps at least the priority it took over
  with; when that peer degrades, or the partner leaves master, the hold
  ends and ordinary preemption applies again (this is what makes the pair
  swap back, and not flap, when checks recover).
  A claim made in *silence* (the peer's master went away, or resigned)
  never displaces anything: when the peer node is gone the survivor keeps
  the VIP it holds and the other one stays unserved. Exclusivity is a hard
  rule; shared mode is the one where a survivor serves both.
- **Arbiter**: a takeover needs a reference address to have answered after
  the claim was made, so a node cut off from everything never becomes a
  second master. (While the arbiter reports DOWN the agent also faults
  every instance; that part is an ordinary fault condition.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vrrp_agent.core.actions import Action, StateChanged
from vrrp_agent.core.faults import FaultKey, FaultSource
from vrrp_agent.core.router import PREEMPTING, Router, State


@dataclass
class Hold:
    """An exclusive instance displaced by its partner. `floor` is the priority
    the peer that took over first advertised (None until heard)."""

    partner: str
    floor: int | None = None


@dataclass
class Outcome:
    """What one `settle` pass asks of the I/O layer."""

    actions: list[tuple[str, list[Action]]] = field(default_factory=list)
    # A gated claim waits for the arbiter: run a probe round now.
    probe_arbiter: bool = False


class Coordinator:
    """The cross-instance decisions of one node: who is held back, who waits
    for what, and which step-downs it forced (see the module docstring)."""

    def __init__(
        self,
        groups: Mapping[str, Sequence[str]],
        pairs: Mapping[str, str],
        arbiter: bool,
    ) -> None:
        self.groups = {g: tuple(m) for g, m in groups.items()}
        self.group_of = {m: g for g, members in self.groups.items() for m in members}
        # Symmetric: name -> partner for both sides.
        self.pairs = dict(pairs) | {b: a for a, b in pairs.items()}
        self.arbiter = arbiter
        self.holds: dict[str, Hold] = {}
        # Why a claim is not granted yet, per instance, for `status` and logs.
        self.waiting: dict[str, str] = {}
        # Instances we made step down: their MASTER->BACKUP is not news for the group.
        self._forced: set[str] = set()

    def gated(self, name: str) -> bool:
        return self.arbiter or name in self.group_of or name in self.pairs

    def group_state(self, group: str, routers: Mapping[str, Router]) -> str:
        """keepalived's view of a group: FAULT if any member is, MASTER if all are."""
        states = [routers[m].state for m in self.groups[group] if m in routers]
        if any(s is State.FAULT for s in states):
            return State.FAULT.value
        if states and all(s is State.MASTER for s in states):
            return State.MASTER.value
        return State.BACKUP.value

    # ---------------------------------------------------------------- settle

    def settle(
        self,
        routers: Mapping[str, Router],
        transitions: Sequence[tuple[str, StateChanged]],
        arbiter_success: float | None,
        now: float,
    ) -> Outcome:
        """One pass: react to `transitions` (since the last pass) and grant or
        hold pending claims. The caller executes the actions, collects the
        transitions they cause and calls again until nothing is left to do."""
        out = Outcome()
        self._follow_group_losses(routers, transitions, now, out)
        self._propagate_faults(routers, now, out)
        self._update_holds(routers)
        self._grant(routers, arbiter_success, now, out)
        return out

    def _follow_group_losses(
        self,
        routers: Mapping[str, Router],
        transitions: Sequence[tuple[str, StateChanged]],
        now: float,
        out: Outcome,
    ) -> None:
        for name, change in transitions:
            if name in self._forced:
                self._forced.discard(name)
                continue
            group = self.group_of.get(name)
            if group is None or change.old != State.MASTER or change.new != State.BACKUP:
                continue
            for mate in self.groups[group]:
                r = routers.get(mate)
                if mate != name and r is not None and r.state is State.MASTER:
                    self._forced.add(mate)
                    why = f"sync group {group}: {name} lost its election"
                    out.actions.append((mate, r.step_down(now, why)))

    def _propagate_faults(self, routers: Mapping[str, Router], now: float, out: Outcome) -> None:
        for group, members in self.groups.items():
            key = FaultKey(FaultSource.SYNC, group)
            faulty = [
                m
                for m in members
                if m in routers
                and any(_source(k) is not FaultSource.SYNC for k in routers[m].faults)
            ]
            for m in members:
                r = routers.get(m)
                if r is None:
                    continue
                others = [f for f in faulty if f != m]
                reason = f"sync group {group}: {', '.join(others)} in FAULT" if others else None
                if r.faults.get(key) != reason:
                    out.actions.append((m, r.set_fault(key, reason, now)))

    def _update_holds(self, routers: Mapping[str, Router]) -> None:
        for name, hold in list(self.holds.items()):
            r, partner = routers.get(name), routers.get(hold.partner)
            if r is None or partner is None or partner.state is not State.MASTER:
                del self.holds[name]
                continue
            seen = r.last_seen_priority
            if hold.floor is None:
                hold.floor = seen
            elif seen is not None and seen < hold.floor:
                # The peer that took our VIP has degraded since: compete again.
                del self.holds[name]

    def _grant(
        self,
        routers: Mapping[str, Router],
        arbiter_success: float | None,
        now: float,
        out: Outcome,
    ) -> None:
        self.waiting = {}
        for name, r in routers.items():
            want = r.want
            # A drained router never claims; a want it held was withdrawn.
            if want is None or r.state is not State.BACKUP or r.drained:
                continue
            reason = self._blocked_by_group(name, routers)
            partner_name = self.pairs.get(name)
            partner = routers.get(partner_name) if partner_name else None
            swap = False
            if reason is None and partner is not None and partner.state is State.MASTER:
                if want.kind != PREEMPTING:
                    reason = (
                        f"{partner_name} is MASTER here and exclusive_with keeps this VIP "
                        f"off this node; its peer is silent ({want.kind})"
                    )
                elif name in self.holds:
                    reason = (
                        f"displaced by {partner_name} (exclusive_with), and the peer holding "
                        f"this VIP has not degraded"
                    )
                else:
                    swap = True
            if (
                reason is None
                and self.arbiter
                and (arbiter_success is None or arbiter_success < want.since)
            ):
                reason = "arbiter: waiting for a reference address to answer"
                out.probe_arbiter = True
            if reason is not None:
                self.waiting[name] = reason
                continue
            if swap and partner is not None and partner_name is not None:
                self._forced.add(partner_name)
                self.holds[partner_name] = Hold(partner=name)
                why = f"exclusive_with: {name} won its election here"
                out.actions.append((partner_name, partner.step_down(now, why)))
            out.actions.append((name, r.take_over(now)))

    def _blocked_by_group(self, name: str, routers: Mapping[str, Router]) -> str | None:
        group = self.group_of.get(name)
        if group is None:
            return None
        for mate in self.groups[group]:
            r = routers.get(mate)
            if mate == name or r is None:
                continue
            if r.state is not State.MASTER and r.want is None:
                return f"sync group {group}: {mate} is {r.state.value} and does not claim MASTER"
        return None


def _source(key: object) -> FaultSource | None:
    # A router's fault table is keyed by FaultKey; anything else (a test's own
    # key) counts as a fault of the member itself.
    return key.source if isinstance(key, FaultKey) else None
