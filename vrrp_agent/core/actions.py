"""What the protocol core asks the I/O layer to do.

The core never touches a socket or a clock: every event handler returns a
list of these, in the order they must be carried out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from vrrp_agent.core.state import State
from vrrp_agent.wire import Advertisement


@dataclass(frozen=True)
class SendAdvert:
    """Send this advertisement on the instance's socket."""

    advert: Advertisement


@dataclass(frozen=True)
class AddVips:
    """Configure the virtual addresses (and, without accept mode, filter them)."""


@dataclass(frozen=True)
class ProbeVips:
    """Tell whether the virtual addresses could be added now (their devices
    exist), without adding them: a router in FAULT for its VIPs asks."""


@dataclass(frozen=True)
class RemoveVips:
    """Remove the virtual addresses; `reason` is for the log."""

    reason: str


@dataclass(frozen=True)
class Announce:
    """Send `count` gratuitous ARPs / unsolicited NAs for every virtual address."""

    count: int


@dataclass(frozen=True)
class StateChanged:
    """The router went from `old` to `new`; `reason` is what the log and status show."""

    old: State
    new: State
    reason: str


# Union, not `|`: an alias is evaluated at run time, and the agent runs on Python 3.9.
Action = Union[SendAdvert, AddVips, ProbeVips, RemoveVips, Announce, StateChanged]
