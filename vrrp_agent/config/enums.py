"""The closed sets of words a configuration value can take.

Each is a ``(str, Enum)``, not ``enum.StrEnum`` (Python 3.11+; the agent runs on
3.9): a member still equals, hashes and formats as its word, so code that
compares ``inst.state == "MASTER"`` or looks a value up in a ``{"TCP": 6}``
table keeps working, and JSON (status output) carries the plain word. The
member's value is the canonical spelling the validator stores (keepalived's).
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):  # not StrEnum: that is Python 3.11+
    """A configuration word: ``str()`` and ``format()`` give the word itself.

    ``(str, Enum)`` alone formats as ``Cls.NAME`` in f-strings from Python 3.12
    on but as the word before; ``__str__`` makes every version print the word,
    which log lines, nftables names and status output rely on.
    """

    def __str__(self) -> str:
        return str(self.value)


class InitialState(Word):
    """vrrp_instances.*.state: the state hint an instance starts from."""

    MASTER = "MASTER"
    BACKUP = "BACKUP"


class AuthType(Word):
    """vrrp_instances.*.authentication.auth_type (``none`` is stored as None)."""

    PASS = "PASS"


class LvsBackend(Word):
    """global_defs.lvs_backend: which data plane runs the virtual servers."""

    AUTO = "auto"
    NFTABLES = "nftables"
    IPVS = "ipvs"


class ArbiterMethod(Word):
    """arbiter.method: how the reference addresses are probed."""

    ICMP = "icmp"  # echo request
    ARP = "arp"  # ARP probe, IPv4 only


class CheckerKind(Word):
    """The health checker a real server carries: the key its block sits under."""

    TCP_CHECK = "TCP_CHECK"
    HTTP_GET = "HTTP_GET"
    SSL_GET = "SSL_GET"
    MISC_CHECK = "MISC_CHECK"


class TransportProtocol(Word):
    """virtual_servers[].protocol."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class LbKind(Word):
    """virtual_servers[].lb_kind: how a packet reaches the real server."""

    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


class LbAlgo(Word):
    """virtual_servers[].lb_algo: the IPVS schedulers keepalived accepts.

    The data plane decides which of them it can run (vrrp_agent.lvs.capabilities).
    """

    RR = "rr"
    WRR = "wrr"
    LC = "lc"
    WLC = "wlc"
    LBLC = "lblc"
    LBLCR = "lblcr"
    DH = "dh"
    SH = "sh"
    SED = "sed"
    NQ = "nq"
    FO = "fo"
    OVF = "ovf"
    MH = "mh"
    TWOS = "twos"
