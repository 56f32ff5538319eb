"""The single-VIP drills (molecule/shared/single_vip.py) against this scenario."""

from single_vip import (  # noqa: F401 - collected by pytest
    test_agent_and_nginx_run_on_both_nodes,
    test_exactly_one_node_holds_the_vip_and_it_is_node1,
    test_failover_then_failback_or_not,
)
