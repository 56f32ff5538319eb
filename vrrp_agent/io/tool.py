"""Running the external tools the agent drives (nft, ip) from its event loop."""

from __future__ import annotations

import subprocess

from vrrp_agent.io import privileges

# nft and ip answer in milliseconds; one that has not answered in this long is
# wedged (a stuck netlink lock, a hung kernel), and every advert of every
# instance waits while the loop waits for it.
TOOL_TIMEOUT_S = 5.0


def run_tool(args: list[str], stdin: str | None = None, timeout: float = TOOL_TIMEOUT_S) -> str:
    """Its stdout; OSError with one line when it fails or does not answer in time
    (then it is killed, not left behind)."""
    try:
        # As root: under the unit the agent is its own user, and these tools
        # get their capabilities (CAP_NET_ADMIN) from a root exec.
        proc = subprocess.run(
            args, input=stdin, text=True, capture_output=True, check=False, timeout=timeout,
            **privileges.as_root(),  # type: ignore[arg-type]
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise OSError(
            f"{args[0]} timed out after {timeout:g} s (killed): {' '.join(args[1:])}"
        ) from None
    if proc.returncode != 0:
        err = " ".join(proc.stderr.split())
        raise OSError(f"{args[0]} failed ({proc.returncode}): {err}")
    return proc.stdout
