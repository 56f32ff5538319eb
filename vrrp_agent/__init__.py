"""vrrp-agent: a VRRP v2/v3 daemon using keepalived's configuration vocabulary."""

__version__ = "0.1.0"
