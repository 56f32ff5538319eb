"""Configuration: keepalived's vocabulary in YAML, validated with key paths.

``load(path)`` / ``parse(text)`` return a frozen :class:`Config` or raise
:class:`ConfigError` whose ``problems`` lists every mistake found, one
``"FILE: key.path: message"`` line each (what ``vrrp-agent validate`` prints).
"""

from ._loader import load, parse
from ._reader import ConfigError
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
    VirtualServer,
    garp_settings,
)

__all__ = [
    "Arbiter",
    "Checker",
    "Config",
    "ConfigError",
    "FrozenMap",
    "GarpSettings",
    "GlobalDefs",
    "IPAddr",
    "Instance",
    "RealServer",
    "Script",
    "SorryServer",
    "SyncGroup",
    "TrackRef",
    "Url",
    "VirtualAddress",
    "VirtualServer",
    "garp_settings",
    "load",
    "parse",
]
