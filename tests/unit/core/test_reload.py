"""Reload as a pure function (`core.reload.diff`), and the one acceptance gate
validate and reload share (`config.acceptance`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vrrp_agent import cli
from vrrp_agent.config import Config, parse
from vrrp_agent.config.acceptance import accept
from vrrp_agent.core.reload import diff


def inst(vrid: int, **extra: object) -> dict[str, object]:
    return {
        "interface": "eth0",
        "virtual_router_id": vrid,
        "virtual_ipaddress": [f"192.0.2.{vrid}/24"],
        **extra,
    }


VS = {"ip": "192.0.2.1", "port": 80, "real_servers": [{"ip": "10.0.0.1", "port": 80}]}


def config(instances: dict[str, object] | None = None, **sections: object) -> Config:
    data = {"vrrp_instances": instances or {"VI_1": inst(1), "VI_2": inst(2)}, **sections}
    return parse(yaml.safe_dump(data), "<test>")


def test_the_first_start_starts_everything() -> None:
    plan = diff(None, config(virtual_servers=[VS]))
    assert (plan.kept, plan.gone, plan.fresh) == ((), (), ("VI_1", "VI_2"))
    assert plan.rebuild_lvs


def test_an_unchanged_file_keeps_everything() -> None:
    plan = diff(config(virtual_servers=[VS]), config(virtual_servers=[VS]))
    assert (plan.kept, plan.gone, plan.fresh) == (("VI_1", "VI_2"), (), ())
    assert not plan.rebuild_lvs


def test_a_changed_instance_restarts_a_removed_one_stops_a_new_one_starts() -> None:
    old = config({"VI_1": inst(1), "VI_2": inst(2), "VI_3": inst(3)})
    new = config({"VI_1": inst(1), "VI_2": inst(2, priority=150), "VI_4": inst(4)})
    plan = diff(old, new)
    assert plan.kept == ("VI_1",)
    assert plan.gone == ("VI_2", "VI_3")
    assert plan.fresh == ("VI_2", "VI_4")


def test_notify_hooks_are_read_at_each_transition_so_editing_one_keeps_the_instance() -> None:
    plan = diff(config(), config({"VI_1": inst(1, notify_master="/bin/true"), "VI_2": inst(2)}))
    assert plan.kept == ("VI_1", "VI_2") and plan.gone == ()


def test_alert_mail_settings_are_read_at_each_transition_so_editing_them_keeps_the_instance() -> (
    None
):
    new = config({"VI_1": inst(1, smtp_alert=True), "VI_2": inst(2)},
                 global_defs={"smtp_alert_vrrp": True})  # fmt: skip
    plan = diff(config(), new)
    assert plan.kept == ("VI_1", "VI_2") and plan.fresh == ()


def test_a_global_garp_setting_restarts_the_instances_it_applies_to() -> None:
    new = config(global_defs={"vrrp_garp_master_repeat": 2})
    assert diff(config(), new).fresh == ("VI_1", "VI_2")
    pinned = {"VI_1": inst(1, garp_master_repeat=3), "VI_2": inst(2)}
    plan = diff(config(pinned), config(pinned, global_defs={"vrrp_garp_master_repeat": 2}))
    assert plan.kept == ("VI_1",) and plan.fresh == ("VI_2",)


def test_a_changed_lvs_backend_alone_rebuilds_the_data_plane() -> None:
    # Before ReloadPlan the daemon compared only virtual_servers, so this
    # reload kept the old plane running under the new setting.
    old = config(virtual_servers=[VS], global_defs={"lvs_backend": "nftables"})
    new = config(virtual_servers=[VS], global_defs={"lvs_backend": "ipvs"})
    assert old.virtual_servers == new.virtual_servers
    plan = diff(old, new)
    assert plan.rebuild_lvs
    assert plan.kept == ("VI_1", "VI_2")


def test_changed_virtual_servers_rebuild_and_a_script_user_alone_does_not() -> None:
    old = config(virtual_servers=[VS])
    assert diff(old, config(virtual_servers=[{**VS, "port": 81}])).rebuild_lvs
    assert not diff(
        old, config(virtual_servers=[VS], global_defs={"script_user": "nobody"})
    ).rebuild_lvs


# ------------------------------------------------------------ the one gate

TUN = {**VS, "lb_kind": "TUN"}


def test_the_gate_refuses_what_the_data_plane_cannot_do(tmp_path: Path) -> None:
    cfg = config(virtual_servers=[TUN], global_defs={"lvs_backend": "nftables"})
    verdict = accept(cfg, root=tmp_path)
    assert not verdict.accepted
    assert verdict.error_lines("agent.yml") == [
        "agent.yml: virtual_servers[0].lb_kind: TUN needs IPIP tunnels, which neither this kernel"
        " (no ipip module) nor the nftables data plane provides: use DR or NAT, or"
        " lvs_backend: ipvs on a kernel with ip_vs"
    ]
    ipvs = config(virtual_servers=[VS], global_defs={"lvs_backend": "ipvs"})
    assert [k for k, _ in accept(ipvs, root=tmp_path).lvs] == ["global_defs.lvs_backend"]
    assert accept(config(virtual_servers=[VS]), root=tmp_path).accepted


def test_validate_and_reload_refuse_the_same_file_for_the_same_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lb_kind TUN is beyond the nftables plane on every kernel.
    data = {
        "global_defs": {"lvs_backend": "nftables", "script_user": "root"},
        "vrrp_instances": {"VI_1": inst(1)},
        "virtual_servers": [TUN],
    }
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["validate", "-c", str(path)]) == 2
    printed = capsys.readouterr().err.splitlines()
    verdict = accept(parse(path.read_text(), str(path)))
    assert not verdict.accepted
    assert printed == verdict.error_lines(str(path))
    assert any("virtual_servers[0].lb_kind: TUN" in line for line in printed)


def test_virtual_routes_and_peer_ttl_ranges_are_settings_like_the_vips() -> None:
    # Edited like a VIP (the instance restarts); the same routes written as a
    # mapping instead of a string are the same settings.
    route = "10.98.0.0/24 via 10.0.0.254 table 100"
    same = {"to": "10.98.0.0/24", "via": "10.0.0.254", "table": 100}
    old = config(
        {"VI_1": inst(1, virtual_routes=[route]), "VI_2": inst(2, unicast_peer=["10.0.0.2"])}
    )
    new = config({
        "VI_1": inst(1, virtual_routes=[same, "blackhole 10.97.0.0/16"]),
        "VI_2": inst(2, unicast_peer=["10.0.0.2 min_ttl 250"]),
    })  # fmt: skip
    assert diff(old, new).fresh == ("VI_1", "VI_2")
    again = config(
        {"VI_1": inst(1, virtual_routes=[same]), "VI_2": inst(2, unicast_peer=["10.0.0.2"])}
    )
    assert diff(old, again).kept == ("VI_1", "VI_2")
    # an empty peer list is unicast: another instance than the multicast one
    assert diff(config(), config({"VI_1": inst(1, unicast_peer=[]), "VI_2": inst(2)})).fresh == (
        "VI_1",
    )
