"""The ready-made checks driving failover between two real agents, against
real services in the namespaces: an HTTP server (http, tcp) and a named
process (process).

The checks run as the deployed wrapper runs them, `python -m vrrp_agent.checks
KIND ...` as the unprivileged script user, from a root-owned copy of the
package (the checkout may sit below a directory that user cannot enter).
systemd and container need systemd as PID 1 and a container engine, which
these namespaces lack: the molecule scenarios run the systemd check against
real nginx units, and tests/unit/test_checks.py covers both against fakes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from labkit.netns import REPO, Lab, vrrp_instance
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

VIP = "10.99.0.100"
ADVERT_INT = 0.5
INTERVAL, TIMEOUT, FALL, RISE = 0.5, 0.4, 2, 1
WEIGHT = -60
PORT = 8080
MARGIN = 0.8
PYTHON = "/usr/bin/python3"  # the system's: readable by the script user


@pytest.fixture
def checks_dir(flags: Path) -> Path:
    """Wrappers like the role's check_KIND, over a root-owned package copy."""
    d = flags
    shutil.copytree(
        REPO / "vrrp_agent", d / "lib" / "vrrp_agent", ignore=shutil.ignore_patterns("__pycache__")
    )
    for kind in ("http", "tcp", "process"):
        wrapper = d / f"check_{kind}"
        wrapper.write_text(
            f'#!/bin/sh\nPYTHONPATH={d}/lib exec {PYTHON} -m vrrp_agent.checks {kind} "$@"\n'
        )
        wrapper.chmod(0o755)
    # Programs whose only job is to be found by name, one per node: both
    # nodes share the PID namespace and the process check counts host-wide.
    for host in ("n1", "n2"):
        shutil.copy("/bin/sleep", d / f"vrrpsvc-{host}")
    return d


class Service:
    """What the check on one node looks at: started, killed, started again."""

    def __init__(self, lab: Lab, host: str, kind: str, d: Path) -> None:
        self.lab, self.host, self.kind, self.d = lab, host, kind, d
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.kind == "process":
            argv = [str(self.d / f"vrrpsvc-{self.host}"), "3600"]
        else:
            argv = [PYTHON, "-m", "http.server", str(PORT), "--bind", "127.0.0.1"]
        self.proc = self.lab.spawn(self.host, argv, f"{self.host}-svc.log")
        if self.kind != "process":
            wait_for(
                f"{self.host}'s web server",
                lambda: (
                    self.lab[self.host].run("python3", "-c", _CONNECT, check=False).returncode == 0
                ),
                5,
                step=0.05,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def command(self) -> str:
        if self.kind == "http":
            return f"{self.d}/check_http --timeout {TIMEOUT} http://127.0.0.1:{PORT}/"
        if self.kind == "tcp":
            return f"{self.d}/check_tcp --timeout {TIMEOUT} 127.0.0.1 {PORT}"
        return f"{self.d}/check_process vrrpsvc-{self.host}"


_CONNECT = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"


def conf(priority: int, command: str) -> dict:
    return {
        "global_defs": {"script_user": "nobody"},
        "vrrp_scripts": {
            "chk": {
                "script": command,
                "interval": INTERVAL,
                "timeout": TIMEOUT + 0.05,
                "fall": FALL,
                "rise": RISE,
                "weight": WEIGHT,
            }
        },
        "vrrp_instances": {"VI_1": vrrp_instance(priority, VIP, ADVERT_INT, track_script=["chk"])},
    }


@pytest.mark.parametrize("kind", ["http", "tcp", "process"])
def test_ready_made_check_moves_the_vip_and_back(lab: Lab, checks_dir: Path, kind: str) -> None:
    services = {h: Service(lab, h, kind, checks_dir) for h in ("n1", "n2")}
    for svc in services.values():
        svc.start()
    a1 = lab.agent("n1", conf(150, services["n1"].command()))
    lab.agent("n2", conf(100, services["n2"].command()))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 150, ADVERT_INT) + 2)
    wait_for("n1's check UP", lambda: a1.status()["vrrp_scripts"]["chk"]["last_exit"] == 0, 3)

    services["n1"].kill()
    # FALL failed runs (each at most TIMEOUT), then n2's Master_Down.
    bound = FALL * INTERVAL + TIMEOUT + master_down_interval(3, 100, ADVERT_INT) + MARGIN
    took = wait_for("n2 to take the VIP", lambda: lab["n2"].has(VIP), bound + 3)
    print(f"{kind}: failover after the service died: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    st = a1.status()
    assert st["vrrp_scripts"]["chk"]["state"] == "DOWN"
    assert st["vrrp_scripts"]["chk"]["last_exit"] == 1
    assert st["instances"]["VI_1"]["effective_priority"] == 150 + WEIGHT

    services["n1"].start()
    bound = RISE * INTERVAL + master_down_interval(3, 100 + WEIGHT, ADVERT_INT) + MARGIN
    took = wait_for("n1 to take the VIP back", lambda: lab["n1"].has(VIP), bound + 3)
    print(f"{kind}: failback after the service returned: {took:.3f}s (bound {bound:.3f}s)")
    assert took <= bound
    wait_for("n2 to release", lambda: not lab["n2"].has(VIP), 2)
