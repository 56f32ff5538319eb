"""Errors that say the host is short of something (descriptors, memory), not
what it was asked about: a link, an interface index, a track file.

Read as an answer, such an error turned "cannot look" into "link down" or
"file missing" and faulted a healthy master; callers treat it as no news and
keep what they knew."""

from __future__ import annotations

import errno

CANNOT_LOOK = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class CannotLook(OSError):
    """The host could not answer now."""
