"""dual_master, exclusive: node1 masters VIP1, node2 masters VIP2, and no node
ever holds both. A failing check on node1 swaps the two VIPs (one detection:
both instances track it) and recovery swaps them back; a node that is gone
leaves its VIP unserved, because the survivor already holds the other one."""

from __future__ import annotations

from drills import (
    CHECK_WEIGHT,
    DRILLS,
    MARGIN,
    NODE_IP,
    NODES,
    PRIO_BACKUP,
    PRIO_MASTER,
    agent_status,
    healthy,
    host,
    master_down,
    page,
    skew,
    watch_vips,
)

from labkit.podman import Probe
from labkit.poll import wait_for

VIP1, VIP2 = "10.89.90.101", "10.89.90.102"
PAIR = (VIP1, VIP2)
HOME = {VIP1: ["node1"], VIP2: ["node2"]}
SWAPPED = {VIP1: ["node2"], VIP2: ["node1"]}

NGINX, AGENT = DRILLS["nginx_stopped"], DRILLS["agent_stopped"]
# node1's check fails: its priorities drop to 90 (VI_1) and 40 (VI_2). node2's
# VI_1 backup (100) ignores the weaker master and claims when Master_Down runs
# out (NGINX.failover_bound); winning that contested election displaces its
# partner VI_2, which resigns with priority 0 in the same step, and node1's VI_2
# takes it after Skew_Time at its degraded priority.
SWAP_VIP1 = NGINX.failover_bound
SWAP_VIP2 = SWAP_VIP1 + skew(PRIO_BACKUP + CHECK_WEIGHT)
# The check rises: node1's VI_1 (150) preempts node2's 100 when the Master_Down
# timer set while it was at 90 runs out (NGINX.failback_bound), displacing its
# own VI_2 with priority 0; node2's VI_2 takes it back after Skew_Time(150).
BACK_VIP1 = NGINX.failback_bound
BACK_VIP2 = BACK_VIP1 + skew(PRIO_MASTER)
# node2's agent stops: its VI_2 resigns and node1's VI_2 would claim after
# Skew_Time; watch for longer than even Master_Down to see that it never does.
UNSERVED_FOR = master_down() + MARGIN


def at_home() -> None:
    """Each drill starts healed: checks risen, each VIP on its own master."""
    wait_for("both nodes healthy", lambda: all(healthy(n) for n in NODES), 15, 0.2)
    watch_vips(HOME, 15, apart=PAIR)


def test_agent_and_nginx_run_on_both_nodes() -> None:
    for node in NODES:
        for unit in ("vrrp-agent", "nginx"):
            svc = host(node).service(unit)
            assert svc.is_running and svc.is_enabled, f"{unit} on {node}"
        cfg = host(node).file("/etc/vrrp-agent/agent.yml")
        assert cfg.contains("exclusive_with: VI_2") and cfg.contains("exclusive_with: VI_1")


def test_each_node_holds_its_own_vip_only() -> None:
    at_home()
    # A few seconds of polling: the pair stays apart and at home.
    watch_vips(HOME, 1, apart=PAIR, stay=3)
    assert page(VIP1) == "Hello from node1"
    assert page(VIP2) == "Hello from node2"
    for node, mine in (("node1", "VI_1"), ("node2", "VI_2")):
        st = agent_status(node)["instances"]
        other = "VI_2" if mine == "VI_1" else "VI_1"
        assert (st[mine]["state"], st[other]["state"]) == ("MASTER", "BACKUP"), node
        assert st[mine]["exclusive"]["with"] == other
        assert st[other]["exclusive"]["with"] == mine
        # At home nobody claims the other VIP (its master is stronger), so
        # nothing is held back, whatever swaps happened before.
        assert st[other]["exclusive"]["held_back"] is False, st[other]


def test_failing_check_swaps_the_vips_and_recovery_swaps_them_back() -> None:
    at_home()
    probe = Probe.start(VIP1, SWAP_VIP2 + BACK_VIP2 + 6)
    NGINX.breaks("node1")
    try:
        took = watch_vips(SWAPPED, SWAP_VIP2 + 5, apart=PAIR)
        print(
            f"\nnginx_stopped: VIP1 on node2 after {took[VIP1]:.2f}s (bound {SWAP_VIP1:.2f}s), "
            f"VIP2 on node1 after {took[VIP2]:.2f}s (bound {SWAP_VIP2:.2f}s)"
        )
        assert took[VIP1] <= SWAP_VIP1
        assert took[VIP2] <= SWAP_VIP2
        wait_for("the client to reach node2 via VIP1", lambda: page(VIP1) == "Hello from node2", 3)
        # VIP2 now sits on node1, whose nginx is stopped: exclusivity, not health,
        # decides where it goes, so VIP2's clients are refused until the swap back.
        st = agent_status("node2")["instances"]
        assert (st["VI_1"]["state"], st["VI_2"]["state"]) == ("MASTER", "BACKUP")
        assert st["VI_2"]["exclusive"]["displaced"], st["VI_2"]
        # node2's VI_2 (150) hears node1's weaker 40 and claims once its
        # Master_Down runs out; that claim is held back, and says why.
        wait_for(
            "node2's VI_2 claim to be held back",
            lambda: agent_status("node2")["instances"]["VI_2"]["exclusive"]["held_back"],
            master_down() + MARGIN,
            0.2,
        )
    finally:
        NGINX.heals("node1")
    back = watch_vips(HOME, BACK_VIP2 + 5, apart=PAIR)
    print(
        f"nginx_stopped: VIP1 back on node1 after {back[VIP1]:.2f}s (bound {BACK_VIP1:.2f}s), "
        f"VIP2 back on node2 after {back[VIP2]:.2f}s (bound {BACK_VIP2:.2f}s)"
    )
    assert back[VIP1] <= BACK_VIP1
    assert back[VIP2] <= BACK_VIP2
    assert page(VIP1) == "Hello from node1"
    assert page(VIP2) == "Hello from node2"
    downtime, answered = probe.downtime()
    print(f"nginx_stopped: client-visible downtime on VIP1 {downtime:.2f}s; answered by {answered}")
    assert downtime <= SWAP_VIP1 + 1.0  # + the client's own ARP/TCP retry


def test_a_lost_peer_leaves_its_vip_unserved_until_it_returns() -> None:
    at_home()
    probe = Probe.start(VIP1, UNSERVED_FOR + AGENT.failback_bound + 6)
    AGENT.breaks("node2")
    try:
        watch_vips({VIP1: ["node1"], VIP2: []}, 2, apart=PAIR, stay=UNSERVED_FOR)
        print(f"\nagent_stopped on node2: VIP2 held by nobody for {UNSERVED_FOR:.2f}s")
        st = agent_status("node1")["instances"]
        assert st["VI_1"]["state"] == "MASTER"
        assert st["VI_2"]["state"] == "BACKUP"
        excl = st["VI_2"]["exclusive"]
        assert (excl["with"], excl["held_back"]) == ("VI_1", True), excl
        assert isinstance(excl["reason"], str) and excl["reason"], excl
        print(f"node1 VI_2 held back: {excl['reason']}")
        assert page(VIP1) == "Hello from node1"
    finally:
        AGENT.heals("node2")
    back = watch_vips(HOME, AGENT.failback_bound + 5, apart=PAIR)
    print(
        f"agent_stopped: VIP2 back on node2 after {back[VIP2]:.2f}s "
        f"(bound {AGENT.failback_bound:.2f}s)"
    )
    assert back[VIP2] <= AGENT.failback_bound
    assert page(VIP2) == "Hello from node2"
    vi2 = agent_status("node1")["instances"]["VI_2"]
    assert (vi2["state"], vi2["master_ip"]) == ("BACKUP", NODE_IP["node2"]), vi2
    downtime, answered = probe.downtime()
    print(f"agent_stopped: client-visible downtime on VIP1 {downtime:.2f}s; answered by {answered}")
    assert answered == ["Hello from node1"]
    assert downtime <= 1.0  # node1 kept VIP1 throughout: a probe's own timeout at most
