"""The agent as the role's unit runs it: its own user (not root) with five
ambient capabilities, started here through setpriv the way systemd does
(User=, AmbientCapabilities=, the same bounding set).

It must still do everything a root agent does: hold a VIP (netlink, raw
sockets), drop its checks to their user, and run nft (accept mode) with
CAP_NET_ADMIN. Its checks must get none of its capabilities: ambient
capabilities survive an exec, so left alone every script would have held
CAP_NET_ADMIN and CAP_NET_RAW.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

from labkit.netns import Lab, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

VIP = "10.99.0.100"
ADVERT_INT = 0.5
AGENT_USER = "daemon"  # a system user that exists everywhere and is not the script user
SCRIPT_USER = "nobody"
CAPS = ["net_admin", "net_raw", "setuid", "setgid", "kill"]
# CAP_SETGID 6, CAP_SETUID 7, CAP_KILL 5, CAP_NET_ADMIN 12, CAP_NET_RAW 13
CAP_MASK = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 12) | (1 << 13)


def setpriv(user: str) -> list[str]:
    caps = ",".join(f"+{c}" for c in CAPS)
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--clear-groups",
        f"--bounding-set=-all,{caps}",
        f"--inh-caps={caps}",
        f"--ambient-caps={caps}",
    ]


def proc_status(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+):\s*(.*)$", text, flags=re.M))


def test_agent_as_its_own_user_serves_and_gives_its_scripts_nothing(lab: Lab, flags: Path) -> None:
    agent = pwd.getpwnam(AGENT_USER)
    files = flags / "agent"
    files.mkdir()
    os.chown(files, agent.pw_uid, agent.pw_gid)  # its socket goes here
    out = flags / "out"
    out.mkdir()
    out.chmod(0o1777)
    probe = flags / "caps.sh"
    probe.write_text(
        "#!/bin/sh\n"
        f"grep -E '^(Uid|Cap(Inh|Prm|Eff|Amb)):' /proc/self/status > {out}/caps.tmp"
        f" && mv {out}/caps.tmp {out}/caps\n"
    )
    probe.chmod(0o755)
    config = {
        "global_defs": {"script_user": SCRIPT_USER},
        "vrrp_scripts": {"chk_caps": {"script": str(probe), "interval": 0.5}},
        # accept false: as master the agent blocks the VIP with nft.
        "vrrp_instances": {
            "VI_1": vrrp_instance(150, VIP, ADVERT_INT, accept=False, track_script=["chk_caps"])
        },
    }
    a = lab.agent("n1", config, wrap=setpriv(AGENT_USER), files=files)
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2)

    me = proc_status(Path(f"/proc/{a.pid}/status").read_text())
    assert me["Uid"].split()[0] == str(agent.pw_uid), me
    assert int(me["CapEff"], 16) == CAP_MASK, me
    # Cleared at start: nothing it execs inherits its capabilities.
    assert int(me["CapAmb"], 16) == 0, me

    caps = out / "caps"
    wait_for("the check to run", caps.exists, 3)
    script = proc_status(caps.read_text())
    assert script["Uid"].split()[0] == str(pwd.getpwnam(SCRIPT_USER).pw_uid), script
    for mask in ("CapPrm", "CapEff", "CapAmb"):
        assert int(script[mask], 16) == 0, f"the check holds {mask} {script[mask]}"

    # nft ran as root with the unit's capabilities: the accept-mode table is
    # there (installed just after the VIP is added).
    def blocked() -> bool:
        t = lab["n1"].run("nft", "list", "table", "inet", "vrrp_agent_accept", check=False)
        return t.returncode == 0 and VIP in t.stdout

    wait_for("the accept-mode table", blocked, 2)
    assert "accept mode filter" not in a.log()
    assert a.status()["vrrp_scripts"]["chk_caps"]["state"] == "UP"


# The agent's start and one tool run, as the unit's user: printed as JSON.
PROBE_TOOL = """
import json
from vrrp_agent.io import privileges, tool
before = open("/proc/self/status").read()
privileges.drop_ambient()
after = open("/proc/self/status").read()
ran = tool.run_tool(["sh", "-c", "id -u; grep -E '^Cap(Eff|Amb):' /proc/self/status"])
# nft -j -f - opens /dev/stdin again: it must be open to root without DAC_OVERRIDE.
nft = tool.run_tool(["nft", "-j", "-f", "-"], '{"nftables": [{"list": {"tables": {}}}]}')
print(json.dumps({"switch": privileges.can_switch_user(), "before": before, "after": after,
                  "tool": ran, "nft": nft}))
"""


def test_tools_run_as_root_within_the_capability_bound() -> None:
    r = subprocess.run(
        [*setpriv(AGENT_USER), sys.executable, "-c", PROBE_TOOL],
        capture_output=True, text=True, timeout=30, cwd="/", check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["switch"] is True
    assert int(proc_status(got["before"])["CapAmb"], 16) == CAP_MASK
    after = proc_status(got["after"])
    assert int(after["CapAmb"], 16) == 0
    assert int(after["CapEff"], 16) == CAP_MASK  # kept for itself
    uid, *caps = got["tool"].splitlines()
    assert uid == "0"  # nft and ip run as root...
    tool = proc_status("\n".join(caps))
    assert int(tool["CapEff"], 16) == CAP_MASK  # ...with the unit's bound, no more
    # The LVS plane's JSON ruleset reached nft (before: "Could not open file
    # /dev/stdin: Permission denied", the rules never applied; molecule lvs_nginx).
    assert json.loads(got["nft"])["nftables"][0]["metainfo"]
    assert int(tool["CapAmb"], 16) == 0
