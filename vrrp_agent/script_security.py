"""keepalived's `enable_script_security`: checks, on the host this runs on, of
every program the agent would execute and of the users it would run them as.

Configuration parsing stays pure; these are the host reads, made by
`vrrp-agent validate` and by the daemon at start and on reload. Like
keepalived, they judge the host they run on, so a file written for another
host can fail here: every message says "on this host".

What is checked, per command line (`vrrp_scripts.NAME.script`; `notify_master`,
`notify_backup`, `notify_fault`, `notify_stop`, `notify` of instances and sync
groups; `virtual_servers[i].real_servers[j].MISC_CHECK.misc_path`):

- its program (the first word, shell-quoted as the runner splits it) exists;
  a bare name is looked up in PATH as execvp would (relative entries against
  /, the directory scripts run in);
- the program and every directory on its path, as written and after
  resolving symlinks, are owned by root and not writable by anyone else:
  group-writable is fine only for group root, and a directory with the
  sticky bit (/tmp) only needs a root owner, since nobody else can replace
  root's files in it; a symlink needs a root owner (its target is walked);
- the program is a regular, executable file;
- the same walk, for what else decides what runs: the script an interpreter
  is given (`/bin/sh /etc/chk.sh`: the first non-option argument of sh, bash,
  python3, perl...; for `sh -c 'STRING'` the program of STRING), and the `#!`
  interpreter of every script on the way (for `#!/usr/bin/env NAME` both env
  and NAME as found in PATH), up to the kernel's four levels. keepalived
  checks the script it execs and its `#!` line; naming the interpreter's
  script argument is our addition, since `sh FILE` trusts FILE as much;
- the user it runs as (`vrrp_scripts.NAME.user`, else `global_defs.script_user`,
  "USER [GROUP]") and that group exist. The default script user
  (`vrrp_script`) is keepalived's exception: where it does not exist, scripts
  run as root and this is a warning, not an error (every check above already
  demands root-owned, safe files, as keepalived does for root's scripts).

One point stricter than keepalived: keepalived walks the path only when the
script would run as root; we walk it for every script, because whoever can
rewrite a check decides where the VIPs go even when the check itself runs
unprivileged.

What the daemon does with the findings:

- `vrrp-agent validate` prints one line per problem and exits 2.
- On reload the same problems refuse the reload; the running configuration
  stays, as for any invalid file.
- At start, as keepalived does, the agent still starts: an insecure program is
  disabled (never run) and each problem is logged as an error. Where keepalived
  then stops tracking a disabled vrrp_script, ours counts as failed (DOWN) for
  the instances tracking it: a check that cannot run vouches for nothing, and
  with weight 0 keepalived's choice would let a node with no working health
  check become master. A missing program or user is logged but not disabled:
  the runner fails that script every interval and heals once it is fixed.
- `enable_script_security: false` turns the permission findings into
  warnings (validate exits 0, the programs run); missing programs and users
  stay errors.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from vrrp_agent.config import Config
from vrrp_agent.config._reader import index, join
from vrrp_agent.config._vrrp import NOTIFY_KEYS

# Named in every permission finding, so the reader knows which rule spoke.
_RULE = "(enable_script_security)"


@dataclass(frozen=True)
class Command:
    """One command line the agent may execute."""

    keypath: str  # where it is configured, e.g. vrrp_scripts.chk.script
    command: str
    user: str  # "USER [GROUP]" it runs as
    user_keypath: str  # where that user is configured


@dataclass(frozen=True)
class Problem:
    """One finding about one command, at its key path."""

    keypath: str
    message: str
    # A permission finding: enforced by enable_script_security, else a warning.
    insecure: bool = False
    # Only told, never refused (the default script user's root fallback).
    warning: bool = False


@dataclass(frozen=True)
class Report:
    """Every finding for one configuration, and whether enable_script_security enforces them."""

    problems: tuple[Problem, ...] = ()
    enforced: bool = True  # global_defs.enable_script_security

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning and (self.enforced or not p.insecure)]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning or (not self.enforced and p.insecure)]

    @property
    def disabled(self) -> frozenset[str]:
        """Key paths of commands that must not run (insecure, and enforced)."""
        if not self.enforced:
            return frozenset()
        return frozenset(p.keypath for p in self.problems if p.insecure)

    def lines(self, path: str, problems: list[Problem]) -> list[str]:
        """`FILE: key.path: message`, the shape of configuration problems."""
        suffix = "" if self.enforced else " (allowed: enable_script_security is false)"
        return [f"{path}: {p.keypath}: {p.message}{suffix if p.insecure else ''}" for p in problems]


def commands(cfg: Config) -> Iterator[Command]:
    """Every command line in the configuration, with whom it runs as."""
    default_user = cfg.global_defs.script_user
    for name, script in cfg.vrrp_scripts.items():
        keypath = join("vrrp_scripts", name)
        if script.user is not None:
            user, user_keypath = script.user, join(keypath, "user")
        else:
            user, user_keypath = default_user, "global_defs.script_user"
        yield Command(join(keypath, "script"), script.script, user, user_keypath)
    hooks = [("vrrp_instances", n, i) for n, i in cfg.vrrp_instances.items()]
    hooks += [("vrrp_sync_groups", n, g) for n, g in cfg.vrrp_sync_groups.items()]
    for section, name, block in hooks:
        for key in NOTIFY_KEYS:
            command = getattr(block, key)
            if command is not None:
                yield Command(
                    join(join(section, name), key), command, default_user, "global_defs.script_user"
                )
    for i, vs in enumerate(cfg.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            checker = rs.checker
            if checker is not None and checker.misc_path is not None:
                real_server = index(join(index("virtual_servers", i), "real_servers"), j)
                keypath = join(real_server, "MISC_CHECK")
                yield Command(
                    join(keypath, "misc_path"),
                    checker.misc_path,
                    default_user,
                    "global_defs.script_user",
                )


def check(cfg: Config, path_env: str | None = None) -> Report:
    """All host problems of `cfg`'s commands and users; `path_env` defaults to
    this process's PATH, the one its scripts are looked up in."""
    if path_env is None:
        path_env = os.environ.get("PATH", os.defpath)
    problems: list[Problem] = []
    users: dict[tuple[str, str], list[str]] = {}
    for cmd in commands(cfg):
        problems += command_problems(cmd.keypath, cmd.command, path_env)
        users.setdefault((cmd.user_keypath, cmd.user), []).append(cmd.keypath)
    for (user_keypath, spec), used_by in users.items():
        # Imported here: io.scripts is the runner's, and validate reads the same rule.
        from vrrp_agent.io.scripts import DEFAULT_SCRIPT_USER, effective_user

        if effective_user(spec)[1]:
            why = (
                f"default user {DEFAULT_SCRIPT_USER!r} does not exist on this host:"
                " scripts run as root, as keepalived does"
            )
            problems.append(
                Problem(user_keypath, f"{why} (needed by {_some(used_by)})", warning=True)
            )
            continue
        why = user_problem(spec)
        if why is not None:
            problems.append(Problem(user_keypath, f"{why} (needed by {_some(used_by)})"))
    return Report(tuple(problems), cfg.global_defs.enable_script_security)


def command_problems(keypath: str, command: str, path_env: str) -> list[Problem]:
    try:
        argv = shlex.split(command)
    except ValueError as err:
        return [Problem(keypath, f"cannot parse the command line: {err}")]
    if not argv:
        return [Problem(keypath, "the command line is empty")]
    return _argv_problems(keypath, argv, path_env, _MAX_DEPTH)


# Linux follows at most four levels of #! interpreters; a sh -c string nests too.
_MAX_DEPTH = 4
# Programs whose first non-option argument is a script file they read and run.
_INTERPRETER = re.compile(
    r"(?:[a-z]*sh|busybox|python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|lua[0-9.]*"
    r"|node|nodejs|tclsh[0-9.]*|[gm]?awk)"
)
_SHELL = re.compile(r"[a-z]*sh")


def _argv_problems(keypath: str, argv: list[str], path_env: str, depth: int) -> list[Problem]:
    """The program, what an interpreter among them runs, and every #! on the way.

    Whoever can rewrite any of these decides what runs, so each is walked as
    the program itself is: the interpreter, its script argument (or the first
    word of a shell's -c string), and the #! interpreter of a script, with
    `#!/usr/bin/env NAME` looked up in PATH."""
    program = _locate(argv[0], path_env)
    if program is None:
        return [Problem(keypath, f"{argv[0]}: not found in PATH ({path_env}) on this host")]
    out = [Problem(keypath, f"{program}: {why}", bad) for why, bad in file_problems(program)]
    out += _shebang_problems(keypath, program, path_env, depth)
    if depth <= 0 or not _INTERPRETER.fullmatch(os.path.basename(argv[0])):
        return out
    args = argv[1:]
    while args and args[0].startswith("-"):
        if args[0] == "-c" and _SHELL.fullmatch(os.path.basename(argv[0])):
            inner = _split(args[1]) if len(args) > 1 else None
            if inner:
                out += _inner(keypath, inner, path_env, depth, f"run by {program} -c")
            return out
        args = args[1:]
    if args:
        script = args[0] if args[0].startswith("/") else os.path.join("/", args[0])
        # A missing script is the interpreter's error, not a permission finding.
        if os.path.lexists(script):
            out += _inner(keypath, [script], path_env, depth, f"run by {program}")
    return out


def _inner(keypath: str, argv: list[str], path_env: str, depth: int, how: str) -> list[Problem]:
    """Findings about a file another one runs, named as `FILE (HOW): why`."""
    found = _argv_problems(keypath, argv, path_env, depth - 1)
    return [Problem(p.keypath, _named(p.message, how), p.insecure) for p in found if p.insecure]


def _named(message: str, how: str) -> str:
    subject, sep, why = message.partition(": ")
    if " (" in subject:  # already named by a deeper level
        return message
    return f"{subject} ({how}){sep}{why}"


def _shebang_problems(keypath: str, program: str, path_env: str, depth: int) -> list[Problem]:
    if depth <= 0:
        return []
    try:
        with open(program, "rb") as f:
            head = f.read(256)
    except OSError:
        return []  # not readable or not a file: reported by file_problems
    if not head.startswith(b"#!"):
        return []
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if not words:
        return []
    how = f"#! of {program}"
    found = _inner(keypath, words[:1], path_env, depth, how)
    if os.path.basename(words[0]) == "env":  # #!/usr/bin/env [-S] NAME: NAME decides too
        names = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if names:
            found += _inner(keypath, names[:1], path_env, depth, how)
    return found


def _locate(word: str, path_env: str) -> str | None:
    """Where execvp would find `word`; relative paths run from /, as scripts do."""
    if "/" not in word:
        return which(word, path_env)
    return word if word.startswith("/") else os.path.join("/", word)


def _split(command: str) -> list[str] | None:
    try:
        return shlex.split(command)
    except ValueError:
        return None


def which(name: str, path_env: str) -> str | None:
    """execvp's search: the first PATH entry holding an executable regular file."""
    for entry in path_env.split(os.pathsep):
        candidate = os.path.join("/", entry or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.normpath(candidate)
    return None


def file_problems(program: str) -> list[tuple[str, bool]]:
    """(message, insecure) for one absolute program path."""
    if not os.path.lexists(program):
        return [("not found on this host", False)]
    out: list[tuple[str, bool]] = []
    written = os.path.normpath(program)
    real = os.path.realpath(program)
    seen: set[str] = set()
    for walked in dict.fromkeys((written, real)):
        for component in _prefixes(walked):
            if component in seen:
                continue
            seen.add(component)
            try:
                st = os.lstat(component)
            except OSError as err:
                out.append((f"cannot examine {component}: {err.strerror} on this host", False))
                break
            why = _unsafe(st, component)
            if why is not None:
                out.append((f"{why} on this host {_RULE}", True))
    try:
        st = os.stat(program)
    except OSError as err:
        out.append((f"cannot examine it: {err.strerror} on this host", False))
        return out
    if not stat.S_ISREG(st.st_mode):
        out.append(("is not a regular file on this host", False))
    elif not os.access(program, os.X_OK):
        out.append((f"is not executable (mode {_mode(st)}) on this host", False))
    return out


def _prefixes(path: str) -> Iterator[str]:
    """/a/b/c -> /, /a, /a/b, /a/b/c"""
    yield "/"
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        yield "/" + "/".join(parts[:i])


def _unsafe(st: os.stat_result, path: str) -> str | None:
    """Why a non-root user could change what `path` leads to, or None."""
    mode = st.st_mode
    kind = "directory" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "file"
    if st.st_uid != 0:
        return f"{kind} {path} is owned by {_user_name(st.st_uid)}, not root"
    # A symlink's own mode means nothing; a sticky directory lets nobody
    # but root replace root's files, however writable it is (keepalived).
    if stat.S_ISLNK(mode) or (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return None
    if mode & stat.S_IWGRP and st.st_gid != 0:
        return f"{kind} {path} is writable by group {_group_name(st.st_gid)} (mode {_mode(st)})"
    if mode & stat.S_IWOTH:
        return f"{kind} {path} is writable by everyone (mode {_mode(st)})"
    return None


def user_problem(spec: str) -> str | None:
    """Why "USER [GROUP]" cannot be run as on this host, or None."""
    parts = spec.split()
    if not parts or len(parts) > 2:
        return f"user {spec!r} is not of the form 'USER [GROUP]'"
    try:
        pwd.getpwnam(parts[0])
    except KeyError:
        return f"user {parts[0]!r} does not exist on this host"
    if len(parts) == 2:
        try:
            grp.getgrnam(parts[1])
        except KeyError:
            return f"group {parts[1]!r} does not exist on this host"
    return None


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group_name(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"


def _some(keypaths: list[str], limit: int = 3) -> str:
    shown = ", ".join(keypaths[:limit])
    more = len(keypaths) - limit
    return shown if more <= 0 else f"{shown} and {more} more"
