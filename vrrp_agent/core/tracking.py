"""keepalived's `vrrp_script` / `track_script` logic, sans I/O.

Two pure pieces: `ScriptTracker` turns a stream of check results into an
UP/DOWN state with keepalived's fall/rise hysteresis, and `track_effect`
turns the states of an instance's tracked scripts into what the router must
be told (a priority delta and fault conditions). No clock, no processes: the
I/O layer runs the checks and feeds the results in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vrrp_agent.config.model import TrackRef


class ScriptState(enum.StrEnum):
    UP = "UP"
    DOWN = "DOWN"


@dataclass(slots=True)
class ScriptTracker:
    """Fall/rise counting for one script.

    Starts UP, as keepalived does without `init_fail`: an agent that restarts
    must not drop its priority before a check has even run. `failures` and
    `successes` count *consecutive* results; one of them is always 0.
    """

    fall: int = 1
    rise: int = 1
    state: ScriptState = ScriptState.UP
    failures: int = 0
    successes: int = 0

    def __post_init__(self) -> None:
        if self.fall < 1 or self.rise < 1:
            raise ValueError(f"fall and rise must be >= 1 (got {self.fall}, {self.rise})")

    @property
    def up(self) -> bool:
        return self.state is ScriptState.UP

    def record(self, ok: bool) -> bool:
        """Count one result; True when the state changed with it."""
        if ok:
            self.failures = 0
            self.successes += 1
            if not self.up and self.successes >= self.rise:
                self.state = ScriptState.UP
                return True
        else:
            self.successes = 0
            self.failures += 1
            if self.up and self.failures >= self.fall:
                self.state = ScriptState.DOWN
                return True
        return False


# Router fault keys of weight-0 scripts start with this; other trackers
# (interfaces, files) use their own prefixes in the same fault table.
FAULT_PREFIX = "script:"


def fault_key(name: str) -> str:
    return f"{FAULT_PREFIX}{name}"


@dataclass(frozen=True, slots=True)
class TrackEffect:
    """What an instance's tracked scripts ask of its router.

    `faults` holds every weight-0 script the instance tracks, mapped to the
    fault reason while it is DOWN and to None while it is UP, so the caller
    can both raise and clear without remembering what it raised before.
    """

    delta: int = 0
    faults: Mapping[str, str | None] = field(default_factory=dict)


def effective_weight(ref: TrackRef, script_weight: int) -> int:
    """keepalived: a weight on the `track_script` line overrides the script's own."""
    return script_weight if ref.weight is None else ref.weight


def track_effect(
    refs: Iterable[TrackRef],
    weights: Mapping[str, int],
    states: Mapping[str, ScriptState],
) -> TrackEffect:
    """keepalived's rules per tracked script, with w its effective weight:
    w < 0 lowers the priority by |w| while DOWN, w > 0 raises it by w while UP,
    w == 0 puts the instance in FAULT while DOWN.

    A ref whose script has no state (not running) is ignored: validation
    rejects unknown names, so this only happens mid-reload.
    """
    delta = 0
    faults: dict[str, str | None] = {}
    for ref in refs:
        state = states.get(ref.name)
        if state is None or ref.name not in weights:
            continue
        w = effective_weight(ref, weights[ref.name])
        up = state is ScriptState.UP
        if w == 0:
            faults[fault_key(ref.name)] = None if up else f"vrrp_script {ref.name} failed"
        elif (w < 0 and not up) or (w > 0 and up):
            delta += w
    return TrackEffect(delta, faults)
