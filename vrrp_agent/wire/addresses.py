"""The one IP address alias every layer uses."""

from ipaddress import IPv4Address, IPv6Address
from typing import Union

# Union, not `|`: an alias is evaluated at run time, and the agent runs on Python 3.9.
IPAddr = Union[IPv4Address, IPv6Address]
