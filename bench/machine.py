"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def first_line(args: Sequence[str]) -> str:
    """A tool's version line (some print it on stderr), or "not installed"."""
    if not shutil.which(args[0]):
        return "not installed"
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    return ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[0]


def describe(tools: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """CPUs, memory, kernel and Python, plus each tool's version line."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model.group(1).strip() if model else "unknown",
        "cpu_mhz": float(mhz.group(1)) if mhz else None,
        "mem_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "kernel": platform.release(),
        **{name: first_line(args) for name, args in tools.items()},
        "python": platform.python_version(),
    }


def load() -> dict[str, Any]:
    """How busy the machine is apart from us: load average, other engineers'
    molecule runs, and podman's conmon processes (one per running container
    and per `podman exec` in progress)."""
    mol = subprocess.run(["pgrep", "-f", "molecule"], capture_output=True, text=True, check=False)
    conmon = subprocess.run(["pgrep", "-c", "conmon"], capture_output=True, text=True, check=False)
    return {
        "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
        "molecule_running": bool(mol.stdout.strip()),
        "podman_conmon": int(conmon.stdout.strip() or 0),
    }
