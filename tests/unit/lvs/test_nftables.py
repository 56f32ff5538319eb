"""vrrp_agent.lvs.nftables: the JSON document `ruleset()` builds.

Every document is fed to the real `nft -j --check -f -`: nft parses and
evaluates it and the kernel validates the batch, then the transaction is
aborted, so nothing on this machine changes. The assertions read the document
the way the kernel will run it (which backend each scheduler slot jumps to,
what each backend chain does to the packet), not as a snapshot of its text.
What the rules do to real traffic is tests/netns/test_lvs_dataplane.py.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from ipaddress import ip_address
from typing import Any

import pytest

from tests import needs
from vrrp_agent.config.model import RealServer, SorryServer, VirtualServer
from vrrp_agent.lvs.nftables import (
    CONN_TIMEOUT,
    DR_TABLE_PREFIX,
    MAX_SLOTS,
    NAT_TABLE,
    REFRESH_PRIORITY,
    SCHEDULERS,
    SH_SEED,
    Unsupported,
    backend_tag,
    carried,
    parse_neighbours,
    ruleset,
    wrr_slots,
)
from vrrp_agent.lvs.plan import Backend, ServicePlan, plan_service

A = ip_address
OWN = "02:00:00:00:00:01"
MACS = {
    A("10.0.1.3"): "02:00:00:00:01:03",
    A("10.0.1.4"): "02:00:00:00:01:04",
    A("10.0.1.5"): "02:00:00:00:01:05",
    A("10.0.1.9"): "02:00:00:00:01:09",
    A("fd00:1::3"): "02:00:00:00:01:03",
    A("fd00:1::4"): "02:00:00:00:01:04",
    A("fd00:1::9"): "02:00:00:00:01:09",
}
IF = "lo"  # DR's `fwd` needs a device that exists, and every namespace has lo
DR = DR_TABLE_PREFIX + IF


def nft_check(doc: dict[str, Any]) -> None:
    needs.root("nft validates the document")
    nft = needs.tool("nft", "it validates the document")
    proc = subprocess.run(
        [nft, "-j", "--check", "-f", "-"], input=json.dumps(doc), text=True, capture_output=True
    )
    assert proc.returncode == 0, f"nft rejected the document: {proc.stderr}"


def vs(kind: str = "NAT", algo: str = "rr", v6: bool = False, **kw: Any) -> VirtualServer:
    net = "fd00:1::" if v6 else "10.0.1."
    port = 80 if kind == "DR" else 8080
    reals = kw.pop("real_servers", None) or (
        RealServer(A(net + "3"), port, kw.pop("w3", 1)),
        RealServer(A(net + "4"), port, kw.pop("w4", 1)),
    )
    return VirtualServer(
        A("fd00::100" if v6 else "10.0.0.100"),
        80,
        lb_algo=algo,
        lb_kind=kind,
        real_servers=reals,
        **kw,
    )


def doc_for(*servers: VirtualServer, healthy: dict | None = None, **kw: Any) -> dict[str, Any]:
    plans = [(plan_service(s, healthy or {}), IF) for s in servers]
    doc = ruleset(plans, MACS, {IF: OWN}, **kw)
    nft_check(doc)
    return doc


# --- reading the document ------------------------------------------------------


def cmds(doc: dict[str, Any], verb: str, what: str) -> list[dict[str, Any]]:
    return [c[verb][what] for c in doc["nftables"] if verb in c and what in c[verb]]


def rules(doc: dict[str, Any], table: str, chain: str) -> list[list[dict[str, Any]]]:
    return [
        r["expr"] for r in cmds(doc, "add", "rule") if (r["table"], r["chain"]) == (table, chain)
    ]


def chain(doc: dict[str, Any], table: str, name: str) -> dict[str, Any]:
    (found,) = [c for c in cmds(doc, "add", "chain") if (c["table"], c["name"]) == (table, name)]
    return found


def sets(doc: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in cmds(doc, "add", "set") if s["table"] == table}


def entry_target(doc: dict[str, Any], table: str, base: str, vip: str, port: int) -> str:
    """The chain the base chain jumps to for packets to vip:port."""
    for expr in rules(doc, table, base):
        rights = [e["match"]["right"] for e in expr if "match" in e]
        if vip in rights and port in rights:
            return expr[-1]["jump"]["target"]
    raise AssertionError(f"no rule for {vip}:{port} in {table} {base}")


def scheduler(doc: dict[str, Any], table: str, svc: str) -> tuple[dict[str, Any], list[str]]:
    """(key expression, backend chain per slot) of the service's vmap."""
    (vmap,) = [e["vmap"] for expr in rules(doc, table, svc) for e in expr if "vmap" in e]
    data = vmap["data"]["set"]
    assert [slot for slot, _ in data] == list(range(len(data)))
    return vmap["key"], [verdict["jump"]["target"] for _, verdict in data]


def dnat_of(doc: dict[str, Any], be: str) -> tuple[str, int]:
    (expr,) = rules(doc, NAT_TABLE, be)
    (nat,) = [e["dnat"] for e in expr if "dnat" in e]
    return nat["addr"], nat["port"]


def forward_of(doc: dict[str, Any], table: str, be: str) -> tuple[str, str, str]:
    """(ether saddr, ether daddr, fwd device) the backend chain sets."""
    mangled, dev = {}, None
    for expr in rules(doc, table, be):
        for e in expr:
            if "mangle" in e:
                mangled[e["mangle"]["key"]["payload"]["field"]] = e["mangle"]["value"]
            if "fwd" in e:
                dev = e["fwd"]["dev"]
    return mangled["saddr"], mangled["daddr"], dev


def lookups(doc: dict[str, Any], table: str, svc: str) -> list[tuple[str, str]]:
    """(set, backend chain) for each `... @set jump be` rule, in order."""
    out = []
    for expr in rules(doc, table, svc):
        if "jump" in expr[-1] and "match" in expr[0]:
            out.append((expr[0]["match"]["right"].lstrip("@"), expr[-1]["jump"]["target"]))
    return out


def updates(doc: dict[str, Any], table: str, chain_name: str) -> dict[str, int]:
    """set -> timeout for each `update @set { key timeout T }` in the chain."""
    out = {}
    for expr in rules(doc, table, chain_name):
        for e in expr:
            if "set" in e and e["set"]["op"] == "update":
                out[e["set"]["set"].lstrip("@")] = e["set"]["elem"]["elem"]["timeout"]
    return out


# --- NAT -----------------------------------------------------------------------


def test_nat_rr_dnats_round_robin_to_each_real_server_and_port():
    doc = doc_for(
        vs(
            "NAT",
            "rr",
            real_servers=(
                RealServer(A("10.0.1.3"), 8080),
                RealServer(A("10.0.1.4"), 8081, 5),
                RealServer(A("10.0.1.5"), 8082),
            ),
        )
    )
    pre = chain(doc, NAT_TABLE, "prerouting")
    assert (pre["type"], pre["hook"], pre["prio"]) == ("nat", "prerouting", -100)
    svc = entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    key, slots = scheduler(doc, NAT_TABLE, svc)
    assert key == {"numgen": {"mode": "inc", "mod": 3, "offset": 0}}
    # rr ignores weights (as IPVS does); one slot each, in configuration order
    assert [dnat_of(doc, be) for be in slots] == [
        ("10.0.1.3", 8080),
        ("10.0.1.4", 8081),
        ("10.0.1.5", 8082),
    ]
    # the dnat rule names its protocol (nft needs it for the port) and only tcp enters
    (expr,) = rules(doc, NAT_TABLE, slots[0])
    assert {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}} in expr
    (entry,) = rules(doc, NAT_TABLE, "prerouting")
    assert entry[1]["match"]["left"] == {"payload": {"protocol": "tcp", "field": "dport"}}
    # no persistence: no sets, no refresh chain
    assert sets(doc, NAT_TABLE) == {}
    assert "refresh" not in [c["name"] for c in cmds(doc, "add", "chain")]


def test_nat_wrr_repeats_each_backend_by_weight_in_ipvs_order():
    doc = doc_for(vs("NAT", "wrr", w3=3, w4=1))
    svc = entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    key, slots = scheduler(doc, NAT_TABLE, svc)
    assert key["numgen"]["mod"] == 4
    assert [dnat_of(doc, be)[0] for be in slots] == ["10.0.1.3"] * 3 + ["10.0.1.4"]


def test_nat_wrr_divides_weights_by_their_gcd():
    doc = doc_for(vs("NAT", "wrr", w3=40, w4=20))
    svc = entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    _, slots = scheduler(doc, NAT_TABLE, svc)
    assert [dnat_of(doc, be)[0] for be in slots] == ["10.0.1.3", "10.0.1.3", "10.0.1.4"]


def test_nat_sh_hashes_the_source_address_with_a_fixed_seed_over_weighted_slots():
    doc = doc_for(vs("NAT", "sh", w3=1, w4=2))
    svc = entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    key, slots = scheduler(doc, NAT_TABLE, svc)
    # a fixed seed: re-applying must not move every source to another server
    assert key == {
        "jhash": {
            "mod": 3,
            "seed": SH_SEED,
            "expr": {"payload": {"protocol": "ip", "field": "saddr"}},
        }
    }
    assert Counter(dnat_of(doc, be)[0] for be in slots) == {"10.0.1.3": 1, "10.0.1.4": 2}


def test_nat_persistence_checks_per_backend_sets_first_and_refreshes_after_dnat():
    doc = doc_for(vs("NAT", "rr", persistence_timeout=7))
    svc = entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    _, slots = scheduler(doc, NAT_TABLE, svc)
    sticky = lookups(doc, NAT_TABLE, svc)
    # one source-address set per backend, each leading to that backend, before the vmap
    assert [be for _, be in sticky] == slots
    assert rules(doc, NAT_TABLE, svc)[-1][0].keys() == {"vmap"}
    all_sets = sets(doc, NAT_TABLE)
    for name, _ in sticky:
        assert all_sets[name]["type"] == "ipv4_addr"
        assert all_sets[name]["timeout"] == 7 and "timeout" in all_sets[name]["flags"]
    # every packet of the connection, after DNAT, renews the client's entry
    refresh = chain(doc, NAT_TABLE, "refresh")
    assert (refresh["type"], refresh["hook"], refresh["prio"]) == (
        "filter",
        "prerouting",
        REFRESH_PRIORITY,
    )
    assert REFRESH_PRIORITY > -100  # after the nat chain (dstnat)
    (entry,) = rules(doc, NAT_TABLE, "refresh")
    rights = [e["match"]["right"] for e in entry if "match" in e]
    assert rights == ["original", "10.0.0.100", "tcp", 80]
    keep = entry[-1]["jump"]["target"]
    refreshes = rules(doc, NAT_TABLE, keep)
    assert len(refreshes) == len(sticky)  # zip(strict=True) before Python 3.10
    for (stick, be), expr in zip(sticky, refreshes):
        addr, port = dnat_of(doc, be)
        assert [e["match"]["right"] for e in expr if "match" in e] == [addr, port]
        assert updates(doc, NAT_TABLE, keep)[stick] == 7


def test_nat_sorry_server_is_the_only_backend_when_no_real_server_is_up():
    server = vs("NAT", "wrr", sorry_server=SorryServer(A("10.0.1.9"), 9090))
    down = {(rs.ip, rs.port): False for rs in server.real_servers}
    doc = doc_for(server, healthy=down)
    _, slots = scheduler(
        doc, NAT_TABLE, entry_target(doc, NAT_TABLE, "prerouting", "10.0.0.100", 80)
    )
    assert [dnat_of(doc, be) for be in slots] == [("10.0.1.9", 9090)]
    (rule,) = [r for r in cmds(doc, "add", "rule") if r["chain"] == slots[0]]
    assert rule["comment"].startswith("sorry server 10.0.1.9:9090")


def test_nat_service_without_a_scheduled_backend_is_left_to_the_local_stack():
    # both failed, one inhibited (kept with weight 0), no sorry server
    server = vs(
        "NAT",
        "rr",
        real_servers=(
            RealServer(A("10.0.1.3"), 8080, inhibit_on_failure=True),
            RealServer(A("10.0.1.4"), 8080),
        ),
    )
    down = {(rs.ip, rs.port): False for rs in server.real_servers}
    doc = doc_for(server, vs("NAT", "rr", v6=True), healthy=down)
    entries = rules(doc, NAT_TABLE, "prerouting")
    assert len(entries) == 1 and entries[0][0]["match"]["right"] == "fd00::100"


def test_nat_ipv6_udp_and_sctp():
    doc = doc_for(
        vs("NAT", "rr", v6=True, protocol="UDP"),
        vs("NAT", "sh", v6=True, protocol="SCTP", persistence_timeout=3),
    )
    for proto in ("udp", "sctp"):
        (entry,) = [
            e
            for e in rules(doc, NAT_TABLE, "prerouting")
            if e[1]["match"]["left"]["payload"]["protocol"] == proto
        ]
        assert entry[0]["match"]["left"] == {"payload": {"protocol": "ip6", "field": "daddr"}}
        _, slots = scheduler(doc, NAT_TABLE, entry[-1]["jump"]["target"])
        (nat,) = [e["dnat"] for e in rules(doc, NAT_TABLE, slots[0])[0] if "dnat" in e]
        assert nat["family"] == "ip6" and nat["addr"].startswith("fd00:1::")
    (refresh,) = rules(doc, NAT_TABLE, "refresh")
    assert refresh[1]["match"]["left"] == {"ct": {"key": "ip6 daddr", "dir": "original"}}


# --- DR ------------------------------------------------------------------------


def test_dr_rewrites_both_macs_and_forwards_on_the_vip_interface():
    doc = doc_for(vs("DR", "rr"))
    ingress = chain(doc, DR, "ingress")
    assert ingress["type"] == "filter" and ingress["hook"] == "ingress" and ingress["dev"] == IF
    assert [t["name"] for t in cmds(doc, "add", "table")] == [NAT_TABLE, DR, DR]
    (entry,) = rules(doc, DR, "ingress")
    # only frames addressed to us: never re-forward a flooded copy meant for someone else
    assert [e["match"]["right"] for e in entry if "match" in e] == [OWN, "10.0.0.100", 80]
    _, slots = scheduler(doc, DR, entry[-1]["jump"]["target"])
    assert [forward_of(doc, DR, be) for be in slots] == [
        (OWN, "02:00:00:00:01:03", IF),
        (OWN, "02:00:00:00:01:04", IF),
    ]


def test_dr_keeps_each_connection_on_its_backend_with_per_backend_connection_sets():
    doc = doc_for(vs("DR", "rr"))
    svc = entry_target(doc, DR, "ingress", "10.0.0.100", 80)
    _, slots = scheduler(doc, DR, svc)
    conns = lookups(doc, DR, svc)
    assert [be for _, be in conns] == slots
    all_sets = sets(doc, DR)
    for conn, be in conns:
        assert all_sets[conn]["type"] == ["ipv4_addr", "inet_service"]
        assert updates(doc, DR, be) == {conn: CONN_TIMEOUT["TCP"]}
        # remembering the connection is a rule of its own: if the set is full the
        # packet is still forwarded
        assert len(rules(doc, DR, be)) == 2
    (lookup,) = rules(doc, DR, svc)[:1]
    assert lookup[0]["match"]["left"] == {
        "concat": [
            {"payload": {"protocol": "ip", "field": "saddr"}},
            {"payload": {"protocol": "tcp", "field": "sport"}},
        ]
    }


def test_dr_inhibited_backend_keeps_its_connections_but_gets_no_new_ones():
    server = vs(
        "DR",
        "wrr",
        real_servers=(
            RealServer(A("10.0.1.3"), 80, 2),
            RealServer(A("10.0.1.4"), 80, 1, inhibit_on_failure=True),
        ),
    )
    doc = doc_for(server, healthy={(A("10.0.1.4"), 80): False})
    svc = entry_target(doc, DR, "ingress", "10.0.0.100", 80)
    _, slots = scheduler(doc, DR, svc)
    assert {forward_of(doc, DR, be)[1] for be in slots} == {"02:00:00:00:01:03"}
    assert {forward_of(doc, DR, be)[1] for _, be in lookups(doc, DR, svc)} == {
        "02:00:00:00:01:03",
        "02:00:00:00:01:04",
    }


def test_dr_leaves_out_backends_without_a_mac():
    server = vs(
        "DR",
        "rr",
        real_servers=(
            RealServer(A("10.0.1.3"), 80),
            RealServer(A("10.0.1.77"), 80),
        ),
    )
    doc = doc_for(server)
    _, slots = scheduler(doc, DR, entry_target(doc, DR, "ingress", "10.0.0.100", 80))
    assert [forward_of(doc, DR, be)[1] for be in slots] == ["02:00:00:00:01:03"]


def test_dr_persistence_after_connections_before_scheduling():
    doc = doc_for(vs("DR", "sh", persistence_timeout=2))
    svc = entry_target(doc, DR, "ingress", "10.0.0.100", 80)
    key, slots = scheduler(doc, DR, svc)
    assert "jhash" in key
    found = lookups(doc, DR, svc)
    kinds = [name.split("_")[0] for name, _ in found]
    assert kinds == ["conn", "conn", "stick", "stick"]
    all_sets = sets(doc, DR)
    for name, be in found[2:]:
        assert all_sets[name]["type"] == "ipv4_addr" and all_sets[name]["timeout"] == 2
        # the backend chain renews both the connection and the client's stickiness
        assert updates(doc, DR, be)[name] == 2
    assert [be for _, be in found[2:]] == sorted(set(slots), key=slots.index)


def test_dr_sorry_server_and_ipv6():
    server = vs("DR", "rr", v6=True, sorry_server=SorryServer(A("fd00:1::9"), 80))
    down = {(rs.ip, rs.port): False for rs in server.real_servers}
    doc = doc_for(server, healthy=down)
    (entry,) = rules(doc, DR, "ingress")
    assert entry[1]["match"]["left"] == {"payload": {"protocol": "ip6", "field": "daddr"}}
    svc = entry[-1]["jump"]["target"]
    _, slots = scheduler(doc, DR, svc)
    assert [forward_of(doc, DR, be) for be in slots] == [(OWN, "02:00:00:00:01:09", IF)]
    ((conn, _),) = lookups(doc, DR, svc)
    assert sets(doc, DR)[conn]["type"] == ["ipv6_addr", "inet_service"]


def test_dr_udp_connection_timeout():
    doc = doc_for(vs("DR", "rr", protocol="UDP"))
    svc = entry_target(doc, DR, "ingress", "10.0.0.100", 80)
    for conn, be in lookups(doc, DR, svc):
        assert updates(doc, DR, be) == {conn: CONN_TIMEOUT["UDP"]}


def test_nat_and_dr_together_on_two_interfaces():
    # NAT does not care where the VIP is; DR's `fwd` needs a device that exists
    plans = [(plan_service(vs("NAT", "rr"), {}), "eth9"), (plan_service(vs("DR", "rr"), {}), IF)]
    doc = ruleset(plans, MACS, {IF: OWN})
    nft_check(doc)
    added = [(t["family"], t["name"]) for t in cmds(doc, "add", "table")]
    assert set(added) == {("inet", NAT_TABLE), ("netdev", DR)}
    assert chain(doc, DR, "ingress")["dev"] == IF
    assert chain(doc, NAT_TABLE, "prerouting")["hook"] == "prerouting"


# --- the transaction -------------------------------------------------------------


def test_every_table_is_added_deleted_and_rebuilt_in_one_batch():
    doc = doc_for(vs("NAT", "rr"))
    verbs = [
        (verb, what)
        for c in doc["nftables"]
        for verb, body in c.items()
        if verb != "metainfo"
        for what in body
    ]
    # add + delete first (valid whether or not the table exists), then the new table
    assert verbs[:3] == [("add", "table"), ("delete", "table"), ("add", "table")]
    assert ("delete", "table") not in verbs[2:]


def test_stale_tables_of_ours_are_deleted_and_foreign_ones_never_touched():
    present = [("netdev", DR_TABLE_PREFIX + "eth7"), ("inet", "filter"), ("netdev", "other")]
    doc = doc_for(vs("NAT", "rr"), present=present)
    deleted = {(t["family"], t["name"]) for t in cmds(doc, "delete", "table")}
    assert deleted == {("inet", NAT_TABLE), ("netdev", DR_TABLE_PREFIX + "eth7")}
    touched = {(t["family"], t["name"]) for t in cmds(doc, "add", "table")}
    assert not touched & {("inet", "filter"), ("netdev", "other")}


def test_empty_ruleset_only_deletes():
    doc = ruleset([], {}, {}, present=[("netdev", DR_TABLE_PREFIX + "eth0")])
    nft_check(doc)
    assert cmds(doc, "add", "chain") == [] and cmds(doc, "add", "rule") == []
    assert len(cmds(doc, "delete", "table")) == 2


# --- carrying set contents over a replace ------------------------------------------

LISTING = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "netdev", "name": DR, "handle": 1}},
        {
            "set": {
                "family": "netdev",
                "name": "conn_x",
                "table": DR,
                "type": ["ipv4_addr", "inet_service"],
                "flags": ["timeout"],
                "timeout": 900,
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["10.0.0.2", 40000]},
                            "timeout": 900,
                            "expires": 99,
                        }
                    }
                ],
            }
        },
        {
            "set": {
                "family": "netdev",
                "name": "stick_y",
                "table": DR,
                "type": "ipv4_addr",
                "flags": ["timeout"],
                "timeout": 5,
                "elem": [{"elem": {"val": "10.0.0.2", "timeout": 5, "expires": 0}}],
            }
        },
        {"set": {"family": "netdev", "name": "stick_empty", "table": DR, "type": "ipv4_addr"}},
        {
            "set": {
                "family": "inet",
                "name": "stick_z",
                "table": "someone_else",
                "type": "ipv4_addr",
                "elem": ["10.0.0.9"],
            }
        },
    ]
}


def test_carried_keeps_our_sets_elements_only():
    assert carried(LISTING) == {
        ("netdev", DR, "conn_x"): LISTING["nftables"][2]["set"]["elem"],
        ("netdev", DR, "stick_y"): LISTING["nftables"][3]["set"]["elem"],
    }


def test_carried_elements_go_back_into_sets_of_the_same_name_with_their_time_left():
    server = vs("DR", "rr", persistence_timeout=5)
    plan = plan_service(server, {})
    tag = backend_tag(server, plan.backends[0])  # 10.0.1.3
    conn, stick = f"conn_{tag}", f"stick_{tag}"
    assert {conn, stick} <= set(sets(ruleset([(plan, IF)], MACS, {IF: OWN}), DR))
    listing = json.loads(json.dumps(LISTING).replace("conn_x", conn).replace("stick_y", stick))
    doc = doc_for(server, keep=carried(listing))
    added = {e["name"]: e["elem"] for e in cmds(doc, "add", "element")}
    assert added == {
        # what the listing rounded down, plus a second: never shorter than it was
        conn: [{"elem": {"val": {"concat": ["10.0.0.2", 40000]}, "timeout": 100}}],
        stick: [{"elem": {"val": "10.0.0.2", "timeout": 1}}],
    }
    # elements come after the sets they go into
    kinds = [next(iter(c["add"])) for c in doc["nftables"] if "add" in c]
    assert kinds.index("element") > max(i for i, k in enumerate(kinds) if k == "set")
    # a backend that left takes its sets with it
    gone = ServicePlan(server, (Backend(A("10.0.1.4"), 80, 1),))
    doc = ruleset([(gone, IF)], MACS, {IF: OWN}, keep=carried(listing))
    nft_check(doc)
    assert conn not in {e["name"] for e in cmds(doc, "add", "element")}


# --- schedulers and refusals ------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "sequence"),
    [
        ([1, 1, 1], [0, 1, 2]),
        ([3, 1], [0, 0, 0, 1]),
        ([4, 3, 2], [0, 0, 1, 0, 1, 2, 0, 1, 2]),  # IPVS: cw 4, 3, 2, 1
        ([2, 4], [1, 0, 1]),  # gcd 2 -> 1:2
        ([5], [0]),
    ],
)
def test_wrr_slots_follow_ipvs(weights, sequence):
    assert wrr_slots(weights) == sequence


def test_wrr_slots_scale_big_weights_down_within_the_limit():
    slots = wrr_slots([65535, 30000, 1])
    assert len(slots) <= MAX_SLOTS
    counts = Counter(slots)
    assert counts[2] == 1 and counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize("kind", ["NAT", "DR"])
@pytest.mark.parametrize("algo", sorted(SCHEDULERS))
@pytest.mark.parametrize("persistence", [0, 30])
@pytest.mark.parametrize("v6", [False, True])
def test_every_kind_scheduler_persistence_and_family_is_accepted_by_nft(
    kind, algo, persistence, v6
):
    proto = {"rr": "TCP", "wrr": "UDP", "sh": "SCTP"}[algo]
    doc = doc_for(vs(kind, algo, v6=v6, persistence_timeout=persistence, protocol=proto, w3=2))
    table = NAT_TABLE if kind == "NAT" else DR
    base = "prerouting" if kind == "NAT" else "ingress"
    svc = entry_target(doc, table, base, "fd00::100" if v6 else "10.0.0.100", 80)
    _, slots = scheduler(doc, table, svc)
    assert len(slots) == (2 if algo == "rr" else 3)


def test_tun_is_refused_with_the_reason():
    with pytest.raises(Unsupported, match="lb_kind TUN is not supported.*no ipip"):
        ruleset([(plan_service(vs("TUN"), {}), IF)], MACS, {IF: OWN})


@pytest.mark.parametrize("algo", ["lc", "wlc", "sed", "nq", "dh", "lblc", "mh"])
def test_schedulers_needing_connection_counts_are_refused(algo):
    assert algo not in SCHEDULERS
    with pytest.raises(Unsupported, match=f"lb_algo {algo} is not available with nftables"):
        ruleset([(plan_service(vs("NAT", algo), {}), IF)], MACS, {IF: OWN})


def test_neighbours_with_a_usable_mac():
    data = [
        {"dst": "10.0.1.3", "lladdr": "02:00:00:00:01:03", "state": ["REACHABLE"]},
        {"dst": "10.0.1.4", "lladdr": "02:00:00:00:01:04", "state": ["STALE"]},
        {"dst": "10.0.1.5", "state": ["INCOMPLETE"]},
        {"dst": "10.0.1.6", "lladdr": "02:00:00:00:01:06", "state": ["FAILED"]},
        {"dst": "fd00:1::3", "lladdr": "02:00:00:00:01:03", "router": None, "state": ["DELAY"]},
        {"dst": "10.0.1.7", "lladdr": "02:00:00:00:01:07", "state": ["PERMANENT"]},
    ]
    assert parse_neighbours(data) == {
        A("10.0.1.3"): "02:00:00:00:01:03",
        A("10.0.1.4"): "02:00:00:00:01:04",
        A("fd00:1::3"): "02:00:00:00:01:03",
        A("10.0.1.7"): "02:00:00:00:01:07",
    }
