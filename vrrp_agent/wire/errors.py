"""The one exception type the wire layer raises for bad input from the network."""

from __future__ import annotations

from typing import Literal

DecodeReason = Literal["truncated", "version", "type", "length", "checksum", "family", "ip_header"]


class DecodeError(ValueError):
    """A received packet that must be dropped.

    ``reason`` is a short stable word, used as a counter key in ``status``;
    ``str(err)`` is a sentence for the log.
    """

    reason: DecodeReason

    def __init__(self, reason: DecodeReason, message: str | None = None) -> None:
        # Both go into args so the exception survives pickling and copy intact.
        super().__init__(reason, message or reason)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[1])
