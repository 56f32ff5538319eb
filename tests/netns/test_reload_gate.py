"""A reload passes the same gate as `vrrp-agent validate`: a file validate
refuses because the data plane cannot serve it is refused by SIGHUP too."""

from __future__ import annotations

import signal
import sys

import yaml

from labkit.netns import Lab
from labkit.poll import wait_for

VIP = "10.99.0.101"
INSTANCE = {
    "interface": "eth0",
    "virtual_router_id": 51,
    "priority": 200,
    "advert_int": 0.5,
    "virtual_ipaddress": [f"{VIP}/24"],
}


def test_a_reload_validate_refuses_for_the_data_plane_is_refused(lab: Lab) -> None:
    a1 = lab.agent("n1", {"vrrp_instances": {"VI_1": INSTANCE}})
    wait_for("n1 master", lambda: lab["n1"].has(VIP), 5)
    # lb_kind TUN is beyond the nftables plane on every kernel.
    old = yaml.safe_load(a1.config_path.read_text())
    new = {
        "global_defs": {**old["global_defs"], "lvs_backend": "nftables"},
        "vrrp_instances": {"VI_1": dict(INSTANCE, priority=150)},
        "virtual_servers": [
            {
                "ip": VIP,
                "port": 80,
                "lb_kind": "TUN",
                "real_servers": [{"ip": "10.99.0.12", "port": 80}],
            }
        ],
    }
    a1.config_path.write_text(yaml.safe_dump(new))
    check = lab["n1"].run(
        sys.executable, "-m", "vrrp_agent.cli", "validate", "-c", str(a1.config_path), check=False
    )
    assert check.returncode == 2
    assert "virtual_servers[0].lb_kind: TUN" in check.stderr
    a1.signal(signal.SIGHUP)
    wait_for("the refusal", lambda: "reload refused" in a1.log(), 3)
    assert "virtual_servers[0].lb_kind: TUN" in a1.log()
    st = a1.status()
    assert st["reloads"] == 0
    assert st["instances"]["VI_1"]["priority"] == 200
    assert st["instances"]["VI_1"]["state"] == "MASTER"
    assert st["virtual_servers"] == []
