"""The model states each key once: the allowed keys come from its fields, and the
closed sets of words are (str, Enum)s that still read, compare and print as words."""

from __future__ import annotations

import json
import logging
from ipaddress import IPv4Address
from typing import Any

import pytest
import yaml

from vrrp_agent.config import (
    ArbiterMethod,
    AuthType,
    CheckerKind,
    ConfigError,
    InitialState,
    LbAlgo,
    LbKind,
    LvsBackend,
    TransportProtocol,
    parse,
)
from vrrp_agent.config._lvs import LB_ALGOS
from vrrp_agent.config._vrrp import NOTIFY_KEYS
from vrrp_agent.config.model import (
    Arbiter,
    Checker,
    Config,
    GlobalDefs,
    Instance,
    RealServer,
    Script,
    SyncGroup,
    TrackRef,
    Url,
    VirtualAddress,
    VirtualServer,
    block_keys,
    config_keys,
)

FILE = "t.yml"
# Wrong for every key: not a scalar, not a mapping, and a list whose item is a list.
WRONG = [[1]]

INSTANCE = {"interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["10.0.0.1/24"]}
VIRTUAL_SERVER = {"ip": "10.0.0.1", "port": 80}
REAL_SERVER = {"ip": "10.0.0.11", "port": 80}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse(yaml.safe_dump(data), FILE)
    return err.value.problems


def doc(**sections: Any) -> dict[str, Any]:
    return {"vrrp_instances": {"VI_1": INSTANCE}, **sections}


def with_checker(kind: str, block: dict[str, Any]) -> dict[str, Any]:
    if kind in ("HTTP_GET", "SSL_GET"):
        block = {"url": {"path": "/"}, **block}
    if kind == "MISC_CHECK":
        block = {"misc_path": "/bin/true", **block}
    real = {**REAL_SERVER, kind: block}
    return doc(virtual_servers=[{**VIRTUAL_SERVER, "real_servers": [real]}])


def sections() -> list[tuple[str, str, dict[str, Any]]]:
    """(id, key path, document) with each allowed key of each section set to WRONG."""
    out: list[tuple[str, str, dict[str, Any]]] = []

    def add(where: str, key: str, data: dict[str, Any]) -> None:
        out.append((f"{where}.{key}", f"{where}.{key}", data))

    for key in config_keys(GlobalDefs):
        add("global_defs", key, doc(global_defs={key: WRONG}))
    for key in config_keys(Script):
        script = {"script": "/bin/true", key: WRONG}
        add("vrrp_scripts.chk", key, doc(vrrp_scripts={"chk": script}))
    for key in config_keys(Instance):
        add("vrrp_instances.VI_1", key, {"vrrp_instances": {"VI_1": {**INSTANCE, key: WRONG}}})
    for key in block_keys(Instance, "authentication"):
        auth = {"auth_type": "PASS", "auth_pass": "x", key: WRONG}
        inst = {**INSTANCE, "version": 2, "authentication": auth}
        add("vrrp_instances.VI_1.authentication", key, {"vrrp_instances": {"VI_1": inst}})
    for key in config_keys(VirtualAddress):
        vip = {"address": "10.0.0.1/24", key: WRONG}
        inst = {**INSTANCE, "virtual_ipaddress": [vip]}
        add("vrrp_instances.VI_1.virtual_ipaddress[0]", key, {"vrrp_instances": {"VI_1": inst}})
    for key in config_keys(TrackRef):
        inst = {**INSTANCE, "track_interface": [{"name": "eth1", key: WRONG}]}
        add("vrrp_instances.VI_1.track_interface[0]", key, {"vrrp_instances": {"VI_1": inst}})
    for key in config_keys(SyncGroup):
        add("vrrp_sync_groups.G", key, doc(vrrp_sync_groups={"G": {"group": ["VI_1"], key: WRONG}}))
    for key in config_keys(Arbiter):
        add("arbiter", key, doc(arbiter={"addresses": ["10.0.0.9"], key: WRONG}))
    for key in config_keys(VirtualServer):
        add("virtual_servers[0]", key, doc(virtual_servers=[{**VIRTUAL_SERVER, key: WRONG}]))
    for key in config_keys(RealServer):
        vs = {**VIRTUAL_SERVER, "real_servers": [{**REAL_SERVER, key: WRONG}]}
        add("virtual_servers[0].real_servers[0]", key, doc(virtual_servers=[vs]))
    for kind in CheckerKind:
        for key in config_keys(Checker, kind):
            where = f"virtual_servers[0].real_servers[0].{kind}"
            add(where, key, with_checker(kind.value, {key: WRONG}))
    for key in config_keys(Url):
        url = {"path": "/", key: WRONG}
        add(
            "virtual_servers[0].real_servers[0].HTTP_GET.url",
            key,
            with_checker("HTTP_GET", {"url": url}),
        )
    return out


CASES = sections()


@pytest.mark.parametrize(("keypath", "data"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_allowed_key_is_read(keypath: str, data: dict[str, Any]) -> None:
    # A field added to the model becomes an allowed key by itself; this catches
    # one the parser never reads, which would otherwise be silently ignored.
    found = problems(data)
    assert any(p.startswith(f"{FILE}: {keypath}") and "unknown key" not in p for p in found), found


def test_top_level_sections_are_the_config_fields() -> None:
    assert config_keys(Config) == (
        "global_defs",
        "vrrp_scripts",
        "vrrp_instances",
        "vrrp_sync_groups",
        "virtual_servers",
        "arbiter",
    )


def test_keys_that_are_not_field_names() -> None:
    assert "name" not in config_keys(Instance)  # the block's name is its key above
    assert "authentication" in config_keys(Instance)
    assert {"auth_type", "auth_pass"}.isdisjoint(config_keys(Instance))
    assert config_keys(RealServer)[-4:] == ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK")
    assert config_keys(Checker, CheckerKind.MISC_CHECK) == (
        "misc_path",
        "misc_timeout",
        "retry",
        "nb_get_retry",
        "delay_before_retry",
    )
    assert "url" in config_keys(Checker, CheckerKind.SSL_GET)
    assert "url" not in config_keys(Checker, CheckerKind.TCP_CHECK)
    assert NOTIFY_KEYS == (
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify",
    )
    assert all(type(key) is str for key in config_keys(RealServer))


def test_nb_get_retry_alone_is_retry() -> None:
    cfg = parse(yaml.safe_dump(with_checker("TCP_CHECK", {"nb_get_retry": 4})), FILE)
    checker = cfg.virtual_servers[0].real_servers[0].checker
    assert checker is not None
    assert checker.retry == 4


# --- enums ------------------------------------------------------------------------------


FULL = {
    "global_defs": {"lvs_backend": "NFTables"},
    "vrrp_instances": {
        "VI_1": {
            **INSTANCE,
            "state": "master",
            "version": 2,
            "authentication": {"auth_type": "pass", "auth_pass": "x"},
        }
    },
    "virtual_servers": [
        {
            **VIRTUAL_SERVER,
            "protocol": "udp",
            "lb_algo": "WRR",
            "lb_kind": "dr",
            "real_servers": [{**REAL_SERVER, "SSL_GET": {"url": {"path": "/"}}}],
        }
    ],
    "arbiter": {"addresses": ["10.0.0.9"], "method": "ARP", "interface": "eth0"},
}


def words() -> list[tuple[Any, Any]]:
    cfg = parse(yaml.safe_dump(FULL), FILE)
    inst, vs = cfg.vrrp_instances["VI_1"], cfg.virtual_servers[0]
    checker = vs.real_servers[0].checker
    assert checker is not None and cfg.arbiter is not None
    return [
        (cfg.global_defs.lvs_backend, LvsBackend.NFTABLES),
        (inst.state, InitialState.MASTER),
        (inst.auth_type, AuthType.PASS),
        (vs.protocol, TransportProtocol.UDP),
        (vs.lb_algo, LbAlgo.WRR),
        (vs.lb_kind, LbKind.DR),
        (checker.kind, CheckerKind.SSL_GET),
        (cfg.arbiter.method, ArbiterMethod.ARP),
    ]


def test_parsed_words_are_enum_members_in_canonical_case() -> None:
    for value, member in words():
        assert value is member


def test_members_are_their_words() -> None:
    # what other modules rely on: comparisons, table lookups, f-strings, %-logging, JSON
    for value, member in words():
        word = member.value
        assert value == word and word == value
        assert {word: 1}[value] == 1 and value in frozenset({word})
        # %-style too: logging formats its arguments so
        assert str(value) == f"{value}" == f"{value:>1}" == "%s" % value == word  # noqa: UP031
        assert json.dumps({"v": value}) == json.dumps({"v": word})
        assert type(str(value)) is str
    assert InitialState.MASTER == "MASTER"
    assert LbAlgo("rr") is LbAlgo.RR
    assert tuple(a.value for a in LbAlgo) == LB_ALGOS
    assert all(type(algo) is str for algo in LB_ALGOS)


def test_members_log_as_their_words(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("vrrp_agent.test").info("%s %s", LbKind.DR, InitialState.BACKUP)
    assert caplog.messages == ["DR BACKUP"]


def test_defaults_are_members() -> None:
    assert GlobalDefs().lvs_backend is LvsBackend.AUTO
    assert Instance("VI_1", "eth0", 1).state is InitialState.BACKUP
    vs = VirtualServer(IPv4Address("10.0.0.1"), 80)
    assert (vs.protocol, vs.lb_algo, vs.lb_kind) == (
        TransportProtocol.TCP,
        LbAlgo.RR,
        LbKind.NAT,
    )
    assert Arbiter(()).method is ArbiterMethod.ICMP
