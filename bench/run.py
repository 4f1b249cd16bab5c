"""The hotline measured against the floor, in one run; prints a Markdown table.

    .venv/bin/python bench/run.py            # about 2.5 minutes on 2 cores
    .venv/bin/python bench/run.py --full     # also 1,000,000 people: + about 2.5 minutes

Everything runs on loopback (127.0.0.1) in a temporary folder that is deleted at the end.
Sections:
  server     `ivr12333 serve` (granian, --workers N) against the floor (bench/floor_app.py
             under the same server and options, bench/serve_floor.py): signed full calls
             (verification + balance) driven by the load generator; server CPU per webhook
             read from the workers' /proc/<pid>/stat, requests/s, calls/s, webhook latency,
             peak worker memory.
             First flat out (concurrency C, no pauses), then C callers who pause between keys.
  inprocess  full calls through the simulator on one thread (one core).
  scale      verification + balance latency with 1,000 people and (--full) 1,000,000, and
             the time `ivr12333 import` takes for the million.
Passwords are hashed as the hotline stores them (HMAC-SHA256 under a PIN key, a few µs a
check); the run makes its own key file in its temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    BIN,
    Server,
    floor_server,
    free_port,
    hotline_server,
    machine_busy_seconds,
)
from ivr.dataset import synthetic  # noqa: E402
from ivr.domain import pinkeys  # noqa: E402
from ivr.settings import Settings  # noqa: E402
from ivr.tools import loadgen  # noqa: E402
from ivr.tools.loadgen import LoadResult  # noqa: E402

ROUNDS = 3  # in-process figures are the best of this many rounds
SEED = 1


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of a table: a label and its cells."""

    label: str
    cells: dict[str, str] = field(default_factory=dict)


@dataclass
class Tables:
    sections: list[tuple[str, list[str], list[Row]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = []
        for title, columns, rows in self.sections:
            out += [f"**{title}**", "", "| | " + " | ".join(columns) + " |",
                    "|---|" + "---:|" * len(columns)]
            out += ["| " + r.label + " | " + " | ".join(r.cells.get(c, "") for c in columns)
                    + " |" for r in rows]
            out.append("")
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


def key_file(folder: Path) -> Path:
    """The run's PIN key file (made once, in the run's folder); every server, import and
    in-process app of the run uses it (IVR_PIN_KEY_FILE)."""
    path = folder / "keys" / "pin-keys"
    if not path.exists():
        pinkeys.generate(path)
        os.environ["IVR_PIN_KEY_FILE"] = str(path)  # the servers and imports started later
    return path


def settings(url: str, token: str, folder: Path) -> Settings:
    return Settings(database_url=url, auth_token=token, pin_key_file=key_file(folder))


def make_db(folder: Path, name: str, people: int) -> str:
    """A SQLite file holding `people` synthetic people (seed SEED), hashed under the run's key."""
    from ivr.dataset.importer import import_dataset, load_file
    from ivr.store.schema import ensure_schema, make_engine

    keyring = pinkeys.read_file(key_file(folder))
    path = folder / f"{name}.json"
    synthetic.write_file(path, people, SEED, keyring=keyring)
    url = f"sqlite:///{folder / name}.sqlite3"
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, load_file(path), keyring=keyring)
    engine.dispose()
    path.unlink()
    return url


def drive(transport: Any, url: str, people: int, *, calls: int, concurrency: int,
          token: str | None, check: bool, think: float = 0.0,
          max_seconds: float | None = None) -> tuple[LoadResult, float]:
    """Run the load; returns the result and the client's CPU seconds."""
    cpu = time.process_time()
    result = loadgen.run_load(
        transport, f"{url}/voice", loadgen.synthetic_identities(people, SEED), calls=calls,
        concurrency=concurrency, auth_token=token, status_callback=f"{url}/status",
        check=check, think=think, max_seconds=max_seconds)
    return result, time.process_time() - cpu


def ms(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


# ---- server --------------------------------------------------------------------------------
@dataclass
class ServerRun:
    label: str
    result: LoadResult
    worker_cpu: float
    client_cpu: float
    peak_rss: float
    others: float  # cores' worth of CPU other processes used meanwhile (a shared machine)

    @property
    def cpu_per_webhook_ms(self) -> float:
        return self.worker_cpu / max(self.result.requests, 1) * 1000


def server_runs(folder: Path, args: argparse.Namespace, tables: Tables) -> None:
    from simulator import HttpTransport

    token = secrets.token_hex(16)
    hotline_db = make_db(folder, "hotline", args.people)
    configs: list[tuple[str, Callable[[int], Server], bool]] = [
        ("floor (constant TwiML)",
         lambda port: floor_server(port, args.workers, folder / "floor.log"), False),
        ("hotline",
         lambda port: hotline_server(hotline_db, port, args.workers, token,
                                     folder / "hotline.log"), True),
    ]
    flat: list[ServerRun] = []
    paced: list[ServerRun] = []
    for label, start, is_hotline in configs:
        sign = token if is_hotline else None
        with start(free_port()) as server, HttpTransport() as transport:
            say(f"server: {label}: warming up")
            drive(transport, server.url, args.people, calls=4 * args.workers,
                  concurrency=args.workers, token=sign, check=is_hotline)
            for think, runs in ((0.0, flat), (args.think, paced)):
                calls = args.calls if think == 0 else args.paced_calls
                say(f"server: {label}: {calls} calls, {args.concurrency} at a time, "
                    f"{think:g} s between keys")
                before, busy = server.worker_cpu(), machine_busy_seconds()
                result, client = drive(transport, server.url, args.people,
                                       calls=calls, concurrency=args.concurrency, token=sign,
                                       check=is_hotline, think=think,
                                       max_seconds=args.max_seconds)
                workers = server.worker_cpu() - before
                others = machine_busy_seconds() - busy - workers - client
                runs.append(ServerRun(label, result, workers, client, server.worker_peak_rss(),
                                      max(others, 0.0) / result.seconds))
                if result.error_count:
                    say(f"  errors: {dict(result.errors)}")
    floor = flat[0]
    columns = ["server CPU / webhook (ms)", "CPU ratio floor/this", "webhooks/s", "calls/s",
               "p50 (ms)", "p99 (ms)", "p99 without password webhook (ms)",
               "client CPU / webhook (ms)", "other processes (cores)", "errors"]
    rows = []
    for run in flat:
        r = run.result
        rows.append(Row(run.label, {
            "server CPU / webhook (ms)": ms(run.cpu_per_webhook_ms, 2),
            "CPU ratio floor/this": ms(floor.cpu_per_webhook_ms / run.cpu_per_webhook_ms, 2),
            "webhooks/s": f"{r.requests / r.seconds:.0f}",
            "calls/s": ms(r.calls / r.seconds),
            "p50 (ms)": ms(r.p(50)), "p99 (ms)": ms(r.p(99)),
            "p99 without password webhook (ms)": ms(r.p(99, _not_password())),
            "client CPU / webhook (ms)": ms(run.client_cpu / max(r.requests, 1) * 1000, 2),
            "other processes (cores)": ms(run.others, 2),
            "errors": str(r.error_count),
        }))
    tables.sections.append((
        f"Server: ivr12333 serve --workers {args.workers} (granian, 8 threads), {args.concurrency} "
        "calls at once, no pauses (saturation)", columns, rows))
    per_call = [run.worker_cpu / max(run.result.calls, 1) * 1000 for run in flat]
    tables.notes.append(
        f"server CPU per full call: floor {per_call[0]:.1f} ms, hotline {per_call[1]:.1f} ms")
    columns = ["server CPU / webhook (ms)", "CPU ratio floor/this", "webhooks/s", "p50 (ms)",
               "p99 (ms)", "p50 / p99 without password webhook (ms)",
               "password webhook p50 / p99 (ms)", "worker peak RSS (MiB)",
               "other processes (cores)", "errors"]
    rows = []
    for run in paced:
        r = run.result
        rows.append(Row(run.label, {
            "server CPU / webhook (ms)": ms(run.cpu_per_webhook_ms, 2),
            "CPU ratio floor/this": ms(paced[0].cpu_per_webhook_ms / run.cpu_per_webhook_ms, 2),
            "webhooks/s": f"{r.requests / r.seconds:.0f}",
            "p50 (ms)": ms(r.p(50)), "p99 (ms)": ms(r.p(99)),
            "p50 / p99 without password webhook (ms)":
                f"{ms(r.p(50, _not_password()))} / {ms(r.p(99, _not_password()))}",
            "password webhook p50 / p99 (ms)":
                f"{ms(r.p(50, ['password']))} / {ms(r.p(99, ['password']))}"
                if r.latencies.get("password") else "",
            "worker peak RSS (MiB)": ms(max(run.peak_rss, flat[paced.index(run)].peak_rss), 0),
            "other processes (cores)": ms(run.others, 2),
            "errors": str(r.error_count),
        }))
    tables.sections.append((
        f"Server: {args.concurrency} concurrent callers, each pausing {args.think:g} s before "
        "every key press", columns, rows))


def _not_password() -> list[str]:
    return [s for s in loadgen.STEPS if s != "password"]


# ---- in-process ------------------------------------------------------------------------------
def inprocess_runs(folder: Path, args: argparse.Namespace, tables: Tables) -> None:
    from bench.floor_app import create_app as floor_app
    from ivr.web import create_app
    from simulator import DirectTransport, WsgiTransport

    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    token = secrets.token_hex(16)
    apps: list[tuple[str, Any, bool, str | None]] = [
        ("floor (constant TwiML)", floor_app(), False, None)]
    url = make_db(folder, "inprocess", args.people)
    apps.append(("hotline", create_app(settings(url, token, folder)), True, token))
    columns = ["simulator WsgiTransport (httpx): calls/s", "CPU ms / call",
               "direct WSGI (no HTTP client): calls/s", "CPU ms / call ", "errors"]
    rows = []
    for label, app, is_hotline, sign in apps:
        row = Row(label)
        errors = 0
        for transport, key in ((WsgiTransport(app), "simulator WsgiTransport (httpx): calls/s"),
                               (DirectTransport(app), "direct WSGI (no HTTP client): calls/s")):
            drive(transport, "http://localhost", args.people, calls=5, concurrency=1, token=sign,
                  check=is_hotline)
            calls = max(args.inprocess_calls // ROUNDS, 1)
            say(f"in-process: {label}: {ROUNDS} x {calls} calls through "
                f"{type(transport).__name__}")
            best = float("inf")
            for _ in range(ROUNDS):  # best of: other processes share the cores
                result, cpu = drive(transport, "http://localhost", args.people, calls=calls,
                                    concurrency=1, token=sign, check=is_hotline,
                                    max_seconds=args.max_seconds / ROUNDS)
                errors += result.error_count
                best = min(best, cpu / max(result.calls, 1))
            row.cells[key] = f"{1 / best:.0f}"
            row.cells["CPU ms / call" if "httpx" in key else "CPU ms / call "] = \
                ms(best * 1000, 2)
        row.cells["errors"] = str(errors)
        rows.append(row)
        if is_hotline:
            app.extensions["ivr12333"].db.dispose()
    tables.sections.append((
        f"In-process, one thread (one core): full calls per CPU-second, best of {ROUNDS} rounds",
        columns, rows))


# ---- scale -----------------------------------------------------------------------------------
def scale_runs(folder: Path, args: argparse.Namespace, tables: Tables) -> None:
    """Import each size with the CLI, then time calls against the sizes in turns.

    The databases are measured in alternating rounds and each keeps its best round, so a
    burst of other work on the machine cannot land on one size only.
    """
    from ivr.web import create_app
    from simulator import DirectTransport

    sizes = [1000] + ([args.big] if args.full else [])
    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    built: dict[int, tuple[Path, float, float]] = {}
    for n in sizes:
        say(f"scale: generating {n:,} people")
        data = folder / f"scale-{n}.json"
        started = time.perf_counter()
        synthetic.write_file(data, n, SEED, keyring=pinkeys.read_file(key_file(folder)))
        generated = time.perf_counter() - started
        db = folder / f"scale-{n}.sqlite3"
        say(f"scale: ivr12333 import ({n:,} people)")
        started = time.perf_counter()
        subprocess.run([str(BIN / "ivr12333"), "--database-url", f"sqlite:///{db}", "import",
                        str(data)], check=True, stdout=subprocess.DEVNULL, timeout=3600)
        built[n] = (db, generated, time.perf_counter() - started)
        data.unlink()
    token = secrets.token_hex(16)
    apps = {n: create_app(settings(f"sqlite:///{db}", token, folder))
            for n, (db, _, _) in built.items()}
    best: dict[int, LoadResult] = {}
    errors = dict.fromkeys(sizes, 0)
    calls = max(args.scale_calls // ROUNDS, 1)
    for n in sizes:  # warm up: first connections, first pages
        drive(DirectTransport(apps[n]), "http://localhost", n, calls=10, concurrency=1,
              token=token, check=True)
    for round_ in range(ROUNDS):
        for n in sizes:
            say(f"scale: round {round_ + 1}: {calls} calls against {n:,} people")
            r, _ = drive(DirectTransport(apps[n]), "http://localhost", n, calls=calls,
                         concurrency=1, token=token, check=True)
            errors[n] += r.error_count
            if n not in best or r.p(50, ["password"]) < best[n].p(50, ["password"]):
                best[n] = r
    columns = ["ID webhook p50 / p99 (ms)", "password + balance webhook p50 / p99 (ms)",
               "vs 1,000 (p50)", "generate (s)", "import (s)", "database (MB)", "errors"]
    rows: list[Row] = []
    base = best[sizes[0]].p(50, ["password"])
    for n in sizes:
        r, (db, generated, imported) = best[n], built[n]
        p50 = r.p(50, ["password"])
        rows.append(Row(f"{n:,} people", {
            "ID webhook p50 / p99 (ms)": f"{ms(r.p(50, ['id']), 2)} / {ms(r.p(99, ['id']), 2)}",
            "password + balance webhook p50 / p99 (ms)":
                f"{ms(p50, 2)} / {ms(r.p(99, ['password']), 2)}",
            "vs 1,000 (p50)": f"{p50 / base:.2f}x",
            "generate (s)": ms(generated), "import (s)": ms(imported),
            "database (MB)": f"{db.stat().st_size / 1e6:.0f}",
            "errors": str(errors[n]),
        }))
    for n, app in apps.items():
        app.extensions["ivr12333"].db.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{built[n][0]}{suffix}").unlink(missing_ok=True)
    tables.sections.append((
        f"Scale: verification + balance, in-process (direct WSGI, one thread, best of "
        f"{ROUNDS} alternating rounds); import with `ivr12333 import`", columns, rows))


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}; load average at the start {load:.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="server workers (default: the CPU count)")
    parser.add_argument("--concurrency", type=int, default=50, help="calls at once")
    parser.add_argument("--calls", type=int, default=400, help="calls per saturation run")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a paced caller waits before each key press")
    parser.add_argument("--paced-calls", type=int, default=150, help="calls per paced run")
    parser.add_argument("--inprocess-calls", type=int, default=300)
    parser.add_argument("--scale-calls", type=int, default=600)
    parser.add_argument("--people", type=int, default=1000, help="people in the server's data")
    parser.add_argument("--full", action="store_true", help="also 1,000,000 people (slow)")
    parser.add_argument("--big", type=int, default=1_000_000, help="people for --full")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="no run starts new calls after this long")
    parser.add_argument("--only", choices=["server", "inprocess", "scale"], action="append",
                        help="run only these sections (repeatable)")
    args = parser.parse_args(argv)
    tables = Tables()
    tables.notes.append(f"machine: {machine()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ivr12333-bench-") as tmp:
        folder = Path(tmp)
        sections = args.only or ["server", "inprocess", "scale"]
        if "server" in sections:
            server_runs(folder, args, tables)
        if "inprocess" in sections:
            inprocess_runs(folder, args, tables)
        if "scale" in sections:
            scale_runs(folder, args, tables)
    command = " ".join(["python", "bench/run.py", *(argv or sys.argv[1:])])
    tables.notes.append(f"one run of `{command}`, {time.perf_counter() - started:.0f} s in all")
    print(tables.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
