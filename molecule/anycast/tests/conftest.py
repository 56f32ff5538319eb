import sys
from pathlib import Path

# The lab kit's drills module (molecule/shared) is shared by the scenarios.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

import drills  # noqa: E402

drills.NODES = ("node1", "node2", "node3")
drills.NODE_IP.update(node1="10.89.94.11", node2="10.89.94.12", node3="10.89.94.13")
drills.VIP_DEV = "lo"
drills.ROUTER = "router"
