"""Configuration: keepalived's vocabulary in YAML, validated with key paths.

``load(path)`` / ``parse(text)`` return a frozen :class:`Config` or raise
:class:`ConfigError` whose ``problems`` lists every mistake found, one
``"FILE: key.path: message"`` line each (what ``vrrp-agent validate`` prints).
The closed sets of words (``Instance.state``, ``Checker.kind``, ``lb_kind`` ...)
are the ``(str, Enum)`` classes of :mod:`.enums`, equal to their plain words.
"""

from ._loader import load, parse
from ._reader import ConfigError
from .enums import (
    ArbiterMethod,
    AuthType,
    CheckerKind,
    InitialState,
    LbAlgo,
    LbKind,
    LvsBackend,
    TransportProtocol,
)
from .model import (
    Arbiter,
    Checker,
    Config,
    FrozenMap,
    GarpSettings,
    GlobalDefs,
    Instance,
    IPAddr,
    RealServer,
    Script,
    SorryServer,
    SyncGroup,
    TrackRef,
    Url,
    VirtualAddress,
    VirtualRoute,
    VirtualServer,
    garp_settings,
    skip_check_adv_addr,
)

__all__ = [
    "Arbiter",
    "ArbiterMethod",
    "AuthType",
    "Checker",
    "CheckerKind",
    "Config",
    "ConfigError",
    "FrozenMap",
    "GarpSettings",
    "GlobalDefs",
    "IPAddr",
    "InitialState",
    "Instance",
    "LbAlgo",
    "LbKind",
    "LvsBackend",
    "RealServer",
    "Script",
    "SorryServer",
    "SyncGroup",
    "TrackRef",
    "TransportProtocol",
    "Url",
    "VirtualAddress",
    "VirtualRoute",
    "VirtualServer",
    "garp_settings",
    "load",
    "parse",
    "skip_check_adv_addr",
]
