"""The protocol states of a VRRP router (RFC 9568 6.4), as `StateChanged` reports them.

Its own module so that `actions` (which reports states) and `router` (which
holds one) both import it without importing each other.
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):  # not StrEnum: that is 3.11+, and the agent runs on 3.9
    """A router's protocol state.

    A `str` as well, so `state == "MASTER"` holds for code and tests that
    compare with names, and JSON encodes it as its name. `str()` and
    `format()` give the bare name on every Python: a mixed-in enum's own
    default is `State.MASTER` there, which would leak into notify script
    arguments, FIFO lines and logs.
    """

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
