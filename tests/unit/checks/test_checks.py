"""vrrp_agent.checks: the ready-made vrrp_script health checks, through their CLI.

Every check runs as `python -m vrrp_agent.checks KIND ...` in a subprocess, so
what is tested is the contract the vrrp_script wrappers rely on: exit 0 healthy,
1 unhealthy, 2 usage error, one line on stdout, bounded by --timeout.

http, tcp and process run against real servers, sockets and processes.
systemd and container run against fake `systemctl`/`podman`/`docker` shell
scripts put first on PATH: this machine has no systemd as PID 1 and no container
engine to ask, so the fakes stand in for the binaries and answer as they do
(state word and exit status; `--format` output, "no such container" and exit 125).
The real binaries are exercised by the molecule scenarios.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import PIPE

import pytest

ROOT = Path(__file__).resolve().parents[3]
SLOW = 3.0  # seconds the slow fakes and handlers take: well past the timeouts used


def check(*args: str, path: str | None = None, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run one check like a vrrp_script wrapper does; PATH replaced when given."""
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "vrrp_agent.checks", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def line(done: subprocess.CompletedProcess) -> str:
    """The one output line (and that there is exactly one, and no traceback)."""
    assert done.stdout.count("\n") == 1, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout.rstrip("\n")


# --- http -------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    release = threading.Event()  # set at teardown: the slow handler stops waiting

    def do_GET(self) -> None:
        if self.path.startswith("/drip"):
            self.drip()
            return
        if self.path == "/slow":
            self.release.wait(SLOW)
        if self.path == "/down":
            self.send_error(503)
            return
        body = b"hello nodeA"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drip(self) -> None:
        """A byte now and then: no single read waits long, the whole never ends."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if self.path == "/drip-body":
            self.wfile.write(b"Content-Length: 100000\r\n\r\n")
        piece = b"X-Drip: 1\r\n" if self.path == "/drip-headers" else b"."
        end = time.monotonic() + SLOW
        while time.monotonic() < end and not self.release.wait(0.05):
            try:
                self.wfile.write(piece)
            except OSError:  # the check hung up
                return

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Handler.release.set()
    server.shutdown()
    server.server_close()


def test_http_ok(web: str) -> None:
    done = check("http", f"{web}/")
    assert done.returncode == 0
    assert line(done) == f"{web}/: 200 OK"


def test_http_expect_match(web: str) -> None:
    done = check("http", "--expect", "nodeA", f"{web}/")
    assert done.returncode == 0
    assert line(done) == f"{web}/: 200, body contains 'nodeA'"


def test_http_expect_mismatch(web: str) -> None:
    done = check("http", "--expect", "nodeB", f"{web}/")
    assert done.returncode == 1
    assert line(done) == f"{web}/: 200, body lacks 'nodeB'"


def test_http_503_is_unhealthy_by_default(web: str) -> None:
    done = check("http", f"{web}/down")
    assert done.returncode == 1
    assert line(done) == f"{web}/down: 503, expected 2xx"


def test_http_status_option(web: str) -> None:
    assert check("http", "--status", "503", f"{web}/down").returncode == 0
    assert check("http", "--status", "200,5xx", f"{web}/down").returncode == 0
    done = check("http", "--status", "201", f"{web}/")
    assert done.returncode == 1
    assert line(done) == f"{web}/: 200, expected 201"


def test_http_slow_answer_times_out(web: str) -> None:
    start = time.monotonic()
    done = check("http", "--timeout", "0.3", f"{web}/slow")
    elapsed = time.monotonic() - start
    assert done.returncode == 1
    assert line(done).startswith(f"{web}/slow: ")
    assert line(done) == f"{web}/slow: no answer within 0.3s"
    assert elapsed < 0.3 + 1


def test_http_dripping_body_stops_at_the_deadline(web: str) -> None:
    """Each read gets a byte in time; the check's own deadline ends the body."""
    start = time.monotonic()
    done = check("http", "--timeout", "0.3", "--expect", "nodeA", f"{web}/drip-body")
    assert time.monotonic() - start < 0.3 + 1
    assert done.returncode == 1
    assert line(done) == f"{web}/drip-body: no answer within 0.3s"


def test_http_dripping_headers_stop_at_the_watchdog(web: str) -> None:
    """http.client reads headers to the end: only the watchdog can stop that."""
    start = time.monotonic()
    done = check("http", "--timeout", "0.3", f"{web}/drip-headers")
    assert time.monotonic() - start < 0.3 + 1
    assert done.returncode == 1
    assert line(done) == f"{web}/drip-headers: timed out after 0.3s"


def test_http_connection_refused(free_port: int) -> None:
    done = check("http", f"http://127.0.0.1:{free_port}/")
    assert done.returncode == 1
    assert line(done) == f"http://127.0.0.1:{free_port}/: connection refused"


def test_https_against_plain_http_is_a_tls_failure(web: str) -> None:
    url = web.replace("http://", "https://") + "/"
    done = check("http", "--insecure", url)
    assert done.returncode == 1
    assert line(done).startswith(f"{url}: SSL")


# --- tcp --------------------------------------------------------------------


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_tcp_listening() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        done = check("tcp", "127.0.0.1", str(port))
    assert done.returncode == 0
    assert line(done) == f"127.0.0.1:{port}: connected"


def test_tcp_closed_port(free_port: int) -> None:
    done = check("tcp", "127.0.0.1", str(free_port))
    assert done.returncode == 1
    assert line(done) == f"127.0.0.1:{free_port}: connection refused"


def test_tcp_ipv6_literal() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        port = server.getsockname()[1]
        plain = check("tcp", "::1", str(port))
        bracketed = check("tcp", "[::1]", str(port))
    assert plain.returncode == bracketed.returncode == 0
    assert line(plain) == line(bracketed) == f"[::1]:{port}: connected"


# --- process ----------------------------------------------------------------


def test_process_own_name() -> None:
    """This test's process is running; the check does not count itself."""
    name = Path("/proc/self/comm").read_text().strip()
    done = check("process", name)
    assert done.returncode == 0
    assert line(done).startswith(f"process {name}: ")
    assert line(done).endswith(" running")


def test_process_by_argv0() -> None:
    name = f"vrrp-test-{uuid.uuid4().hex[:8]}"
    sleeper = subprocess.Popen([name, "30"], executable="/bin/sleep")  # comm is "sleep"
    try:
        done = check("process", name)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert done.returncode == 0
    assert line(done) == f"process {name}: 1 running"


def test_process_unknown_name() -> None:
    name = f"no-such-{uuid.uuid4().hex[:8]}"
    done = check("process", name)
    assert done.returncode == 1
    assert line(done) == f"process {name}: 0 running, expected at least 1"


def test_process_min_above_count() -> None:
    name = Path("/proc/self/comm").read_text().strip()
    done = check("process", "--min", "100000", name)
    assert done.returncode == 1
    assert line(done).endswith(" running, expected at least 100000")


def test_process_zombie_does_not_count() -> None:
    name = f"vrrp-zombie-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen([name], executable="/bin/true")
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 2
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert check("process", name).returncode == 1
    finally:
        child.wait()


# --- systemd (fake systemctl) -----------------------------------------------

FAKE_SYSTEMCTL = f"""#!/bin/sh
# fake systemctl: answers `systemctl is-active UNIT` like the real one
[ "$1" = is-active ] || {{ echo "fake systemctl: unexpected $*" >&2; exit 99; }}
case "$2" in
  good.service) echo active; exit 0 ;;
  slow.service) exec sleep {SLOW} ;;
  failed.service) echo failed; exit 3 ;;
  *) echo inactive; exit 3 ;;
esac
"""

FAKE_RUNTIME = f"""#!/bin/sh
# fake podman/docker: answers `container inspect --format FMT NAME` like the real ones
[ "$1 $2 $3" = "container inspect --format" ] || {{ echo "fake: unexpected $*" >&2; exit 99; }}
case "$5" in
  up) echo "true running" ;;
  down) echo "false exited" ;;
  slow) exec sleep {SLOW} ;;
  *) echo "Error: no such container $5" >&2; exit 125 ;;
esac
"""


def fake_bin(directory: Path, **scripts: str) -> str:
    """Write executable scripts into `directory`; return it as a PATH entry."""
    directory.mkdir(exist_ok=True)
    for name, text in scripts.items():
        script = directory / name
        script.write_text(text)
        script.chmod(0o755)
    return str(directory)


@pytest.fixture
def systemctl_path(tmp_path: Path) -> str:
    return fake_bin(tmp_path / "bin", systemctl=FAKE_SYSTEMCTL) + os.pathsep + os.environ["PATH"]


def test_systemd_active(systemctl_path: str) -> None:
    """Fake systemctl on PATH (no systemd as PID 1 here; molecule runs the real one)."""
    done = check("systemd", "good.service", path=systemctl_path)
    assert done.returncode == 0
    assert line(done) == "unit good.service: active"


def test_systemd_not_active(systemctl_path: str) -> None:
    """Fake systemctl on PATH: the state word is reported, exit 1."""
    for unit, word in (("gone.service", "inactive"), ("failed.service", "failed")):
        done = check("systemd", unit, path=systemctl_path)
        assert done.returncode == 1
        assert line(done) == f"unit {unit}: {word}"


def test_systemd_timeout(systemctl_path: str) -> None:
    """Fake systemctl that hangs: killed at the timeout, exit 1."""
    start = time.monotonic()
    done = check("systemd", "--timeout", "0.3", "slow.service", path=systemctl_path)
    assert time.monotonic() - start < 0.3 + 1
    assert done.returncode == 1
    assert line(done) == "unit slow.service: systemctl did not answer within 0.3s"


def test_systemd_without_systemctl(tmp_path: Path) -> None:
    """No systemctl on PATH at all: a message, not a traceback."""
    done = check("systemd", "good.service", path=fake_bin(tmp_path / "empty"))
    assert done.returncode == 1
    assert line(done) == "unit good.service: systemctl not found (not a systemd system?)"


# --- container (fake podman/docker) ------------------------------------------


@pytest.fixture
def both(tmp_path: Path) -> str:
    """Fake podman and docker first on PATH (no container engine on this machine)."""
    bin_dir = fake_bin(tmp_path / "both", podman=FAKE_RUNTIME, docker=FAKE_RUNTIME)
    return bin_dir + os.pathsep + os.environ["PATH"]


@pytest.mark.parametrize(
    ("name", "rc", "message"),
    [
        ("up", 0, "container up: running (podman)"),
        ("down", 1, "container down: not running, exited (podman)"),
        ("nope", 1, "container nope: not found (podman)"),
    ],
)
def test_container_auto_prefers_podman(both: str, name: str, rc: int, message: str) -> None:
    """Fake runtimes on PATH: auto asks podman when both are installed."""
    done = check("container", name, path=both)
    assert done.returncode == rc
    assert line(done) == message


def test_container_explicit_docker(both: str) -> None:
    """Fake runtimes on PATH: --runtime docker asks docker."""
    done = check("container", "--runtime", "docker", "up", path=both)
    assert done.returncode == 0
    assert line(done) == "container up: running (docker)"


def test_container_auto_falls_back_to_docker(tmp_path: Path) -> None:
    """Only a fake docker on PATH (the real binaries are kept out)."""
    done = check("container", "down", path=fake_bin(tmp_path / "docker", docker=FAKE_RUNTIME))
    assert done.returncode == 1
    assert line(done) == "container down: not running, exited (docker)"


def test_container_no_runtime(tmp_path: Path) -> None:
    """Nothing on PATH: exit 1 with a clear message, for auto and for a named runtime."""
    empty = fake_bin(tmp_path / "empty")
    done = check("container", "web", path=empty)
    assert done.returncode == 1
    assert line(done) == "container web: no container runtime found (podman, docker)"
    done = check("container", "--runtime", "podman", "web", path=empty)
    assert done.returncode == 1
    assert line(done) == "container web: podman not found"


def test_container_timeout(both: str) -> None:
    """Fake podman that hangs: killed at the timeout, exit 1."""
    start = time.monotonic()
    done = check("container", "--timeout", "0.3", "slow", path=both)
    assert time.monotonic() - start < 0.3 + 1
    assert done.returncode == 1
    assert line(done) == "container slow: podman did not answer within 0.3s"


# --- usage and the contract -------------------------------------------------


USAGE_ERRORS = [
    [],
    ["bogus"],
    ["http"],
    ["http", "ftp://example.org/"],
    ["http", "--status", "abc", "http://127.0.0.1/"],
    ["http", "--timeout", "0", "http://127.0.0.1/"],
    ["http", "--timeout", "soon", "http://127.0.0.1/"],
    ["tcp", "127.0.0.1"],
    ["tcp", "127.0.0.1", "99999"],
    ["process", "--min", "0", "x"],
    ["systemd"],
    ["container", "--runtime", "lxc", "web"],
]


def test_usage_errors_exit_2() -> None:
    """All at once (they only parse arguments): exit 2, usage on stderr, nothing on stdout."""
    cmd = [sys.executable, "-m", "vrrp_agent.checks"]
    runs = [
        (args, subprocess.Popen([*cmd, *args], stdout=PIPE, stderr=PIPE, text=True, cwd=ROOT))
        for args in USAGE_ERRORS
    ]
    for args, proc in runs:
        out, err = proc.communicate(timeout=10)
        assert (proc.returncode, out) == (2, ""), args
        assert "usage:" in err, args
        assert "Traceback" not in err, args


def test_help_exits_0() -> None:
    done = check("--help")
    assert done.returncode == 0
    assert all(kind in done.stdout for kind in ("http", "tcp", "process", "systemd", "container"))


def test_only_the_chosen_check_is_imported() -> None:
    """A process check loads neither the HTTP client nor subprocess (start-up cost)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vrrp_agent.checks", "process", "init"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    imported = {row.split("|")[-1].strip() for row in done.stderr.splitlines()}
    assert "argparse" in imported  # the listing works (import_module'd ones are not in it)
    assert not imported & {"http.client", "ssl", "subprocess", "vrrp_agent.checks.http"}
