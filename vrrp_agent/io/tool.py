"""Running the external tools the agent drives (nft, ip) from its event loop."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from vrrp_agent.io import privileges

# nft and ip answer in milliseconds; one that has not answered in this long is
# wedged (a stuck netlink lock, a hung kernel), and every advert of every
# instance waits while the loop waits for it.
TOOL_TIMEOUT_S = 5.0


def run_tool(args: list[str], stdin: str | None = None, timeout: float = TOOL_TIMEOUT_S) -> str:
    """Its stdout; OSError with one line when it fails or does not answer in time
    (then it is killed, not left behind)."""
    try:
        with _input(stdin) as fd:
            # As root: under the unit the agent is its own user, and these tools
            # get their capabilities (CAP_NET_ADMIN) from a root exec.
            proc = subprocess.run(
                args, stdin=fd, text=True, capture_output=True, check=False, timeout=timeout,
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


@contextlib.contextmanager
def _input(text: str | None) -> Iterator[int]:
    """The tool's stdin: a memfd holding `text` (/dev/null without), not a pipe.

    `nft -j -f -` opens /dev/stdin, that is the pipe's inode again, and a pipe
    belongs to its creator with mode 0600: the agent, as its own user, made
    it, and nft, root without CAP_DAC_OVERRIDE (the unit's bounding set), was
    refused ("Could not open file /dev/stdin: Permission denied"), so the LVS
    rules were never applied. A memfd's inode is open to everyone. The whole
    text is written before the tool starts: nothing can block on a full pipe.
    """
    if text is None:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    else:
        fd = os.memfd_create("vrrp-agent-tool-input", os.MFD_CLOEXEC)
        try:
            data = memoryview(text.encode())
            while data:
                data = data[os.write(fd, data) :]
            os.lseek(fd, 0, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
    try:
        yield fd
    finally:
        os.close(fd)
