"""Start-up, reload and the CLI contract, on real namespaces."""

from __future__ import annotations

import signal
import socket
import sys
import time

from labkit.netns import Lab
from labkit.poll import wait_for

VIP1, VIP2, VIP3 = "10.99.0.101", "10.99.0.102", "10.99.0.103"


def inst(vrid: int, vip: str, priority: int) -> dict:
    return {
        "interface": "eth0",
        "virtual_router_id": vrid,
        "priority": priority,
        "advert_int": 0.5,
        "virtual_ipaddress": [f"{vip}/24"],
    }


def cli(lab: Lab, host: str, *args: str):
    return lab[host].run(sys.executable, "-m", "vrrp_agent.cli", *args, check=False)


def test_sighup_reload_keeps_unchanged_instances_and_refuses_bad_files(lab: Lab) -> None:
    cfg = {"vrrp_instances": {"VI_1": inst(51, VIP1, 200), "VI_2": inst(52, VIP2, 200)}}
    a1 = lab.agent("n1", cfg)
    lab.agent("n2", {"vrrp_instances": {"VI_1": inst(51, VIP1, 100), "VI_2": inst(52, VIP2, 100)}})
    wait_for("n1 master of both", lambda: lab["n1"].has(VIP1) and lab["n1"].has(VIP2), 5)

    # VI_1 unchanged, VI_2 changed (priority), VI_3 new.
    new = {
        "vrrp_instances": {
            "VI_1": inst(51, VIP1, 200),
            "VI_2": inst(52, VIP2, 150),
            "VI_3": inst(53, VIP3, 200),
        }
    }
    a1.rewrite(new)
    a1.signal(signal.SIGHUP)
    wait_for("VI_3 to start", lambda: "VI_3" in a1.status()["instances"], 3)
    st = a1.status()
    assert st["reloads"] == 1
    assert st["instances"]["VI_1"]["state"] == "MASTER"
    assert st["instances"]["VI_1"]["stats"]["became_master"] == 1, "VI_1 lost its state"
    assert st["instances"]["VI_2"]["priority"] == 150
    wait_for("VI_3 master", lambda: lab["n1"].has(VIP3), 3)
    wait_for("VI_2 back on n1", lambda: lab["n1"].has(VIP2) and not lab["n2"].has(VIP2), 4)
    log = a1.log()
    assert f"removed virtual addresses {VIP1}" not in log, "VI_1's VIP flapped during reload"
    assert "reloaded: 1 kept, 1 stopped, 2 started" in log

    # A broken file is refused as a whole: nothing stops, nothing changes.
    broken = {"vrrp_instances": {"VI_1": dict(inst(51, VIP1, 200), priority=300)}}
    a1.rewrite(broken)
    a1.signal(signal.SIGHUP)
    wait_for("the refusal", lambda: "reload refused" in a1.log(), 3)
    assert "vrrp_instances.VI_1.priority" in a1.log()
    st = a1.status()
    assert st["reloads"] == 1
    assert sorted(st["instances"]) == ["VI_1", "VI_2", "VI_3"]
    assert all(s["state"] == "MASTER" for s in st["instances"].values())


def test_invalid_config_exits_2_before_touching_the_network(lab: Lab) -> None:
    path = lab.tmp / "bad.yml"
    path.write_text(
        "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 300\n"
        "    prority: 100\n    virtual_ipaddress: ['10.99.0.100/24']\n"
    )
    for command in ("validate", "run"):
        r = cli(lab, "n1", command, "-c", str(path))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert any(f"{path}: vrrp_instances.VI_1.virtual_router_id:" in line for line in lines)
        assert any("unknown key 'prority' (did you mean 'priority'?)" in line for line in lines)
    assert not lab["n1"].has("10.99.0.100")


def test_missing_interface_is_a_runtime_failure_naming_it(lab: Lab) -> None:
    path = lab.tmp / "noif.yml"
    path.write_text(
        f"global_defs: {{control_socket: {lab.tmp}/noif.sock}}\n"
        "vrrp_instances:\n  VI_1:\n    interface: eth7\n    virtual_router_id: 51\n"
        "    virtual_ipaddress: ['10.99.0.100/24']\n"
    )
    assert cli(lab, "n1", "validate", "-c", str(path)).returncode == 0
    r = cli(lab, "n1", "run", "-c", str(path))
    assert r.returncode == 1
    assert "vrrp_instances.VI_1: interface eth7 not found" in r.stderr


def test_ready_notification_status_table_and_exit_code(lab: Lab) -> None:
    notify_path = str(lab.tmp / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(10)
    start = time.monotonic()
    a = lab.agent("n1", {"vrrp_instances": {"VI_1": inst(51, VIP1, 255)}}, wait=False,
                  env={"NOTIFY_SOCKET": notify_path})  # fmt: skip
    assert listener.recv(256) == b"READY=1"
    print(f"exec to READY=1: {time.monotonic() - start:.3f}s")
    table = cli(lab, "n1", "status", "-c", str(a.config_path))
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("VI_1"))
    assert row.split()[:6] == ["VI_1", "MASTER", "255", "255", "eth0", "51"]
    assert "address owner (priority 255)" in row
    a.signal(signal.SIGTERM)
    assert listener.recv(256) == b"STOPPING=1"
    assert a.proc.wait(5) == 0
    assert not lab["n1"].has(VIP1)
    r = cli(lab, "n1", "status", "-c", str(a.config_path))
    assert r.returncode == 1
    assert "no agent answers on" in r.stderr
    listener.close()
