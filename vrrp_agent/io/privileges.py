"""Who the agent's children run as, and with which capabilities.

Run by hand (or in the tests) the agent is root and may start a child as
anyone, keepalived's way. Under the role's unit it runs as its own user
(`vrrp-agent`) and systemd hands it CAP_NET_ADMIN, CAP_NET_RAW, CAP_SETUID,
CAP_SETGID and CAP_KILL as *ambient* capabilities, the only kind that survive
the exec of an unprivileged program. Left in place they would survive every
exec the agent makes too: a check script run as `vrrp_script` would hold
CAP_NET_ADMIN. So the agent clears its ambient set once at start (keeping
what it holds itself), starts scripts as their user (they get nothing), and
starts the tools that change the network (nft, ip) as root, whose exec gives
them the unit's bounding set again: what they had when the agent was root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

log = logging.getLogger("vrrp_agent")

CAP_SETGID, CAP_SETUID = 6, 7  # <linux/capability.h>
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4  # <linux/prctl.h>


def effective_capabilities(status: str = "/proc/self/status") -> int:
    """The CapEff mask of this process (0 when it cannot be read)."""
    try:
        with open(status) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


@functools.lru_cache(maxsize=1)
def can_switch_user() -> bool:
    """Root, or holding CAP_SETUID and CAP_SETGID: children can be started as
    another user. Capabilities do not change while the agent runs."""
    if os.geteuid() == 0:
        return True
    need = (1 << CAP_SETUID) | (1 << CAP_SETGID)
    return effective_capabilities() & need == need


def drop_ambient() -> None:
    """Clear the ambient set, so no exec passes the agent's capabilities on.

    Nothing to do as root without ambient capabilities; a kernel older than
    4.3 has no ambient set and answers EINVAL, which is just as good.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        log.debug("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %s", os.strerror(err))


def as_root() -> dict[str, object]:
    """subprocess arguments that start a tool as root: none when the agent is
    root already, or when it cannot switch (then the tool fails as it would)."""
    if os.geteuid() == 0 or not can_switch_user():
        return {}
    return {"user": 0, "group": 0, "extra_groups": []}


def as_user(uid: int, gid: int, groups: list[int]) -> dict[str, object]:
    """subprocess arguments that start a script as uid/gid with these groups:
    none when that is who the agent is already (root running root's scripts)."""
    if uid == os.geteuid() == 0:
        return {}
    return {"user": uid, "group": gid, "extra_groups": groups}
