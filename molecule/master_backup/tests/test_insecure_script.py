"""A check script that is insecure or missing at start does not keep the agent
from starting (keepalived's behaviour): the unit's ExecStartPre validates the
file only (`--no-host-checks`), the agent starts, disables the insecure script
and says why in `status`, and systemd does not restart it in a loop.

Runs on node2 (the backup, whose lowered priority moves nothing) after the
handler tests and before the drills, and leaves the lab as it found it.
"""

from __future__ import annotations

import json
import time

import yaml

from labkit import podman

NODE = "node2"
AGENT = "/opt/vrrp-agent/bin/vrrp-agent"
CONFIG = "/etc/vrrp-agent/agent.yml"


def on(*argv: str) -> str:
    return podman.run(NODE, *argv, check=True).stdout


def show(prop: str) -> str:
    return on("systemctl", "show", f"--property={prop}", "--value", "vrrp-agent").strip()


def status() -> dict:
    return json.loads(on(AGENT, "status", "--json"))


def wait_for(what: str, ok: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{NODE}: no {what} after {timeout}s"
        time.sleep(0.2)


def test_an_insecure_or_missing_script_at_start_disables_it_and_the_agent_runs() -> None:
    original = on("cat", CONFIG)
    cfg = yaml.safe_load(original)
    on("mkdir", "-p", "/tmp/ww")
    on("chmod", "0777", "/tmp/ww")
    on("sh", "-c", "printf '#!/bin/sh\\nexit 0\\n' > /tmp/ww/chk.sh && chmod 0755 /tmp/ww/chk.sh")
    cfg.setdefault("vrrp_scripts", {}).update(
        {
            # Insecure: anyone can replace it; run through an interpreter, the
            # way the first-word-only check used to let it pass.
            "chk_ww": {"script": "/bin/sh /tmp/ww/chk.sh", "interval": 1, "weight": -5},
            "chk_gone": {"script": "/usr/local/bin/no-such-check", "interval": 1, "weight": -5},
        }
    )
    for inst in cfg["vrrp_instances"].values():
        inst["track_script"] = [*inst.get("track_script", []), "chk_ww", "chk_gone"]
    on("sh", "-c", f"cat > {CONFIG} <<'EOF'\n{yaml.safe_dump(cfg)}EOF\n")
    try:
        # What the unit's ExecStartPre used to run refuses this file on this host.
        assert podman.run(NODE, AGENT, "validate", "-c", CONFIG).returncode == 2
        on("systemctl", "restart", "vrrp-agent")
        wait_for("active agent", lambda: show("ActiveState") == "active", 20)
        scripts = status()["vrrp_scripts"]
        assert scripts["chk_ww"]["disabled"] == "insecure (enable_script_security)"
        assert scripts["chk_ww"]["state"] == "DOWN"
        # A missing program is not disabled: it fails every interval and heals once installed.
        assert scripts["chk_gone"]["disabled"] is None
        wait_for(
            "failed missing check",
            lambda: status()["vrrp_scripts"]["chk_gone"]["state"] == "DOWN",
            10,
        )
        # Three RestartSec=1 periods: a loop would have restarted by now.
        time.sleep(3)
        assert show("NRestarts") == "0"
        assert show("ActiveState") == "active"
    finally:
        on("sh", "-c", f"cat > {CONFIG} <<'EOF'\n{original}EOF\n")
        on("rm", "-rf", "/tmp/ww")
        on("systemctl", "restart", "vrrp-agent")
        wait_for("active agent", lambda: show("ActiveState") == "active", 20)
        wait_for(
            "BACKUP again",
            lambda: status()["instances"]["VI_1"]["state"] == "BACKUP",
            20,
        )
