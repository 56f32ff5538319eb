"""A master that runs out of file descriptors keeps its VIP.

Before the fix every link poll opened a socket (and socket.if_nametoindex
another), so with no descriptor left each read failed, the failure counted
as the link DOWN or gone, and n1 went to FAULT and dropped its VIP while its
link was fine; n2 took over. Now a read the host cannot answer is no news.
"""

from __future__ import annotations

import os
import time

from labkit.netns import Lab, sh, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval
from vrrp_agent.daemon import LINK_CHECK_INTERVAL as POLL

VIP = "10.99.0.100"
ADVERT_INT = 0.5


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_master_out_of_descriptors_stays_master_and_a_real_link_down_still_counts(
    lab: Lab,
) -> None:
    # n1 is the better node only through its track file (100 + 3 * 40 = 220
    # against n2's 150): a file read that fails and counts as 0 hands n2 the VIP.
    flag = lab.tmp / "weight"
    flag.write_text("3\n")
    track = {"track_file": [{"name": str(flag), "weight": 40}]}
    a1 = lab.agent("n1", {"vrrp_instances": {"VI_1": vrrp_instance(100, VIP, ADVERT_INT, **track)}})
    a2 = lab.agent("n2", {"vrrp_instances": {"VI_1": vrrp_instance(150, VIP, ADVERT_INT)}})
    down = master_down_interval(3, 150, ADVERT_INT)
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 220, ADVERT_INT) + 3)
    wait_for("n2 backup", lambda: a2.state() == "BACKUP", 3)
    pid = a1.pid
    # No descriptor left to open: the limit at what is open now.
    n = open_fds(pid)
    hard = int(
        sh("prlimit", f"--pid={pid}", "--nofile", "--raw", "--noheadings", "-o", "HARD").stdout
    )
    sh("prlimit", f"--pid={pid}", f"--nofile={n}:{hard}")
    try:
        # Link polls every POLL s; several of them, and more than n2's Master_Down.
        time.sleep(max(6 * POLL, down + 1))
        assert lab["n1"].has(VIP), "n1 dropped its VIP when it could not open a descriptor"
        assert a2.state() == "BACKUP"
    finally:
        sh("prlimit", f"--pid={pid}", f"--nofile={hard}:{hard}")
    log = a1.log()
    assert "Traceback" not in log
    assert "FAULT" not in log
    # Said, and not once per poll: the rate limit holds it to a line or two.
    lines = [ln for ln in log.splitlines() if "cannot read it now" in ln]
    assert 1 <= len(lines) <= 2, lines
    assert a1.state() == "MASTER"
    # Looking works again, and a link that is really down still faults n1.
    lab["n1"].run("ip", "link", "set", "eth0", "down")
    wait_for("n1 FAULT on a real link down", lambda: a1.state() == "FAULT", POLL + 2)
    assert not lab["n1"].has(VIP)
