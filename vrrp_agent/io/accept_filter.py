"""RFC 9568 Accept_Mode for instances with `accept: false`.

A master that is not the address owner MUST NOT accept packets addressed to
the virtual addresses unless Accept_Mode is on. We enforce that with an
nftables table of our own, replaced as one transaction each time the set of
filtered addresses changes, so nothing else in the ruleset is touched.
"""

from __future__ import annotations

import logging
import shutil
from ipaddress import IPv4Address, IPv6Address

from vrrp_agent.io.tool import run_tool
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)

TABLE = "vrrp_agent_accept"


class AcceptFilter:
    """The nftables table that drops traffic to VIPs of instances without accept mode, and which
    VIPs it blocks now."""

    def __init__(self, nft: str | None = None) -> None:
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self.blocked: set[IPAddr] = set()
        self._installed = False

    def _run(self, script: str) -> None:
        run_tool([self.nft, "-f", "-"], script)

    def _apply(self) -> None:
        v4 = sorted(str(a) for a in self.blocked if isinstance(a, IPv4Address))
        v6 = sorted(str(a) for a in self.blocked if isinstance(a, IPv6Address))
        lines = [f"table inet {TABLE}", f"delete table inet {TABLE}"]
        if self.blocked:
            lines.append(f"table inet {TABLE} {{")
            lines.append("  chain input { type filter hook input priority -150; policy accept;")
            if v4:
                lines.append(f"    ip daddr {{ {', '.join(v4)} }} drop")
            if v6:
                lines.append(f"    ip6 daddr {{ {', '.join(v6)} }} drop")
            lines.append("  }")
            lines.append("}")
        # "table X; delete table X" first makes the replacement one atomic
        # transaction whether or not the table existed.
        self._run("\n".join(lines) + "\n")
        self._installed = bool(self.blocked)

    def block(self, addresses: list[IPAddr]) -> None:
        if set(addresses) <= self.blocked:
            return
        self.blocked |= set(addresses)
        self._apply()

    def unblock(self, addresses: list[IPAddr]) -> None:
        if not self.blocked & set(addresses):
            return
        self.blocked -= set(addresses)
        self._apply()

    def clear(self) -> None:
        if self._installed or self.blocked:
            self.blocked.clear()
            self._apply()
