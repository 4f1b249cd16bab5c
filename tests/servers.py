"""Real servers for tests: `ivr12333 serve` (granian) as a subprocess, and a throwaway PostgreSQL.

Both listen on loopback only, on a free port, and are always stopped (their whole process
group) when the test is done. Fixtures: `postgres` (one cluster per test session),
`pg_url` (a database in it, shared by the session) and `fresh_pg_url` (an empty database per
test). Import the fixtures you use into the test module.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from ivr.domain import pinkeys

LOOPBACK = "127.0.0.1"
#: Variables of the developer's shell that would change what the server does.
_OWN_VARIABLES = re.compile(r"^(IVR_|TWILIO_|GRANIAN_|GUNICORN_)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@functools.cache
def key_file_of_tests() -> Path:
    """The tests' PIN key file, one per test process (0600 in a private folder): the test
    apps, the databases the tests import, the CLI runs and the servers all use it."""
    folder = Path(tempfile.mkdtemp(prefix="ivr-keys-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "pin-keys"
    pinkeys.generate(path)
    return path


@functools.cache
def keyring_of_tests() -> pinkeys.Keyring:
    """The keys of key_file_of_tests()."""
    return pinkeys.read_file(key_file_of_tests())


def _clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _OWN_VARIABLES.match(k)}
    env["IVR_PIN_KEY_FILE"] = str(key_file_of_tests())
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen[Any], sig: int, timeout: float) -> None:
    """Signal the process group `proc` leads; SIGKILL it if it is not gone within `timeout`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # workers left behind by a killed master (normally none: they share its group)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- the hotline under granian -----------------------------------------------------------------


def ivr12333_command() -> list[str]:
    """The installed `ivr12333` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("ivr12333")
    if script.exists():
        return [str(script)]
    found = shutil.which("ivr12333")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from ivr.tools.cli import main; sys.exit(main())"]


def run_cli(*args: str, timeout: float = 120.0,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `ivr12333 ARGS...` in a clean environment; returns the finished process (text)."""
    return subprocess.run([*ivr12333_command(), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout,
                          env=_clean_environment({"COLUMNS": "200", **(env or {})}))


class HotlineServer:
    """`ivr12333 --database-url URL serve` on 127.0.0.1; start, stop, kill and start again.

    stdout (the access log) and stderr (granian's and the app's log, each line with the pid
    of the process that wrote it) go to files in `log_dir`, read with `access_log()`
    and `error_log()`.
    """

    def __init__(self, database_url: str, log_dir: Path, *, workers: int = 1,
                 auth_token: str | None = None, port: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.workers = workers
        self.auth_token = auth_token
        self.port = port or free_port()
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._runtime_dir: str | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def voice_url(self) -> str:
        return f"{self.base_url}/voice"

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/status"

    def _log(self, stream: str) -> Path:
        return self.log_dir / f"{stream}-{self.starts}.log"

    def access_log(self) -> str:
        """Every start's access log so far (written on stdout)."""
        return "".join(_read(self.log_dir / f"stdout-{n}.log") for n in range(1, self.starts + 1))

    def error_log(self) -> str:
        return "".join(_read(self.log_dir / f"stderr-{n}.log") for n in range(1, self.starts + 1))

    def start(self, timeout: float = 30.0) -> HotlineServer:
        """Start and wait until every worker has booted and one answers HTTP."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        # a private runtime folder each: nothing of one server's may land where another's does
        self._runtime_dir = self._runtime_dir or tempfile.mkdtemp(prefix="ivr-run-")
        env = {"IVR_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
               "XDG_RUNTIME_DIR": self._runtime_dir, **self.extra_env}
        if self.auth_token:
            env["TWILIO_AUTH_TOKEN"] = self.auth_token
        command = [*ivr12333_command(), "--database-url", self.database_url, "serve",
                   "--host", LOOPBACK, "--port", str(self.port), "--workers", str(self.workers),
                   *([] if self.auth_token else ["--insecure"])]
        with open(self._log("stdout"), "wb") as out, open(self._log("stderr"), "wb") as err:
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=_clean_environment(env), start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"ivr12333 serve exited with {self.proc.returncode}:\n"
                                       + _tail(self._log("stderr")))
                booted = _read(self._log("stderr")).count("Booting worker with pid")
                if booted >= self.workers:
                    try:
                        if client.get(f"{self.base_url}/ready-check").status_code == 404:
                            return
                    except httpx.HTTPError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ivr12333 serve not ready after {timeout:g} s:\n"
                                       + _tail(self._log("stderr")))
                time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM to master and workers); SIGKILL after `timeout`."""
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash: SIGKILL the master and its workers at once."""
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGKILL, 10.0)

    def close(self) -> None:
        """Stop for good and remove the runtime folder."""
        self.stop()
        if self._runtime_dir:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None

    def __enter__(self) -> HotlineServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# --- a throwaway PostgreSQL --------------------------------------------------------------------

POSTGRES_MISSING = (
    "PostgreSQL server binaries (initdb, postgres) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin. The PostgreSQL tests need them: `make test` installs them "
    "(apt-get install postgresql), or set IVR_TEST_PG_BINDIR to their folder."
)


def postgres_bindir() -> Path | None:
    """Where initdb and postgres are: $IVR_TEST_PG_BINDIR, PATH, or the newest Debian install."""
    candidates: list[Path] = []
    if os.environ.get("IVR_TEST_PG_BINDIR"):
        candidates.append(Path(os.environ["IVR_TEST_PG_BINDIR"]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, trust auth, 127.0.0.1 only.

    PostgreSQL refuses to run as root: as root, the cluster belongs to and runs as `nobody`.
    """

    SUPERUSER = "postgres"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="ivr12333-pg-"))
        self.datadir = self.base / "data"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    @property
    def log_path(self) -> Path:
        return self.base.with_name(self.base.name + ".log")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        with open(self.log_path, "ab") as log:
            subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           cwd=self.base, env=_clean_environment({"LC_ALL": "C"}), check=True,
                           timeout=120, **self._user)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.SUPERUSER,
                      "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed ({exc.returncode}):\n"
                               f"{_tail(self.log_path)}") from exc
        for _attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            if self._start_postgres(timeout):
                return self
        raise RuntimeError(f"PostgreSQL did not start:\n{_tail(self.log_path)}")

    def _start_postgres(self, timeout: float) -> bool:
        import psycopg

        command = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-h", LOOPBACK,
                   "-p", str(self.port), "-k", str(self.base), "-c", "fsync=off",
                   "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                   "-c", "max_connections=100", "-c", "shared_buffers=16MB"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.base,
                                         env=_clean_environment({"LC_ALL": "C"}),
                                         start_new_session=True, **self._user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg.connect(host=LOOPBACK, port=self.port, user=self.SUPERUSER,
                                dbname="postgres", connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"PostgreSQL not ready after {timeout:g} s:\n{_tail(self.log_path)}")

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (autocommit); returns its rows, if any."""
        import psycopg

        with psycopg.connect(host=LOOPBACK, port=self.port, user=self.SUPERUSER,
                             dbname=database, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def create_database(self, prefix: str = "ivr") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGINT, 20.0)  # SIGINT: PostgreSQL's fast shutdown

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL per test session (per xdist worker); fails if not installed."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail(POSTGRES_MISSING, pytrace=False)
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresServer) -> str:
    """A `postgresql+psycopg://` URL of a database shared by the whole session."""
    return postgres.create_database("shared")


@pytest.fixture
def fresh_pg_url(postgres: PostgresServer) -> str:
    """A `postgresql+psycopg://` URL of a new, empty database for this test alone."""
    return postgres.create_database("test")


# --- nginx in front (deploy/nginx-ivr12333.conf) -----------------------------------------------

NGINX_SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx-ivr12333.conf"
NGINX_MISSING = (
    "nginx was not found on PATH or in /usr/sbin. The tests of the production layout run a "
    "real nginx with deploy/nginx-ivr12333.conf: `make test` installs it (apt-get install "
    "nginx), or set IVR_TEST_NGINX to the nginx binary."
)


def nginx_binary() -> str | None:
    """$IVR_TEST_NGINX, nginx on PATH, or /usr/sbin/nginx."""
    for candidate in (os.environ.get("IVR_TEST_NGINX"), shutil.which("nginx"),
                      "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class NginxServer:
    """A real nginx running the shipped site file, on a free loopback port, in front of
    `upstream_port`; its own folder (config, logs, temp files), one process group."""

    def __init__(self, binary: str, upstream_port: int, base: Path) -> None:
        self.binary = binary
        self.upstream_port = upstream_port
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def site(self) -> str:
        """The shipped site file with only its addresses changed."""
        text = NGINX_SITE.read_text(encoding="utf-8")
        text, n_upstream = re.subn(r"server 127\.0\.0\.1:5000;",
                                   f"server {LOOPBACK}:{self.upstream_port};", text)
        text, n_listen = re.subn(r"listen 80;", f"listen {LOOPBACK}:{self.port};", text)
        assert n_upstream == 1 and n_listen == 1, "deploy/nginx-ivr12333.conf changed shape"
        return text

    def access_log(self) -> str:
        return _read(self.base / "logs" / "access.log")

    def error_log(self) -> str:
        return _read(self.base / "logs" / "error.log")

    def start(self, timeout: float = 15.0) -> NginxServer:
        (self.base / "logs").mkdir(parents=True, exist_ok=True)
        (self.base / "site.conf").write_text(self.site(), encoding="utf-8")
        # as root, nginx's workers would run as nobody, who cannot read pytest's folders
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = " ".join(f"{kind}_temp_path {self.base / kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.base / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.base / 'nginx.pid'};\n"
            f"error_log {self.base / 'logs' / 'error.log'} info;\n"
            "events { worker_connections 2048; }\n"
            f"http {{\n  access_log {self.base / 'logs' / 'access.log'};\n  {temp}\n"
            f"  include {self.base / 'site.conf'};\n}}\n", encoding="utf-8")
        command = [self.binary, "-p", str(self.base), "-c", str(self.base / "nginx.conf"),
                   "-e", str(self.base / "logs" / "error.log"), "-g", "daemon off;"]
        with open(self.base / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(command, stdout=err, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n"
                                   + _tail(self.base / "stderr.log") + self.error_log())
            with contextlib.suppress(OSError):
                socket.create_connection((LOOPBACK, self.port), timeout=0.5).close()
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx not listening after {timeout:g} s:\n"
                                   + self.error_log())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGQUIT, 10.0)  # SIGQUIT: nginx's graceful stop

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[Any]:
    """A function: nginx_in_front(upstream_port) starts a real nginx before that port (stopped
    after the test). Fails, never skips, when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        pytest.fail(NGINX_MISSING, pytrace=False)
    started: list[NginxServer] = []

    def start(upstream_port: int) -> NginxServer:
        base = tmp_path / f"nginx-{len(started)}"
        base.mkdir()
        server = NginxServer(binary, upstream_port, base)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
