"""Which LVS data plane runs on this host, and whether it can run the file.

Host reads live here, not in vrrp_agent.config (which stays pure): `detect()`
looks at /proc, /sys and the module lists; it never loads a module, so
`vrrp-agent validate` may call it freely. The IPVS plane itself runs
`modprobe ip_vs` when it first needs the module, as ipvsadm and keepalived do.

- `detect(root)`: what the kernel offers (`HostLvs`); `root` points the reads
  at a fake tree for tests.
- `choose(lvs_backend, host)`: `auto` is IPVS when the kernel has ip_vs
  (loaded, built in or loadable), else nftables.
- `problems(cfg, backend, host)`: what the chosen plane cannot do for this
  configuration, as (key path, message) pairs naming the way out.

On lb_kind TUN: IPVS builds the IPIP header itself (ip_vs_tunnel_xmit), so a
director running IPVS needs no ipip module; the real servers need it to
decapsulate, and that is their host's business. The nftables plane has no
encapsulation of its own and refuses TUN; where the kernel lacks ipip as
well, the message says so, since even a tunnel device could not help.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vrrp_agent.config import Config
from vrrp_agent.config._reader import index, join
from vrrp_agent.lvs import ipvs, nftables

BACKENDS = ("auto", "nftables", "ipvs")
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


@dataclass(frozen=True)
class HostLvs:
    """What this host's kernel offers the data planes."""

    ip_vs: bool  # IPVS is loaded, built in, or a module that can be loaded
    ipip: bool  # IPIP tunnels: the same, for the ipip module


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _module_names(text: str) -> set[str]:
    """Module names in modules.dep ("kernel/.../ip_vs.ko.xz: deps") or
    modules.builtin ("kernel/.../ip_vs.ko") lines."""
    names = set()
    for line in text.splitlines():
        path = line.split(":", 1)[0].strip()
        base = path.rsplit("/", 1)[-1]
        for suffix in _MODULE_SUFFIXES:
            if base.endswith(suffix):
                names.add(base[: -len(suffix)].replace("-", "_"))
                break
    return names


class _Kernel:
    """The reads `detect` makes, each done once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded = {line.split(" ", 1)[0] for line in _read(root / "proc/modules").splitlines()}
        release = _read(root / "proc/sys/kernel/osrelease").strip() or os.uname().release
        mods = root / "lib/modules" / release
        self.builtin = _module_names(_read(mods / "modules.builtin"))
        # With module loading switched off, a module on disk is no use.
        disabled = _read(root / "proc/sys/kernel/modules_disabled").strip() == "1"
        self.loadable = set() if disabled else _module_names(_read(mods / "modules.dep"))

    def has(self, module: str) -> bool:
        return (
            (self.root / "sys/module" / module).is_dir()
            or module in self.loaded
            or module in self.builtin
            or module in self.loadable
        )


def detect(root: str | os.PathLike[str] = "/") -> HostLvs:
    """What this kernel offers for load balancing. Reads only; loads nothing."""
    base = Path(root)
    kernel = _Kernel(base)
    # /proc/net/ip_vs exists in every network namespace once ip_vs is in the
    # kernel: the one sign visible inside a container without /lib/modules.
    ip_vs = (base / "proc/net/ip_vs").exists() or kernel.has("ip_vs")
    # Loading ipip creates tunl0 in every namespace.
    ipip = kernel.has("ipip") or any(
        line.strip().startswith("tunl0:") for line in _read(base / "proc/net/dev").splitlines()
    )
    return HostLvs(ip_vs=ip_vs, ipip=ipip)


def choose(lvs_backend: str, host: HostLvs) -> str:
    """The data plane to run: `ipvs` or `nftables`."""
    if lvs_backend == "auto":
        return "ipvs" if host.ip_vs else "nftables"
    if lvs_backend in ("ipvs", "nftables"):
        return lvs_backend
    raise ValueError(f"lvs_backend must be one of {', '.join(BACKENDS)}, not '{lvs_backend}'")


_CONNECTION_COUNTS = frozenset({"lc", "wlc", "sed", "nq", "ovf", "twos", "lblc", "lblcr"})
_LONG_NAMES = {
    "dh": "destination hashing",
    "mh": "Maglev hashing",
    "fo": "weighted failover",
}
_IPVS_WAY_OUT = "lvs_backend: ipvs on a kernel with ip_vs"


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _algo_problem(algo: str, backend: str, offered: frozenset[str]) -> str:
    def use(*preferred: str) -> str:
        names = [n for n in preferred if n in offered] or sorted(offered)
        return _either(names)

    plane = f"the {backend} data plane"
    if algo in _CONNECTION_COUNTS:
        why = f"{algo} needs connection counts, which {plane} does not keep"
        alternatives = use("wrr", "sh")
    elif algo in ("dh", "mh"):
        why = f"{algo} ({_LONG_NAMES[algo]}) is not provided by {plane}"
        alternatives = use("sh")
    else:
        long = f" ({_LONG_NAMES[algo]})" if algo in _LONG_NAMES else ""
        why = f"{algo}{long} is not provided by {plane}"
        alternatives = use("rr", "wrr", "sh")
    way_out = f": use {alternatives}"
    if backend != "ipvs":
        way_out += f", or {_IPVS_WAY_OUT}"
    return why + way_out


def _kind_problem(kind: str, backend: str, host: HostLvs, offered: frozenset[str]) -> str:
    use = _either(sorted(offered, key=("DR", "NAT", "TUN").index))
    if kind == "TUN" and not host.ipip:
        why = (
            f"TUN needs IPIP tunnels, which neither this kernel (no ipip module)"
            f" nor the {backend} data plane provides"
        )
    else:
        why = f"{kind} is not supported by the {backend} data plane"
    return f"{why}: use {use}" + ("" if backend == "ipvs" else f", or {_IPVS_WAY_OUT}")


def _offers(backend: str) -> tuple[frozenset[str], frozenset[str]]:
    """(schedulers, lb_kinds) the data plane provides."""
    if backend == "ipvs":
        return ipvs.SCHEDULERS, frozenset(ipvs.FWD_METHODS)
    return nftables.SCHEDULERS, nftables.KINDS


def problems(cfg: Config, backend: str, host: HostLvs) -> list[tuple[str, str]]:
    """What `backend` (as `choose` returned it) cannot do for `cfg` on this host."""
    if not cfg.virtual_servers:
        return []  # no data plane is started, so none can fall short
    if backend == "ipvs" and not host.ip_vs:
        return [
            (
                "global_defs.lvs_backend",
                "ipvs needs the kernel's IP Virtual Server (ip_vs), which this host"
                " does not have (not loaded, built in or loadable): use lvs_backend:"
                " nftables, or auto to take IPVS where it exists and nftables elsewhere",
            )
        ]
    schedulers, kinds = _offers(backend)
    out: list[tuple[str, str]] = []
    for i, vs in enumerate(cfg.virtual_servers):
        keypath = index("virtual_servers", i)
        if vs.lb_algo not in schedulers:
            out.append((join(keypath, "lb_algo"), _algo_problem(vs.lb_algo, backend, schedulers)))
        if vs.lb_kind not in kinds:
            out.append((join(keypath, "lb_kind"), _kind_problem(vs.lb_kind, backend, host, kinds)))
    return out


def check(cfg: Config, root: str | os.PathLike[str] = "/") -> list[tuple[str, str]]:
    """`problems` for the plane `cfg` would get on this host: validate's host check."""
    if not cfg.virtual_servers:
        return []
    host = detect(root)
    return problems(cfg, choose(cfg.global_defs.lvs_backend, host), host)
