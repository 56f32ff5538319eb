"""A master whose log reader stalls keeps advertising.

Before the fix the agent wrote its log to stderr with blocking writes: with
n1's stderr a pipe nobody read, the pipe filled, the event loop stopped in
write(), n1's adverts stopped, n2 took over after Master_Down, and n1 still had
the VIP in its kernel: two holders. Now lines the reader cannot take wait in a
bounded backlog (dropped and counted past it: tests/unit/io/test_log_sink.py).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import time

import yaml

from labkit.netns import Agent, Lab, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

VIP = "10.99.0.100"
ADVERT_INT = 0.5
F_SETPIPE_SZ = 1031


def agent_with_stalled_log(lab: Lab, host: str, config: dict) -> tuple[Agent, int]:
    """n1's agent with stderr into a one-page pipe that nobody reads (yet)."""
    h = lab[host]
    sock = str(lab.tmp / f"{host}-stall.sock")
    config = {"global_defs": {"router_id": host, "control_socket": sock}, **config}
    path = lab.tmp / f"{host}-stall.yml"
    path.write_text(yaml.safe_dump(config))
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", h.ns, sys.executable, "-m", "vrrp_agent.cli", "run",
         "-c", str(path), "--log-level", "DEBUG"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w, start_new_session=True,
    )  # fmt: skip
    os.close(w)
    log = lab.tmp / f"{host}-stall.log"
    log.write_text("(stderr was a pipe read by the test)\n")
    agent = Agent(h, path, log, proc, sock)
    lab.agents.append(agent)
    return agent, r


def test_a_stalled_log_reader_does_not_stop_the_master(lab: Lab) -> None:
    a1, reader = agent_with_stalled_log(
        lab, "n1", {"vrrp_instances": {"VI_1": vrrp_instance(200, VIP, ADVERT_INT)}}
    )
    a2 = lab.agent("n2", {"vrrp_instances": {"VI_1": vrrp_instance(100, VIP, ADVERT_INT)}})
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 200, ADVERT_INT) + 3)
    wait_for("n2 backup", lambda: a2.state() == "BACKUP", 3)
    # Each reload logs a few lines: 40 of them are ~10 KiB, far more than the pipe holds.
    for _ in range(40):
        a1.signal(signal.SIGHUP)
        time.sleep(0.02)
    # Well past n2's Master_Down: had n1's adverts stopped, n2 would be master.
    time.sleep(master_down_interval(3, 100, ADVERT_INT) * 2)
    st2 = a2.status()["instances"]["VI_1"]
    assert (st2["state"], st2["stats"]["became_master"]) == ("BACKUP", 0)
    st1 = a1.status()
    assert st1["instances"]["VI_1"]["state"] == "MASTER"
    assert st1["reloads"] == 40
    # Held back, not lost: the backlog (256 KiB) holds what the pipe refused.
    assert st1["logging"]["backlog_bytes"] > 0
    # The reader comes back: every line that waited arrives, in order.
    text = b""
    deadline = time.monotonic() + 5
    while text.count(b" reloaded: ") < 40 and time.monotonic() < deadline:
        if select.select([reader], [], [], 0.2)[0]:
            text += os.read(reader, 65536)
    os.close(reader)
    assert text.count(b" reloaded: ") == 40
    assert a1.status()["logging"] == {"dropped": 0, "backlog_bytes": 0}
    assert b"Traceback" not in text
