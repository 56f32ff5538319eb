"""The failover benchmark's own arithmetic and parsers (bench/failover_stats.py,
bench/frames.py): what the published table is computed with."""

from __future__ import annotations

import socket
import statistics
import struct

import pytest

from bench import failover_stats as fs
from bench import frames
from bench.failover import METRICS, cpu_target, master_down
from vrrp_agent.wire.checksum import internet_checksum

# --- statistics ------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert fs.percentile(values, 50) == pytest.approx(5.5)
    assert fs.percentile(values, 90) == pytest.approx(9.1)
    assert fs.percentile(values, 0) == 1.0
    assert fs.percentile(values, 100) == 10.0
    # The same convention as statistics.quantiles(method="inclusive").
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert fs.percentile(values, 90) == pytest.approx(deciles[8])


def test_percentile_of_one_value_and_bad_input() -> None:
    assert fs.percentile([3.5], 90) == 3.5
    with pytest.raises(ValueError, match="no values"):
        fs.percentile([], 50)
    with pytest.raises(ValueError, match="101"):
        fs.percentile([1.0], 101)


def test_summarize() -> None:
    s = fs.summarize([3.0, 1.0, 2.0])
    assert (s.n, s.median, s.low, s.high) == (3, 2.0, 1.0, 3.0)
    assert s.p90 == pytest.approx(2.8)
    assert s.as_dict() == {"n": 3, "median": 2.0, "p90": 2.8, "min": 1.0, "max": 3.0}
    with pytest.raises(ValueError):
        fs.summarize([])


def test_ratio() -> None:
    assert fs.ratio(1.1, 1.0) == pytest.approx(1.1)
    assert fs.ratio(0.5, 0.0) is None


def rounded(runs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(a, 9), round(b, 9)) for a, b in runs]


def test_probe_runs_and_outage() -> None:
    probes = [(0.0, True), (0.1, False), (0.2, False), (0.3, True), (0.4, False), (0.5, True)]
    assert rounded(fs.probe_runs(probes, 0.1)) == [(0.1, 0.3), (0.4, 0.5)]
    assert rounded(fs.probe_runs(probes, 0.1, answered=True)) == [
        (0.0, 0.1),
        (0.3, 0.4),
        (0.5, 0.6),
    ]
    assert fs.outage(probes, 0.1) == pytest.approx(0.3)
    # A run still open at the end closes one interval after its last probe.
    assert rounded(fs.probe_runs([(0.0, True), (0.1, False), (0.2, False)], 0.1)) == [(0.1, 0.3)]
    assert fs.outage([(0.0, True), (0.1, True)], 0.1) == 0.0
    assert fs.outage([], 0.1) == 0.0


def test_phase_spread_is_circular() -> None:
    assert fs.phase_spread([5.0, 5.002, 5.01], 1.0) == pytest.approx(0.01)
    # A round straddling a whole second is still 20 ms wide, not 980 ms.
    assert fs.phase_spread([6.99, 7.0, 7.01], 1.0) == pytest.approx(0.02)
    # Evenly spread over the interval: most of it.
    assert fs.phase_spread([0.0, 0.25, 0.5, 0.75], 1.0) == pytest.approx(0.75)
    assert fs.phase_spread([3.3], 0.1) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        fs.phase_spread([], 1.0)


def test_advert_rounds_need_every_instance() -> None:
    by_vrid = {1: [1.0, 2.0, 3.0], 2: [2.01, 1.01]}
    assert fs.advert_rounds(by_vrid, 2) == [[1.0, 1.01], [2.0, 2.01]]
    assert fs.advert_rounds(by_vrid, 3) == []  # an instance never seen: no round


def test_cpu_ticks_reads_utime_and_stime_past_the_command_name() -> None:
    # The command name may hold spaces and parentheses; fields 14 and 15 count.
    fields = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "111", "222", "13"]
    stat = "4242 (odd) name (x)) " + " ".join(fields) + " 0 0"
    assert fs.cpu_ticks(stat) == 333
    assert fs.cpu_percent(30, 100, 10.0) == pytest.approx(3.0)


def test_pss_kib() -> None:
    text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss: 30000 kB\nPss: 21234 kB\n"
    assert fs.pss_kib(text) == 21234
    with pytest.raises(ValueError, match="Pss"):
        fs.pss_kib("Rss: 1 kB\n")


def test_verdicts() -> None:
    vs = fs.Metric("detect", "Detection", "s", ("vs", 1.05))
    cap = fs.Metric("pss", "PSS", "MB", ("max", 35))
    none = fs.Metric("x", "X", "s")
    theirs = fs.summarize([1.0, 1.0])
    assert fs.verdict(vs, fs.summarize([1.05]), theirs) is True
    assert fs.verdict(vs, fs.summarize([1.06]), theirs) is False
    assert fs.verdict(vs, fs.summarize([1.0]), None) is None
    assert fs.verdict(cap, fs.summarize([35.0]), None) is True
    assert fs.verdict(cap, fs.summarize([35.1]), None) is False
    assert fs.verdict(none, fs.summarize([1.0]), theirs) is None
    assert vs.target_text() == "≤ 1.05 × keepalived"
    assert fs.Metric("s", "S", "s", ("vs", 1)).target_text() == "≤ keepalived"
    assert fs.Metric("r", "R", "s", ("max", 0.5), 1000).target_text() == "≤ 500 ms"


def test_rows_table_and_misses() -> None:
    metrics = [
        fs.Metric("detect", "Detection", "s", ("vs", 1.05), 1000),
        fs.Metric("pss", "PSS", "MB", ("max", 35)),
    ]
    samples = {
        fs.OURS: {"advert_int 1": {"detect": [3.7, 3.8, 3.9], "pss": [20.0]}},
        fs.THEIRS: {
            "advert_int 1": {"detect": [3.6, 3.6, 3.6], "pss": [5.5]},
            "advert_int 0.1": {"detect": [0.36]},
        },
    }
    rows = fs.build_rows(metrics, samples)
    assert [(r["key"], r["condition"]) for r in rows] == [
        ("detect", "advert_int 1"),
        ("detect", "advert_int 0.1"),
        ("pss", "advert_int 1"),
    ]
    detect = rows[0]
    assert detect[fs.OURS]["median"] == 3.8
    assert detect["ratio"] == pytest.approx(3.8 / 3.6, abs=1e-3)
    assert detect["met"] is False  # 3.8 > 1.05 x 3.6
    assert rows[1][fs.OURS] is None and rows[1]["met"] is None
    assert rows[2]["met"] is True
    assert fs.misses(rows) == ["Detection, advert_int 1"]
    lines = fs.table(rows, metrics)
    assert lines[2] == (
        "| Detection (ms) | advert_int 1 | 3600 (3600) | 3800 (3880) | 1.06 "
        "| ≤ 1.05 × keepalived: **MISSED** |"
    )
    assert lines[3].startswith("| Detection (ms) | advert_int 0.1 | 360 (360) | — | — |")
    assert lines[4] == "| PSS (MB) | advert_int 1 | 5.5 (5.5) | 20.0 (20.0) | 3.64 | ≤ 35 MB: met |"


def test_cpu_target_holds_at_advert_int_1_only() -> None:
    samples = {
        fs.OURS: {
            "advert_int 1": {"cpu_many": [2.0, 4.0, 4.0]},
            "advert_int 0.1": {"cpu_many": [9.0]},
        },
        fs.THEIRS: {},
    }
    rows = fs.build_rows(METRICS, samples)
    cpu_target(rows)
    by_cond = {r["condition"]: r for r in rows}
    assert by_cond["advert_int 1"]["met"] is False  # median 4 % > 3 %
    assert by_cond["advert_int 0.1"]["met"] is None


def test_master_down_interval() -> None:
    # RFC 5798: 3 x advert + (256 - priority) / 256 x advert.
    assert master_down(1.0, 100) == pytest.approx(3.609375)
    assert master_down(0.1, 100) == pytest.approx(0.3609375)


# --- frames ----------------------------------------------------------------------------


def eth(ethertype: int, payload: bytes, src: bytes = b"\x02\x00\x00\x00\x00\x01") -> bytes:
    return b"\x01\x00\x5e\x00\x00\x12" + src + struct.pack("!H", ethertype) + payload


def ipv4(proto: int, src: str, dst: str, payload: bytes) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xC0,
        20 + len(payload),
        0,
        0,
        255,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return head + payload


def test_parse_vrrp_advert() -> None:
    vrrp = struct.pack("!BBBBHH4s", 0x31, 51, 200, 1, 100, 0, socket.inet_aton("10.99.0.100"))
    got = frames.parse_frame(eth(0x0800, ipv4(112, "10.99.0.1", "224.0.0.18", vrrp)))
    assert got == frames.Advert("10.99.0.1", vrid=51, priority=200)
    # Other IP traffic and truncated frames are not adverts.
    assert frames.parse_frame(eth(0x0800, ipv4(1, "10.99.0.1", "10.99.0.3", b"\x00" * 8))) is None
    assert frames.parse_frame(eth(0x0800, ipv4(112, "10.99.0.1", "224.0.0.18", b"\x31"))) is None
    assert frames.parse_frame(b"\x00" * 10) is None


def test_parse_arp() -> None:
    def arp(spa: str, tpa: str) -> bytes:
        return (
            b"\x00\x01\x08\x00\x06\x04\x00\x01"
            + bytes.fromhex("020000000002")
            + socket.inet_aton(spa)
            + b"\xff" * 6
            + socket.inet_aton(tpa)
        )

    assert frames.parse_frame(eth(0x0806, arp("10.99.0.100", "10.99.0.100"))) == frames.Arp(
        "10.99.0.100", "02:00:00:00:00:02", gratuitous=True
    )
    assert frames.parse_frame(eth(0x0806, arp("10.99.0.3", "10.99.0.100"))).gratuitous is False
    assert frames.parse_frame(eth(0x0806, b"\x00\x06" + b"\x00" * 26)) is None  # not Ethernet


def nlmsg(kind: int, family: int, attrs: list[tuple[int, bytes]]) -> bytes:
    body = struct.pack("=BBBBI", family, 24, 0, 0, 7)
    for t, v in attrs:
        rta = struct.pack("=HH", 4 + len(v), t) + v
        body += rta + b"\x00" * (-len(rta) % 4)
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_parse_addr_messages() -> None:
    vip, peer = socket.inet_aton("10.99.0.100"), socket.inet_aton("10.99.0.200")
    data = (
        nlmsg(20, socket.AF_INET, [(1, peer), (2, vip), (3, b"eth0\x00")])
        + nlmsg(21, socket.AF_INET, [(1, vip)])
        + nlmsg(20, socket.AF_INET6, [(1, b"\xfd" + b"\x00" * 15)])
        + nlmsg(16, 0, [])  # RTM_NEWLINK: not an address
    )
    assert frames.parse_addr_messages(data) == [
        frames.AddrChange(True, 7, "10.99.0.100"),  # IFA_LOCAL over IFA_ADDRESS
        frames.AddrChange(False, 7, "10.99.0.100"),
    ]
    # A truncated message ends the parse instead of reading garbage.
    assert frames.parse_addr_messages(data[:20]) == []


def test_echo_request_and_reply() -> None:
    req = frames.echo_request(0x1234, 7)
    assert internet_checksum(req) == 0  # a valid ICMP checksum sums to zero
    reply = bytes([0]) + req[1:]
    packet = ipv4(1, "10.99.0.100", "10.99.0.3", reply)
    assert frames.echo_reply_seq(packet, 0x1234) == 7
    assert frames.echo_reply_seq(packet, 0x4321) is None  # someone else's ping
    assert frames.echo_reply_seq(ipv4(1, "10.99.0.3", "10.99.0.100", req), 0x1234) is None
