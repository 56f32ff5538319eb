"""Choosing the LVS data plane and what it cannot do, and `vrrp-agent validate`
reporting that as host checks.

detect() reads a fake /proc, /sys and /lib/modules tree made per test (its
`root`); the CLI tests replace detect() with a fixed answer where the outcome
would otherwise depend on this kernel (which has neither ip_vs nor ipip), and
one runs it unreplaced with a file every kernel can serve.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vrrp_agent import cli
from vrrp_agent.config import parse
from vrrp_agent.config._lvs import LB_ALGOS
from vrrp_agent.lvs import capabilities
from vrrp_agent.lvs.capabilities import HostLvs, choose, detect, problems

BARE = HostLvs(ip_vs=False, ipip=False)
IPIP_ONLY = HostLvs(ip_vs=False, ipip=True)
FULL = HostLvs(ip_vs=True, ipip=True)
IPVS_NO_IPIP = HostLvs(ip_vs=True, ipip=False)
WAY_OUT = ", or lvs_backend: ipvs on a kernel with ip_vs"


NO_VIRTUAL_SERVERS = """\
global_defs: {lvs_backend: ipvs}
vrrp_instances:
  VI_1: {interface: eth0, virtual_router_id: 51, virtual_ipaddress: [192.0.2.10/24]}
"""


def config(*servers: dict[str, object], lvs_backend: str | None = None) -> str:
    data: dict[str, object] = {}
    if lvs_backend is not None:
        data["global_defs"] = {"lvs_backend": lvs_backend}
    data["virtual_servers"] = [
        {"ip": "192.0.2.10", "port": 80 + i, "real_servers": [{"ip": "10.0.0.1", "port": 80}], **s}
        for i, s in enumerate(servers)
    ]
    return yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------ choose


@pytest.mark.parametrize(
    ("backend", "host", "chosen"),
    [
        ("auto", FULL, "ipvs"),
        ("auto", BARE, "nftables"),
        ("auto", IPIP_ONLY, "nftables"),
        ("ipvs", BARE, "ipvs"),  # as asked; problems() says why it cannot run
        ("ipvs", FULL, "ipvs"),
        ("nftables", FULL, "nftables"),
        ("nftables", BARE, "nftables"),
    ],
)
def test_choose(backend: str, host: HostLvs, chosen: str) -> None:
    assert choose(backend, host) == chosen


def test_choose_refuses_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="one of auto, nftables, ipvs"):
        choose("xdp", FULL)


# ------------------------------------------------------------------ problems


NFT_MESSAGES = {
    "rr": None,
    "wrr": None,
    "sh": None,
    **{
        algo: f"{algo} needs connection counts, which the nftables data plane does not keep: use wrr or sh{WAY_OUT}"
        for algo in ("lc", "wlc", "lblc", "lblcr", "sed", "nq", "ovf", "twos")
    },
    "dh": f"dh (destination hashing) is not provided by the nftables data plane: use sh{WAY_OUT}",
    "mh": f"mh (Maglev hashing) is not provided by the nftables data plane: use sh{WAY_OUT}",
    "fo": f"fo (weighted failover) is not provided by the nftables data plane: use rr, wrr or sh{WAY_OUT}",
}


def test_every_lb_algo_has_an_answer() -> None:
    assert set(NFT_MESSAGES) == set(LB_ALGOS)


@pytest.mark.parametrize("algo", LB_ALGOS)
def test_lb_algo_on_nftables(algo: str) -> None:
    cfg = parse(config({"lb_algo": algo}))
    expected = NFT_MESSAGES[algo]
    want = [] if expected is None else [("virtual_servers[0].lb_algo", expected)]
    assert problems(cfg, "nftables", BARE) == want
    assert problems(cfg, "nftables", FULL) == want  # the plane decides, not the host


def test_the_message_the_brief_promised() -> None:
    cfg = parse(config({"lb_algo": "rr"}, {"lb_algo": "lc"}))
    assert problems(cfg, choose("auto", BARE), BARE) == [
        (
            "virtual_servers[1].lb_algo",
            "lc needs connection counts, which the nftables data plane does not keep: use wrr or sh, or lvs_backend: ipvs on a kernel with ip_vs",
        )
    ]


@pytest.mark.parametrize("algo", LB_ALGOS)
@pytest.mark.parametrize("kind", ["NAT", "DR", "TUN"])
def test_ipvs_runs_every_lb_algo_and_lb_kind(algo: str, kind: str) -> None:
    cfg = parse(config({"lb_algo": algo, "lb_kind": kind}))
    assert problems(cfg, "ipvs", FULL) == []
    # IPVS encapsulates TUN itself: the director needs no ipip module
    assert problems(cfg, "ipvs", IPVS_NO_IPIP) == []


@pytest.mark.parametrize("kind", ["NAT", "DR"])
def test_nat_and_dr_run_on_nftables(kind: str) -> None:
    assert problems(parse(config({"lb_kind": kind})), "nftables", BARE) == []


def test_tun_on_nftables_without_ipip() -> None:
    assert problems(parse(config({"lb_kind": "TUN"})), "nftables", BARE) == [
        (
            "virtual_servers[0].lb_kind",
            "TUN needs IPIP tunnels, which neither this kernel (no ipip module) nor the nftables data plane provides: use DR or NAT, or lvs_backend: ipvs on a kernel with ip_vs",
        )
    ]


def test_tun_on_nftables_with_ipip_is_still_the_plane_s_limit() -> None:
    assert problems(parse(config({"lb_kind": "TUN"})), "nftables", IPIP_ONLY) == [
        (
            "virtual_servers[0].lb_kind",
            "TUN is not supported by the nftables data plane: use DR or NAT, or lvs_backend: ipvs on a kernel with ip_vs",
        )
    ]


IPVS_MISSING = (
    "global_defs.lvs_backend",
    "ipvs needs the kernel's IP Virtual Server (ip_vs), which this host does not have (not loaded, built in or loadable): use lvs_backend: nftables, or auto to take IPVS where it exists and nftables elsewhere",
)


@pytest.mark.parametrize("host", [BARE, IPIP_ONLY])
def test_ipvs_asked_for_on_a_kernel_without_it(host: HostLvs) -> None:
    cfg = parse(config({"lb_algo": "lc", "lb_kind": "TUN"}, lvs_backend="ipvs"))
    assert problems(cfg, choose("ipvs", host), host) == [IPVS_MISSING]


def test_no_virtual_servers_no_problems_whatever_the_backend() -> None:
    cfg = parse(NO_VIRTUAL_SERVERS)
    assert problems(cfg, "ipvs", BARE) == []
    assert capabilities.check(cfg) == []


def test_every_problem_of_every_server_in_order() -> None:
    cfg = parse(config({"lb_algo": "wlc", "lb_kind": "TUN"}, {"lb_algo": "rr"}, {"lb_algo": "dh"}))
    assert [k for k, _ in problems(cfg, "nftables", BARE)] == [
        "virtual_servers[0].lb_algo",
        "virtual_servers[0].lb_kind",
        "virtual_servers[2].lb_algo",
    ]


# ------------------------------------------------------------------ detect


def put(root: Path, rel: str, text: str = "") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


RELEASE = "6.1.0-test-amd64"


def modules(root: Path, dep: str = "", builtin: str = "", disabled: bool = False) -> None:
    put(root, "proc/sys/kernel/osrelease", RELEASE + "\n")
    put(root, "proc/sys/kernel/modules_disabled", "1\n" if disabled else "0\n")
    put(root, f"lib/modules/{RELEASE}/modules.dep", dep)
    put(root, f"lib/modules/{RELEASE}/modules.builtin", builtin)


def test_detect_on_an_empty_tree(tmp_path: Path) -> None:
    assert detect(tmp_path) == BARE


def test_detect_ip_vs_by_proc_net(tmp_path: Path) -> None:
    # what a container sees of a host that has ip_vs loaded
    put(tmp_path, "proc/net/ip_vs", "IP Virtual Server version 1.2.1 (size=4096)\n")
    assert detect(tmp_path) == HostLvs(ip_vs=True, ipip=False)


def test_detect_loaded_modules_by_sys_and_proc_modules(tmp_path: Path) -> None:
    (tmp_path / "sys/module/ip_vs").mkdir(parents=True)
    put(tmp_path, "proc/modules", "ipip 20480 0 - Live 0x0000000000000000\n")
    assert detect(tmp_path) == FULL


def test_detect_loadable_and_builtin_modules(tmp_path: Path) -> None:
    modules(
        tmp_path,
        dep="kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz\n"
        "kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n",
        builtin="kernel/net/ipv4/ipip.ko\n",
    )
    assert detect(tmp_path) == FULL


def test_a_scheduler_module_is_not_ip_vs(tmp_path: Path) -> None:
    modules(
        tmp_path, dep="kernel/net/netfilter/ipvs/ip_vs_rr.ko.zst: \nkernel/net/ipv4/ip_tunnel.ko:\n"
    )
    assert detect(tmp_path) == BARE


def test_with_module_loading_disabled_only_what_is_in_counts(tmp_path: Path) -> None:
    modules(
        tmp_path,
        dep="kernel/net/netfilter/ipvs/ip_vs.ko:\nkernel/net/ipv4/ipip.ko:\n",
        disabled=True,
    )
    assert detect(tmp_path) == BARE
    put(tmp_path, "proc/modules", "ip_vs 180224 0 - Live 0x0000000000000000\n")
    assert detect(tmp_path) == HostLvs(ip_vs=True, ipip=False)


def test_detect_ipip_by_tunl0(tmp_path: Path) -> None:
    put(
        tmp_path,
        "proc/net/dev",
        "Inter-|   Receive\n face |bytes\n    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        "  tunl0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
    )
    assert detect(tmp_path) == IPIP_ONLY


def test_detect_on_this_host_reads_without_failing() -> None:
    assert isinstance(detect(), HostLvs)


# ------------------------------------------------------------------ vrrp-agent validate


class FakeDetect:
    """detect() answering `answer`; None: it must not be called at all."""

    def __init__(self) -> None:
        self.answer: HostLvs | None = BARE  # as this kernel is
        self.calls = 0

    def __call__(self, root: str = "/") -> HostLvs:
        self.calls += 1
        assert self.answer is not None, "detect() called"
        return self.answer


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeDetect:
    fake = FakeDetect()
    monkeypatch.setattr(capabilities, "detect", fake)
    return fake


@pytest.fixture
def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """validate(text, *flags) -> (exit code, file path, stdout, stderr)"""

    def run(text: str, *flags: str) -> tuple[int, str, str, str]:
        path = tmp_path / "agent.yml"
        path.write_text(text)
        code = cli.main(["validate", *flags, "-c", str(path)])
        out, err = capsys.readouterr()
        return code, str(path), out, err

    return run


TWO_PROBLEMS = config({"lb_algo": "lc"}, {"lb_kind": "TUN"})


def test_validate_names_what_nftables_cannot_do(validate, host: FakeDetect) -> None:
    code, path, out, err = validate(TWO_PROBLEMS)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{path}: virtual_servers[0].lb_algo: lc needs connection counts, which the nftables data plane does not keep: use wrr or sh, or lvs_backend: ipvs on a kernel with ip_vs",
        f"{path}: virtual_servers[1].lb_kind: TUN needs IPIP tunnels, which neither this kernel (no ipip module) nor the nftables data plane provides: use DR or NAT, or lvs_backend: ipvs on a kernel with ip_vs",
    ]


def test_validate_without_host_checks_does_not_look(validate, host: FakeDetect) -> None:
    host.answer = None
    code, path, out, err = validate(TWO_PROBLEMS, "--no-host-checks")
    assert (code, out, err) == (0, f"{path}: OK (0 vrrp_instances, 2 virtual_servers)\n", "")
    assert host.calls == 0


def test_validate_on_a_kernel_with_ip_vs_accepts_it(validate, host: FakeDetect) -> None:
    host.answer = IPVS_NO_IPIP
    code, path, out, err = validate(TWO_PROBLEMS)
    assert (code, out, err) == (0, f"{path}: OK (0 vrrp_instances, 2 virtual_servers)\n", "")


def test_validate_ipvs_without_ip_vs(validate, host: FakeDetect) -> None:
    code, path, out, err = validate(config({}, lvs_backend="ipvs"))
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"{path}: {IPVS_MISSING[0]}: {IPVS_MISSING[1]}"]
    code, path, out, err = validate(config({}, lvs_backend="ipvs"), "--no-host-checks")
    assert (code, err) == (0, "")


def test_validate_explicit_nftables_on_an_ipvs_kernel_still_checks_nftables(
    validate, host: FakeDetect
) -> None:
    host.answer = FULL
    code, path, _, err = validate(config({"lb_algo": "sed"}, lvs_backend="nftables"))
    assert code == 2
    assert err.splitlines() == [
        f"{path}: virtual_servers[0].lb_algo: sed needs connection counts, which the nftables data plane does not keep: use wrr or sh, or lvs_backend: ipvs on a kernel with ip_vs"
    ]


def test_validate_without_virtual_servers_does_not_look(validate, host: FakeDetect) -> None:
    host.answer = None
    code, path, out, err = validate(NO_VIRTUAL_SERVERS)
    assert (code, err) == (0, "")


def test_validate_on_this_host_with_what_every_plane_runs(validate) -> None:
    """detect() not replaced: rr over NAT and DR runs on either plane."""
    code, path, out, err = validate(config({"lb_kind": "NAT"}, {"lb_kind": "DR"}))
    assert (code, out, err) == (0, f"{path}: OK (0 vrrp_instances, 2 virtual_servers)\n", "")
