"""What one webhook costs in-process, by kind: statements, connection checkouts, time by part.

    .venv/bin/python bench/profile_webhooks.py [--calls N] [--people N] [--cprofile FILE]

Full signed calls (the load generator's: answer, 1, 1, 1, ID#, 1, password#, hang-up) through
the simulator's DirectTransport on one thread, against a SQLite file of synthetic people hashed
as the hotline stores them (HMAC under the run's PIN key). Prints, per webhook kind:
SQL statements and pool checkouts per webhook, the app's CPU time per webhook (inside the
WSGI call) and, split by cProfile over the same run, the share of its parts. Then the simulator's
own time per call (everything outside the app).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import logging
import pstats
import secrets
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from bench.run import make_db, settings  # noqa: E402
from ivr.tools import loadgen  # noqa: E402

#: functions whose cumulative time is a part of a webhook, as (label, file part, function)
PARTS = (
    ("signature check", "ivr/web/voice.py", "check_signature"),
    ("field check", "ivr/web/voice.py", "check_fields"),
    ("session load", "ivr/engine/session.py", "load"),
    ("session create (+ seal/purge once a minute)", "ivr/engine/session.py", "create"),
    ("form parse (werkzeug)", "werkzeug/wrappers/request.py", "_load_form_data"),
    ("session claim + read", "ivr/engine/session.py", "claim_current"),
    ("session claim (after a read)", "ivr/engine/session.py", "claim"),
    ("session save", "ivr/engine/session.py", "save"),
    ("session end", "ivr/engine/session.py", "end"),
    ("flow step (trigger, callbacks, prompts)", "ivr/engine/hotline.py", "step"),
    ("  region_for", "ivr/domain/accounts.py", "region_for"),
    ("  check_password", "ivr/domain/accounts.py", "check_password"),
    ("    PIN hash (HMAC)", "ivr/domain/passwords.py", "verify_password"),
    ("  reserve_check (per-number limit)", "ivr/domain/callers.py", "reserve_check"),
    ("  find_person", "ivr/domain/accounts.py", "find_person"),
    ("  prompt rendering", "ivr/engine/prompts.py", "render"),
    ("TwiML build", "ivr/web/twiml.py", "render"),
    ("log line", "ivr/engine/hotline.py", "_log"),
)


class Counting:
    """Counts statements and pool checkouts per webhook kind on `engine`."""

    def __init__(self, engine: Any) -> None:
        self.statements: dict[str, int] = defaultdict(int)
        self.checkouts: dict[str, int] = defaultdict(int)
        self.current = threading.local()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine.pool, "checkout", self._checkout)

    def _kind(self) -> str:
        return getattr(self.current, "kind", "other")

    def _statement(self, *_args: Any) -> None:
        self.statements[self._kind()] += 1

    def _checkout(self, *_args: Any) -> None:
        self.checkouts[self._kind()] += 1


def _package(filename: str) -> str:
    """What a profiled function belongs to: a site package, the project's, or the stdlib."""
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    for own in ("ivr/web", "ivr/engine", "ivr/domain", "ivr/store", "ivr/dataset", "ivr/tools",
                "simulator"):
        if f"/{own}/" in filename:
            return own
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    return "stdlib"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--cprofile", type=Path, help="also write the cProfile stats here")
    parser.add_argument("--top", type=int, default=0, help="print the top N functions too")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measured rounds; each figure is its best round's")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile part")
    parser.add_argument("--postgres", action="store_true",
                        help="on a throwaway PostgreSQL (tests/servers.py) instead of SQLite")
    args = parser.parse_args(argv)

    from ivr.web import create_app
    from simulator import DirectTransport, Transport, WebhookRequest, WebhookResponse

    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="ivr12333-profile-") as tmp, \
            contextlib.ExitStack() as stack:
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from servers import PostgresServer, postgres_bindir

            from bench.scaleout import fill

            bindir = postgres_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL's server binaries are needed")
            pg = PostgresServer(bindir).start()
            stack.callback(pg.remove)
            url = pg.create_database("profile")
            fill(url, Path(tmp), args.people)
        else:
            url = make_db(Path(tmp), "profile", args.people)
        app = create_app(settings(url, token, Path(tmp)))
        engine = app.extensions["ivr12333"].db
        direct = DirectTransport(app)

        def kind(request: WebhookRequest) -> str:
            step = getattr(loadgen._step, "name", "answer")  # noqa: SLF001 - its own labels
            if step == "menu" and "Digits" in request.form:
                return "menu"
            if request.url.endswith("/status"):
                return "status"
            return step

        app_time: dict[str, float] = defaultdict(float)
        count: dict[str, int] = defaultdict(int)

        class Measured(Transport):
            def handle(self, request: WebhookRequest) -> WebhookResponse:
                k = kind(request)
                counting.current.kind = k
                started = time.thread_time()  # CPU, not wall: the machine may be shared
                try:
                    return direct.handle(request)
                finally:
                    app_time[k] += time.thread_time() - started
                    count[k] += 1
                    counting.current.kind = "simulator"

        def run(calls: int) -> tuple[float, loadgen.LoadResult]:
            started = time.process_time()
            result = loadgen.run_load(
                Measured(), "http://localhost/voice",
                loadgen.synthetic_identities(args.people, 1), calls=calls, concurrency=1,
                auth_token=token, status_callback="http://localhost/status", check=True)
            return time.process_time() - started, result

        counting = Counting(engine)
        run(10)  # warm up
        best: dict[str, float] = {}
        best_cpu, best_app = float("inf"), float("inf")
        for _ in range(max(args.rounds, 1)):  # other processes share the cores: best of
            counting.statements.clear()
            counting.checkouts.clear()
            app_time.clear()
            count.clear()
            cpu, result = run(args.calls)
            if result.error_count:
                print(f"errors: {dict(result.errors)}", file=sys.stderr)
            best_cpu = min(best_cpu, cpu)
            best_app = min(best_app, sum(app_time.values()))
            for k, seconds in app_time.items():
                best[k] = min(best.get(k, seconds), seconds)
        cpu, total_app = best_cpu, best_app
        print(f"{result.calls} calls (best of {args.rounds} rounds), "
              f"{cpu / result.calls * 1000:.2f} CPU ms per call, "
              f"{result.calls / cpu:.0f} calls per CPU-second; in the app "
              f"{total_app / result.calls * 1000:.2f} ms per call, outside it (simulator, "
              f"load generator) {(cpu - total_app) / result.calls * 1000:.2f} ms")
        print()
        print("| webhook | per call | statements | checkouts | app CPU µs |")
        print("|---|---:|---:|---:|---:|")
        for k in ("answer", "menu", "id", "password", "status"):
            n = count.get(k, 0)
            if not n:
                continue
            print(f"| {k} | {n / result.calls:.0f} | {counting.statements[k] / n:.1f} | "
                  f"{counting.checkouts[k] / n:.1f} | {best[k] / n * 1e6:.0f} |")
        if args.no_profile:
            engine.dispose()
            return 0

        # the load generator's calls run on a thread: cProfile sees only its own, so the
        # profiled calls are placed here, on this one
        from simulator import Simulator

        simulator = Simulator(Measured(), "http://localhost/voice", auth_token=token,
                              status_callback="http://localhost/status")
        people = loadgen.synthetic_identities(args.people, 1)
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(args.calls):
            loadgen.full_call(simulator, people[(n * 7919) % args.people],
                              f"+86180{n:08d}", expect=None)
        profiler.disable()
        stats = pstats.Stats(profiler)
        print()
        print(f"| part (cProfile, cumulative, per webhook over {args.calls} calls) | µs |")
        print("|---|---:|")
        webhooks = sum(count.values())
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        for label, file_part, func in PARTS:
            total = sum(v[3] for (f, _line, name), v in raw.items()
                        if name == func and f.endswith(file_part.lstrip("~")))
            print(f"| {label} | {total / webhooks * 1e6:.0f} |")
        print()
        print("| where (cProfile, own time by package, per webhook) | µs |")
        print("|---|---:|")
        by_package: dict[str, float] = defaultdict(float)
        for (f, _line, _name), v in raw.items():
            by_package[_package(f)] += v[2]
        for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
            if seconds / webhooks * 1e6 >= 5:
                print(f"| {package} | {seconds / webhooks * 1e6:.0f} |")
        if args.cprofile:
            stats.dump_stats(args.cprofile)
        if args.top:
            stats.sort_stats("tottime").print_stats(args.top)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
