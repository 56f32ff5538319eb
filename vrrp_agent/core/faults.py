"""Typed keys of a router's fault table.

A router holds one reason per fault condition, keyed by what raised it. The
key says which part of the agent owns the condition (`source`) and which of
its inputs (`name`), so each part raises and clears only its own faults
without parsing strings. `str(key)` is the form the `status` document and the
logs have always shown: "script:chk_x", "iface:eth1", "link:eth0",
"sync:VG_1", and plain "arbiter".
"""

from __future__ import annotations

import enum


class FaultSource(str, enum.Enum):
    """str(member) is its value, as a StrEnum's."""

    SCRIPT = "script"  # a weight-0 vrrp_script that is DOWN
    IFACE = "iface"  # a weight-0 track_interface that is not up
    FILE = "file"  # a track_file that asks for FAULT
    LINK = "link"  # the instance's own interface, gone or down
    SYNC = "sync"  # a sync group mate in FAULT
    ARBITER = "arbiter"  # no reference address answers
    VIPS = "vips"  # the virtual addresses could not be added (see core.vip_retry)

    def __str__(self) -> str:
        return str(self.value)


# Sources whose faults follow from the tracking inputs (scripts, links, files):
# Node recomputes all of them on each tracking change.
TRACKING = frozenset({FaultSource.SCRIPT, FaultSource.IFACE, FaultSource.FILE, FaultSource.LINK})


class FaultKey(str):
    """One fault condition: who raised it (`source`) and about what (`name`).

    A str whose value is the rendered form ("script:chk_x", "arbiter"), so the
    fault table reads as it always has in `status` and the logs and compares
    equal to that text; code asks `key.source`, never the text's prefix.
    """

    source: FaultSource
    name: str

    def __new__(cls, source: FaultSource, name: str = "") -> FaultKey:
        key = super().__new__(cls, f"{source.value}:{name}" if name else source.value)
        key.source = source
        key.name = name
        return key

    def __reduce__(self) -> tuple[object, ...]:
        return (FaultKey, (self.source, self.name))


ARBITER_FAULT = FaultKey(FaultSource.ARBITER)
VIPS_FAULT = FaultKey(FaultSource.VIPS)
