"""use_vmac / vmac_xmit_base: keepalived's names, its default interface names
(create_vmac_name), and the rules it applies or we apply instead."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from vrrp_agent.config import ConfigError, parse

FILE = "t.yml"


def inst(vrid: int = 51, vip: str = "10.0.0.1/24", **extra: Any) -> dict[str, Any]:
    return {"interface": "eth0", "virtual_router_id": vrid, "virtual_ipaddress": [vip], **extra}


def text(**instances: dict[str, Any]) -> str:
    return yaml.safe_dump({"vrrp_instances": instances})


def names(**instances: dict[str, Any]) -> dict[str, str | None]:
    cfg = parse(text(**instances), FILE)
    return {n: i.use_vmac for n, i in cfg.vrrp_instances.items()}


def problems(**instances: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text(**instances), FILE)
    return info.value.problems


def test_off_by_default_and_false_is_off() -> None:
    cfg = parse(text(VI_1=inst(), VI_2=inst(52, "10.0.0.2/24", use_vmac=False)), FILE)
    for i in cfg.vrrp_instances.values():
        assert (i.use_vmac, i.vmac_xmit_base, i.vmac_address) == (None, False, None)
        assert i.vip_interface == i.advert_interface == "eth0"


def test_true_takes_keepalived_default_name_and_the_rfc_mac() -> None:
    cfg = parse(text(VI_1=inst(use_vmac=True), VI_6=inst(vip="fd00::1/64", use_vmac=True)), FILE)
    v4, v6 = cfg.vrrp_instances["VI_1"], cfg.vrrp_instances["VI_6"]
    assert (v4.use_vmac, v4.vmac_address.hex(":")) == ("vrrp.51", "00:00:5e:00:01:33")  # type: ignore[union-attr]
    # the same VRID in IPv6: keepalived's second choice for IPv6 is vrrp6.VRID
    assert (v6.use_vmac, v6.vmac_address.hex(":")) == ("vrrp6.51", "00:00:5e:00:02:33")  # type: ignore[union-attr]
    assert v4.vip_interface == v4.advert_interface == "vrrp.51"


def test_names_given_are_taken_first_then_defaults_in_file_order() -> None:
    got = names(
        VI_1=inst(use_vmac=True),
        VI_2={**inst(vip="10.0.1.1/24", use_vmac=True), "interface": "eth1"},
        VI_3=inst(52, "10.0.0.2/24", use_vmac="vrrp.51"),
    )
    assert got == {"VI_1": "vrrp1.51", "VI_2": "vrrp2.51", "VI_3": "vrrp.51"}


def test_xmit_base_keeps_adverts_on_the_base() -> None:
    cfg = parse(text(VI_1=inst(use_vmac="vip51", vmac_xmit_base=True)), FILE)
    i = cfg.vrrp_instances["VI_1"]
    assert (i.vip_interface, i.advert_interface) == ("vip51", "eth0")


@pytest.mark.parametrize(
    ("extra", "keypath", "fragment"),
    [
        ({"use_vmac": "a" * 16}, "use_vmac", "longer than 15 characters"),
        ({"use_vmac": "vr:51"}, "use_vmac", "not a valid interface name"),
        ({"use_vmac": "eth0"}, "use_vmac", "cannot be the instance's own interface eth0"),
        ({"vmac_xmit_base": True}, "vmac_xmit_base", "applies only with use_vmac"),
        ({"use_vmac": True, "vmac_xmit_base": "yes"}, "vmac_xmit_base", ""),
        (
            {"use_vmac": True, "unicast_peer": ["10.0.0.9"]},
            "use_vmac",
            "unicast_peer with use_vmac needs vmac_xmit_base: true",
        ),
    ],
)
def test_one_problem_with_its_key_path(extra: dict[str, Any], keypath: str, fragment: str) -> None:
    found = problems(VI_1=inst(**extra))
    assert len(found) == 1, found
    assert found[0].startswith(f"{FILE}: vrrp_instances.VI_1.{keypath}: "), found
    assert fragment in found[0]


def test_unicast_with_xmit_base_is_fine() -> None:
    extra = {"use_vmac": True, "vmac_xmit_base": True, "unicast_peer": ["10.0.0.9"]}
    assert names(VI_1=inst(**extra)) == {"VI_1": "vrrp.51"}


def test_one_name_for_two_instances_is_refused() -> None:
    found = problems(VI_1=inst(use_vmac="v51"), VI_2=inst(52, "10.0.0.2/24", use_vmac="v51"))
    assert found == [
        f"{FILE}: vrrp_instances.VI_2.use_vmac: vmac interface v51 is already used by"
        " vrrp_instances.VI_1"
    ]


def test_a_vmac_named_as_another_instances_interface_is_refused() -> None:
    other = {**inst(52, "10.0.1.1/24"), "interface": "eth1"}
    found = problems(VI_1=inst(use_vmac="eth1"), VI_2=other)
    assert found == [
        f"{FILE}: vrrp_instances.VI_1.use_vmac: eth1 is the interface of vrrp_instances.VI_2,"
        " it cannot also be a vmac"
    ]


def test_same_vrid_and_family_on_one_interface_is_still_refused_with_vmac() -> None:
    found = problems(VI_1=inst(use_vmac=True), VI_2=inst(vip="10.0.0.2/24", use_vmac=True))
    assert any("vrrp_instances.VI_2.virtual_router_id" in p for p in found), found


def test_changing_use_vmac_changes_the_instance() -> None:
    a = parse(text(VI_1=inst()), FILE).vrrp_instances["VI_1"]
    b = parse(text(VI_1=inst(use_vmac=True)), FILE).vrrp_instances["VI_1"]
    c = parse(text(VI_1=inst(use_vmac=True, vmac_xmit_base=True)), FILE).vrrp_instances["VI_1"]
    assert len({a, b, c}) == 3
