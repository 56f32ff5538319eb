"""vrrp_agent.metrics: the status document as keepalived-exporter's metric families.

Rendered with prometheus_client's own exposition and parsed back with its own
parser, so what is asserted is what a Prometheus server would store.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vrrp_agent.metrics import ip_label, registry_for

from .core.fabric import Fabric

KEEPALIVED_COUNTERS = [
    "keepalived_gratuitous_arp_delay",
    "keepalived_advertisements_received",
    "keepalived_advertisements_sent",
    "keepalived_become_master",
    "keepalived_release_master",
    "keepalived_packet_length_errors",
    "keepalived_advertisements_interval_errors",
    "keepalived_ip_ttl_errors",
    "keepalived_invalid_type_received",
    "keepalived_address_list_errors",
    "keepalived_authentication_invalid",
    "keepalived_authentication_mismatch",
    "keepalived_authentication_failure",
    "keepalived_priority_zero_received",
    "keepalived_priority_zero_sent",
]


def render(doc: dict[str, Any]) -> str:
    return generate_latest(registry_for(lambda: doc)).decode()


def scrape(doc: dict[str, Any]) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(render(doc))}


def samples(fams: dict[str, Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples}


def value(fams: dict[str, Any], name: str, **labels: str) -> float:
    matches = [
        s.value for s in fams[name].samples if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, fams[name].samples)
    return matches[0]


def instance(**kw: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "state": "MASTER",
        "priority": 100,
        "effective_priority": 80,
        "interface": "eth0",
        "vmac_interface": None,
        "virtual_router_id": 51,
        "virtual_ipaddress": ["192.168.1.100/32", "192.168.1.101/24", "2001:db8::1/128"],
        "virtual_ipaddress_excluded": ["10.9.9.9/32"],
        "vip_dev": {"192.168.1.100/32": "eth0", "192.168.1.101/24": "eth1",
                    "2001:db8::1/128": "eth0", "10.9.9.9/32": "eth2"},
        "garp_master_delay": 5.0,
        "holds_vips": True,
        "last_transition_reason": "master down timer expired",
        "last_transition_at": 1700000000.5,
        "stats": {"adverts_sent": 40, "adverts_received": 7, "became_master": 2,
                  "released_master": 1, "priority_zero_sent": 1, "priority_zero_received": 3,
                  "rx_address_mismatch": 4, "tx_errors": 0},
        "rx_dropped": {"ttl": 2, "truncated": 1, "length": 1, "interval": 5, "zero_interval": 1,
                       "type": 6, "auth_invalid": 7, "auth_type": 8, "auth": 9, "checksum": 10},
        "track_interface": {"eth1": {"state": "UP", "weight": 0},
                            "eth3": {"state": "DOWN", "weight": -10}},
        "track_file": {"/run/f": {"value": 12, "weight": 1, "note": None}},
    }  # fmt: skip
    st.update(kw)
    return st


def document(**instances: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0.1.0",
        "router_id": "node1",
        "reloads": 2,
        "instances": instances or {"VI_1": instance()},
        "vrrp_sync_groups": {"VG1": "MASTER"},
        "vrrp_scripts": {
            "chk_ok": {"state": "UP", "run_state": "running", "disabled": None},
            "chk_bad": {"state": "DOWN", "run_state": "idle", "disabled": None},
            "chk_killed": {"state": "UP", "run_state": "forcing_termination", "disabled": None},
            "chk_off": {"state": "UP", "run_state": "idle", "disabled": "insecure"},
        },
        "notify": {"queued": 2, "running": None, "coalesced": 3,
                   "outcomes": {"ok": 5, "timed_out": 1}, "fifo": None},
        "arbiter": {"state": "UP", "addresses": {
            "192.0.2.254": {"last_answer_age": 0.2, "error": None},
            "192.0.2.253": {"last_answer_age": None, "error": "timeout"}}},
        "virtual_servers": [{"virtual_server": "10.0.0.100:80/TCP", "active": True,
                             "real_servers": {"10.0.0.1:80": {"state": "UP"},
                                              "10.0.0.2:80": {"state": "DOWN"}}}],
        "smtp": {"queued": 1, "sent": 4, "failed": 2, "dropped": 0},
        "rx_dropped": {"unknown_vrid": 3},
        "logging": {"dropped": 11, "backlog_bytes": 0},
    }  # fmt: skip


def test_names_types_and_no_created_series() -> None:
    text = render(document())
    fams = scrape(document())
    assert "_created" not in text
    assert fams["keepalived_up"].type == "gauge"
    assert value(fams, "keepalived_up") == 1
    for name in KEEPALIVED_COUNTERS:
        assert fams[name].type == "counter", name
        # The exporter's exact sample names, with its labels.
        (sample,) = fams[name].samples
        assert sample.name == f"{name}_total"
        assert sorted(sample.labels) == ["iname", "intf", "vrid"]
        assert f"\n{name}_total{{" in text
    for name in ("keepalived_vrrp_state", "keepalived_vrrp_excluded_state",
                 "keepalived_script_status", "keepalived_script_state"):  # fmt: skip
        assert fams[name].type == "gauge", name
    assert fams["keepalived_vrrp_state"].documentation == "State of vrrp"
    assert "# HELP keepalived_become_master_total Became master" in text


def test_vrrp_state_one_series_per_vip_with_keepalived_addresses() -> None:
    fams = scrape(document())
    assert samples(fams, "keepalived_vrrp_state") == {
        (("iname", "VI_1"), ("intf", "eth0"), ("ip_address", "192.168.1.100"), ("vrid", "51")): 2,
        (
            ("iname", "VI_1"),
            ("intf", "eth1"),
            ("ip_address", "192.168.1.101/24"),
            ("vrid", "51"),
        ): 2,
        (("iname", "VI_1"), ("intf", "eth0"), ("ip_address", "2001:db8::1"), ("vrid", "51")): 2,
    }
    assert samples(fams, "keepalived_vrrp_excluded_state") == {
        (("iname", "VI_1"), ("intf", "eth2"), ("ip_address", "10.9.9.9"), ("vrid", "51")): 2,
    }


def test_state_values_and_an_instance_without_vips() -> None:
    doc = document(
        VI_B=instance(state="BACKUP", virtual_ipaddress=[], virtual_ipaddress_excluded=[],
                      interface="eth5", vmac_interface="vrrp.52", virtual_router_id=52),
        VI_F=instance(state="FAULT"),
        VI_I=instance(state="INIT"),
    )  # fmt: skip
    fams = scrape(doc)
    assert value(fams, "keepalived_vrrp_state", iname="VI_B") == 1
    # No VIPs: one series with an empty ip_address, on the interface it sends on.
    (s,) = [s for s in fams["keepalived_vrrp_state"].samples if s.labels["iname"] == "VI_B"]
    assert s.labels == {"iname": "VI_B", "intf": "vrrp.52", "vrid": "52", "ip_address": ""}
    assert {s.value for s in fams["keepalived_vrrp_state"].samples
            if s.labels["iname"] == "VI_F"} == {3}  # fmt: skip
    assert {s.value for s in fams["keepalived_vrrp_state"].samples
            if s.labels["iname"] == "VI_I"} == {0}  # fmt: skip


def test_counters_map_stats_and_drop_reasons() -> None:
    fams = scrape(document())
    lab = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    expected = {
        "keepalived_gratuitous_arp_delay": 5.0,
        "keepalived_advertisements_received": 7,
        "keepalived_advertisements_sent": 40,
        "keepalived_become_master": 2,
        "keepalived_release_master": 1,
        "keepalived_packet_length_errors": 2,  # truncated + length
        "keepalived_advertisements_interval_errors": 6,  # interval + zero_interval
        "keepalived_ip_ttl_errors": 2,
        "keepalived_invalid_type_received": 6,
        "keepalived_address_list_errors": 4,
        "keepalived_authentication_invalid": 7,
        "keepalived_authentication_mismatch": 8,
        "keepalived_authentication_failure": 9,
        "keepalived_priority_zero_received": 3,
        "keepalived_priority_zero_sent": 1,
    }
    for name, want in expected.items():
        assert value(fams, name, **lab) == want, name
    # Every reason, also those keepalived has no counter for.
    assert value(fams, "vrrp_agent_rx_dropped", reason="checksum") == 10
    assert value(fams, "vrrp_agent_rx_unattributed_dropped", reason="unknown_vrid") == 3


def test_scripts() -> None:
    fams = scrape(document())
    assert samples(fams, "keepalived_script_status") == {
        (("name", "chk_ok"),): 1, (("name", "chk_bad"),): 0,
        (("name", "chk_killed"),): 1, (("name", "chk_off"),): 0,
    }  # fmt: skip
    assert samples(fams, "keepalived_script_state") == {
        (("name", "chk_ok"),): 1, (("name", "chk_bad"),): 0,
        (("name", "chk_killed"),): 3, (("name", "chk_off"),): 0,
    }  # fmt: skip


def test_agent_extras() -> None:
    fams = scrape(document())
    lab = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    assert value(fams, "vrrp_agent_priority", **lab) == 100
    assert value(fams, "vrrp_agent_effective_priority", **lab) == 80
    assert value(fams, "vrrp_agent_last_transition_timestamp_seconds", **lab) == 1700000000.5
    assert value(fams, "vrrp_agent_transition_reason_info", **lab,
                 reason="master down timer expired") == 1  # fmt: skip
    assert value(fams, "vrrp_agent_holds_vips", iname="VI_1") == 1
    assert value(fams, "vrrp_agent_track_interface_up", interface="eth1") == 1
    assert value(fams, "vrrp_agent_track_interface_up", interface="eth3") == 0
    assert value(fams, "vrrp_agent_track_file_value", file="/run/f") == 12
    assert value(fams, "vrrp_agent_sync_group_state", group="VG1") == 2
    assert value(fams, "vrrp_agent_arbiter_up") == 1
    assert value(fams, "vrrp_agent_arbiter_reachable", address="192.0.2.254") == 1
    assert value(fams, "vrrp_agent_arbiter_reachable", address="192.0.2.253") == 0
    assert (
        value(fams, "vrrp_agent_virtual_server_programmed", virtual_server="10.0.0.100:80/TCP") == 1
    )
    assert value(fams, "vrrp_agent_real_server_up", real_server="10.0.0.2:80") == 0
    assert value(fams, "vrrp_agent_real_server_up", real_server="10.0.0.1:80") == 1
    assert value(fams, "vrrp_agent_notify_queue_length") == 2
    assert samples(fams, "vrrp_agent_notify_hooks") == {
        (("outcome", "ok"),): 5, (("outcome", "failed"),): 0,
        (("outcome", "timed_out"),): 1, (("outcome", "not_started"),): 0,
    }  # fmt: skip
    assert value(fams, "vrrp_agent_notify_coalesced") == 3
    assert value(fams, "vrrp_agent_smtp_sent") == 4
    assert value(fams, "vrrp_agent_logging_dropped") == 11
    assert value(fams, "vrrp_agent_reloads") == 2
    assert value(fams, "vrrp_agent_info", router_id="node1") == 1
    for fam in fams.values():
        assert fam.documentation, fam.name


def test_an_empty_document_still_renders() -> None:
    fams = scrape({"instances": {}})
    assert value(fams, "keepalived_up") == 1
    assert "vrrp_agent_arbiter_up" not in fams


def test_ip_label() -> None:
    assert ip_label("10.0.0.1/32") == "10.0.0.1"
    assert ip_label("10.0.0.1/24") == "10.0.0.1/24"
    assert ip_label("fe80::1/128") == "fe80::1"
    assert ip_label("fe80::1/64") == "fe80::1/64"
    assert ip_label("10.0.0.1") == "10.0.0.1"


def test_a_real_node_through_a_failover() -> None:
    """Node.status of two fake hosts: MASTER 2 / BACKUP 1, then the backup
    takes over (the master in FAULT) and its become_master goes up by exactly one."""
    fab = Fabric()
    fab.add_host("a", "10.0.0.1", {"VI_1": (51, 200)})
    fab.add_host("b", "10.0.0.2", {"VI_1": (51, 100)})
    fab.start("a")
    fab.start("b")
    fab.run_until(10.0)

    def fams(host: str) -> dict[str, Any]:
        return scrape({"instances": fab.hosts[host].node.status(fab.now)["instances"]})

    lab = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    a, b = fams("a"), fams("b")
    assert value(a, "keepalived_vrrp_state", **lab, ip_address="192.0.2.51/24") == 2
    assert value(b, "keepalived_vrrp_state", **lab, ip_address="192.0.2.51/24") == 1
    before = value(b, "keepalived_become_master", **lab)
    sent = value(a, "keepalived_advertisements_sent", **lab)
    assert value(b, "keepalived_advertisements_received", **lab) > 0
    fab.set_fault("a", "VI_1", "test")  # FAULT: priority 0 sent, mastership released
    fab.run_until(20.0)
    a, b = fams("a"), fams("b")
    assert value(b, "keepalived_vrrp_state", **lab, ip_address="192.0.2.51/24") == 2
    assert value(b, "keepalived_become_master", **lab) == before + 1
    assert value(b, "keepalived_priority_zero_received", **lab) == 1
    assert value(a, "keepalived_priority_zero_sent", **lab) == 1
    assert value(a, "keepalived_release_master", **lab) == 1
    assert value(a, "keepalived_advertisements_sent", **lab) == sent + 1
    assert value(a, "keepalived_vrrp_state", **lab, ip_address="192.0.2.51/24") == 3


def test_the_agent_status_document_carries_the_transition_stamps() -> None:
    from vrrp_agent.status import agent_status

    class Part:
        def __init__(self, doc: object) -> None:
            self.doc = doc

        def status(self) -> object:
            return self.doc

    fab = Fabric()
    host = fab.add_host("a", "10.0.0.1", {"VI_1": (51, 200)})
    fab.start("a")
    fab.run_until(5.0)
    doc = agent_status(host.node, fab.now, config=host.node.config, uptime=5.0, reloads=0,
                       scripts=Part({}), notifier=Part({"queued": 0}), arbiter=None, lvs=None,
                       transitions={"VI_1": 1700000123.25, "gone": 1.0})  # fmt: skip
    assert doc["instances"]["VI_1"]["last_transition_at"] == 1700000123.25
    fams = scrape(doc)
    lab = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    assert value(fams, "vrrp_agent_last_transition_timestamp_seconds", **lab) == 1700000123.25
    assert value(fams, "keepalived_vrrp_state", **lab) == 2


def test_families_without_series_are_left_out() -> None:
    text = render({"instances": {}})
    assert "keepalived_vrrp_state" not in text
    assert "vrrp_agent_exclusive_pair_blocked" not in text
    assert "# TYPE keepalived_up gauge" in text


def test_render_is_byte_for_byte_generate_latest() -> None:
    from vrrp_agent.metrics import render as fast

    tricky = instance(
        last_transition_reason='a "quoted" \\ back\nslash',
        last_transition_at=1733300000.123,
        stats={"adverts_sent": 12345678, "adverts_received": 999999, "became_master": 1000000},
    )
    for doc in (document(), document(VI_X=tricky), {"instances": {}},
                document(**{f"VI_{i}": instance(virtual_router_id=i) for i in range(1, 256)})):  # fmt: skip
        assert fast(doc) == render(doc).encode()


def test_drained_gauge_follows_the_status_document() -> None:
    assert value(scrape(document()), "vrrp_agent_drained") == 0
    doc = {**document(), "drained": True, "drained_since": 1700000000.0}
    assert value(scrape(doc), "vrrp_agent_drained") == 1


def test_the_agent_status_document_says_drained_and_since() -> None:
    from vrrp_agent.status import agent_status

    class Part:
        def status(self) -> object:
            return {}

    fab = Fabric()
    host = fab.add_host("a", "10.0.0.1", {"VI_1": (51, 200)})
    fab.start("a")
    fab.run_until(5.0)
    fab.hosts["a"].node.drain(fab.now, since=1700000100.5)
    doc = agent_status(host.node, fab.now, config=host.node.config, uptime=5.0, reloads=0,
                       scripts=Part(), notifier=Part(), arbiter=None, lvs=None)  # fmt: skip
    assert (doc["drained"], doc["drained_since"]) == (True, 1700000100.5)
    assert doc["instances"]["VI_1"]["last_transition_reason"] == "drained"
    assert value(scrape(doc), "vrrp_agent_drained") == 1
