"""The pure helpers behind bench/timeline_plot.py: which spans the VIP and loss
bars cover, the probe interval, the lanes and titles. The drawing itself
(matplotlib) is looked at, not asserted, and these tests run without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import timeline_plot
from bench.timeline_plot import (
    advert_sources,
    answered_spans,
    lanes,
    loss_spans,
    panel_title,
    probe_interval,
    vip_spans,
)

REPO = Path(__file__).resolve().parents[2]


def _timeline(**overrides):
    base = {
        "impl": "keepalived",
        "advert_int": 1.0,
        "event": "master cut off",
        "window": [-1.5, 5.0],
        "hosts": ["n1", "n2"],
        "vip_held_at_start": {"n1": True, "n2": False},
        "adverts": [],
        "garps": [],
        "vip": [],
        "probes": [],
    }
    return base | overrides


def _vip(*events):
    return [{"t": t, "host": host, "change": change} for t, host, change in events]


def _probes(pattern, start=0.0, step=0.005):
    """'..xx.' -> probes every `step` from `start`, x = unanswered."""
    return [{"t": start + i * step, "answered": c == "."} for i, c in enumerate(pattern)]


# --- vip_spans ------------------------------------------------------------------------


def test_vip_spans_of_a_plain_failover():
    tl = _timeline(vip=_vip((0.02, "n1", "del"), (3.61, "n2", "add")))
    assert vip_spans(tl, "n1") == [(-1.5, 0.02)]  # held from the window's start
    assert vip_spans(tl, "n2") == [(3.61, 5.0)]  # still held: ends at the window's end


def test_vip_spans_with_no_events_follow_the_start_state():
    tl = _timeline()
    assert vip_spans(tl, "n1") == [(-1.5, 5.0)]
    assert vip_spans(tl, "n2") == []


def test_a_host_missing_from_vip_held_at_start_did_not_hold_it():
    tl = _timeline(vip_held_at_start={}, vip=_vip((1.0, "n1", "add")))
    assert vip_spans(tl, "n1") == [(1.0, 5.0)]
    assert vip_spans(tl, "n2") == []


def test_vip_spans_over_several_transitions():
    tl = _timeline(
        vip_held_at_start={"n1": False},
        vip=_vip((-1.0, "n1", "add"), (0.5, "n1", "del"), (2.0, "n1", "add"), (3.0, "n1", "del")),
    )
    assert vip_spans(tl, "n1") == [(-1.0, 0.5), (2.0, 3.0)]


def test_redundant_events_change_nothing():
    tl = _timeline(
        vip=_vip(
            (-1.0, "n1", "add"),  # already held
            (0.0, "n1", "del"),
            (0.1, "n1", "del"),  # already gone
            (3.0, "n2", "add"),
            (3.5, "n2", "add"),  # keepalived re-adding: the span must not restart
        )
    )
    assert vip_spans(tl, "n1") == [(-1.5, 0.0)]
    assert vip_spans(tl, "n2") == [(3.0, 5.0)]


def test_vip_spans_are_clipped_to_the_window():
    tl = _timeline(
        window=[0.0, 4.0],
        vip_held_at_start={"n1": False},
        vip=_vip(
            (-3.0, "n1", "add"),
            (-2.0, "n1", "del"),  # over before the window: not shown
            (-1.0, "n1", "add"),  # begun before it: starts at the window's start
            (1.0, "n1", "del"),
            (3.0, "n1", "add"),
            (6.0, "n1", "del"),  # ends after it: ends at the window's end
            (7.0, "n1", "add"),  # begun after it: not shown
        ),
    )
    assert vip_spans(tl, "n1") == [(0.0, 1.0), (3.0, 4.0)]


def test_events_before_the_window_set_the_state_it_opens_with():
    tl = _timeline(window=[0.0, 4.0], vip=_vip((-2.0, "n1", "del"), (-1.0, "n2", "add")))
    assert vip_spans(tl, "n1") == []
    assert vip_spans(tl, "n2") == [(0.0, 4.0)]


def test_vip_events_are_taken_in_time_order():
    tl = _timeline(vip=_vip((3.0, "n1", "add"), (1.0, "n1", "del")))
    assert vip_spans(tl, "n1") == [(-1.5, 1.0), (3.0, 5.0)]


def test_same_instant_events_keep_their_recorded_order():
    # del then add: the VIP went and came back, two spans that meet at 1.0;
    # add then del: the add is redundant (already held), the del ends the span.
    tl = _timeline(vip=_vip((1.0, "n1", "del"), (1.0, "n1", "add")))
    assert vip_spans(tl, "n1") == [(-1.5, 1.0), (1.0, 5.0)]
    tl = _timeline(vip=_vip((1.0, "n1", "add"), (1.0, "n1", "del")))
    assert vip_spans(tl, "n1") == [(-1.5, 1.0)]


def test_a_zero_length_hold_is_left_out():
    tl = _timeline(vip=_vip((2.0, "n2", "add"), (2.0, "n2", "del")))
    assert vip_spans(tl, "n2") == []


def test_vip_spans_refuse_an_unknown_change_and_a_backwards_window():
    with pytest.raises(ValueError, match="'replace' at t=1.0"):
        vip_spans(_timeline(vip=_vip((1.0, "n1", "replace"))), "n1")
    with pytest.raises(ValueError, match="start must be before end"):
        vip_spans(_timeline(window=[5.0, -1.5]), "n1")


# --- probes ---------------------------------------------------------------------------


def test_loss_spans_are_maximal_runs_of_unanswered_probes():
    tl = _timeline(probes=_probes("..xxx..x..", start=1.0, step=0.5))
    # probes at 1.0 1.5 | 2.0 2.5 3.0 lost | 3.5 4.0 | 4.5 lost | 5.0 5.5
    assert loss_spans(tl, 0.5) == [(2.0, 3.5), (4.5, 5.0)]
    assert answered_spans(tl, 0.5) == [(1.0, 2.0), (3.5, 4.5), (5.0, 6.0)]


def test_loss_runs_at_the_start_and_at_the_end():
    tl = _timeline(probes=_probes("xx...xxx", step=1.0))
    assert loss_spans(tl, 1.0) == [(0.0, 2.0), (5.0, 8.0)]
    assert answered_spans(tl, 1.0) == [(2.0, 5.0)]


def test_loss_spans_when_everything_or_nothing_is_lost():
    assert loss_spans(_timeline(probes=_probes("xxxx", step=1.0)), 1.0) == [(0.0, 4.0)]
    assert loss_spans(_timeline(probes=_probes("....", step=1.0)), 1.0) == []
    assert loss_spans(_timeline(probes=[]), 0.005) == []
    # one lost probe: a span one interval long
    assert loss_spans(_timeline(probes=_probes(".x.", step=1.0)), 0.25) == [(1.0, 1.25)]


def test_loss_spans_take_probes_in_send_order():
    probes = _probes("..xx..", step=1.0)
    tl = _timeline(probes=list(reversed(probes)))
    assert loss_spans(tl, 1.0) == [(2.0, 4.0)]


def test_probe_interval_is_the_median_gap():
    probes = _probes("." * 5, step=0.005)
    probes[2]["t"] += 0.003  # one probe sent late: two odd gaps, the median stays
    assert probe_interval(_timeline(probes=probes)) == pytest.approx(0.005)
    assert probe_interval(_timeline(probes=list(reversed(probes)))) == pytest.approx(0.005)


def test_probe_interval_needs_two_probes():
    assert probe_interval(_timeline(probes=[])) is None
    assert probe_interval(_timeline(probes=_probes("x"))) is None
    assert probe_interval(_timeline(probes=_probes("xx", step=0.01))) == pytest.approx(0.01)


# --- lanes and titles -----------------------------------------------------------------


def test_panel_title():
    assert panel_title(_timeline()) == "keepalived, advert_int 1 s: master cut off"
    tl = _timeline(impl="vrrp-agent", advert_int=0.1, event="agent stopped")
    assert panel_title(tl) == "vrrp-agent, advert_int 0.1 s: agent stopped"


def test_lanes_top_to_bottom():
    assert lanes(_timeline()) == [
        "adverts n1",
        "adverts n2",
        "GARP",
        "VIP on n1",
        "VIP on n2",
        "client probes",
    ]


def test_an_advert_from_an_unexpected_source_gets_a_lane_of_its_own():
    adverts = [
        {"t": 0.5, "src": "n9", "priority": 50},
        {"t": 1.0, "src": "n2", "priority": 100},
        {"t": 1.5, "src": "n9", "priority": 50},
    ]
    tl = _timeline(adverts=adverts)
    assert advert_sources(tl) == ["n1", "n2", "n9"]
    assert lanes(tl)[:4] == ["adverts n1", "adverts n2", "adverts n9", "GARP"]
    assert "VIP on n9" not in lanes(tl)  # only the hosts have VIP lanes


# --- the command ----------------------------------------------------------------------


def test_main_draws_the_files_timelines(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(timeline_plot, "draw", lambda *args: drawn.append(args))
    results = tmp_path / "results.json"
    out = tmp_path / "out.png"

    results.write_text(json.dumps({"timelines": [_timeline()], "title": "Run 3"}))
    assert timeline_plot.main([str(results), str(out)]) == 0
    results.write_text(json.dumps({"timelines": [_timeline()]}))
    assert timeline_plot.main([str(results), str(out)]) == 0
    assert drawn == [([_timeline()], out, "Run 3"), ([_timeline()], out, "Failover timeline")]


def test_main_refuses_a_file_without_timelines(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timeline_plot, "draw", lambda *args: pytest.fail("drew"))
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"rows": []}))
    assert timeline_plot.main([str(results), str(tmp_path / "out.png")]) == 2
    assert 'no top-level "timelines" key' in capsys.readouterr().err


def test_importing_the_module_does_not_import_matplotlib():
    # In a fresh interpreter: this one may have matplotlib loaded by now.
    code = "import sys, bench.timeline_plot; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
