"""import-keepalived on the corpus (tests/keepalived_corpus): files written by
hand in the shapes real deployments use. Each converts, the agent's own
validation accepts the result, and the YAML is asserted field by field; what
keepalived would have changed on its own (strict mode, defaults) is changed
and said, on the line that caused it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vrrp_agent.cli import main
from vrrp_agent.config import parse

CORPUS = Path(__file__).resolve().parents[2] / "keepalived_corpus"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    rc = main(["import-keepalived", *argv])
    out, err = capsys.readouterr()
    return rc, out, err.splitlines()


def imported(
    capsys: pytest.CaptureFixture[str], name: str, *extra: str
) -> tuple[dict[str, Any], list[str]]:
    rc, out, err = run(capsys, str(CORPUS / name), *extra)
    assert rc == 0, "\n".join(err)
    parse(out, name)  # the agent accepts it as it is
    return yaml.safe_load(out), err


def test_master_backup_for_each_node(capsys: pytest.CaptureFixture[str]) -> None:
    for node, state, prio in (("node1", "MASTER", 150), ("node2", "BACKUP", 100)):
        data, _ = imported(capsys, "master_backup.conf", "--config-id", node)
        g = data["global_defs"]
        assert g["router_id"] == "LB_NGINX"
        assert g["notification_email"] == ["ops@example.com", "oncall@example.com"]
        assert g["notification_email_from"] == "keepalived@lb.example.com"
        assert g["smtp_server"] == "192.0.2.25 2525"
        assert g["smtp_connect_timeout"] == 10
        assert (g["smtp_helo_name"], g["no_email_faults"]) == ("lb.example.com", True)
        assert g["script_user"] == "nobody"
        assert g["enable_script_security"] is True
        assert data["vrrp_scripts"]["chk_nginx"] == {
            "script": "/usr/bin/pgrep -x nginx",
            "interval": 2,
            "timeout": 3,
            "fall": 2,
            "rise": 1,
            "weight": -60,
        }
        vi = data["vrrp_instances"]["VI_1"]
        assert (vi["state"], vi["priority"]) == (state, prio)
        assert vi["version"] == 2  # keepalived's default, ours is 3
        assert vi["authentication"] == {"auth_type": "PASS", "auth_pass": "s3cr3t"}
        assert vi["virtual_ipaddress"] == ["192.0.2.100/24 dev eth0 label eth0:vip"]
        assert vi["track_script"] == ["chk_nginx"]
        assert vi["notify_master"] == "/usr/local/bin/notify.sh MASTER"
        assert vi["notify_fault"] == "/usr/local/bin/notify.sh FAULT"
        assert vi["smtp_alert"] is True
        assert vi["accept"] is True


def test_dual_master(capsys: pytest.CaptureFixture[str]) -> None:
    data, err = imported(capsys, "dual_master.conf")
    a, b = data["vrrp_instances"]["VI_A"], data["vrrp_instances"]["VI_B"]
    assert (a["version"], b["version"]) == (3, 3)  # global vrrp_version 3
    assert (a["advert_int"], b["advert_int"]) == (0.5, 0.5)
    assert a["track_interface"] == [{"name": "eth1", "weight": -50}]
    assert b["virtual_ipaddress"] == ["198.51.100.20/24"]  # a block on one line
    assert b["nopreempt"] is True
    assert data["global_defs"]["enable_script_security"] is False  # keepalived's default
    assert err == []


def test_sync_group_with_group_notify_and_track_file(capsys: pytest.CaptureFixture[str]) -> None:
    data, err = imported(capsys, "sync_group.conf")
    vg = data["vrrp_sync_groups"]["VG_GW"]
    assert vg["group"] == ["VI_OUT", "VI_IN"]
    assert vg["notify_master"] == "/etc/keepalived/gw.sh master"
    assert vg["notify"] == "/etc/keepalived/gw-all.sh"
    assert vg["sync_group_tracking_weight"] is True
    assert vg["smtp_alert"] is True
    assert data["global_defs"]["smtp_alert_vrrp"] is True
    out = data["vrrp_instances"]["VI_OUT"]
    assert out["track_file"] == [{"name": "/var/run/keepalived/maint", "weight": -100}]
    assert out["state"] == "BACKUP" and out["priority"] == 120
    assert data["vrrp_instances"]["VI_IN"]["preempt_delay"] == 30
    assert any("sync_group.conf:13: warning: global_tracking" in line for line in err)


def test_lvs_dr_with_every_checker(capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = imported(capsys, "lvs_dr.conf")
    (vs,) = data["virtual_servers"]
    assert (vs["ip"], vs["port"], vs["lb_algo"], vs["lb_kind"]) == ("192.0.2.80", 80, "wrr", "DR")
    assert (vs["delay_loop"], vs["persistence_timeout"], vs["protocol"]) == (6, 50, "TCP")
    assert vs["sorry_server"] == {"ip": "192.0.2.99", "port": 80}
    tcp, http, misc = vs["real_servers"]
    assert tcp == {
        "ip": "192.0.2.11",
        "port": 80,
        "weight": 3,
        "TCP_CHECK": {"connect_timeout": 3, "retry": 3, "delay_before_retry": 2},
    }
    assert http["inhibit_on_failure"] is True
    assert http["HTTP_GET"] == {
        "url": [
            {"path": "/health", "status_code": 200},
            {"path": "/index.html", "digest": "9b3a0c85a887a256d6939da88aabd8cd"},
        ],
        "connect_timeout": 2,
        "retry": 2,  # nb_get_retry, keepalived's older name
        "delay_before_retry": 1,
    }
    assert misc["MISC_CHECK"] == {
        "misc_path": "/usr/local/bin/check_app 192.0.2.13",
        "misc_timeout": 5,
    }


def test_lvs_nat_takes_keepalived_defaults_and_inherited_timeouts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, err = imported(capsys, "lvs_nat.conf")
    (vs,) = data["virtual_servers"]
    assert vs["lb_algo"] == "wlc"  # keepalived's default scheduler; ours is rr
    assert vs["lb_kind"] == "NAT"
    ssl, tcp = vs["real_servers"]
    # connect_timeout at the virtual server's level reaches every checker
    assert ssl["SSL_GET"] == {"url": [{"path": "/"}], "connect_timeout": 4}
    assert tcp["TCP_CHECK"] == {"connect_port": 8443, "connect_timeout": 4}
    assert "lvs_nat.conf:12: warning: virtual_server: no lb_algo; keepalived uses wlc" in err[0]


def test_unicast(capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = imported(capsys, "unicast.conf")
    vi = data["vrrp_instances"]["VI_U"]
    assert vi["unicast_src_ip"] == "10.1.1.11"
    assert vi["unicast_peer"] == ["10.1.1.12", "10.1.1.13"]
    assert (vi["advert_int"], vi["version"]) == (2, 2)


def test_ipv6_is_version_3(capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = imported(capsys, "ipv6.conf")
    vi = data["vrrp_instances"]["VI_6"]
    assert vi["version"] == 3  # keepalived: IPv6 is always VRRPv3
    assert vi["virtual_ipaddress"] == ["fe80::1:66/64", "2001:db8::66/64"]
    assert vi["state"] == "BACKUP"


def test_includes_parameters_and_seq(capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = imported(capsys, "includes.conf")
    assert data["global_defs"]["router_id"] == "inc"  # from conf.d/10-global.conf
    assert data["vrrp_scripts"]["chk_port"]["script"] == (
        "/usr/bin/timeout 1 /bin/bash -c '</dev/tcp/127.0.0.1/80'"
    )
    vi = data["vrrp_instances"]["VI_SEQ"]
    assert (vi["interface"], vi["virtual_router_id"]) == ("eth0", 70)
    assert vi["virtual_ipaddress"] == ["192.0.2.11/24", "192.0.2.12/24", "192.0.2.13/24"]


def test_strict_mode_changes_what_keepalived_changes(capsys: pytest.CaptureFixture[str]) -> None:
    data, err = imported(capsys, "strict.conf")
    vi = data["vrrp_instances"]["VI_S"]
    assert vi["state"] == "BACKUP"  # MASTER below 255 starts as BACKUP
    assert "authentication" not in vi  # ignored
    assert vi["accept"] is False  # and so the VIP takes no traffic
    f = CORPUS / "strict.conf"
    said = "\n".join(err)
    assert f"{f}:5: warning: vrrp_instance VI_S: state MASTER must match being" in said
    assert (
        f"{f}:9: warning: vrrp_instance VI_S: Strict mode does not support authentication."
        f" Ignoring. (strict mode, {f}:2)" in said
    )
    assert "VIP unreachable with vrrp_strict" in said


def test_strict_mode_refuses_unicast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "k.conf"
    f.write_text(
        (CORPUS / "unicast.conf").read_text().replace("    state BACKUP\n", "    strict_mode\n")
    )
    rc, out, err = run(capsys, str(f))
    assert rc == 2 and out == ""
    assert (
        f"{f}:8: error: vrrp_instance VI_U: Unicast peers are not supported in strict mode"
        in err[0]
    )


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n"
         " virtual_ipaddress {\n  10.0.0.1\n }\n dont_track_primary\n}\n",
         7, "dont_track_primary: not supported by the agent"),
        ("static_routes {\n 10.0.0.0/8 via 10.0.0.1\n}\n", 1, "static_routes: not supported"),
        ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n authentication {\n"
         "  auth_type AH\n  auth_pass x\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
         5, "auth_type: not supported by the agent (IPsec AH authentication)"),
        ("virtual_server fwmark 1 {\n}\n", 1, "virtual_server: not supported"),
        ("vrrp_instance V {\n interface eth0\n virtual_router_id 300\n"
         " virtual_ipaddress {\n  10.0.0.1\n }\n}\n", 3, "virtual_router_id: 300 is out of range"),
        ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n}\n",
         1, "vrrp_instance V: no virtual_ipaddress"),
    ],
)  # fmt: skip
def test_refused_keywords_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int, message: str
) -> None:
    f = tmp_path / "k.conf"
    f.write_text(body)
    out_file = tmp_path / "out.yml"
    rc, out, err = run(capsys, str(f), "-o", str(out_file))
    assert rc == 2 and out == "" and not out_file.exists()
    assert any(e.startswith(f"{f}:{line}: error: {message}") for e in err), err


def test_unknown_keywords_are_warnings_as_keepalived_ignores_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text("global_defs {\n  frobnicate 1\n}\nvrrp_instance V {\n interface eth0\n"
                 " virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n")  # fmt: skip
    rc, out, err = run(capsys, str(f))
    assert rc == 0
    assert err == [f"{f}:2: warning: frobnicate: not a keepalived keyword in global_defs;"
                   " keepalived ignores it too ('Unknown keyword'), and so does the import"]  # fmt: skip
    assert yaml.safe_load(out)["vrrp_instances"]["V"]["virtual_ipaddress"] == ["10.0.0.1"]


def test_output_file_is_written_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "agent.yml"
    rc, out, _ = run(capsys, str(CORPUS / "unicast.conf"), "-o", str(out_file))
    assert rc == 0 and out == ""
    assert out_file.stat().st_mode & 0o077 == 0  # it may carry auth_pass
    assert yaml.safe_load(out_file.read_text())["vrrp_instances"]["VI_U"]["priority"] == 90


def test_state_master_without_priority_is_the_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text("vrrp_instance V {\n state MASTER\n interface eth0\n virtual_router_id 1\n"
                 " nopreempt\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n")  # fmt: skip
    rc, out, err = run(capsys, str(f))
    assert rc == 0
    vi = yaml.safe_load(out)["vrrp_instances"]["V"]
    assert (vi["priority"], vi["state"], vi["nopreempt"]) == (255, "MASTER", False)
    assert any(
        f"{f}:2: warning: vrrp_instance V: state MASTER without a priority" in e for e in err
    )
    assert any(f"{f}:5: warning: vrrp_instance V: nopreempt is incompatible" in e for e in err)


def test_the_readme_lists_every_keyword_not_converted() -> None:
    from vrrp_agent.keepalived.unsupported import IGNORED, REFUSED

    readme = (CORPUS.parents[1] / "README.md").read_text()
    section = readme[readme.index("## Coming from keepalived") :]
    section = section[: section.index("\n## ", 1)]
    for table in (REFUSED, IGNORED):
        for kws in table.values():
            for kw in kws:
                assert f"`{kw}`" in section, kw


def test_use_vmac_names_and_unicast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "k.conf"
    body = (CORPUS / "unicast.conf").read_text()
    f.write_text(body.replace("    state BACKUP\n", "    state BACKUP\n    use_vmac vip9\n"))
    rc, out, err = run(capsys, str(f))
    assert rc == 0, err
    vi = yaml.safe_load(out)["vrrp_instances"]["VI_U"]
    assert (vi["use_vmac"], vi["vmac_xmit_base"]) == ("vip9", True)
    assert any(f"{f}:3: warning: vrrp_instance VI_U: unicast with use_vmac requires" in e
               for e in err), err  # fmt: skip
    parse(out, str(f))
    f.write_text(body.replace("    state BACKUP\n", "    use_vmac vip9 02:00:00:00:00:01\n"))
    rc, out, err = run(capsys, str(f))
    assert rc == 2 and any(f"{f}:2: error: use_vmac: not supported" in e for e in err), err


@pytest.mark.parametrize(
    ("script_user", "line", "rc"),
    [
        ("", "    notify_fault /bin/n FAULT\n", 2),  # FAULT is a user to keepalived
        ("  script_user www www\n", "    notify_fault /bin/n www www\n", 0),
        ("", "    notify_fault /bin/n\n", 0),
    ],
)
def test_words_after_a_hook_are_its_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], script_user: str, line: str, rc: int
) -> None:
    f = tmp_path / "k.conf"
    f.write_text(f"global_defs {{\n{script_user}}}\nvrrp_instance V {{\n interface eth0\n"
                 f" virtual_router_id 1\n{line} virtual_ipaddress {{\n  10.0.0.1\n }}\n}}\n")  # fmt: skip
    got, out, err = run(capsys, str(f))
    assert got == rc, err
    if rc:
        n = 6 if not script_user else 7
        assert err[0].startswith(
            f"{f}:{n}: error: notify_fault: keepalived runs this hook as user 'FAULT'"
        ), err
    else:
        assert yaml.safe_load(out)["vrrp_instances"]["V"]["notify_fault"] == "/bin/n"


def test_words_after_a_check_script_are_ignored_as_keepalived_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text("vrrp_script c {\n script /bin/check arg\n}\nvrrp_instance V {\n interface eth0\n"
                 " virtual_router_id 1\n track_script {\n  c\n }\n"
                 " virtual_ipaddress {\n  10.0.0.1\n }\n}\n")  # fmt: skip
    rc, out, err = run(capsys, str(f))
    assert rc == 0
    assert yaml.safe_load(out)["vrrp_scripts"]["c"]["script"] == "/bin/check"
    assert any(f"{f}:2: warning: script: keepalived runs only '/bin/check'" in e for e in err)


def test_keepalived_garp_defaults_are_written_out(capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = imported(capsys, "dual_master.conf")
    g = data["global_defs"]
    assert {k: g[k] for k in g if k.startswith(("vrrp_garp", "vrrp_gna"))} == {
        "vrrp_garp_master_delay": 5, "vrrp_garp_master_repeat": 5,
        "vrrp_garp_master_refresh": 0, "vrrp_garp_master_refresh_repeat": 1,
        "vrrp_garp_interval": 0, "vrrp_gna_interval": 0,
    }  # fmt: skip


ROUTED = """vrrp_instance V {
 interface eth0
 virtual_router_id 1
 unicast_src_ip 10.0.0.1
 unicast_ttl 64
 unicast_peer {
  10.0.1.2 min_ttl 250 max_ttl 254
  10.0.1.3
 }
 virtual_ipaddress {
  10.1.255.1/32 dev lo
 }
 virtual_routes {
  src 10.1.255.1 to 10.9.0.0/16 via 10.0.0.254 dev eth0 table 100
  blackhole 10.1.255.0/24
  10.8.0.0/16 via 10.0.0.254 metric 5
 }
}
"""


def test_virtual_routes_peer_ttl_ranges_and_unicast_ttl_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text(ROUTED)
    rc, out, err = run(capsys, str(f))
    assert rc == 0, err
    vi = yaml.safe_load(out)["vrrp_instances"]["V"]
    assert vi["unicast_peer"] == ["10.0.1.2 min_ttl 250 max_ttl 254", "10.0.1.3"]
    assert vi["unicast_ttl"] == 64
    assert vi["virtual_routes"] == [
        "src 10.1.255.1 to 10.9.0.0/16 via 10.0.0.254 dev eth0 table 100",
        "blackhole 10.1.255.0/24",
        "10.8.0.0/16 via 10.0.0.254 metric 5",
    ]
    inst = parse(out, "out.yml").vrrp_instances["V"]
    assert len(inst.virtual_routes) == 3 and dict(inst.unicast_peer_ttl) != {}


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("  blackhole 10.1.255.0/24\n", "  10.7.0.0/16 via 10.0.0.254 onlink\n", 15,
         "virtual_routes: unsupported option 'onlink'"),
        ("  blackhole 10.1.255.0/24\n", "  10.7.0.0/16 via 10.0.0.254 or 10.0.0.253\n", 15,
         "virtual_routes: unsupported option 'or'"),
        ("  blackhole 10.1.255.0/24\n", "  10.7.0.0/16 dev eth0 no_track\n", 15,
         "virtual_routes: unsupported option 'no_track'"),
        ("  10.0.1.3\n", "  10.0.1.3 min_ttl 300\n", 8, "unicast_peer: "),
        ("  10.0.1.3\n", "  10.0.1.3 min_ttl 9 max_ttl 8\n", 8,
         "unicast_peer: min_ttl 9 is greater than max_ttl 8"),
        (" unicast_ttl 64\n", " unicast_ttl 0\n", 5, "unicast_ttl: 0 is out of range"),
    ],
)  # fmt: skip
def test_routes_and_peers_the_agent_cannot_read_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, line: int, message: str
) -> None:
    f = tmp_path / "k.conf"
    assert old in ROUTED
    f.write_text(ROUTED.replace(old, new))
    rc, out, err = run(capsys, str(f))
    assert rc == 2 and out == ""
    assert any(e.startswith(f"{f}:{line}: error: {message}") for e in err), err


def test_an_empty_unicast_peer_block_stays_multicast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "k.conf"
    f.write_text("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n }\n"
                 " virtual_ipaddress {\n  10.0.0.1\n }\n}\n")  # fmt: skip
    rc, out, err = run(capsys, str(f))
    assert rc == 0
    assert "unicast_peer" not in yaml.safe_load(out)["vrrp_instances"]["V"]
    assert not parse(out, "out.yml").vrrp_instances["V"].unicast
    assert any(e.startswith(f"{f}:4: warning: unicast_peer: empty") for e in err), err
