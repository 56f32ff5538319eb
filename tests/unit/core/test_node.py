"""`Node`, the sans-I/O host core: tracking, faults, settling, reload and
status, driven with parsed configurations and a fake clock. No root."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_address

import yaml

from vrrp_agent.config import Config, parse
from vrrp_agent.core import AddVips, RemoveVips, Router, SendAdvert, State, StateChanged
from vrrp_agent.core.faults import FaultKey, FaultSource
from vrrp_agent.core.node import (
    ArbiterReading,
    InstanceActions,
    Node,
    NodeAction,
    NotifyGroup,
    NotifyInstance,
    ProbeArbiter,
    ProgramLvs,
    TrackingInputs,
    UseConfig,
    watched_links,
)
from vrrp_agent.core.timers import master_down_interval
from vrrp_agent.core.tracking import FileReading, LinkState, ScriptState
from vrrp_agent.io.instance_port import router_params
from vrrp_agent.wire import MCAST_V4, encode

LOCAL = IPv4Address("10.0.0.1")
UP, DOWN = ScriptState.UP, ScriptState.DOWN


def inst(vrid: int, priority: int = 100, **extra: object) -> dict[str, object]:
    return {
        "interface": "eth0",
        "virtual_router_id": vrid,
        "priority": priority,
        "virtual_ipaddress": [f"192.0.2.{vrid}/24"],
        **extra,
    }


def config(instances: dict[str, dict[str, object]], **sections: object) -> Config:
    return parse(yaml.safe_dump({"vrrp_instances": instances, **sections}), "<test>")


def routers_for(node: Node, cfg: Config) -> dict[str, Router]:
    return {
        n: Router(router_params(cfg, cfg.vrrp_instances[n], LOCAL)) for n in node.plan(cfg).fresh
    }


def started(cfg: Config, inputs: TrackingInputs | None = None) -> tuple[Node, list[NodeAction]]:
    node = Node(cfg)
    out = node.apply(cfg, 0.0, routers_for(node, cfg), inputs or TrackingInputs())
    return node, out


def router_actions(out: list[NodeAction], name: str | None = None) -> list[object]:
    return [
        a
        for batch in out
        if isinstance(batch, InstanceActions) and name in (None, batch.instance)
        for a in batch.actions
    ]


def to_master(node: Node, now: float = 10.0) -> list[NodeAction]:
    """Run the timers until every instance is master (nobody else is heard)."""
    out = node.on_timer(now)
    assert all(r.state is State.MASTER for r in node.routers.values()), out
    return out


CHK = {"chk": {"script": "/bin/true", "weight": -20}, "must": {"script": "/bin/true"}}


# ---------------------------------------------------------------- tracking


def test_a_weighted_script_moves_the_priority_and_a_weight_zero_one_faults() -> None:
    cfg = config({"VI_1": inst(1, track_script=["chk", "must"])}, vrrp_scripts=CHK)
    node, _ = started(cfg, TrackingInputs(scripts={"chk": UP, "must": UP}))
    to_master(node)
    r = node.routers["VI_1"]
    node.script_changed({"chk": DOWN}, 11.0)
    assert r.effective_priority == 80
    assert node.track_deltas["VI_1"] == {"track_script": -20, "track_interface": 0, "track_file": 0}
    out = node.script_changed({"must": DOWN}, 12.0)
    assert r.state is State.FAULT
    assert r.faults == {"script:must": "vrrp_script must failed"}
    assert [k.source for k in r.faults] == [FaultSource.SCRIPT]
    assert NotifyInstance(cfg.vrrp_instances["VI_1"], "FAULT", 80) in out
    node.script_changed({"must": UP}, 13.0)
    assert r.faults == {} and r.state is State.BACKUP


def test_a_fault_is_raised_before_the_priority_changes_and_cleared_after() -> None:
    cfg = config({"VI_1": inst(1, track_script=["chk", "must"])}, vrrp_scripts=CHK)
    node, _ = started(cfg, TrackingInputs(scripts={"chk": UP, "must": UP}))
    to_master(node)
    r = node.routers["VI_1"]
    # Both fail at once: the master goes to FAULT first, so its only advert
    # is the priority-0 one, never one at the lowered priority.
    out = node.script_changed({"chk": DOWN, "must": DOWN}, 11.0)
    adverts = [a.advert.priority for a in router_actions(out) if isinstance(a, SendAdvert)]
    assert adverts == [0]
    assert r.effective_priority == 80
    # Both recover: the priority is back before the fault clears, so the
    # backup's Master_Down is computed with the full priority.
    node.script_changed({"chk": UP, "must": UP}, 12.0)
    assert r.state is State.BACKUP
    assert r.timers["master_down"] == 12.0 + master_down_interval(3, 100, 1.0)


def test_own_link_and_tracked_interface_and_file_faults_use_typed_keys() -> None:
    cfg = config({"VI_1": inst(1, track_interface=["eth1"], track_file=["/run/flag"])})
    flag = FileReading("/run/flag")
    links = {"eth0": LinkState.UP, "eth1": LinkState.UP}
    node, _ = started(cfg, TrackingInputs(links=links, files={"/run/flag": flag}))
    to_master(node)
    r = node.routers["VI_1"]
    node.links_changed({"eth1": LinkState.DOWN}, 11.0)
    assert r.faults == {"iface:eth1": "tracked interface eth1 is down"}
    node.links_changed({"eth0": LinkState.DOWN}, 11.5)
    assert list(r.faults) == [
        FaultKey(FaultSource.IFACE, "eth1"),
        FaultKey(FaultSource.LINK, "eth0"),
    ]
    node.links_changed({"eth0": LinkState.UP, "eth1": LinkState.UP}, 12.0)
    assert r.faults == {} and r.state is State.BACKUP
    # Back under a new index, not rebound yet: gone, until the caller says otherwise.
    node.links_changed({}, 12.5, unbound={"eth0"})
    assert r.faults == {"link:eth0": "interface eth0 is gone"}
    node.links_changed({}, 13.0, unbound=())
    assert r.faults == {}
    flag.record("-1")
    node.files_changed({"/run/flag": flag}, 13.5)
    # Default weight 1: the value is the delta.
    assert r.effective_priority == 99 and r.faults == {}
    assert node.status(14.0)["instances"]["VI_1"]["track_file"] == {
        "/run/flag": {"value": -1, "weight": 1, "note": None}
    }


def test_in_a_sync_group_every_tracker_counts_with_weight_zero() -> None:
    cfg = config(
        {"VI_1": inst(1, track_script=["chk"]), "VI_2": inst(2)},
        vrrp_scripts=CHK,
        vrrp_sync_groups={"VG": {"group": ["VI_1", "VI_2"]}},
    )
    node, _ = started(cfg, TrackingInputs(scripts={"chk": UP}))
    out = node.on_timer(10.0)
    assert node.group_states == {"VG": "MASTER"}
    assert NotifyGroup(cfg.vrrp_sync_groups["VG"], "MASTER") in out
    out = node.script_changed({"chk": DOWN}, 11.0)
    # A priority drop on one member moves nothing: a FAULT, propagated.
    assert node.routers["VI_1"].effective_priority == 100
    assert node.routers["VI_1"].faults == {"script:chk": "vrrp_script chk failed"}
    assert node.routers["VI_2"].faults == {"sync:VG": "sync group VG: VI_1 in FAULT"}
    assert node.group_states == {"VG": "FAULT"}
    # Transitions are reported in the order they happened, then the group.
    notes = [a for a in out if isinstance(a, (NotifyInstance, NotifyGroup))]
    assert [(_who(a), a.state) for a in notes] == [
        ("VI_1", "FAULT"),
        ("VI_2", "FAULT"),
        ("VG", "FAULT"),
    ]


def _who(note: NotifyInstance | NotifyGroup) -> str:
    return note.instance.name if isinstance(note, NotifyInstance) else note.group.name


# ----------------------------------------------------------------- settling


def test_settle_reaches_a_fixed_point_and_holds_vips_for_lvs() -> None:
    cfg = config({"A": inst(1), "B": inst(2)}, vrrp_sync_groups={"G": {"group": ["A", "B"]}})
    node, _ = started(cfg)
    out = node.on_timer(10.0)
    assert node.holding == {"A", "B"}
    assert out[-1] == ProgramLvs(frozenset({"A", "B"}))
    assert [a for a in router_actions(out) if isinstance(a, AddVips)] == [AddVips(), AddVips()]
    # A peer with a higher priority wins A: B follows it out of MASTER.
    adv = node.routers["A"].advert(priority=200)
    payload = encode(adv, src=ip_address("10.0.0.9"), dst=MCAST_V4, pseudo_header=True)
    out = node.receive("eth0", 4, payload, ip_address("10.0.0.9"), MCAST_V4, 255, 11.0)
    assert {n: r.state for n, r in node.routers.items()} == {"A": State.BACKUP, "B": State.BACKUP}
    assert node.holding == set() and out[-1] == ProgramLvs(frozenset())
    assert len([a for a in router_actions(out) if isinstance(a, RemoveVips)]) == 2


def test_the_arbiter_gates_a_claim_and_faults_when_down() -> None:
    cfg = config({"VI_1": inst(1)}, arbiter={"addresses": ["192.0.2.254"]})
    node, _ = started(cfg)
    out = node.on_timer(10.0)
    r = node.routers["VI_1"]
    assert r.state is State.BACKUP and r.want is not None
    assert ProbeArbiter() in out
    assert node.status(10.0)["instances"]["VI_1"]["wants_master"]["waiting_for"] == (
        "arbiter: waiting for a reference address to answer"
    )
    refs = (IPv4Address("192.0.2.254"),)
    node.arbiter_round(ArbiterReading(refs, up=True, last_success=10.1), 10.1)
    assert r.state is State.MASTER
    node.arbiter_round(ArbiterReading(refs, up=False, last_success=10.1), 12.0)
    assert r.state is State.FAULT
    assert node.status(12.0)["instances"]["VI_1"]["faults"] == {
        "arbiter": "arbiter: none of 192.0.2.254 answers"
    }


def test_packets_that_belong_to_no_instance_are_counted() -> None:
    cfg = config({"VI_1": inst(1)})
    node, _ = started(cfg)
    src = ip_address("10.0.0.9")
    node.receive("eth0", 4, b"\x31\x01", src, MCAST_V4, 255, 1.0)
    adv = replace(node.routers["VI_1"].advert(), vrid=7)
    other = encode(adv, src=src, dst=MCAST_V4, pseudo_header=True)
    node.receive("eth0", 4, other, src, MCAST_V4, 255, 1.0)
    mine = encode(node.routers["VI_1"].advert(), src=src, dst=MCAST_V4, pseudo_header=True)
    node.receive("eth0", 4, mine, src, MCAST_V4, 64, 1.0)
    st = node.status(1.0)
    assert st["rx_dropped"] == {"truncated": 1, "unknown_vrid": 1}
    assert st["instances"]["VI_1"]["rx_dropped"] == {"ttl": 1}


# ------------------------------------------------------------------- reload


def test_apply_keeps_unchanged_routers_and_restarts_changed_ones_in_order() -> None:
    cfg = config({"VI_1": inst(1), "VI_2": inst(2), "VI_3": inst(3)})
    node, first = started(cfg)
    assert first[0] == UseConfig(cfg)
    to_master(node)
    kept = node.routers["VI_1"]
    new = config({"VI_1": inst(1), "VI_2": inst(2, priority=150), "VI_4": inst(4)})
    plan = node.plan(new)
    assert (plan.kept, plan.gone, plan.fresh) == (("VI_1",), ("VI_2", "VI_3"), ("VI_2", "VI_4"))
    out = node.apply(new, 20.0, routers_for(node, new), TrackingInputs())
    assert node.routers["VI_1"] is kept and kept.state is State.MASTER
    assert sorted(node.routers) == ["VI_1", "VI_2", "VI_4"]
    assert node.routers["VI_2"].params.priority == 150
    # The removed instances are reported the old way, before the switch.
    switch = out.index(UseConfig(new))
    stops = [a for a in out[:switch] if isinstance(a, NotifyInstance)]
    assert [(a.instance.name, a.state, a.instance.priority) for a in stops] == [
        ("VI_2", "STOP", 100),
        ("VI_3", "STOP", 100),
    ]
    assert all(
        b.instance in ("VI_2", "VI_3") for b in out[:switch] if isinstance(b, InstanceActions)
    )
    assert node.holding == {"VI_1"}


def test_shutdown_stops_everything_and_stops_the_groups_last() -> None:
    cfg = config({"A": inst(1), "B": inst(2)}, vrrp_sync_groups={"G": {"group": ["A", "B"]}})
    node, _ = started(cfg)
    node.on_timer(10.0)
    out = node.shutdown(11.0)
    notes = [a for a in out if isinstance(a, (NotifyInstance, NotifyGroup))]
    assert [a.state for a in notes] == ["STOP", "STOP", "STOP"]
    assert isinstance(notes[-1], NotifyGroup)
    adverts = [a.advert.priority for a in router_actions(out) if isinstance(a, SendAdvert)]
    assert adverts == [0, 0]
    assert node.routers == {} and node.next_deadline() is None
    assert node.group_states == {}


def test_state_changes_carry_the_router_states() -> None:
    cfg = config({"VI_1": inst(1)})
    _, out = started(cfg)
    changes = [a for a in router_actions(out) if isinstance(a, StateChanged)]
    assert [c.new for c in changes] == ["BACKUP"]


def test_a_batch_of_packets_is_settled_once_with_the_same_outcome_as_one_by_one() -> None:
    cfg = config({"A": inst(1), "B": inst(2)}, vrrp_sync_groups={"G": {"group": ["A", "B"]}})
    peer = ip_address("10.0.0.9")
    outcomes = []
    for batched in (False, True):
        node, _ = started(cfg)
        node.on_timer(10.0)
        packets = [
            (
                encode(
                    node.routers[n].advert(priority=200), src=peer, dst=MCAST_V4, pseudo_header=True
                ),
                peer,
                MCAST_V4,
                255,
            )
            for n in ("A", "B")
        ]
        if batched:
            out = node.receive_many("eth0", 4, packets, 11.0)
        else:
            out = [a for p in packets for a in node.receive("eth0", 4, *p, 11.0)]
        removals = [a for a in router_actions(out) if isinstance(a, RemoveVips)]
        states = {n: r.state for n, r in node.routers.items()}
        outcomes.append((states, node.holding, len(removals)))
        # Settled once for the batch: LVS is told once that nothing is held now.
        assert [a for a in out if isinstance(a, ProgramLvs)] == [ProgramLvs(frozenset())]
    assert outcomes[0] == outcomes[1]
    assert outcomes[1] == ({"A": State.BACKUP, "B": State.BACKUP}, set(), 2)


# ------------------------------------------------------- VIPs on other devices


def test_a_failed_add_shows_per_vip_and_a_vip_device_change_re_adds() -> None:
    cfg = config({"VI_1": inst(51, virtual_ipaddress=["192.0.2.51/24 dev eth1"])})
    node, _ = started(cfg)
    assert "eth1" in watched_links(cfg)
    to_master(node)
    node.vips_result("VI_1", {}, 10.0)
    st = node.status(10.0)["instances"]["VI_1"]  # type: ignore[index]
    assert st["holds_vips"] and st["vips"] == {"192.0.2.51/24": "present"}
    # eth1 goes: the master tries again, the add fails, status says so.
    out = node.links_changed({"eth0": LinkState.UP, "eth1": LinkState.GONE}, 10.5)
    assert AddVips() in router_actions(out, "VI_1")
    node.vips_result("VI_1", {"192.0.2.51/24": "ENODEV no such device eth1"}, 10.5)
    st = node.status(10.5)["instances"]["VI_1"]  # type: ignore[index]
    assert not st["holds_vips"]
    assert st["vips"] == {"192.0.2.51/24": "configured, not present: ENODEV no such device eth1"}
    assert st["state"] == "MASTER" and "vip_retry" in st["timers"]


# ---------------------------------------------------------------- use_vmac


def test_a_vmac_instance_hears_adverts_on_its_vmac_and_faults_when_it_goes() -> None:
    cfg = config({"VI_1": inst(1, use_vmac=True), "VI_2": inst(2)})
    assert watched_links(cfg) == {"eth0", "vrrp.1"}
    links = {"eth0": LinkState.UP, "vrrp.1": LinkState.UP}
    node, _ = started(cfg, TrackingInputs(links=links))
    to_master(node)
    src = ip_address("10.0.0.9")
    for vrid in (1, 2):
        adv = node.routers[f"VI_{vrid}"].advert(priority=200)
        payload = encode(adv, src=src, dst=MCAST_V4, pseudo_header=True)
        # VI_1's adverts come in on its vmac (private mode), VI_2's on eth0;
        # the other way round they are no instance's.
        node.receive("eth0" if vrid == 1 else "vrrp.1", 4, payload, src, MCAST_V4, 255, 11.0)
        assert node.routers[f"VI_{vrid}"].state is State.MASTER
        node.receive("vrrp.1" if vrid == 1 else "eth0", 4, payload, src, MCAST_V4, 255, 11.0)
        assert node.routers[f"VI_{vrid}"].state is State.BACKUP
    assert node.rx_dropped["unknown_vrid"] == 2
    node.links_changed({"vrrp.1": LinkState.GONE}, 12.0)
    assert node.routers["VI_1"].faults == {"link:vrrp.1": "interface vrrp.1 is gone"}
    assert node.routers["VI_2"].faults == {}
    status = node.status(12.0)["instances"]
    assert (status["VI_1"]["vmac_interface"], status["VI_1"]["vmac_address"]) == (
        "vrrp.1",
        "00:00:5e:00:01:01",
    )
    assert status["VI_2"]["vmac_interface"] is None


def test_vmac_xmit_base_hears_adverts_on_the_base() -> None:
    cfg = config({"VI_1": inst(1, use_vmac=True, vmac_xmit_base=True)})
    node, _ = started(cfg)
    to_master(node)
    src = ip_address("10.0.0.9")
    adv = node.routers["VI_1"].advert(priority=200)
    payload = encode(adv, src=src, dst=MCAST_V4, pseudo_header=True)
    node.receive("eth0", 4, payload, src, MCAST_V4, 255, 11.0)
    assert node.routers["VI_1"].state is State.BACKUP
