"""The single-VIP drills (molecule/shared/single_vip.py) against this scenario."""

from drills import agent_status, host
from single_vip import (  # noqa: F401 - collected by pytest
    test_agent_and_nginx_run_on_both_nodes,
    test_exactly_one_node_holds_the_vip_and_it_is_node1,
    test_failover_then_failback_or_not,
)


def test_adverts_are_unicast_between_the_two_nodes() -> None:
    cfg = host("node1").file("/etc/vrrp-agent/agent.yml").content_string
    assert "unicast_src_ip: 10.89.90.11" in cfg
    assert "- 10.89.90.12" in cfg
    st = agent_status("node2")["instances"]["VI_1"]
    assert st["unicast_peer"] == ["10.89.90.11"]
    assert st["master_ip"] == "10.89.90.11"
    assert st["stats"]["adverts_received"] > 0
