"""Sans-I/O VRRP core: events and the current time in, actions out."""

from vrrp_agent.core.actions import (
    Action,
    AddVips,
    Announce,
    ProbeVips,
    RemoveVips,
    SendAdvert,
    StateChanged,
)
from vrrp_agent.core.router import Router, RouterParams
from vrrp_agent.core.state import State

__all__ = [
    "Action",
    "AddVips",
    "Announce",
    "ProbeVips",
    "RemoveVips",
    "Router",
    "RouterParams",
    "SendAdvert",
    "State",
    "StateChanged",
]
