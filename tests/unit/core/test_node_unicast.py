"""Unicast receive rules in `Node`: the TTL of adverts that crossed routers,
keepalived's per-peer min_ttl/max_ttl, and an instance with no peer at all."""

from __future__ import annotations

from ipaddress import ip_address

from vrrp_agent.core import AddVips, RemoveVips, SendAdvert, State
from vrrp_agent.core.node import TrackingInputs, watched_links
from vrrp_agent.core.tracking import LinkState, ScriptState
from vrrp_agent.wire import MCAST_V4, encode

from .test_node import config, inst, router_actions, started, to_master

PEER = ip_address("10.0.1.2")
OTHER = ip_address("10.0.1.3")


def advert_from(node, src, priority: int = 200) -> bytes:  # type: ignore[no-untyped-def]
    adv = node.routers["VI_1"].advert(priority=priority)
    return encode(adv, src=src, dst=ip_address("10.0.0.1"), pseudo_header=True)


def test_multicast_keeps_ttl_255_exactly() -> None:
    node, _ = started(config({"VI_1": inst(1)}))
    adv = encode(node.routers["VI_1"].advert(priority=200), src=PEER, dst=MCAST_V4,
                 pseudo_header=True)  # fmt: skip
    node.receive("eth0", 4, adv, PEER, MCAST_V4, 254, 1.0)
    st = node.status(1.0)["instances"]["VI_1"]
    assert st["rx_dropped"] == {"ttl": 1} and st["stats"]["last_rx_ttl"] is None
    assert st["unicast"] is False and "unicast_peer_ttl" not in st
    node.receive("eth0", 4, adv, PEER, MCAST_V4, 255, 1.1)
    assert node.status(1.1)["instances"]["VI_1"]["stats"]["last_rx_ttl"] == 255


def test_unicast_accepts_any_ttl_from_a_peer_without_a_range() -> None:
    node, _ = started(config({"VI_1": inst(1, unicast_peer=[str(PEER)])}))
    r = node.routers["VI_1"]
    node.receive("eth0", 4, advert_from(node, PEER), PEER, ip_address("10.0.0.1"), 254, 1.0)
    assert r.master_ip == PEER and r.stats.adverts_received == 1
    st = node.status(1.0)["instances"]["VI_1"]
    assert st["stats"]["last_rx_ttl"] == 254 and st["rx_dropped"] == {}
    assert st["unicast"] is True and st["unicast_peer"] == [str(PEER)]


def test_a_peer_with_a_range_is_held_to_it() -> None:
    peers = [f"{PEER} min_ttl 255", {"address": str(OTHER), "min_ttl": 250, "max_ttl": 254}]
    node, _ = started(config({"VI_1": inst(1, unicast_peer=peers)}))
    r = node.routers["VI_1"]
    dst = ip_address("10.0.0.1")
    node.receive("eth0", 4, advert_from(node, PEER), PEER, dst, 254, 1.0)  # crossed a router
    node.receive("eth0", 4, advert_from(node, OTHER), OTHER, dst, 255, 1.0)  # above max_ttl
    node.receive("eth0", 4, advert_from(node, OTHER), OTHER, dst, 249, 1.0)  # below min_ttl
    assert r.stats.adverts_received == 0 and r.stats.rx_dropped == {"ttl": 3}
    node.receive("eth0", 4, advert_from(node, OTHER), OTHER, dst, 253, 1.1)
    node.receive("eth0", 4, advert_from(node, PEER), PEER, dst, 255, 1.2)
    st = node.status(1.2)["instances"]["VI_1"]
    assert st["stats"]["adverts_received"] == 2 and st["stats"]["last_rx_ttl"] == 255
    assert st["unicast_peer_ttl"] == {str(PEER): [255, 255], str(OTHER): [250, 254]}
    assert st["unicast_peer"] == [str(PEER), str(OTHER)]


def test_unicast_without_peers_is_master_alone_and_sends_nothing() -> None:
    cfg = config({"VI_1": inst(1, unicast_peer=[], unicast_src_ip="10.0.0.1")})
    node, _ = started(cfg)
    r = node.routers["VI_1"]
    out = to_master(node)
    assert not [a for a in router_actions(out) if isinstance(a, SendAdvert)]
    out = node.on_timer(11.0)  # an advert interval later: still nothing on the wire
    assert not [a for a in router_actions(out) if isinstance(a, SendAdvert)]
    assert r.state is State.MASTER and r.stats.adverts_sent == 0
    # whoever talks in this VRID is nobody we listen to
    node.receive("eth0", 4, advert_from(node, PEER, 254), PEER, ip_address("10.0.0.1"), 255, 11.5)
    assert r.state is State.MASTER and r.stats.rx_dropped == {"not_peer": 1}
    st = node.status(11.5)["instances"]["VI_1"]
    assert st["unicast"] is True and st["unicast_peer"] == []
    assert st["stats"]["adverts_sent"] == 0
    # shutting down tells nobody either
    assert not [a for a in router_actions(node.shutdown(12.0)) if isinstance(a, SendAdvert)]


CHK = {"must": {"script": "/bin/true", "weight": 0}}


def test_unicast_without_peers_faults_on_a_weight_zero_script_and_rises_back() -> None:
    cfg = config(
        {"VI_1": inst(1, unicast_peer=[], unicast_src_ip="10.0.0.1", track_script=["must"])},
        vrrp_scripts=CHK,
    )
    node, _ = started(cfg, TrackingInputs(scripts={"must": ScriptState.UP}))
    r = node.routers["VI_1"]
    to_master(node)
    out = node.script_changed({"must": ScriptState.DOWN}, 11.0)
    assert r.state is State.FAULT
    assert [a for a in router_actions(out) if isinstance(a, RemoveVips)]
    node.script_changed({"must": ScriptState.UP}, 12.0)
    assert r.state is State.BACKUP
    node.on_timer(12.0 + r.master_down + 0.01)
    assert r.state is State.MASTER


def test_a_virtual_routes_device_is_watched_like_a_vips() -> None:
    routes = ["10.9.0.0/16 via 10.0.0.254 dev eth2", "blackhole 10.8.0.0/16"]
    cfg = config({"VI_1": inst(1, virtual_routes=routes)})
    assert watched_links(cfg) == {"eth0", "eth2"}
    node, _ = started(cfg)
    to_master(node)
    out = node.links_changed({"eth2": LinkState.GONE}, 11.0)
    assert [a for a in router_actions(out) if isinstance(a, AddVips)]
