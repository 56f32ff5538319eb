"""keepalived's tracking logic (track_script, track_interface, track_file), sans I/O.

`ScriptTracker` turns a stream of check results into an UP/DOWN state with
keepalived's fall/rise hysteresis; `FileReading` turns polled file contents
into a track_file value. `track_effect`, `iface_effect` and `file_effect`
turn what an instance tracks into what its router must be told: a priority
delta and fault conditions (keyed by `FaultKey`s of source script, iface
and file), and `combine`
sums them into the one delta the router holds. No clock, no processes, no
files: the I/O layer runs the checks, reads links and files, and feeds the
results in.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vrrp_agent.config.model import TrackRef
from vrrp_agent.core.faults import FaultKey, FaultSource


class ScriptState(str, enum.Enum):
    """str(member) is its value, as a StrEnum's."""

    UP = "UP"
    DOWN = "DOWN"

    def __str__(self) -> str:
        return str(self.value)


@dataclass
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


def fault_key(name: str) -> FaultKey:
    """The fault a weight-0 script raises while DOWN."""
    return FaultKey(FaultSource.SCRIPT, name)


@dataclass(frozen=True)
class TrackEffect:
    """What an instance's tracked scripts ask of its router.

    `faults` holds every weight-0 script the instance tracks, mapped to the
    fault reason while it is DOWN and to None while it is UP, so the caller
    can both raise and clear without remembering what it raised before.
    """

    delta: int = 0
    faults: Mapping[FaultKey, str | None] = field(default_factory=dict)


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
    faults: dict[FaultKey, str | None] = {}
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


def combine(*effects: TrackEffect) -> TrackEffect:
    """One delta and one fault table from every kind of tracker: the router
    is told a single priority delta, so trackers never overwrite each other."""
    faults: dict[FaultKey, str | None] = {}
    for effect in effects:
        faults.update(effect.faults)
    return TrackEffect(sum(e.delta for e in effects), faults)


# --- track_interface ------------------------------------------------------------


class LinkState(str, enum.Enum):
    """str(member) is its value, as a StrEnum's."""

    UP = "UP"  # administratively up and running (carrier, oper state up)
    DOWN = "DOWN"  # exists, but down or without carrier
    GONE = "GONE"  # no such interface

    def __str__(self) -> str:
        return str(self.value)


def iface_fault_key(name: str) -> FaultKey:
    return FaultKey(FaultSource.IFACE, name)


def iface_effect(refs: Iterable[TrackRef], links: Mapping[str, LinkState]) -> TrackEffect:
    """keepalived 2.x's track_interface, with w the ref's weight (default 0):
    w == 0 puts the instance in FAULT while the link is not up, w > 0 raises
    the priority by w while it is up, w < 0 lowers it by |w| while it is not.

    An interface missing from `links` counts as gone: the caller reads every
    tracked interface, so absence can only mean it does not exist.
    """
    delta = 0
    faults: dict[FaultKey, str | None] = {}
    for ref in refs:
        state = links.get(ref.name, LinkState.GONE)
        up = state is LinkState.UP
        w = ref.weight or 0
        if w == 0:
            faults[iface_fault_key(ref.name)] = (
                None if up else f"tracked interface {ref.name} is {state.value.lower()}"
            )
        elif (w > 0 and up) or (w < 0 and not up):
            delta += w
    return TrackEffect(delta, faults)


# --- track_file -----------------------------------------------------------------

# keepalived's track_file weight when neither the file nor the reference sets one.
DEFAULT_FILE_WEIGHT = 1

# keepalived clamps what it reads to this range, and a weighted value at or
# below -FILE_LIMIT means FAULT (so weight 254 lets a file force FAULT by
# holding -1), while a larger one adds at most FILE_LIMIT - 1.
FILE_LIMIT = 254

_STRTOL = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def file_fault_key(path: str) -> FaultKey:
    return FaultKey(FaultSource.FILE, path)


def parse_file_value(text: str) -> tuple[int, str | None]:
    """What keepalived makes of a track file: C's strtol(text, NULL, 0) on its
    start, so leading whitespace and a sign are fine, 0x is hex and a leading
    0 is octal, reading stops at the first other character, and text with no
    number at all counts as 0. The result is clamped to +-254.

    Returns the value and, when the text was not a plain decimal integer,
    a note for the log (the operator probably meant something else).
    """
    stripped = text.strip()
    if not stripped:
        return 0, None  # an empty file holds 0, as in keepalived
    m = _STRTOL.match(text.lstrip())
    if m is None:
        return 0, f"{_show(stripped)} is not a number; it counts as 0"
    sign, digits = m.groups()
    if digits[:2].lower() == "0x":
        value, how = int(digits, 16), "hexadecimal"
    elif len(digits) > 1 and digits[0] == "0":
        value, how = int(digits, 8), "octal"
    else:
        value, how = int(digits), ""
    value = -value if sign == "-" else value
    notes = []
    if m.group(0) != stripped:
        notes.append(f"only the leading {m.group(0)!r} of {_show(stripped)} is read")
    if how:
        notes.append(f"{m.group(0)!r} is {how} for {value}")
    clamped = max(-FILE_LIMIT, min(FILE_LIMIT, value))
    if clamped != value:
        notes.append(f"{value} is clamped to {clamped}")
    return clamped, "; ".join(notes) or None


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def file_weight(ref: TrackRef) -> int:
    return DEFAULT_FILE_WEIGHT if ref.weight is None else ref.weight


def file_effect(refs: Iterable[TrackRef], values: Mapping[str, int]) -> TrackEffect:
    """keepalived's track_file, with v the value read (a missing file is 0)
    and w the ref's weight: w == 0 means FAULT while v != 0; otherwise v*w,
    clamped to -254..253, is added to the priority, and a result of -254
    means FAULT instead."""
    delta = 0
    faults: dict[FaultKey, str | None] = {}
    for ref in refs:
        value = values.get(ref.name, 0)
        w = file_weight(ref)
        key = file_fault_key(ref.name)
        if w == 0:
            faults[key] = f"track_file {ref.name} holds {value}" if value else None
            continue
        status = max(-FILE_LIMIT, min(FILE_LIMIT - 1, value * w))
        if status <= -FILE_LIMIT:
            faults[key] = f"track_file {ref.name} holds {value} (x weight {w} <= -{FILE_LIMIT})"
        else:
            faults[key] = None
            delta += status
    return TrackEffect(delta, faults)


@dataclass
class FileReading:
    """The value of one track file, from successive polls of its content.

    An empty read right after a non-empty one is only believed when the next
    poll confirms it: a writer that truncates and then writes (`echo 1 > f`)
    can be caught in between, and believing it would flap the instance.
    keepalived, woken by inotify on close, never sees that window.
    """

    path: str
    value: int = 0
    text: str | None = None  # None: missing or unreadable
    note: str | None = None  # why the text is read the way it is, for the log
    _empty_seen: bool = False

    def record(self, text: str | None, why_missing: str | None = None) -> bool:
        """Feed one poll's content (None: no file, or unreadable, with
        `why_missing`); True when the value or its note changed."""
        before = (self.value, self.note)
        emptied = text is not None and not text.strip() and bool(self.text and self.text.strip())
        if emptied and not self._empty_seen:
            self._empty_seen = True
            return False
        self._empty_seen = False
        self.text = text
        if text is None:
            self.value, self.note = 0, f"{why_missing or 'missing'}; it counts as 0"
        else:
            self.value, self.note = parse_file_value(text)
        return (self.value, self.note) != before
