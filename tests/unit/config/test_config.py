"""vrrp_agent.config: every rule reports "FILE: key.path: message", all at once."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface
from pathlib import Path
from typing import Any

import pytest
import yaml

from vrrp_agent.config import (
    Checker,
    Config,
    ConfigError,
    GarpSettings,
    Instance,
    SorryServer,
    TrackRef,
    Url,
    VirtualAddress,
    garp_settings,
    load,
    parse,
    skip_check_adv_addr,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FILE = "t.yml"
VI = "vrrp_instances.VI_1"


def base_instance(overrides: dict[Any, Any] | None = None) -> dict[Any, Any]:
    inst: dict[Any, Any] = {
        "interface": "eth0",
        "virtual_router_id": 51,
        "virtual_ipaddress": ["192.168.1.100/24"],
    }
    inst.update(overrides or {})
    return {k: v for k, v in inst.items() if v is not DROP}


DROP = object()  # base_instance(key=DROP) removes a key


def doc(inst: dict[str, Any] | None = None, **top: Any) -> str:
    """A YAML document with VI_1 (plus whatever top-level sections are given)."""
    data: dict[str, Any] = {"vrrp_instances": {"VI_1": base_instance(inst)}}
    data.update(top)
    return yaml.safe_dump(data, sort_keys=False)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, FILE)
    assert info.value.problems, "ConfigError without problems"
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def assert_one(text: str, keypath: str, fragment: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    line = found[0]
    assert line.startswith(f"{FILE}: {keypath}: "), line
    assert fragment in line, line
    return line


def instance(text: str, name: str = "VI_1") -> Instance:
    return parse(text, FILE).vrrp_instances[name]


# --- examples and defaults -------------------------------------------------------


@pytest.mark.parametrize("name", ["agent.yml", "minimal.yml"])
def test_examples_load(name: str) -> None:
    cfg = load(str(EXAMPLES / name))
    assert cfg.path == str(EXAMPLES / name)
    assert "VI_1" in cfg.vrrp_instances


def test_agent_example_mirrors_design() -> None:
    cfg = load(str(EXAMPLES / "agent.yml"))
    vi1, vi2 = cfg.vrrp_instances["VI_1"], cfg.vrrp_instances["VI_2"]
    assert vi1.track_script == (TrackRef("chk_nginx"),)
    assert vi1.unicast_peer == (IPv4Address("10.0.0.12"),)
    assert vi2.auth_type == "PASS" and vi2.auth_pass == "1111"
    assert cfg.vrrp_sync_groups["VG1"].group == ("VI_1", "VI_2")
    rs = cfg.virtual_servers[0].real_servers[0]
    assert rs.checker == Checker("TCP_CHECK", connect_timeout=3.0, retry=3, delay_before_retry=3.0)


def test_defaults_filled() -> None:
    cfg = parse(doc(), FILE)
    inst = cfg.vrrp_instances["VI_1"]
    assert inst == Instance(
        name="VI_1",
        interface="eth0",
        virtual_router_id=51,
        virtual_ipaddress=(VirtualAddress(IPv4Interface("192.168.1.100/24")),),
    )
    assert (inst.priority, inst.advert_int, inst.version, inst.state) == (100, 1.0, 3, "BACKUP")
    assert inst.accept is True and inst.nopreempt is False
    assert inst.v3_checksum_pseudo_header is True
    assert inst.family == 4
    g = cfg.global_defs
    assert g.router_id  # the host name
    assert g.control_socket == "/run/vrrp-agent/agent.sock"
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_master_repeat) == (5.0, 5)
    assert g.lvs_backend == "auto" and g.enable_script_security is True
    assert dict(cfg.vrrp_scripts) == {} and dict(cfg.vrrp_sync_groups) == {}
    assert cfg.virtual_servers == ()


def test_values_are_typed() -> None:
    text = doc(
        {"advert_int": 2, "preempt_delay": 3, "state": "master", "priority": 200},
        global_defs={"vrrp_garp_master_delay": 1, "lvs_backend": "NFTables"},
    )
    cfg = parse(text, FILE)
    inst = cfg.vrrp_instances["VI_1"]
    assert isinstance(inst.advert_int, float) and inst.advert_int == 2.0
    assert isinstance(inst.preempt_delay, float)
    assert inst.state == "MASTER"  # case-insensitive input, stored upper-case
    assert isinstance(cfg.global_defs.vrrp_garp_master_delay, float)
    assert cfg.global_defs.lvs_backend == "nftables"


# --- equality: what SIGHUP reload relies on ------------------------------------------


TWO = """
vrrp_instances:
  VI_1: {interface: eth0, virtual_router_id: 1, priority: PRIO, virtual_ipaddress: [10.0.0.1]}
  VI_2: {interface: eth0, virtual_router_id: 2, virtual_ipaddress: [10.0.0.2]}
"""


def test_same_text_loads_equal() -> None:
    a, b = parse(TWO.replace("PRIO", "100")), parse(TWO.replace("PRIO", "100"))
    assert a == b
    assert a.vrrp_instances == b.vrrp_instances
    assert hash(a.vrrp_instances["VI_1"]) == hash(b.vrrp_instances["VI_1"])


def test_changing_one_priority_changes_only_that_instance() -> None:
    a, b = parse(TWO.replace("PRIO", "100")), parse(TWO.replace("PRIO", "101"))
    assert a != b
    assert a.vrrp_instances["VI_1"] != b.vrrp_instances["VI_1"]
    assert a.vrrp_instances["VI_2"] == b.vrrp_instances["VI_2"]


def test_config_is_frozen_and_read_only() -> None:
    cfg = parse(doc(), FILE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vrrp_instances["VI_1"].priority = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.vrrp_instances["VI_2"] = cfg.vrrp_instances["VI_1"]  # type: ignore[index]


def test_advert_int_float_noise_compares_equal() -> None:
    assert instance(doc({"advert_int": 0.30000000000000004})) == instance(doc({"advert_int": 0.3}))


# --- file level ---------------------------------------------------------------


def test_all_problems_in_one_pass() -> None:
    text = doc({"priority": 300, "prority": 100, "interface": "a very long ifname"})
    found = problems(text)
    assert len(found) == 3, found
    assert any(f"{VI}.priority: must be between 1 and 255, got 300" in p for p in found)
    assert any(
        f"{VI}.prority: unknown key 'prority' (did you mean 'priority'?)" in p for p in found
    )
    assert any(f"{VI}.interface: " in p for p in found)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load("/nonexistent/agent.yml")
    assert info.value.problems == [
        "/nonexistent/agent.yml: (top level): cannot read file: No such file or directory"
    ]


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(doc({"priority": 0}))
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert info.value.problems == [f"{path}: {VI}.priority: must be between 1 and 255, got 0"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_bytes(b"router_id: \xff\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    [line] = info.value.problems
    assert line.startswith(f"{path}: (top level): not UTF-8 text")


def test_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_bytes(b"\xef\xbb\xbf" + doc().encode())
    assert load(str(path)).vrrp_instances["VI_1"].virtual_router_id == 51


def test_yaml_syntax_error_has_line_and_column() -> None:
    [line] = problems("vrrp_instances:\n  VI_1: [1\n  x: 2\n")
    assert line.startswith(f"{FILE}: line 3, column ")
    assert "YAML syntax error" in line


def test_yaml_control_character() -> None:
    assert_one("a: 1\nb: x\x01\n", "line 2, column 5", "unacceptable character #x0001")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "got an empty document"),
        ("- a\n- b\n", "got a list"),
        ("just text\n", "got string 'just text'"),
    ],
)
def test_top_level_must_be_mapping(text: str, fragment: str) -> None:
    assert_one(text, "(top level)", fragment)


def test_nothing_to_do() -> None:
    assert_one("global_defs: {router_id: a}\n", "vrrp_instances", "nothing to do")
    assert_one("vrrp_instances: {}\n", "vrrp_instances", "nothing to do")


def test_only_virtual_servers_is_something_to_do() -> None:
    cfg = parse("virtual_servers: [{ip: 10.0.0.1, port: 80}]\n", FILE)
    assert cfg.vrrp_instances == {}
    assert cfg.virtual_servers[0].port == 80


def test_duplicate_yaml_key() -> None:
    text = doc() + "    priority: 100\n    priority: 120\n"
    assert_one(text, f"{VI}.priority", "duplicate key (lines 7 and 8)")


def test_yaml_merge_keys_are_not_duplicates() -> None:
    text = """
common: &common {interface: eth0, priority: 90}
vrrp_instances:
  VI_1: {<<: *common, priority: 100, virtual_router_id: 1, virtual_ipaddress: [10.0.0.1]}
"""
    # the anchor's home is an unknown top-level key; the merge itself is fine
    assert_one(text, "common", "unknown key 'common'")


# --- unknown keys -----------------------------------------------------------------


UNKNOWN_KEYS = [
    (doc({"prority": 1}), f"{VI}.prority", "unknown key 'prority' (did you mean 'priority'?)"),
    (
        doc(vrrp_script={}),
        "vrrp_script",
        "unknown key 'vrrp_script' (did you mean 'vrrp_scripts'?)",
    ),
    (
        doc(global_defs={"routerid": "x"}),
        "global_defs.routerid",
        "unknown key 'routerid' (did you mean 'router_id'?)",
    ),
    (
        doc(vrrp_scripts={"chk": {"script": "/bin/true", "intervall": 1}}),
        "vrrp_scripts.chk.intervall",
        "(did you mean 'interval'?)",
    ),
    (doc({"zzz": 1}), f"{VI}.zzz", "unknown key 'zzz'"),
    (
        doc({"version": 2, "authentication": {"auth_type": "PASS", "auth_pass": "x", "foo": 1}}),
        f"{VI}.authentication.foo",
        "unknown key 'foo' (expected one of: auth_type, auth_pass)",
    ),
    (
        doc({"auth_pass": "1111"}),
        f"{VI}.auth_pass",
        "unknown key 'auth_pass' (it belongs inside authentication:",
    ),
    (doc({1: 2}), f"{VI}.1", "unknown key 1"),
]


@pytest.mark.parametrize(
    ("text", "keypath", "message"), UNKNOWN_KEYS, ids=[case[1] for case in UNKNOWN_KEYS]
)
def test_unknown_keys(text: str, keypath: str, message: str) -> None:
    assert_one(text, keypath, message)


# --- types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        ({"priority": True}, "priority", "expected an integer, got boolean true"),
        ({"priority": "100"}, "priority", "expected an integer, got string '100'"),
        ({"priority": 1.5}, "priority", "expected an integer, got number 1.5"),
        ({"priority": None}, "priority", "expected an integer, got null"),
        ({"nopreempt": "yes"}, "nopreempt", "expected true or false, got string 'yes'"),
        ({"nopreempt": 1}, "nopreempt", "expected true or false, got integer 1"),
        ({"accept": None}, "accept", "expected true or false, got null"),
        ({"advert_int": "1"}, "advert_int", "expected a number, got string '1'"),
        ({"advert_int": False}, "advert_int", "expected a number, got boolean false"),
        ({"preempt_delay": float("inf")}, "preempt_delay", "expected a finite number"),
        ({"preempt_delay": -1}, "preempt_delay", "must be between 0 and 1000, got -1"),
        ({"preempt_delay": 1001}, "preempt_delay", "must be between 0 and 1000, got 1001"),
        ({"notify_master": ""}, "notify_master", "must not be empty"),
        ({"notify": 5}, "notify", "expected a string, got integer 5 (put it in quotes)"),
        ({"notify_stop": ["/bin/x"]}, "notify_stop", "expected a string, got a list"),
        ({"unicast_peer": "10.0.0.2"}, "unicast_peer", "expected a list, got string"),
        ({"unicast_src_ip": "10.0.0.300"}, "unicast_src_ip", "is not an IPv4 or IPv6 address"),
        ({"v3_checksum_pseudo_header": "no"}, "v3_checksum_pseudo_header", "expected true"),
        ({"garp_master_delay": -0.5}, "garp_master_delay", "must be >= 0, got -0.5"),
        ({"garp_master_repeat": 0}, "garp_master_repeat", "must be between 1 and 10000"),
        ({"garp_master_refresh": "5"}, "garp_master_refresh", "expected a number"),
        ({"garp_master_refresh_repeat": True}, "garp_master_refresh_repeat", "expected an int"),
        ({"authentication": "PASS"}, "authentication", "expected a mapping, got string 'PASS'"),
        ({"track_script": "chk"}, "track_script", "expected a list, got string 'chk'"),
    ],
)
def test_instance_types(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst), f"{VI}.{keypath}", message)


def test_yaml_booleans_accepted() -> None:
    assert instance(doc() + "    nopreempt: yes\n    accept: off\n").nopreempt is True
    assert instance(doc() + "    accept: off\n").accept is False


def test_null_means_default_for_optional_settings() -> None:
    inst = instance(doc({"notify_master": None, "unicast_src_ip": None, "track_script": None}))
    assert inst.notify_master is None and inst.unicast_src_ip is None
    assert inst.track_script == ()


@pytest.mark.parametrize(
    ("glob", "keypath", "message"),
    [
        ({"router_id": 5}, "router_id", "expected a string, got integer 5 (put it in quotes)"),
        ({"router_id": ""}, "router_id", "must not be empty"),
        ({"control_socket": "/" + "x" * 107}, "control_socket", "longer than 107 bytes"),
        ({"vrrp_garp_master_delay": -1}, "vrrp_garp_master_delay", "must be >= 0, got -1"),
        ({"vrrp_garp_master_repeat": 0}, "vrrp_garp_master_repeat", "between 1 and 10000"),
        ({"vrrp_garp_master_refresh": True}, "vrrp_garp_master_refresh", "expected a number"),
        ({"vrrp_garp_master_refresh_repeat": 1.0}, "vrrp_garp_master_refresh_repeat", "integer"),
        ({"vrrp_garp_interval": float("nan")}, "vrrp_garp_interval", "expected a finite number"),
        ({"vrrp_gna_interval": -0.1}, "vrrp_gna_interval", "must be >= 0"),
        ({"script_user": ""}, "script_user", "must not be empty"),
        ({"enable_script_security": "true"}, "enable_script_security", "expected true or false"),
        ({"lvs_backend": "nft"}, "lvs_backend", "must be one of auto, nftables, ipvs, got 'nft'"),
    ],
)
def test_global_defs(glob: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(global_defs=glob), f"global_defs.{keypath}", message)


def test_global_defs_must_be_mapping() -> None:
    assert_one(doc(global_defs=["x"]), "global_defs", "expected a mapping, got a list")


# --- scripts ------------------------------------------------------------------------


def script_doc(**script: Any) -> str:
    body = {"script": "/bin/true", **script}
    return doc({"track_script": ["chk"]}, vrrp_scripts={"chk": body})


@pytest.mark.parametrize(
    ("script", "keypath", "message"),
    [
        ({"script": ""}, "script", "must not be empty"),
        ({"script": "   "}, "script", "must not be empty"),
        ({"script": None}, "script", "expected a string, got null"),
        ({"interval": 0}, "interval", "must be > 0, got 0"),
        ({"timeout": -1}, "timeout", "must be > 0, got -1"),
        ({"weight": 255}, "weight", "must be between -254 and 254, got 255"),
        ({"weight": -255}, "weight", "must be between -254 and 254, got -255"),
        ({"fall": 0}, "fall", "must be >= 1, got 0"),
        ({"rise": 1.5}, "rise", "expected an integer"),
        ({"user": ""}, "user", "must not be empty"),
    ],
)
def test_script_rules(script: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(script_doc(**script), f"vrrp_scripts.chk.{keypath}", message)


def test_script_required() -> None:
    assert_one(
        doc(vrrp_scripts={"chk": {"interval": 1}}), "vrrp_scripts.chk.script", "required key"
    )


def test_script_values() -> None:
    cfg = parse(script_doc(interval=0.5, weight=-20, fall=2, rise=3, user="nobody"), FILE)
    script = cfg.vrrp_scripts["chk"]
    assert (script.interval, script.timeout, script.weight) == (0.5, None, -20)
    assert (script.fall, script.rise, script.user) == (2, 3, "nobody")


def test_script_name_must_be_a_token() -> None:
    text = doc(vrrp_scripts={"chk x": {"script": "/bin/true"}})
    assert_one(text, "vrrp_scripts.chk x", "must not contain whitespace")


# --- instance ranges ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        ({"virtual_router_id": 0}, "virtual_router_id", "must be between 1 and 255, got 0"),
        ({"virtual_router_id": 256}, "virtual_router_id", "must be between 1 and 255, got 256"),
        ({"virtual_router_id": DROP}, "virtual_router_id", "required key is missing"),
        ({"interface": DROP}, "interface", "required key is missing"),
        ({"priority": 0}, "priority", "must be between 1 and 255, got 0"),
        ({"priority": 256}, "priority", "must be between 1 and 255, got 256"),
        ({"version": 4}, "version", "must be 2 or 3, got integer 4"),
        ({"version": "3"}, "version", "must be 2 or 3, got string '3'"),
        ({"state": "primary"}, "state", "must be one of MASTER, BACKUP, got 'primary'"),
        ({"state": "FAULT"}, "state", "must be one of MASTER, BACKUP"),
        ({"virtual_ipaddress": DROP}, "virtual_ipaddress", "required key is missing"),
        ({"virtual_ipaddress": []}, "virtual_ipaddress", "must list at least one entry"),
    ],
)
def test_instance_ranges(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst), f"{VI}.{keypath}", message)


def test_priority_255_and_version_2_accepted() -> None:
    inst = instance(doc({"priority": 255, "version": 2, "state": "MASTER"}))
    assert (inst.priority, inst.version, inst.state) == (255, 2, "MASTER")


# --- advert_int ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inst", "message"),
    [
        ({"version": 2, "advert_int": 1.5}, "VRRPv2 advertises whole seconds"),
        ({"version": 2, "advert_int": 256}, "must be an integer 1..255, got 256"),
        ({"version": 2, "advert_int": 0}, "must be > 0, got 0"),
        ({"advert_int": 0.015}, "must be a multiple of 0.01, got 0.015"),
        ({"advert_int": 41}, "VRRPv3 allows 0.01..40.95 seconds, got 41"),
        ({"advert_int": 40.96}, "VRRPv3 allows 0.01..40.95 seconds"),
        ({"advert_int": 0.001}, "must be a multiple of 0.01"),
        ({"advert_int": -1}, "must be > 0, got -1"),
    ],
)
def test_advert_int_rules(inst: dict[str, Any], message: str) -> None:
    assert_one(doc(inst), f"{VI}.advert_int", message)


@pytest.mark.parametrize(
    ("inst", "expected"),
    [
        ({"version": 2, "advert_int": 3}, 3.0),
        ({"version": 2, "advert_int": 255.0}, 255.0),
        ({"advert_int": 0.01}, 0.01),
        ({"advert_int": 0.07}, 0.07),  # 0.07 * 100 = 7.000000000000001 in floats
        ({"advert_int": 40.95}, 40.95),
        ({"advert_int": 1}, 1.0),
    ],
)
def test_advert_int_accepted(inst: dict[str, Any], expected: float) -> None:
    assert instance(doc(inst)).advert_int == expected


# --- addresses and families ---------------------------------------------------------


def test_vip_forms() -> None:
    inst = instance(
        doc(
            {
                "virtual_ipaddress": [
                    "192.168.1.100",
                    "192.168.1.101/24 dev eth1 label eth1:vip",
                    {"address": "192.168.1.102/25", "dev": "eth2"},
                    {"address": "192.168.1.103", "label": "eth0:x"},
                ],
                "virtual_ipaddress_excluded": ["2001:db8::1"],
            }
        )
    )
    assert inst.virtual_ipaddress == (
        VirtualAddress(IPv4Interface("192.168.1.100/32")),
        VirtualAddress(IPv4Interface("192.168.1.101/24"), "eth1", "eth1:vip"),
        VirtualAddress(IPv4Interface("192.168.1.102/25"), "eth2"),
        VirtualAddress(IPv4Interface("192.168.1.103/32"), None, "eth0:x"),
    )
    # keepalived's default prefix for a bare IPv6 VIP is /128
    assert inst.virtual_ipaddress_excluded == (VirtualAddress(IPv6Interface("2001:db8::1/128")),)
    assert str(inst.virtual_ipaddress[1]) == "192.168.1.101/24 dev eth1 label eth1:vip"


@pytest.mark.parametrize(
    ("vip", "message"),
    [
        ("192.168.1.300", "'192.168.1.300' is not an IPv4 or IPv6 address[/prefix]"),
        ("10.0.0.1/33", "is not an IPv4 or IPv6 address[/prefix]"),
        ("0.0.0.0", "cannot be a virtual address"),
        ("224.0.0.18", "cannot be a virtual address"),
        ("10.0.0.1 scope host", "unsupported option 'scope'"),
        ("10.0.0.1 dev", "'dev' needs a value"),
        ("10.0.0.1 dev eth0 dev eth1", "'dev' given twice"),
        ("10.0.0.1 dev eth0/1", "not a valid interface name"),
        ("10.0.0.1 label averyveryverylonglabel", "must be 1..15 characters"),
        ("", "must not be empty"),
        (5, "expected 'ADDR[/PLEN] [dev IF] [label L]' or a mapping, got integer 5"),
    ],
)
def test_vip_rules(vip: Any, message: str) -> None:
    text = doc({"virtual_ipaddress": ["10.9.9.9", vip]})
    assert_one(text, f"{VI}.virtual_ipaddress[1]", message)


def test_vip_mapping_rules() -> None:
    text = doc({"virtual_ipaddress": [{"dev": "eth0"}, {"address": "10.0.0.1", "lable": "x"}]})
    found = problems(text)
    assert found == [
        f"{FILE}: {VI}.virtual_ipaddress[0].address: required key is missing",
        f"{FILE}: {VI}.virtual_ipaddress[1].lable: unknown key 'lable' (did you mean 'label'?)",
    ]


def test_vip_label_is_ipv4_only() -> None:
    text = doc({"virtual_ipaddress": ["2001:db8::1 label eth0:x"]})
    assert_one(text, f"{VI}.virtual_ipaddress[0]", "label applies to IPv4 addresses only")


def test_vip_mixed_families_refused() -> None:
    text = doc({"virtual_ipaddress": ["10.0.0.1", "2001:db8::1"]})
    line = assert_one(text, f"{VI}.virtual_ipaddress[1]", "IPv6 address in an IPv4 instance")
    assert "virtual_ipaddress_excluded" in line


def test_excluded_may_be_other_family() -> None:
    inst = instance(doc({"virtual_ipaddress_excluded": ["2001:db8::1"]}))
    assert inst.family == 4


def test_vrrpv2_ipv6_refused() -> None:
    text = doc({"version": 2, "virtual_ipaddress": ["2001:db8::1"]})
    assert_one(text, f"{VI}.version", "VRRPv2 is IPv4-only")


def test_ipv6_instance() -> None:
    inst = instance(
        doc({"virtual_ipaddress": ["fe80::1", "2001:db8::1/64"], "unicast_peer": ["fe80::2"]})
    )
    assert inst.family == 6


def test_same_vip_twice_in_one_instance() -> None:
    text = doc({"virtual_ipaddress": ["10.0.0.1/24"], "virtual_ipaddress_excluded": ["10.0.0.1"]})
    assert_one(
        text,
        f"{VI}.virtual_ipaddress_excluded[0]",
        f"10.0.0.1 is listed twice (first at {VI}.virtual_ipaddress[0])",
    )


def test_too_many_vips() -> None:
    vips = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(256)]
    assert_one(doc({"virtual_ipaddress": vips}), f"{VI}.virtual_ipaddress", "at most 255")


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        ({"unicast_src_ip": "2001:db8::1"}, "unicast_src_ip", "IPv6 address in an IPv4 instance"),
        (
            {"unicast_peer": ["10.0.0.2", "2001:db8::2"]},
            "unicast_peer[1]",
            "IPv6 address in an IPv4 instance",
        ),
        (
            {"unicast_peer": ["10.0.0.2", "10.0.0.3", "10.0.0.2"]},
            "unicast_peer[2]",
            f"duplicate of {VI}.unicast_peer[0]",
        ),
        (
            {"unicast_src_ip": "10.0.0.1", "unicast_peer": ["10.0.0.1"]},
            "unicast_peer[0]",
            "10.0.0.1 is this node's own unicast_src_ip",
        ),
        ({"unicast_peer": ["nope"]}, "unicast_peer[0]", "'nope' is not an IPv4 or IPv6 address"),
    ],
)
def test_unicast_rules(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst), f"{VI}.{keypath}", message)


def test_unicast_peer_without_src_is_fine() -> None:
    inst = instance(doc({"unicast_peer": ["10.0.0.2", "10.0.0.3"]}))
    assert inst.unicast_src_ip is None
    assert inst.unicast_peer == (IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3"))


# --- interface names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ifname", "message"),
    [
        ("a" * 16, "is longer than 15 characters"),
        ("eth0/1", "is not a valid interface name"),
        ("eth 0", "is not a valid interface name"),
        ("eth0:1", "is not a valid interface name"),
        ("..", "is not a valid interface name"),
        ("", "must not be empty"),
        (5, "expected a string, got integer 5"),
    ],
)
def test_interface_names(ifname: Any, message: str) -> None:
    assert_one(doc({"interface": ifname}), f"{VI}.interface", message)


def test_interface_name_of_15_chars_is_fine() -> None:
    assert instance(doc({"interface": "a" * 15})).interface == "a" * 15


# --- authentication -------------------------------------------------------------------


def test_authentication_flattened() -> None:
    inst = instance(doc({"version": 2, "authentication": {"auth_type": "pass", "auth_pass": "1"}}))
    assert (inst.auth_type, inst.auth_pass) == ("PASS", "1")


def test_authentication_none_means_off() -> None:
    inst = instance(doc({"version": 2, "authentication": {"auth_type": "none"}}))
    assert (inst.auth_type, inst.auth_pass) == (None, None)


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        (
            {"authentication": {"auth_type": "PASS", "auth_pass": "1111"}},
            "authentication",
            "authentication is VRRPv2 only (RFC 9568 removed it)",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "AH", "auth_pass": "1111"}},
            "authentication.auth_type",
            "auth_type AH is not supported; use PASS or none",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "PASS"}},
            "authentication.auth_pass",
            "required key is missing",
        ),
        (
            {"version": 2, "authentication": {"auth_pass": "1111"}},
            "authentication.auth_type",
            "required key is missing",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "PASS", "auth_pass": "123456789"}},
            "authentication.auth_pass",
            "auth_pass is longer than 8 characters",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "PASS", "auth_pass": 1111}},
            "authentication.auth_pass",
            "expected a string, got integer 1111 (put it in quotes)",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "MD5", "auth_pass": "x"}},
            "authentication.auth_type",
            "must be one of PASS, got 'MD5'",
        ),
        (
            {"version": 2, "authentication": {"auth_type": "none", "auth_pass": "x"}},
            "authentication.auth_pass",
            "auth_pass given but auth_type is none",
        ),
    ],
)
def test_authentication_rules(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst), f"{VI}.{keypath}", message)


def test_auth_pass_of_8_chars_is_fine() -> None:
    auth = {"auth_type": "PASS", "auth_pass": "12345678"}
    assert instance(doc({"version": 2, "authentication": auth})).auth_pass == "12345678"


# --- preemption ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        (
            {"nopreempt": True, "state": "MASTER"},
            "nopreempt",
            "nopreempt requires initial state BACKUP",
        ),
        (
            {"nopreempt": True, "priority": 255},
            "nopreempt",
            "an address owner (priority 255) always preempts",
        ),
        (
            {"nopreempt": True, "preempt_delay": 5},
            "preempt_delay",
            "preempt_delay contradicts nopreempt",
        ),
    ],
)
def test_preemption_rules(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst), f"{VI}.{keypath}", message)


def test_nopreempt_with_zero_delay_is_fine() -> None:
    inst = instance(doc({"nopreempt": True, "preempt_delay": 0}))
    assert inst.nopreempt is True


# --- tracking -----------------------------------------------------------------------


SCRIPTS = {"chk_nginx": {"script": "/bin/true", "weight": -20}}


def test_track_forms() -> None:
    text = doc(
        {
            "track_script": ["chk_nginx", {"name": "chk_other", "weight": -30}],
            "track_interface": ["eth1", {"name": "eth2", "weight": -10}],
            "track_file": [{"name": "/run/prio", "weight": 1}],
        },
        vrrp_scripts={**SCRIPTS, "chk_other": {"script": "/bin/false"}},
    )
    inst = instance(text)
    assert inst.track_script == (TrackRef("chk_nginx"), TrackRef("chk_other", -30))
    assert inst.track_interface == (TrackRef("eth1"), TrackRef("eth2", -10))
    assert inst.track_file == (TrackRef("/run/prio", 1),)


@pytest.mark.parametrize(
    ("inst", "keypath", "message"),
    [
        (
            {"track_script": ["chk_ngnix"]},
            "track_script[0]",
            "unknown vrrp_script 'chk_ngnix' (did you mean 'chk_nginx'?)",
        ),
        (
            {"track_script": [{"name": "chk_x", "weight": 1}]},
            "track_script[0].name",
            "unknown vrrp_script 'chk_x'",
        ),
        ({"track_script": [{"weight": 1}]}, "track_script[0].name", "required key is missing"),
        (
            {"track_script": [{"name": "chk_nginx", "weight": 300}]},
            "track_script[0].weight",
            "must be between -254 and 254, got 300",
        ),
        (
            {"track_script": ["chk_nginx", "chk_nginx"]},
            "track_script[1]",
            f"'chk_nginx' is tracked twice (first at {VI}.track_script[0])",
        ),
        ({"track_interface": ["eth0/1"]}, "track_interface[0]", "not a valid interface name"),
        (
            {"track_interface": [{"name": "eth1", "weight": True}]},
            "track_interface[0].weight",
            "expected an integer, got boolean true",
        ),
        ({"track_file": ["relative"]}, "track_file[0]", "expected an absolute path"),
        ({"track_script": [3]}, "track_script[0]", "expected a string, got integer 3"),
    ],
)
def test_track_rules(inst: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(doc(inst, vrrp_scripts=SCRIPTS), f"{VI}.{keypath}", message)


def test_track_script_names_a_script_with_its_own_error() -> None:
    # the script's problem is reported; the reference to it is not a second one
    text = doc({"track_script": ["chk_nginx"]}, vrrp_scripts={"chk_nginx": {"script": ""}})
    assert_one(text, "vrrp_scripts.chk_nginx.script", "must not be empty")


# --- rules between instances -----------------------------------------------------------


def two(vi1: dict[str, Any], vi2: dict[str, Any]) -> str:
    data = {"vrrp_instances": {"VI_1": base_instance(vi1), "VI_2": base_instance(vi2)}}
    return yaml.safe_dump(data, sort_keys=False)


def test_duplicate_vrid_on_interface_and_family() -> None:
    text = two({}, {"virtual_ipaddress": ["192.168.1.101"]})
    assert_one(
        text,
        "vrrp_instances.VI_2.virtual_router_id",
        "virtual_router_id 51 on eth0 (IPv4) is already used by vrrp_instances.VI_1",
    )


@pytest.mark.parametrize(
    "vi2",
    [
        {"virtual_ipaddress": ["2001:db8::1"]},  # other family: separate VRRP router
        {"virtual_ipaddress": ["192.168.1.101"], "interface": "eth1"},
        {"virtual_ipaddress": ["192.168.1.101"], "virtual_router_id": 52},
    ],
)
def test_same_vrid_elsewhere_is_fine(vi2: dict[str, Any]) -> None:
    assert len(parse(two({}, vi2), FILE).vrrp_instances) == 2


def test_vip_in_two_instances() -> None:
    text = two({}, {"virtual_router_id": 52, "virtual_ipaddress": ["10.1.1.1", "192.168.1.100"]})
    assert_one(
        text,
        "vrrp_instances.VI_2.virtual_ipaddress[1]",
        "192.168.1.100 is already a VIP of vrrp_instances.VI_1",
    )


def test_cross_instance_rules_see_instances_with_other_errors() -> None:
    found = problems(two({"priority": 0}, {"virtual_ipaddress": ["192.168.1.100"]}))
    assert len(found) == 3, found
    assert f"{FILE}: vrrp_instances.VI_1.priority: " in found[0]


# --- sync groups -------------------------------------------------------------------------


def groups_doc(groups: Any) -> str:
    data = yaml.safe_load(two({}, {"virtual_router_id": 52, "virtual_ipaddress": ["10.0.0.2"]}))
    data["vrrp_sync_groups"] = groups
    return yaml.safe_dump(data, sort_keys=False)


def test_sync_group() -> None:
    cfg = parse(groups_doc({"VG1": {"group": ["VI_1", "VI_2"], "notify_master": "/bin/x"}}))
    group = cfg.vrrp_sync_groups["VG1"]
    assert group.group == ("VI_1", "VI_2") and group.notify_master == "/bin/x"


@pytest.mark.parametrize(
    ("groups", "keypath", "message"),
    [
        (
            {"VG1": {"group": ["VI_1", "VI_3"]}},
            "VG1.group[1]",
            "unknown vrrp_instance 'VI_3' (did you mean",
        ),
        (
            {"VG1": {"group": ["VI_1"]}, "VG2": {"group": ["VI_2", "VI_1"]}},
            "VG2.group[1]",
            "'VI_1' is already in vrrp_sync_groups.VG1",
        ),
        ({"VG1": {"group": ["VI_1", "VI_1"]}}, "VG1.group[1]", "'VI_1' is listed twice"),
        ({"VG1": {"group": []}}, "VG1.group", "must list at least one entry"),
        ({"VG1": {}}, "VG1.group", "required key is missing"),
        ({"VG1": {"group": ["VI_1"], "notify": ""}}, "VG1.notify", "must not be empty"),
        ({"VG1": ["VI_1"]}, "VG1", "expected a mapping, got a list"),
    ],
)
def test_sync_group_rules(groups: Any, keypath: str, message: str) -> None:
    assert_one(groups_doc(groups), f"vrrp_sync_groups.{keypath}", message)


# --- virtual servers -----------------------------------------------------------------------


def vs_doc(**vs: Any) -> str:
    server = {"ip": "192.168.154.188", "port": 80, **vs}
    return yaml.safe_dump({"virtual_servers": [server]}, sort_keys=False)


def test_virtual_server_values() -> None:
    text = vs_doc(
        protocol="udp",
        lb_algo="WRR",
        lb_kind="dr",
        sorry_server="10.0.0.9 8080",
        real_servers=[
            {"ip": "192.168.154.12", "port": 80, "weight": 3, "inhibit_on_failure": True},
            {
                "ip": "192.168.154.13",
                "port": 80,
                "SSL_GET": {"url": [{"path": "/", "digest": "A" * 32}], "connect_port": 443},
            },
            {"ip": "192.168.154.14", "port": 80, "MISC_CHECK": {"misc_path": "/bin/chk"}},
            {"ip": "192.168.154.15", "port": 80, "TCP_CHECK": None},
        ],
    )
    vs = parse(text, FILE).virtual_servers[0]
    assert (vs.protocol, vs.lb_algo, vs.lb_kind) == ("UDP", "wrr", "DR")
    assert (vs.delay_loop, vs.persistence_timeout) == (60.0, 0)
    assert vs.sorry_server == SorryServer(IPv4Address("10.0.0.9"), 8080)
    rs = vs.real_servers
    assert (rs[0].weight, rs[0].inhibit_on_failure, rs[0].checker) == (3, True, None)
    assert rs[1].checker == Checker("SSL_GET", connect_port=443, url=(Url("/", None, "a" * 32),))
    assert rs[2].checker == Checker("MISC_CHECK", misc_path="/bin/chk")
    assert rs[3].checker == Checker("TCP_CHECK")


def test_sorry_server_mapping() -> None:
    vs = parse(vs_doc(sorry_server={"ip": "10.0.0.9", "port": 80}), FILE).virtual_servers[0]
    assert vs.sorry_server == SorryServer(IPv4Address("10.0.0.9"), 80)


def rs(**extra: Any) -> list[dict[str, Any]]:
    return [{"ip": "192.168.154.12", "port": 80, **extra}]


@pytest.mark.parametrize(
    ("vs", "keypath", "message"),
    [
        ({"ip": None}, "ip", "expected a string, got null"),
        ({"port": 0}, "port", "must be between 1 and 65535, got 0"),
        ({"protocol": "ICMP"}, "protocol", "must be one of TCP, UDP, SCTP"),
        ({"lb_algo": "rrr"}, "lb_algo", "(did you mean 'rr'?)"),
        ({"lb_kind": "FULLNAT"}, "lb_kind", "must be one of NAT, DR, TUN"),
        ({"delay_loop": 0}, "delay_loop", "must be > 0"),
        ({"persistence_timeout": -1}, "persistence_timeout", "must be >= 0"),
        ({"sorry_server": "10.0.0.9"}, "sorry_server", "expected 'IP PORT'"),
        ({"sorry_server": "10.0.0.9 http"}, "sorry_server", "port 'http' is not a number"),
        ({"sorry_server": {"ip": "10.0.0.9"}}, "sorry_server", "needs both ip and port"),
        ({"real_servers": {"ip": "1.2.3.4"}}, "real_servers", "expected a list, got a mapping"),
        ({"real_servers": ["1.2.3.4"]}, "real_servers[0]", "expected a mapping, got string"),
        ({"real_servers": [{"ip": "1.2.3.4"}]}, "real_servers[0].port", "required key"),
        ({"real_servers": rs(weight=-1)}, "real_servers[0].weight", "between 0 and 65535"),
        ({"real_servers": rs(wieght=1)}, "real_servers[0].wieght", "(did you mean 'weight'?)"),
        (
            {"real_servers": rs(TCP_CHECK={}, MISC_CHECK={"misc_path": "/x"})},
            "real_servers[0]",
            "one health checker per real server is supported, got TCP_CHECK, MISC_CHECK",
        ),
        (
            {"real_servers": rs(TCP_CHECK={"connect_timeout": 0})},
            "real_servers[0].TCP_CHECK.connect_timeout",
            "must be > 0",
        ),
        (
            {"real_servers": rs(TCP_CHECK={"retry": True})},
            "real_servers[0].TCP_CHECK.retry",
            "expected an integer",
        ),
        (
            {"real_servers": rs(TCP_CHECK={"url": {"path": "/"}})},
            "real_servers[0].TCP_CHECK.url",
            "unknown key 'url'",
        ),
        (
            {"real_servers": rs(TCP_CHECK=[1])},
            "real_servers[0].TCP_CHECK",
            "expected a mapping, got a list",
        ),
        (
            {"real_servers": rs(HTTP_GET={})},
            "real_servers[0].HTTP_GET.url",
            "HTTP_GET needs at least one url",
        ),
        (
            {"real_servers": rs(HTTP_GET={"url": {"path": "x"}})},
            "real_servers[0].HTTP_GET.url.path",
            "expected an absolute path, got 'x'",
        ),
        (
            {"real_servers": rs(HTTP_GET={"url": [{"path": "/", "status_code": 99}]})},
            "real_servers[0].HTTP_GET.url[0].status_code",
            "must be between 100 and 599",
        ),
        (
            {"real_servers": rs(HTTP_GET={"url": [{"path": "/", "digest": "xyz"}]})},
            "real_servers[0].HTTP_GET.url[0].digest",
            "expected an MD5 digest",
        ),
        (
            {"real_servers": rs(HTTP_GET={"url": "/"})},
            "real_servers[0].HTTP_GET.url",
            "expected a mapping {path, status_code, digest} or a list of them",
        ),
        (
            {"real_servers": rs(MISC_CHECK={})},
            "real_servers[0].MISC_CHECK.misc_path",
            "required key is missing",
        ),
        (
            {"real_servers": rs(ip="2001:db8::1")},
            "real_servers[0].ip",
            "IPv6 real server behind an IPv4 virtual server",
        ),
        (
            {"real_servers": rs() + rs()},
            "real_servers[1]",
            "duplicate of virtual_servers[0].real_servers[0]",
        ),
    ],
)
def test_virtual_server_rules(vs: dict[str, Any], keypath: str, message: str) -> None:
    assert_one(vs_doc(**vs), f"virtual_servers[0].{keypath}", message)


def test_tun_may_mix_families() -> None:
    text = vs_doc(lb_kind="TUN", real_servers=rs(ip="2001:db8::1"))
    assert parse(text, FILE).virtual_servers[0].real_servers[0].ip.version == 6


def test_duplicate_virtual_server() -> None:
    server = {"ip": "192.168.154.188", "port": 80}
    text = yaml.safe_dump({"virtual_servers": [server, {**server, "protocol": "tcp"}]})
    assert_one(text, "virtual_servers[1]", "is already defined at virtual_servers[0]")


def test_virtual_servers_must_be_a_list() -> None:
    text = "virtual_servers: {ip: 1.2.3.4}\n"
    assert_one(text, "virtual_servers", "expected a list, got a mapping")


# --- garp_settings ---------------------------------------------------------------------------


def test_garp_settings_global_and_overrides() -> None:
    glob = {
        "vrrp_garp_master_delay": 2,
        "vrrp_garp_master_repeat": 3,
        "vrrp_garp_master_refresh": 60,
        "vrrp_garp_master_refresh_repeat": 2,
        "vrrp_garp_interval": 0.01,
        "vrrp_gna_interval": 0.02,
    }
    text = two(
        {"garp_master_delay": 0, "garp_master_repeat": 1},
        {
            "virtual_ipaddress": ["2001:db8::1"],
            "garp_master_refresh": 10,
            "garp_master_refresh_repeat": 4,
        },
    )
    data = yaml.safe_load(text)
    data["global_defs"] = glob
    cfg: Config = parse(yaml.safe_dump(data), FILE)
    vi1, vi2 = cfg.vrrp_instances["VI_1"], cfg.vrrp_instances["VI_2"]
    assert garp_settings(cfg, vi1) == GarpSettings(0.0, 1, 60.0, 2, 0.01)
    assert garp_settings(cfg, vi2) == GarpSettings(2.0, 3, 10.0, 4, 0.02)


# --- skip_check_adv_addr -------------------------------------------------------------------


def test_skip_check_adv_addr_values_are_checked_with_their_key_paths() -> None:
    assert_one(
        doc(global_defs={"vrrp_skip_check_adv_addr": "yes"}),
        "global_defs.vrrp_skip_check_adv_addr",
        "expected true or false",
    )
    assert_one(
        doc({"skip_check_adv_addr": 1}), f"{VI}.skip_check_adv_addr", "expected true or false"
    )
    assert_one(doc({"skip_check_adv_adr": True}), f"{VI}.skip_check_adv_adr", "skip_check_adv_addr")


@pytest.mark.parametrize(
    ("glob", "own", "expected"),
    [
        (None, None, False),  # keepalived's default: check
        (True, None, True),  # the global value is every instance's default
        (False, True, True),
        (True, False, False),  # the instance wins, both ways
        (True, True, True),
    ],
)
def test_skip_check_adv_addr_instance_over_global(
    glob: bool | None, own: bool | None, expected: bool
) -> None:
    top = {"global_defs": {"vrrp_skip_check_adv_addr": glob}} if glob is not None else {}
    cfg = parse(doc({"skip_check_adv_addr": own} if own is not None else {}, **top), FILE)
    assert skip_check_adv_addr(cfg, cfg.vrrp_instances["VI_1"]) is expected


def test_changing_the_global_skip_check_adv_addr_restarts_the_instances() -> None:
    from vrrp_agent.core.reload import diff

    old = parse(doc(), FILE)
    new = parse(doc(global_defs={"vrrp_skip_check_adv_addr": True}), FILE)
    same = parse(doc({"skip_check_adv_addr": False}), FILE)
    assert diff(old, new).fresh == ("VI_1",)
    assert diff(old, same).kept == ("VI_1",)  # the same resolved value
