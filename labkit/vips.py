"""Who holds a VIP, and how a client's requests spread over the real servers.
The polls take the nodes' addresses from a function, podman's by default; a
namespace lab passes `lambda n: lab[n].addresses()`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

from labkit import podman

# A node's addresses, None when it cannot answer (a paused container). Optional,
# not `|`: an alias is evaluated at run time, and 3.9 has no `set[str] | None`.
Addresses = Callable[[str], Optional[set[str]]]  # noqa: UP045


def holders(vip: str, nodes: Sequence[str], addresses: Addresses = podman.addresses) -> list[str]:
    """The nodes, in the order given, that hold `vip`."""
    return [n for n in nodes if vip in (addresses(n) or set())]


def held(
    vips: Sequence[str], nodes: Sequence[str], addresses: Addresses = podman.addresses
) -> dict[str, list[str]]:
    """Who holds each of `vips`, from one look per node (`holders` costs one per VIP)."""
    addrs = {n: addresses(n) or set() for n in nodes}
    return {v: [n for n in nodes if v in addrs[n]] for v in vips}


def tally(answers: Sequence[str]) -> dict[str, int]:
    """How many of the answers each page (or error) was, sorted by page."""
    return {a: answers.count(a) for a in sorted(set(answers))}


def spread(answers: Sequence[str], expected: Sequence[str]) -> dict[str, int]:
    """Round robin over `expected` (the pages of the scheduled real servers):
    nothing failed and each got its share of the requests, give or take one."""
    counts = tally(answers)
    assert set(counts) == set(expected), f"answered by {counts}, expected {sorted(expected)}"
    share = len(answers) / len(expected)
    assert all(abs(c - share) <= 1 for c in counts.values()), f"{counts}: not round robin"
    return counts
