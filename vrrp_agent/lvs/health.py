"""keepalived's real-server checker rules for one real server, sans I/O.

No clock, no sockets, no processes: the I/O layer (`checkers.py`) asks when
the next attempt is due, runs it by the deadline it is given, and reports the
outcome with the time it ended. Everything about *when* lives here, so the
detection bound below holds whatever the checks are.

The rules (keepalived 2.x, check_tcp.c / check_http.c / check_misc.c):

- A check *cycle* runs every `delay_loop` seconds, counted from the end of the
  previous cycle (keepalived re-arms its timer when a check finishes).
- While the server is UP, a failed attempt is retried up to `retry` times,
  `delay_before_retry` seconds after the failure ended. The server goes DOWN
  when all `retry + 1` attempts of one cycle fail. A success anywhere in the
  cycle ends it and resets the count.
- While it is DOWN there are no retries (keepalived: "do not retry if server
  is already known as dead"): one attempt per cycle, and a single success
  puts it UP at once.
- It starts UP, because keepalived adds every real server at start (its
  `alpha` mode, not supported here, would start them DOWN). The first attempt
  is due at once; keepalived's default `warmup` (a random first delay of up to
  `delay_loop`) is not modelled, so a server dead at start is found sooner.

Detection bounds, with T the attempt timeout (connect_timeout; misc_timeout
for MISC_CHECK), r = retry, d = delay_before_retry, L = delay_loop:

- DOWN: a server whose last successful attempt ended at t is DOWN by
  t + L + (r + 1) * T + r * d. The next cycle starts at most L after that
  success, and its r + 1 attempts (each ended by its deadline) are separated
  by r gaps of d. The bound is tight: a server that stops answering right
  after a success, with every attempt running to its deadline, takes exactly
  that long. For r <= 1 it is within the issue's
  L + (r + 1) * T + d; for r >= 2 it exceeds that by (r - 1) * d, because
  every retry waits d.
- UP: a DOWN server that answers every attempt started from t on is UP by
  t + L + 2 * T (an attempt already under way at t may still run to its
  deadline and fail, then the next cycle starts L later and succeeds).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vrrp_agent.config.model import Checker, VirtualServer

# keepalived.conf(5), LVS section (2.2.x, the version Debian 12 ships, and
# later): "connect_timeout ... The default is 5 seconds"; "retry ... Default: 1
# unless specified below" with "MISC_CHECK { # The retry default is 0."
# (check_misc.c: default_retry = 0); "delay_before_retry ... 3 seconds for
# HTTP_GET and SSL_GET, and 1 second otherwise"; "delay_loop ... (60 seconds if
# not specified)"; misc_timeout unset means the virtual server's delay_loop
# (check_misc.c). They apply here only where the configuration leaves a field
# None; config/model.py fills its own defaults in first.
DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = {"TCP_CHECK": 1, "HTTP_GET": 1, "SSL_GET": 1, "MISC_CHECK": 0}
DEFAULT_DELAY_BEFORE_RETRY = {"TCP_CHECK": 1.0, "HTTP_GET": 3.0, "SSL_GET": 3.0, "MISC_CHECK": 1.0}


class RsState(str, enum.Enum):
    """A real server's health as its checker last judged it."""

    UP = "UP"
    DOWN = "DOWN"

    # enum.StrEnum's formatting (3.11+): the value, as status and logs show it.
    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CheckTiming:
    """A checker's timers, keepalived's names and units."""

    delay_loop: float
    timeout: float  # one attempt, from its start to its deadline
    retry: int
    delay_before_retry: float

    def __post_init__(self) -> None:
        if self.delay_loop <= 0 or self.timeout <= 0:
            raise ValueError(
                f"delay_loop and timeout must be > 0 (got {self.delay_loop}, {self.timeout})"
            )
        if self.retry < 0 or self.delay_before_retry < 0:
            raise ValueError(
                f"retry and delay_before_retry must be >= 0"
                f" (got {self.retry}, {self.delay_before_retry})"
            )

    @property
    def attempts_per_cycle(self) -> int:
        return self.retry + 1

    @property
    def down_bound(self) -> float:
        """Longest time from the end of the last successful attempt to DOWN."""
        return (
            self.delay_loop + (self.retry + 1) * self.timeout + self.retry * self.delay_before_retry
        )

    @property
    def up_bound(self) -> float:
        """Longest time from a DOWN server answering again to UP."""
        return self.delay_loop + 2 * self.timeout


def timing(vs: VirtualServer, checker: Checker) -> CheckTiming:
    """The schedule of `checker` under `vs`, keepalived's defaults for what is unset."""
    kind = checker.kind
    if kind == "MISC_CHECK":
        # keepalived: an unset misc_timeout is the virtual server's delay_loop
        timeout = _pick(checker.misc_timeout, vs.delay_loop)
    else:
        timeout = _pick(checker.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
    return CheckTiming(
        delay_loop=_pick(vs.delay_loop, DEFAULT_DELAY_LOOP),
        timeout=timeout,
        retry=int(_pick(checker.retry, DEFAULT_RETRY.get(kind, 1))),
        delay_before_retry=_pick(
            checker.delay_before_retry, DEFAULT_DELAY_BEFORE_RETRY.get(kind, 1.0)
        ),
    )


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass
class RealServerHealth:
    """The UP/DOWN state of one real server and when to check it next.

    Drive it as: `due = next_attempt_at(now)`; at `due`, `deadline =
    begin(now)`; run the attempt, ending it (as failed) by `deadline`;
    `changed = record(ok, now)`.
    """

    timing: CheckTiming
    state: RsState = RsState.UP
    failures: int = 0  # failed attempts in the current (or just ended) cycle
    attempts: int = 0  # every attempt recorded, for the status output
    last_ok: bool | None = None  # None: nothing recorded yet
    last_change: float | None = None  # None: still in its initial state
    running_since: float | None = None  # an attempt is under way
    _next: float | None = None  # None: the first attempt is due at once
    _cycle_over: bool = True  # the next attempt starts a new cycle

    @property
    def up(self) -> bool:
        return self.state is RsState.UP

    def next_attempt_at(self, now: float) -> float:
        """When the next attempt is due (at or before `now`: at once)."""
        return now if self._next is None else self._next

    def begin(self, now: float) -> float:
        """An attempt starts at `now`; returns its deadline. The caller must
        `record` it by then, a failure if it has not succeeded: the bounds
        rest on that."""
        if self._cycle_over:
            self._cycle_over = False
            self.failures = 0
        self.running_since = now
        return now + self.timing.timeout

    def record(self, ok: bool, now: float) -> bool:
        """The attempt begun last ended at `now`; True when the state changed."""
        if self.running_since is None:
            raise RuntimeError("record() without begin()")
        self.running_since = None
        self.attempts += 1
        self.last_ok = ok
        t = self.timing
        if ok:
            self.failures = 0
            self._end_cycle(now)
            return self._set(RsState.UP, now)
        self.failures += 1
        if self.up and self.failures <= t.retry:
            # keepalived retries only a server it believes alive
            self._next = now + t.delay_before_retry
            return False
        self._end_cycle(now)
        return self._set(RsState.DOWN, now)

    def _end_cycle(self, now: float) -> None:
        self._cycle_over = True
        self._next = now + self.timing.delay_loop

    def _set(self, state: RsState, now: float) -> bool:
        if state is self.state:
            return False
        self.state = state
        self.last_change = now
        return True
