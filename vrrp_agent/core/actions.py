"""What the protocol core asks the I/O layer to do.

The core never touches a socket or a clock: every event handler returns a
list of these, in the order they must be carried out.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrrp_agent.wire import Advertisement


@dataclass(frozen=True, slots=True)
class SendAdvert:
    advert: Advertisement


@dataclass(frozen=True, slots=True)
class AddVips:
    """Configure the virtual addresses (and, without accept mode, filter them)."""


@dataclass(frozen=True, slots=True)
class RemoveVips:
    reason: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Send `count` gratuitous ARPs / unsolicited NAs for every virtual address."""

    count: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: str
    new: str
    reason: str


Action = SendAdvert | AddVips | RemoveVips | Announce | StateChanged
