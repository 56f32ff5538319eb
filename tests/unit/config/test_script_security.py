"""enable_script_security on real files: owners, modes, symlinks, PATH, users,
the key paths named, and what `vrrp-agent validate` makes of it.

Files are made under a fresh root-owned 0755 directory and given away with
os.chown/os.chmod, so the checks read exactly what the kernel says."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vrrp_agent import cli
from vrrp_agent.config import parse
from vrrp_agent.script_security import Problem, check, command_problems, file_problems

NOBODY = 65534  # nobody / nogroup on Debian

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@pytest.fixture
def base() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are what they are; this one is
    # root's, 0755, below /tmp (root's, sticky), so only what a test makes counts.
    d = Path(tempfile.mkdtemp(prefix="vrrp-sec-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def program(path: Path, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def directory(path: Path, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def insecure(path: Path) -> list[str]:
    return [msg for msg, bad in file_problems(str(path)) if bad]


# ------------------------------------------------------------------- files


def test_root_owned_program_in_root_owned_directories_is_fine(base: Path) -> None:
    assert file_problems(str(program(base / "ok" / "chk.sh"))) == []
    # Group-writable is fine when the group is root, as keepalived allows.
    assert file_problems(str(program(base / "g" / "chk.sh", mode=0o775))) == []
    directory(base / "g", mode=0o775)
    assert file_problems(str(base / "g" / "chk.sh")) == []


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "why"),
    [
        (0o755, NOBODY, 0, "is owned by nobody (uid 65534), not root"),
        (0o775, 0, NOBODY, "is writable by group nogroup (gid 65534) (mode 0775)"),
        (0o757, 0, 0, "is writable by everyone (mode 0757)"),
    ],
)
def test_a_program_others_can_change_is_insecure(
    base: Path, mode: int, uid: int, gid: int, why: str
) -> None:
    p = program(base / "chk.sh", mode, uid, gid)
    assert insecure(p) == [f"file {p} {why} on this host (enable_script_security)"]


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "why"),
    [
        (0o755, NOBODY, 0, "is owned by nobody (uid 65534), not root"),
        (0o775, 0, NOBODY, "is writable by group nogroup (gid 65534) (mode 0775)"),
        (0o777, 0, 0, "is writable by everyone (mode 0777)"),
    ],
)
def test_a_directory_others_can_change_on_the_path_is_insecure(
    base: Path, mode: int, uid: int, gid: int, why: str
) -> None:
    p = program(base / "d" / "sub" / "chk.sh")
    d = directory(base / "d", mode, uid, gid)
    assert insecure(p) == [f"directory {d} {why} on this host (enable_script_security)"]


def test_a_sticky_root_directory_only_needs_a_root_owner(base: Path) -> None:
    # /tmp's case: others may create files there, but not replace root's.
    p = program(base / "t" / "chk.sh")
    d = directory(base / "t", mode=0o1777)
    assert insecure(p) == []
    os.chown(d, NOBODY, 0)
    assert insecure(p) == [
        f"directory {d} is owned by nobody (uid 65534), not root on this host"
        " (enable_script_security)"
    ]


def test_symlinks_are_followed_and_must_be_root_owned(base: Path) -> None:
    target = program(base / "real" / "chk.sh")
    link = base / "link.sh"
    link.symlink_to(target)
    assert file_problems(str(link)) == []
    # The target's directory is walked too, not just the path as written.
    directory(base / "real", mode=0o777)
    assert insecure(link) == [
        f"directory {base / 'real'} is writable by everyone (mode 0777) on this host"
        " (enable_script_security)"
    ]
    directory(base / "real")
    os.lchown(link, NOBODY, NOBODY)
    assert insecure(link) == [
        f"symlink {link} is owned by nobody (uid 65534), not root on this host"
        " (enable_script_security)"
    ]


def test_every_offending_component_is_named(base: Path) -> None:
    p = program(base / "a" / "b" / "chk.sh", uid=NOBODY)
    directory(base / "a", mode=0o777)
    directory(base / "a" / "b", uid=NOBODY)
    found = insecure(p)
    assert len(found) == 3
    assert [f.split(" ")[1] for f in found] == [str(base / "a"), str(base / "a" / "b"), str(p)]


def test_missing_and_non_executable_programs(base: Path) -> None:
    assert file_problems(str(base / "nope")) == [("not found on this host", False)]
    p = program(base / "chk.sh", mode=0o644)
    assert file_problems(str(p)) == [("is not executable (mode 0644) on this host", False)]
    d = directory(base / "dir")
    assert file_problems(str(d)) == [("is not a regular file on this host", False)]


# -------------------------------------------------------- command lines, PATH


def test_the_program_is_the_first_word_of_the_command(base: Path) -> None:
    p = program(base / "chk.sh", mode=0o777)
    problems = command_problems("vrrp_scripts.chk.script", f"{p} --flag 'x y'", "/usr/bin")
    assert problems == [
        Problem(
            "vrrp_scripts.chk.script",
            f"{p}: file {p} is writable by everyone (mode 0777) on this host"
            " (enable_script_security)",
            insecure=True,
        )
    ]
    assert command_problems("k", "'unterminated", "/usr/bin") == [
        Problem("k", "cannot parse the command line: No closing quotation")
    ]


def test_a_bare_name_is_looked_up_in_path(base: Path) -> None:
    first = directory(base / "first")
    second = directory(base / "second", mode=0o777)
    p = program(second / "mycheck")
    path_env = f"{first}:{second}"
    problems = command_problems("k", "mycheck arg", path_env)
    assert [pr.message for pr in problems] == [
        f"{p}: directory {second} is writable by everyone (mode 0777) on this host"
        " (enable_script_security)"
    ]
    # The first match wins, as for execvp.
    program(first / "mycheck")
    assert command_problems("k", "mycheck arg", path_env) == []
    assert command_problems("k", "nocheck", path_env) == [
        Problem("k", f"nocheck: not found in PATH ({path_env}) on this host")
    ]


# ------------------------------------------------- the configuration as a whole


def config(base: Path, **over: object) -> dict:
    cfg: dict = {
        "global_defs": {"script_user": "nobody", "control_socket": str(base / "s.sock")},
        "vrrp_scripts": {"chk": {"script": f"{base}/ok/chk.sh arg", "weight": -10}},
        "vrrp_instances": {
            "VI_1": {
                "interface": "lo",
                "virtual_router_id": 51,
                "virtual_ipaddress": ["10.99.0.100/24"],
                "track_script": ["chk"],
            }
        },
    }
    cfg.update(over)
    return cfg


def report_of(base: Path, cfg: dict) -> list[str]:
    parsed = parse(yaml.safe_dump(cfg), "agent.yml")
    report = check(parsed, path_env="/usr/bin:/bin")
    return report.lines("agent.yml", report.errors)


def test_every_kind_of_command_is_checked_under_its_key_path(base: Path) -> None:
    program(base / "ok" / "chk.sh")
    bad = program(base / "bad" / "hook.sh", uid=NOBODY)
    cfg = config(base)
    cfg["vrrp_instances"]["VI_1"]["notify_master"] = f"{bad} master"
    cfg["vrrp_instances"]["VI_1"]["notify"] = str(bad)
    cfg["vrrp_sync_groups"] = {"VG1": {"group": ["VI_1"], "notify_fault": str(bad)}}
    cfg["vrrp_scripts"]["chk2"] = {"script": str(bad)}
    cfg["virtual_servers"] = [
        {
            "ip": "10.99.0.100",
            "port": 80,
            "real_servers": [
                {"ip": "10.99.0.1", "port": 80},
                {"ip": "10.99.0.2", "port": 80, "MISC_CHECK": {"misc_path": f"{bad} 10.99.0.2"}},
            ],
        }
    ]
    why = f"{bad}: file {bad} is owned by nobody (uid 65534), not root on this host"
    assert report_of(base, cfg) == [
        f"agent.yml: {key}: {why} (enable_script_security)"
        for key in (
            "vrrp_scripts.chk2.script",
            "vrrp_instances.VI_1.notify_master",
            "vrrp_instances.VI_1.notify",
            "vrrp_sync_groups.VG1.notify_fault",
            "virtual_servers[0].real_servers[1].MISC_CHECK.misc_path",
        )
    ]


def test_users_must_exist_on_this_host(base: Path) -> None:
    program(base / "ok" / "chk.sh")
    cfg = config(base)
    cfg["global_defs"]["script_user"] = "no_such_user_x"
    cfg["vrrp_scripts"]["own"] = {"script": f"{base}/ok/chk.sh", "user": "nobody no_such_group"}
    cfg["vrrp_instances"]["VI_1"]["notify_backup"] = f"{base}/ok/chk.sh"
    assert report_of(base, cfg) == [
        "agent.yml: global_defs.script_user: user 'no_such_user_x' does not exist on this host"
        " (needed by vrrp_scripts.chk.script, vrrp_instances.VI_1.notify_backup)",
        "agent.yml: vrrp_scripts.own.user: group 'no_such_group' does not exist on this host"
        " (needed by vrrp_scripts.own.script)",
    ]
    # Without any script, nobody runs as script_user: nothing to check.
    cfg = config(base, vrrp_scripts={})
    cfg["global_defs"]["script_user"] = "no_such_user_x"
    del cfg["vrrp_instances"]["VI_1"]["track_script"]
    assert report_of(base, cfg) == []


def test_security_off_turns_permission_findings_into_warnings(base: Path) -> None:
    program(base / "ok" / "chk.sh", mode=0o777)
    cfg = config(base)
    cfg["vrrp_scripts"]["gone"] = {"script": f"{base}/missing.sh"}
    cfg["global_defs"]["enable_script_security"] = False
    report = check(parse(yaml.safe_dump(cfg), "agent.yml"), path_env="/usr/bin")
    assert [p.keypath for p in report.warnings] == ["vrrp_scripts.chk.script"]
    assert report.lines("agent.yml", report.warnings)[0].endswith(
        "(allowed: enable_script_security is false)"
    )
    # A missing program is an error either way.
    assert [p.keypath for p in report.errors] == ["vrrp_scripts.gone.script"]
    assert report.disabled == frozenset()
    cfg["global_defs"]["enable_script_security"] = True
    report = check(parse(yaml.safe_dump(cfg), "agent.yml"), path_env="/usr/bin")
    assert report.disabled == {"vrrp_scripts.chk.script"}


# ------------------------------------------------------------- the validate CLI


def test_validate_refuses_an_insecure_script_and_names_it(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program(base / "ok" / "chk.sh")
    directory(base / "ok", mode=0o777)
    path = base / "agent.yml"
    path.write_text(yaml.safe_dump(config(base)))
    assert cli.main(["validate", "-c", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: vrrp_scripts.chk.script: {base}/ok/chk.sh: directory {base}/ok is writable"
        " by everyone (mode 0777) on this host (enable_script_security)"
    ]
    # For a file meant for another host, the host checks can be skipped.
    assert cli.main(["validate", "--no-host-checks", "-c", str(path)]) == 0
    directory(base / "ok")
    assert cli.main(["validate", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out and err == ""


# ------------------------------------------- interpreters and their scripts


def bad_messages(command: str) -> list[str]:
    return [p.message for p in command_problems("k", command, "/usr/bin:/bin") if p.insecure]


def test_the_script_an_interpreter_runs_is_checked(base: Path) -> None:
    evil = program(directory(base / "ww", mode=0o777) / "evil.sh")
    assert bad_messages(f"/bin/sh {evil}") == [
        f"{evil} (run by /bin/sh): directory {base}/ww is writable by everyone (mode 0777)"
        " on this host (enable_script_security)"
    ]
    # Options before the script are skipped; a bare interpreter name counts too.
    assert len(bad_messages(f"bash -e {evil}")) == 1
    # A script owned by someone else, and a symlink to it, in a safe directory.
    theirs = program(base / "theirs.sh", uid=NOBODY)
    (base / "link.sh").symlink_to(theirs)
    assert len(bad_messages(f"/bin/sh {theirs}")) == 1
    assert bad_messages(f"/bin/sh {base}/link.sh") == [
        f"{base}/link.sh (run by /bin/sh): file {theirs} is owned by nobody (uid 65534),"
        " not root on this host (enable_script_security)"
    ]
    # A safe script, and `sh -c` with a safe command string, are fine.
    assert bad_messages(f"/bin/sh {program(base / 'ok.sh')}") == []
    assert bad_messages("/bin/sh -c 'exit 0'") == []


def test_sh_c_checks_the_program_of_its_command_string(base: Path) -> None:
    evil = program(directory(base / "ww", mode=0o777) / "evil.sh")
    assert len(bad_messages(f"/bin/sh -c '{evil} --now'")) == 1


def test_the_shebang_interpreter_is_checked(base: Path) -> None:
    interp = directory(base / "ww", mode=0o777) / "interp"
    interp.symlink_to("/bin/sh")
    chk = program(base / "chk.sh")
    chk.write_text(f"#!{interp} -e\nexit 0\n")
    assert bad_messages(str(chk)) == [
        f"{interp} (#! of {chk}): directory {base}/ww is writable by everyone (mode 0777)"
        " on this host (enable_script_security)"
    ]
    # `#!/usr/bin/env NAME` looks NAME up in PATH: the one found is checked.
    (base / "bin").mkdir()
    program(base / "bin" / "myint", uid=NOBODY)
    chk.write_text("#!/usr/bin/env myint\n")
    found = [p.message for p in command_problems("k", str(chk), f"{base}/bin:/bin") if p.insecure]
    assert found == [
        f"{base}/bin/myint (#! of {chk}): file {base}/bin/myint is owned by nobody (uid 65534),"
        " not root on this host (enable_script_security)"
    ]


def test_a_script_run_by_an_interpreter_with_an_insecure_shebang(base: Path) -> None:
    interp = program(base / "theirs", uid=NOBODY)
    chk = program(base / "chk.sh")
    chk.write_text(f"#!{interp}\n")
    # sh ignores the #! line, but the script is still the thing to trust; its
    # own #! is checked too, as a direct run would use it.
    assert len(bad_messages(f"/bin/sh {chk}")) == 1


# ------------------------------------------------ the default script user


def test_a_missing_default_script_user_falls_back_to_root(base: Path) -> None:
    """keepalived's rule for its default user: that user if it exists, else root
    with a warning. This host has no `vrrp_script` (only the role creates it)."""
    import pwd

    from vrrp_agent.io.scripts import effective_user, resolve_user

    with pytest.raises(KeyError):
        pwd.getpwnam("vrrp_script")
    program(base / "ok" / "chk.sh")
    cfg = config(base)
    del cfg["global_defs"]["script_user"]
    report = check(parse(yaml.safe_dump(cfg), "agent.yml"), path_env="/usr/bin:/bin")
    assert report.lines("agent.yml", report.errors) == []
    assert report.lines("agent.yml", report.warnings) == [
        "agent.yml: global_defs.script_user: default user 'vrrp_script' does not exist on"
        " this host: scripts run as root, as keepalived does (needed by vrrp_scripts.chk.script)"
    ]
    assert effective_user("vrrp_script") == ("root", True)
    assert resolve_user("vrrp_script").uid == 0
    # Named explicitly, a user that does not exist stays an error.
    assert effective_user("nobody") == ("nobody", False)
    with pytest.raises(LookupError):
        resolve_user("vrrp_script nogroup_x")


def test_validate_warns_about_a_missing_default_user_and_passes(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program(base / "ok" / "chk.sh")
    cfg = config(base)
    del cfg["global_defs"]["script_user"]
    (base / "agent.yml").write_text(yaml.safe_dump(cfg))
    assert cli.main(["validate", "-c", str(base / "agent.yml")]) == 0
    assert "default user 'vrrp_script' does not exist" in capsys.readouterr().err
