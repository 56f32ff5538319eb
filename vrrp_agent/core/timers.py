"""VRRP timer formulas as plain functions of the protocol parameters.

RFC 3768 (VRRPv2) counts in whole seconds and its Skew_Time ignores the
advertisement interval; RFC 9568 (VRRPv3) scales Skew_Time by the master's
advertisement interval, so a fast interval also shortens the skew.
"""

# Timer names: the keys of `Router.timers`, also shown in `status` so an
# operator sees what the router waits for.
MASTER_DOWN = "master_down"
ADVER = "adver"
PREEMPT = "preempt"
GARP_DELAY = "garp_delay"
GARP_REFRESH = "garp_refresh"
VIP_RETRY = "vip_retry"


def skew_time(version: int, priority: int, master_adver_interval: float) -> float:
    """Seconds a backup of this priority waits beyond 3 intervals."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * master_adver_interval / 256


def master_down_interval(version: int, priority: int, master_adver_interval: float) -> float:
    """Seconds without an advertisement after which a backup declares the master down."""
    return 3 * master_adver_interval + skew_time(version, priority, master_adver_interval)


def interval_on_wire(version: int, seconds: float) -> int:
    """The advertisement interval field: whole seconds (v2) or centiseconds (v3)."""
    if version == 2:
        return int(round(seconds))
    return int(round(seconds * 100))


def interval_from_wire(version: int, value: int) -> float:
    """Seconds from the advertisement interval field (see `interval_on_wire`)."""
    return float(value) if version == 2 else value / 100
