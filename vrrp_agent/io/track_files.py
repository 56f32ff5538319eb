"""Reading track_file contents; what they mean is core.tracking's business."""

from __future__ import annotations

import os

from vrrp_agent.io.host_errors import CANNOT_LOOK, CannotLook

# keepalived reads at most 127 bytes; a number never needs more.
_MAX_READ = 127


def read_track_file(path: str) -> tuple[str | None, str | None]:
    """(text, None), or (None, why) when the file is missing or unreadable.

    Non-blocking, as keepalived opens it: a FIFO or a device at that path
    must not stall the event loop. Raises CannotLook when the host is short
    of descriptors or memory: that says nothing about the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, "missing"
    except OSError as err:
        if err.errno in CANNOT_LOOK:
            raise CannotLook(err.errno, err.strerror) from None
        return None, f"unreadable ({err.strerror or err})"
    try:
        data = os.read(fd, _MAX_READ)
    except OSError as err:
        return None, f"unreadable ({err.strerror or err})"
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace"), None
