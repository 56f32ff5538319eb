"""/metrics on two real agents (global_defs.metrics_listen), scraped over HTTP
across the lab's bridge and parsed with prometheus_client's own parser,
through a failover and back; a busy address at start; other paths; and
`status --watch` against a running agent. Kept short: advert_int 0.5."""

from __future__ import annotations

import http.client
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from labkit.netns import Lab, inside, vrrp_instance
from labkit.poll import wait_for

pytestmark = pytest.mark.netns

VIP = "10.99.0.100"
PORT = 9165
LAB = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}


def conf(host: int, priority: int) -> dict:
    return {
        "global_defs": {"metrics_listen": f"10.99.0.{host}:{PORT}"},
        "vrrp_instances": {"VI_1": vrrp_instance(priority, VIP, 0.5)},
    }


def get(
    lab: Lab, host: int, path: str = "/metrics", timeout: float = 2.0, port: int = PORT
) -> tuple[int, bytes]:
    """GET from n3, over the bridge: the socket is made inside n3's namespace."""
    with inside(lab["n3"].ns):
        conn = http.client.HTTPConnection(f"10.99.0.{host}", port, timeout=timeout)
        conn.connect()
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def scrape(lab: Lab, host: int) -> dict[str, dict[tuple, float]]:
    status, body = get(lab, host)
    assert status == 200
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(metrics: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    want = {**LAB, **labels}
    found = [v for k, v in metrics[name].items() if dict(k) == want]
    assert len(found) == 1, (name, want, metrics[name])
    return found[0]


def state(metrics: dict[str, dict[tuple, float]]) -> float:
    return one(metrics, "keepalived_vrrp_state", ip_address=f"{VIP}/24")


def test_failover_seen_through_metrics(lab: Lab) -> None:
    a1 = lab.agent("n1", conf(1, 200))
    a2 = lab.agent("n2", conf(2, 100))
    wait_for("n1 to become master", lambda: lab["n1"].has(VIP), 4)
    wait_for("n2 to be backup", lambda: state(scrape(lab, 2)) == 1, 3)
    m1, m2 = scrape(lab, 1), scrape(lab, 2)
    assert (state(m1), state(m2)) == (2, 1)
    assert m1["keepalived_up"] == {(): 1}
    assert "keepalived_become_master_created" not in m2
    became = one(m2, "keepalived_become_master_total")
    sent = one(m1, "keepalived_advertisements_sent_total")
    received = one(m2, "keepalived_advertisements_received_total")
    assert sent > 0 and received > 0

    a1.signal(signal.SIGSTOP)
    try:
        wait_for("n2 to take over", lambda: lab["n2"].has(VIP), 4)
        m2 = scrape(lab, 2)
        assert state(m2) == 2
        assert one(m2, "keepalived_become_master_total") == became + 1
        assert m2["vrrp_agent_holds_vips"] == {(("iname", "VI_1"),): 1}
        # The frozen agent answers no scrape (its loop is stopped), and says so by timing out.
        with pytest.raises(OSError):
            get(lab, 1, timeout=0.5)
    finally:
        a1.signal(signal.SIGCONT)
    wait_for("n2 to yield to n1", lambda: not lab["n2"].has(VIP), 3)
    wait_for("n2's metrics to say BACKUP", lambda: state(scrape(lab, 2)) == 1, 2)
    m1, m2 = scrape(lab, 1), scrape(lab, 2)
    assert (state(m1), state(m2)) == (2, 1)
    assert one(m2, "keepalived_become_master_total") == became + 1
    assert one(m2, "keepalived_release_master_total") == 1
    assert one(m1, "keepalived_advertisements_sent_total") > sent
    assert one(m2, "keepalived_advertisements_received_total") > received
    assert one(m2, "vrrp_agent_effective_priority") == 100

    # Another path: 404; the listener still answers /metrics afterwards.
    assert get(lab, 1, "/")[0] == 404
    assert get(lab, 1, "/metrics")[0] == 200

    # status --watch against n2: two tables, then one Ctrl-C is exit 0. The
    # SIGINT is sent here, once, after the second table was read: coreutils'
    # `timeout -s INT` sends it to the child and again to its process group,
    # and a second one landing while the interpreter shuts down (handlers
    # reset) killed the watch with 130 in CI.
    watch = subprocess.Popen(
        [sys.executable, "-m", "vrrp_agent.cli", "status", "--watch", "--interval", "0.3",
         "-c", str(a2.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )  # fmt: skip
    assert watch.stdout is not None
    out = b""
    try:
        deadline = time.monotonic() + 10
        while out.count(b"router_id n2") < 2:
            left = deadline - time.monotonic()
            assert left > 0, f"--watch printed fewer than two tables in 10 s: {out!r}"
            if select.select([watch.stdout], [], [], left)[0]:
                chunk = os.read(watch.stdout.fileno(), 65536)
                assert chunk, f"--watch ended by itself: {out!r}"
                out += chunk
        watch.send_signal(signal.SIGINT)
        rest, err = watch.communicate(timeout=10)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    assert b"Traceback" not in err
    frames = [f for f in (out + rest).decode().split("\n\n") if f.startswith("router_id n2")]
    assert len(frames) >= 2, out + rest
    assert all("VI_1" in f and "BACKUP" in f for f in frames)


def test_a_busy_metrics_address_is_exit_1_naming_it(lab: Lab) -> None:
    lab.agent("n1", conf(1, 200))
    other = {
        "global_defs": {"metrics_listen": f"10.99.0.1:{PORT}"},
        "vrrp_instances": {"VI_2": {**vrrp_instance(100, "10.99.0.102", 0.5),
                                    "virtual_router_id": 52}},
    }  # fmt: skip
    busy = lab.agent("n1", other, wait=False)
    assert busy.proc.wait(10) == 1
    errors = [line for line in busy.log().splitlines() if " ERROR " in line]
    assert len(errors) == 1, busy.log()
    assert errors[0].endswith(
        f"global_defs.metrics_listen: cannot listen on 10.99.0.1:{PORT}: the address is in use"
    )
    assert not lab["n1"].has("10.99.0.102")


def test_reload_rebinds_and_a_bad_address_keeps_the_old_listener(lab: Lab) -> None:
    a1 = lab.agent("n1", conf(1, 200))
    wait_for("n1 to become master", lambda: lab["n1"].has(VIP), 4)

    def reload(listen: str, after: str) -> None:
        cfg = yaml.safe_load(a1.config_path.read_text())
        cfg["global_defs"]["metrics_listen"] = listen
        a1.config_path.write_text(yaml.safe_dump(cfg))
        a1.signal(signal.SIGHUP)
        wait_for(f"the reload to {listen}", lambda: a1.log().count("reloaded:") == after, 5)

    reload(f"10.99.0.1:{PORT + 1}", 1)
    assert "metrics: serving http://10.99.0.1:9166/metrics" in a1.log()
    assert get(lab, 1, port=PORT + 1)[0] == 200
    with pytest.raises(ConnectionRefusedError):
        get(lab, 1)
    # An address this host does not have: logged, the old listener stays.
    reload(f"10.99.0.77:{PORT}", 2)
    assert (
        "reload: global_defs.metrics_listen: cannot listen on 10.99.0.77:9165: no interface has"
        " this address; still serving 10.99.0.1:9166" in a1.log()
    )
    assert get(lab, 1, port=PORT + 1)[0] == 200
    # Neither reload cost the instance anything.
    assert lab["n1"].has(VIP)
    assert a1.log().count("Entering MASTER STATE") == 1


def test_every_name_the_dashboard_and_the_rules_use_is_served(lab: Lab) -> None:
    """A live agent with something behind each family: a tracked script, a
    virtual server (a real server that refuses: DOWN), and a drop (n2 runs
    VRRPv2 on the same VRID, so n1 drops its adverts as version_mismatch)."""
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "scripts"))  # a plain module, as make lint runs it
    from metric_names import missing

    cfg = conf(1, 200)
    cfg["global_defs"].update(script_user="nobody", lvs_backend="nftables")
    cfg["vrrp_scripts"] = {"chk_true": {"script": "/bin/true", "interval": 0.5}}
    cfg["vrrp_instances"]["VI_1"]["track_script"] = ["chk_true"]
    cfg["virtual_servers"] = [{
        "ip": VIP, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT",
        "delay_loop": 1,
        "real_servers": [{"ip": "10.99.0.3", "port": 80, "weight": 1,
                          "TCP_CHECK": {"connect_timeout": 0.5, "retry": 0}}],
    }]  # fmt: skip
    other = conf(2, 100)
    other["vrrp_instances"]["VI_1"].update(version=2, advert_int=1)
    lab.agent("n1", cfg)
    lab.agent("n2", other)
    wait_for("n1 to drop n2's adverts", lambda: "vrrp_agent_rx_dropped_total" in scrape(lab, 1), 5)
    wait_for(
        "n1's real server to be checked DOWN",
        lambda: 0.0 in scrape(lab, 1).get("vrrp_agent_real_server_up", {}).values(),
        5,
    )
    _, body = get(lab, 1)
    gone = missing(root / "dashboards/vrrp-agent.json", root / "prometheus/vrrp-agent.rules.yml",
                   body.decode())  # fmt: skip
    assert gone == set(), f"used by the dashboard or the rules, not served: {sorted(gone)}"
