"""Adverts whose address list differs from the instance's VIPs, on the wire.

RFC 9568 7.1 and keepalived 2.3.3+: such an advert is accepted (the backup
follows the master), warned about once and counted as rx_address_mismatch.
skip_check_adv_addr compares the list only for a new master's first advert.
"""

from __future__ import annotations

import time

from labkit.netns import Agent, Lab, vrrp_instance
from labkit.poll import wait_for

OURS = "10.99.0.100"  # the backups' VIP
THEIRS = "10.99.0.200"  # what the master advertises instead: same count, another address
INTERVAL = 0.25


def test_a_backup_follows_a_master_advertising_other_addresses(lab: Lab) -> None:
    lab.agent("n1", {"vrrp_instances": {"VI_1": vrrp_instance(200, THEIRS, INTERVAL)}})
    wait_for("n1 master", lambda: lab["n1"].has(THEIRS), 3 * INTERVAL + 3)
    # Started after n1 holds its VIP, so neither backup ever had a reason to take over.
    checked = lab.agent("n2", {"vrrp_instances": {"VI_1": vrrp_instance(100, OURS, INTERVAL)}})
    skipping = lab.agent(
        "n3",
        {"vrrp_instances": {"VI_1": vrrp_instance(100, OURS, INTERVAL, skip_check_adv_addr=True)}},
    )

    def heard(a: Agent, n: int) -> bool:
        return a.status()["instances"]["VI_1"]["stats"]["adverts_received"] >= n

    wait_for("both backups to hear 8 adverts", lambda: heard(checked, 8) and heard(skipping, 8), 5)
    # Longer than Master_Down (3 intervals + skew): a backup dropping the adverts
    # (keepalived 2.2.7) would be master by now.
    time.sleep(4 * INTERVAL)
    for a in (checked, skipping):
        vi = a.status()["instances"]["VI_1"]
        assert (vi["state"], vi["master_ip"]) == ("BACKUP", "10.99.0.1")
        assert vi["stats"]["became_master"] == 0
        assert vi["rx_dropped"] == {}
        assert not a.host.has(OURS)
    n2 = checked.status()["instances"]["VI_1"]
    # Every advert of n1 is checked and counted; the older name says the same.
    assert n2["stats"]["rx_address_mismatch"] == n2["stats"]["adverts_received"] >= 8
    assert n2["stats"]["address_list_mismatch"] == n2["stats"]["rx_address_mismatch"]
    assert n2["skip_check_adv_addr"] is False
    n3 = skipping.status()["instances"]["VI_1"]
    # skip_check_adv_addr: only the first advert from n1, a new master, was compared.
    assert n3["stats"]["rx_address_mismatch"] == 1
    assert n3["skip_check_adv_addr"] is True
    # One warning per condition, not one per advert.
    for a in (checked, skipping):
        warned = [line for line in a.log().splitlines() if f"does not list {OURS}" in line]
        assert len(warned) == 1, warned
        assert THEIRS in warned[0] and "accepted" in warned[0]
    assert lab["n1"].has(THEIRS)
