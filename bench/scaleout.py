"""The scale-out path: the server benchmark on PostgreSQL, and two `serve` instances behind nginx.

    .venv/bin/python bench/scaleout.py                 # about 4 minutes on 2 cores

The same load as bench/run.py's server section (signed full calls: verification + balance,
first flat out with --concurrency calls at once, then --concurrency callers pausing --think s
before every key), against these layouts, one after the other, everything on loopback:

  sqlite-direct  `serve` (--workers N) on a SQLite file, called directly: run.py's layout
  pg-direct      the same on a throwaway PostgreSQL (tests/servers.py starts it)
  pg-nginx-1     nginx (deploy/nginx-ivr12333.conf) -> one `serve` with 1 worker -> PostgreSQL
  pg-nginx-2     nginx round-robin -> two `serve` instances with 1 worker each -> one
                 PostgreSQL: consecutive webhooks go to alternate instances, so a call's
                 webhooks are spread over both and its session lives only in the database
  floor-nginx-1  the floor (bench/floor_app.py) behind the same nginx, one server, 1 worker
  floor-nginx-2  the floor behind nginx round-robin, two servers with 1 worker each

CPU is read from /proc per role (app workers, PostgreSQL, nginx, the load generator), so the
table shows where each webhook's CPU goes and how much of the two cores is left to add up.
Needs PostgreSQL's server binaries and nginx (as the tests do: `make test` installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/servers.py: throwaway PostgreSQL and nginx

from bench.harness import (  # noqa: E402
    BIN,
    CLK_TCK,
    Server,
    children,
    cpu_seconds,
    floor_argv,
    free_port,
    machine_busy_seconds,
)
from bench.run import SEED, Row, Tables, drive, key_file, machine, ms, say  # noqa: E402
from ivr.domain import pinkeys  # noqa: E402
from ivr.tools import loadgen  # noqa: E402

LAYOUTS = ("sqlite-direct", "pg-direct", "pg-nginx-1", "pg-nginx-2", "floor-nginx-1",
           "floor-nginx-2")


def fill(url: str, folder: Path, people: int) -> None:
    """`people` synthetic people (seed SEED) hashed under the run's PIN key (bench/run.py's
    key_file, which every server of the run is given), imported into `url`."""
    from ivr.dataset import synthetic
    from ivr.dataset.importer import import_dataset, load_file
    from ivr.store.schema import ensure_schema, make_engine

    keyring = pinkeys.read_file(key_file(folder))
    path = folder / "people.json"
    if not path.exists():
        synthetic.write_file(path, people, SEED, keyring=keyring)
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        import_dataset(engine, load_file(path), keyring=keyring)
    finally:
        engine.dispose()


def serve(url: str, port: int, workers: int, token: str, public_url: str, log: Path) -> Server:
    """`ivr12333 serve` on `url`; behind nginx, IVR_PUBLIC_URL is nginx's address (what the
    load generator signs), as in production."""
    argv = [str(BIN / "ivr12333"), "--database-url", url, "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]
    return Server("hotline", argv, port, log, {"TWILIO_AUTH_TOKEN": token,
                                               "IVR_PUBLIC_URL": public_url})


def floor(port: int, workers: int, log: Path) -> Server:
    """The floor under the hotline's server (harness.floor_argv), with an access log."""
    return Server("floor", floor_argv(port, workers, access_log=True), port, log)


def _nginx_class() -> Any:
    from servers import NginxServer

    class RoundRobin(NginxServer):  # type: ignore[misc]
        """The shipped site file, its upstream holding every port given (round-robin)."""

        def __init__(self, binary: str, ports: Sequence[int], base: Path) -> None:
            super().__init__(binary, ports[0], base)
            self.ports = list(ports)

        def site(self) -> str:
            text: str = super().site()
            lines = "\n    ".join(f"server 127.0.0.1:{p};" for p in self.ports)
            text, n = re.subn(rf"server 127\.0\.0\.1:{self.ports[0]};", lines, text)
            assert n == 1
            return text

    return RoundRobin


def _with_reaped_children(pid: int) -> float:
    """utime + stime of `pid` and of its children it has waited for, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


@dataclass
class Measured:
    """One run of one layout: the load result and CPU seconds by role."""

    result: loadgen.LoadResult
    cpu: dict[str, float] = field(default_factory=dict)
    share: str = ""  # webhooks per instance, behind round-robin

    def per_webhook(self, role: str) -> float:
        return self.cpu.get(role, 0.0) / max(self.result.requests, 1) * 1000


class Layout:
    """Processes of one layout, started in order and stopped in reverse; CPU read by role."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.apps: list[Server] = []
        self.nginx: Any = None
        self.postgres: Any = None
        self.url = ""

    def cpu(self) -> dict[str, float]:
        roles = {"app": sum(cpu_seconds(pid) for s in self.apps for pid in s.workers())}
        if self.nginx is not None and self.nginx.proc is not None:
            pids = [self.nginx.proc.pid, *children(self.nginx.proc.pid)]
            roles["nginx"] = sum(cpu_seconds(p) for p in pids)
        if self.postgres is not None and self.postgres.proc is not None:
            # backends come and go with the apps' pooled connections: the postmaster's reaped
            # children count too
            pid = self.postgres.proc.pid
            roles["postgres"] = (_with_reaped_children(pid)
                                 + sum(cpu_seconds(p) for p in children(pid)))
        return roles

    def requests_per_app(self) -> list[int]:
        """Webhooks each app answered (their access logs)."""
        return [len(re.findall(r'"POST /(?:voice|status)', s.log.read_text(errors="replace")))
                for s in self.apps]


@contextlib.contextmanager
def layout(name: str, folder: Path, args: argparse.Namespace, token: str,
           pg: Any, pg_db: str | None, sqlite_url: str) -> Iterator[Layout]:
    from servers import nginx_binary

    lay = Layout()
    with lay.stack:
        if name.startswith("pg-"):
            lay.postgres = pg
        db = pg_db if name.startswith("pg-") else sqlite_url
        if name.endswith("-direct"):
            port = free_port()
            lay.apps.append(lay.stack.enter_context(
                serve(db or "", port, args.workers, token, "", folder / f"{name}.log")))
            lay.url = f"http://127.0.0.1:{port}"
        else:
            binary = nginx_binary()
            if binary is None:
                raise SystemExit("nginx is needed (apt-get install nginx, or IVR_TEST_NGINX)")
            instances = int(name[-1])
            ports = [free_port() for _ in range(instances)]
            base = folder / f"nginx-{name}"
            base.mkdir()
            nginx = _nginx_class()(binary, ports, base)
            public = nginx.base_url
            for i, port in enumerate(ports):
                log = folder / f"{name}-{i}.log"
                server = (floor(port, 1, log) if name.startswith("floor")
                          else serve(db or "", port, 1, token, public, log))
                lay.apps.append(lay.stack.enter_context(server))
            lay.nginx = lay.stack.enter_context(nginx)
            lay.url = public
        yield lay


def run_layout(name: str, lay: Layout, args: argparse.Namespace, token: str,
               think: float) -> Measured:
    from simulator import HttpTransport

    hotline = not name.startswith("floor")
    sign = token if hotline else None
    with HttpTransport() as transport:
        before = lay.cpu()
        counts = lay.requests_per_app()
        busy, client_started = machine_busy_seconds(), time.process_time()
        calls = args.calls if think == 0 else args.paced_calls
        result, _ = drive(transport, lay.url, args.people, calls=calls,
                          concurrency=args.concurrency, token=sign, check=hotline, think=think,
                          max_seconds=args.max_seconds)
        client = time.process_time() - client_started
        after = lay.cpu()
        cpu = {role: after[role] - before.get(role, 0.0) for role in after}
        cpu["client"] = client
        cpu["other"] = max(machine_busy_seconds() - busy - sum(cpu.values()), 0.0)
        served = [n - m for n, m in zip(lay.requests_per_app(), counts, strict=True)]
        share = " / ".join(str(n) for n in served) if len(served) > 1 else ""
        if result.error_count:
            say(f"  errors: {dict(result.errors)}")
        return Measured(result, cpu, share)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="workers of the one `serve` of the -direct layouts")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--calls", type=int, default=400, help="calls per saturation run")
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--paced-calls", type=int, default=150)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--only", choices=LAYOUTS, action="append",
                        help="run only these layouts (repeatable)")
    parser.add_argument("--no-paced", action="store_true", help="skip the paced runs")
    args = parser.parse_args(argv)
    from servers import PostgresServer, postgres_bindir

    from simulator import HttpTransport

    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    names = args.only or list(LAYOUTS)
    hash_label = "default settings"
    tables = Tables()
    tables.notes.append(f"machine: {machine()}")
    started = time.perf_counter()
    token = secrets.token_hex(16)
    runs: list[tuple[str, Measured, Measured | None]] = []
    with tempfile.TemporaryDirectory(prefix="ivr12333-scaleout-") as tmp, \
            contextlib.ExitStack() as stack:
        folder = Path(tmp)
        pg = pg_db = None
        if any(n.startswith("pg-") for n in names):
            bindir = postgres_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL's server binaries are needed (apt-get install "
                                 "postgresql, or IVR_TEST_PG_BINDIR)")
            say("starting a throwaway PostgreSQL")
            pg = PostgresServer(bindir).start()
            stack.callback(pg.remove)
            pg_db = pg.create_database("bench")
            say(f"PostgreSQL: importing {args.people} people")
            fill(pg_db, folder, args.people)
        sqlite_url = f"sqlite:///{folder / 'hotline.sqlite3'}"
        if "sqlite-direct" in names:
            say(f"SQLite: importing {args.people} people")
            fill(sqlite_url, folder, args.people)
        for name in names:
            with layout(name, folder, args, token, pg, pg_db, sqlite_url) as lay:
                hotline = not name.startswith("floor")
                say(f"{name}: warming up")
                with HttpTransport() as transport:
                    drive(transport, lay.url, args.people, calls=8, concurrency=4,
                          token=token if hotline else None, check=hotline)
                say(f"{name}: {args.calls} calls, {args.concurrency} at a time")
                flat = run_layout(name, lay, args, token, 0.0)
                paced = None
                if not args.no_paced:
                    say(f"{name}: {args.paced_calls} calls, {args.concurrency} callers pausing "
                        f"{args.think:g} s")
                    paced = run_layout(name, lay, args, token, args.think)
                runs.append((name, flat, paced))
    tables.sections.append(_saturation(runs, args, hash_label))
    if not args.no_paced:
        tables.sections.append(_paced(runs, args, hash_label))
    command = " ".join(["python", "bench/scaleout.py", *(argv or sys.argv[1:])])
    tables.notes.append(f"one run of `{command}`, {time.perf_counter() - started:.0f} s in all")
    print(tables.markdown())
    return 0


def _label(name: str, args: argparse.Namespace) -> str:
    return {
        "sqlite-direct": f"hotline, SQLite, 1 serve x {args.workers} workers",
        "pg-direct": f"hotline, PostgreSQL, 1 serve x {args.workers} workers",
        "pg-nginx-1": "hotline, PostgreSQL, nginx -> 1 serve x 1 worker",
        "pg-nginx-2": "hotline, PostgreSQL, nginx -> 2 serve x 1 worker (round-robin)",
        "floor-nginx-1": "floor, nginx -> 1 server x 1 worker",
        "floor-nginx-2": "floor, nginx -> 2 servers x 1 worker (round-robin)",
    }[name]


def _saturation(runs: list[tuple[str, Measured, Measured | None]], args: argparse.Namespace,
                hash_label: str) -> tuple[str, list[str], list[Row]]:
    columns = ["webhooks/s", "calls/s", "app CPU / webhook (ms)", "PostgreSQL CPU / webhook (ms)",
               "nginx CPU / webhook (ms)", "client CPU / webhook (ms)", "other (cores)",
               "p50 (ms)", "p99 (ms)", "webhooks per instance", "errors"]
    rows = []
    for name, m, _ in runs:
        r = m.result
        rows.append(Row(_label(name, args), {
            "webhooks/s": f"{r.requests / r.seconds:.0f}",
            "calls/s": ms(r.calls / r.seconds),
            "app CPU / webhook (ms)": ms(m.per_webhook("app"), 2),
            "PostgreSQL CPU / webhook (ms)": ms(m.per_webhook("postgres"), 2)
            if "postgres" in m.cpu else "",
            "nginx CPU / webhook (ms)": ms(m.per_webhook("nginx"), 2) if "nginx" in m.cpu else "",
            "client CPU / webhook (ms)": ms(m.per_webhook("client"), 2),
            "other (cores)": ms(m.cpu["other"] / r.seconds, 2),
            "p50 (ms)": ms(r.p(50)), "p99 (ms)": ms(r.p(99)),
            "webhooks per instance": m.share,
            "errors": str(r.error_count),
        }))
    return (f"Scale-out, {hash_label}: {args.concurrency} calls at once, no pauses (saturation)",
            columns, rows)


def _paced(runs: list[tuple[str, Measured, Measured | None]], args: argparse.Namespace,
           hash_label: str) -> tuple[str, list[str], list[Row]]:
    columns = ["webhooks/s", "p50 (ms)", "p99 (ms)", "p99 without password webhook (ms)",
               "password webhook p99 (ms)", "app CPU / webhook (ms)", "webhooks per instance",
               "errors"]
    rows = []
    not_password = [s for s in loadgen.STEPS if s != "password"]
    for name, _, m in runs:
        assert m is not None
        r = m.result
        rows.append(Row(_label(name, args), {
            "webhooks/s": f"{r.requests / r.seconds:.0f}",
            "p50 (ms)": ms(r.p(50)), "p99 (ms)": ms(r.p(99)),
            "p99 without password webhook (ms)": ms(r.p(99, not_password)),
            "password webhook p99 (ms)": ms(r.p(99, ["password"]))
            if r.latencies.get("password") else "",
            "app CPU / webhook (ms)": ms(m.per_webhook("app"), 2),
            "webhooks per instance": m.share,
            "errors": str(r.error_count),
        }))
    return (f"Scale-out, {hash_label}: {args.concurrency} callers pausing {args.think:g} s "
            "before every key press", columns, rows)


if __name__ == "__main__":
    sys.exit(main())
