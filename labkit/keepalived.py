"""keepalived (Debian's, VRRP subsystem only) as an interoperability peer in a
namespace lab."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.netns import Host, Lab
from labkit.poll import wait_for


@dataclass
class Keepalived:
    """Debian's keepalived, VRRP subsystem only, as an interoperability peer."""

    host: Host
    proc: subprocess.Popen[bytes]
    log_path: Path
    vrrp_pidfile: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def vrrp_pid(self) -> int:
        """keepalived forks a VRRP child; that is the process that speaks VRRP."""
        return int(self.vrrp_pidfile.read_text().strip())

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ValueError, OSError):
                os.kill(self.vrrp_pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()


def keepalived_conf(
    router_id: str,
    priority: int,
    vip: str,
    version: int = 3,
    auth_pass: str | None = None,
    vrid: int = 51,
    advert_int: float = 1,
) -> str:
    auth = (
        f"    authentication {{\n        auth_type PASS\n        auth_pass {auth_pass}\n    }}\n"
        if auth_pass
        else ""
    )
    return (
        f"global_defs {{\n    router_id {router_id}\n    script_user root\n"
        f"    enable_script_security\n}}\n"
        f"vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n"
        f"    virtual_router_id {vrid}\n    priority {priority}\n    advert_int {advert_int}\n"
        f"    version {version}\n{auth}"
        f"    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
    )


def start_keepalived(lab: Lab, host: str, conf: str, config_id: str | None = None) -> Keepalived:
    """keepalived on `host` with the text `conf`; `config_id` picks its @ID lines."""
    h = lab.hosts[host]
    n = len(lab.procs)
    path = lab.tmp / f"keepalived-{host}-{n}.conf"
    path.write_text(conf)
    ident = ["--config-id", config_id] if config_id else []
    # keepalived's own config check, in the host's namespace: it looks up the interfaces.
    h.run("keepalived", "-t", "-f", str(path), *ident)
    pid, vrrp_pid = lab.tmp / f"ka-{host}-{n}.pid", lab.tmp / f"ka-{host}-{n}.vrrp.pid"
    args = [
        "keepalived",
        "-n",
        "-l",
        "-D",
        "-P",
        "-f",
        str(path),
        "-p",
        str(pid),
        "-r",
        str(vrrp_pid),
        *ident,
    ]
    proc = lab.spawn(host, args, f"keepalived-{host}-{n}.log")
    ka = Keepalived(h, proc, lab.tmp / f"keepalived-{host}-{n}.log", vrrp_pid)
    wait_for(
        f"keepalived on {host} to start",
        lambda: vrrp_pid.exists() and vrrp_pid.read_text().strip() != "",
        10,
    )
    return ka
