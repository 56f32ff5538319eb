"""A little L2 lab: one bridge namespace and N host namespaces joined by veths.

Every name carries a per-lab prefix so parallel or leftover labs never
collide; `Lab.close()` deletes every namespace it made, which takes the veths
and the bridge with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from labkit.poll import wait_for

REPO = Path(__file__).resolve().parents[1]


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run this (single-threaded) process in namespace `ns` for the block:
    sockets and subprocesses made meanwhile belong to it."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def vrrp_instance(priority: int, vip: str, advert_int: float, **extra: object) -> dict:
    """The one-VIP instance most tests run: VRID 51 on eth0."""
    return {
        "interface": "eth0",
        "virtual_router_id": 51,
        "priority": priority,
        "advert_int": advert_int,
        "virtual_ipaddress": [f"{vip}/24"],
        **extra,
    }


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command here (root's namespace), output captured as text."""
    return subprocess.run(args, check=check, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace of a lab, its name and its eth0 addresses."""

    lab: Lab
    name: str  # short name, e.g. "n1"
    ns: str  # namespace name
    ip4: str
    ip6: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *args, check=check)

    def popen(
        self, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        f = open(log, "wb")  # noqa: SIM115 - closed with the process by the owner
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *args],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def addresses(self, ifname: str = "eth0") -> set[str]:
        out = sh("ip", "-n", self.ns, "-j", "addr", "show", "dev", ifname).stdout
        data = json.loads(out or "[]")
        return {a["local"] for link in data for a in link.get("addr_info", [])}

    def has(self, ip: str, ifname: str = "eth0") -> bool:
        return ip in self.addresses(ifname)

    def mac(self, ifname: str = "eth0") -> str:
        out = sh("ip", "-n", self.ns, "-j", "link", "show", ifname).stdout
        return json.loads(out)[0]["address"]

    def neighbour(self, ip: str, ifname: str = "eth0") -> str | None:
        """The MAC this host's neighbour table has for `ip`, if any."""
        out = sh("ip", "-n", self.ns, "-j", "neigh", "show", "to", ip, "dev", ifname).stdout
        entries = json.loads(out or "[]")
        return entries[0].get("lladdr") if entries else None


@dataclass
class Agent:
    """A vrrp-agent running in one host of a lab, with its config, log and socket."""

    host: Host
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    control_socket: str
    drain_file: str = ""

    @property
    def pid(self) -> int:
        # `ip netns exec` execs the command, so the pid is the agent's own.
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict:
        out = self.host.run(
            sys.executable, "-m", "vrrp_agent.cli", "status", "--json", "-c", str(self.config_path)
        ).stdout
        return json.loads(out)

    def state(self, instance: str = "VI_1") -> str | None:
        try:
            return self.status()["instances"][instance]["state"]
        except (subprocess.CalledProcessError, KeyError, json.JSONDecodeError):
            return None

    def wait_ready(self, timeout: float = 10) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")
            return os.path.exists(self.control_socket) and "vrrp-agent ready" in self.log()

        wait_for(f"agent on {self.host.name} to be ready", ready, timeout)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def rewrite(self, config: dict) -> None:
        """Replace the file, keeping the lab's global_defs (router_id, control
        socket, drain file)."""
        old = yaml.safe_load(self.config_path.read_text())
        config = {"global_defs": old["global_defs"], **config}
        self.config_path.write_text(yaml.safe_dump(config))


@dataclass
class Lab:
    """The namespaces, processes and agents of one lab; `close()` removes them all."""

    tmp: Path
    prefix: str = field(
        default_factory=lambda: f"v{os.getpid() % 100000}x{time.monotonic_ns() % 10000}"
    )
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    def open(self, n: int, links: int = 1) -> Lab:
        """n hosts; host i has eth0..eth{links-1}, ethK on bridge brK with
        10.99.K.i/24 and fd99:K::i/64."""
        sh("ip", "netns", "add", self.switch)
        for k in range(links):
            sh("ip", "-n", self.switch, "link", "add", f"br{k}", "type", "bridge")
            sh("ip", "-n", self.switch, "link", "set", f"br{k}", "up")
        for i in range(1, n + 1):
            self.add_host(f"n{i}", i, links)
        return self

    def add_host(self, name: str, i: int, links: int = 1) -> Host:
        ns = f"{self.prefix}{name}"
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for k in range(links):
            # Created inside the switch namespace, then one end moved: no host-side names.
            port, eth = f"p{i}k{k}", f"eth{k}"
            sh("ip", "-n", self.switch, "link", "add", port, "type", "veth", "peer", eth,
               "netns", ns)  # fmt: skip
            sh("ip", "-n", self.switch, "link", "set", port, "master", f"br{k}", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.99.{k}.{i}/24", "dev", eth)
            sh("ip", "-n", ns, "addr", "add", f"fd99:{k}::{i}/64", "dev", eth, "nodad")
            sh("ip", "-n", ns, "link", "set", eth, "address", f"02:00:00:00:{k:02x}:{i:02x}", "up")
        host = Host(self, name, ns, f"10.99.0.{i}", f"fd99:0::{i}")
        self.hosts[name] = host
        # The kernel assigns the link-local address once the link is up; wait for it.
        wait_for(
            f"{name} link-local", lambda: any(a.startswith("fe80") for a in host.addresses()), 5
        )
        return host

    def unplug(self, host: str) -> None:
        """Delete the host's eth0 (its veth pair): the link and its addresses vanish."""
        i = int(host.removeprefix("n"))
        sh("ip", "-n", self.switch, "link", "del", f"p{i}k0")

    def replug(self, host: str) -> None:
        """A new eth0 (new ifindex) with the old MAC and addresses, as after a reconnect."""
        i = int(host.removeprefix("n"))
        ns = self.hosts[host].ns
        sh(
            "ip",
            "-n",
            self.switch,
            "link",
            "add",
            f"p{i}k0",
            "type",
            "veth",
            "peer",
            "eth0",
            "netns",
            ns,
        )
        sh("ip", "-n", self.switch, "link", "set", f"p{i}k0", "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"10.99.0.{i}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "address", f"02:00:00:00:00:{i:02x}", "up")

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def agent(
        self,
        host: str,
        config: dict,
        wait: bool = True,
        env: dict[str, str] | None = None,
        wrap: list[str] | None = None,
        files: Path | None = None,
    ) -> Agent:
        """Start an agent on `host`. `wrap` goes before its command (setpriv,
        chrt); `files` is where its config and socket go when the lab's own
        directory (0700, root's) will not do."""
        h = self.hosts[host]
        config = json.loads(json.dumps(config))
        gd = config.setdefault("global_defs", {})
        gd.setdefault("router_id", host)
        where = files or self.tmp
        sock = str(where / f"{host}-{len(self.agents)}.sock")
        gd.setdefault("control_socket", sock)
        # Never the default under /run: a drain in one test (or on this
        # machine) must not leave another agent drained.
        gd.setdefault("drain_file", str(where / f"{host}-{len(self.agents)}.drained"))
        path = where / f"{host}-{len(self.agents)}.yml"
        path.write_text(yaml.safe_dump(config))
        log = self.tmp / f"{host}-{len(self.agents)}.log"
        env_cmd = [
            *(wrap or []),
            sys.executable,
            "-m",
            "vrrp_agent.cli",
            "run",
            "-c",
            str(path),
            "--log-level",
            "DEBUG",
        ]
        proc = h.popen(env_cmd, log, env)
        a = Agent(h, path, log, proc, gd["control_socket"], gd["drain_file"])
        self.agents.append(a)
        if wait:
            a.wait_ready()
        return a

    def spawn(self, host: str, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        proc = self.hosts[host].popen(args, self.tmp / log_name)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for a in self.agents:
            a.stop(timeout=5)
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    p.kill()
        for host in self.hosts.values():
            sh("ip", "netns", "del", host.ns, check=False)
        sh("ip", "netns", "del", self.switch, check=False)
