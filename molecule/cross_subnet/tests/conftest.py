import sys
from pathlib import Path

import pytest

# The drills and the single-VIP tests are shared by the scenarios.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

import drills  # noqa: E402
import single_vip  # noqa: E402

# This lab (molecule.yml): a network per node, the VIP on lo, a router between.
drills.NODE_IP.update(node1="10.89.91.11", node2="10.89.92.12", client="10.89.93.50")
drills.NODE_NETWORK.update(node1="vrrp-rack1", node2="vrrp-rack2")
drills.NODE_GATEWAY.update(node1="10.89.91.254", node2="10.89.92.254")
drills.VIP_DEV = "lo"
drills.ROUTER = "router"
single_vip.VIP = "10.89.255.1"
# The routing protocol's delays (the nodes' and the router's FRR alike): LSA and
# SPF throttling are off (0 ms initial delay, min-arrival 0) so an address change
# reaches the router's FIB within its SPF run; MARGIN covers the LSA's flooding,
# zebra's install and the poll (an exec per look).
drills.ROUTE_BOUND = drills.MARGIN
# Thawed, node1 still holds the VIP, but the router took it for dead (BFD) and
# tore the adjacency down: the route is back once a hello each way brings it to
# 2-Way and the database exchange (a few round trips) to Full. The hello
# interval is vrrp_vip_routing_ospf_hello_interval (1 s).
OSPF_HELLO = 1.0
drills.ROUTE_REJOIN_BOUND = 2 * OSPF_HELLO + drills.MARGIN


@pytest.fixture
def preempt() -> bool:
    return True
