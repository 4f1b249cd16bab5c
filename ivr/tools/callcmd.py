"""`ivr12333 call`: the interactive text phone and the scripted-call runner, with flow coverage.

In-process scripted calls never touch the operator's database: each batch of calls (one
script, or a folder that shares one database) runs on a throwaway copy, made from a template
built once per run: the configured database, the bundled demo or the dataset a script names.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ivr.domain.pinkeys import Keyring
from ivr.settings import Settings

if TYPE_CHECKING:
    from simulator.script_format import Dataset

LOCAL_URL = "http://localhost/voice"
LOCAL_STATUS_URL = "http://localhost/status"

Seen = set[tuple[str, str, str]]


class _Lines:
    """Opens a line per batch of scripted calls: the app and what its calls are played with."""

    def __init__(self, settings: Settings, *, keyring: Keyring | None, url: str | None,
                 live: bool, auth_token: str | None, from_: str | None,
                 status_callback: str | None, dial_status: str,
                 observe: Callable[[str, str, str], None] | None) -> None:
        self.settings, self.url, self.live = settings, url, live
        self.keyring = keyring  # in-process: the PIN keys of the database and of the datasets
        self.auth_token, self.from_, self.status_callback = auth_token, from_, status_callback
        self.dial_status, self.observe = dial_status, observe
        self.rest_api: Any = None  # with --url: the simulated REST API the app's client uses
        self.flow: Any = None  # the last app's flow (for coverage)
        self.folder = Path(tempfile.mkdtemp(prefix="ivr12333-calls-"))  # 0700: people's data
        self.templates: dict[Dataset, Path] = {}
        self.batches = 0

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _template(self, dataset: Dataset) -> Path:
        """A SQLite file with what a batch starts from, built once per run."""
        if dataset not in self.templates:
            from ivr.dataset.importer import import_dataset, load_file
            from ivr.resources import demo_dataset
            from ivr.store.schema import copy_database, ensure_schema, make_engine
            from simulator.script_format import dataset_files

            path = self.folder / f"template-{len(self.templates)}.sqlite3"
            target = make_engine(f"sqlite:///{path}")
            try:
                if dataset is None:
                    source = make_engine(self.settings.database_url)
                    try:
                        ensure_schema(source)
                        copy_database(source, target)
                    finally:
                        source.dispose()
                else:
                    ensure_schema(target)
                    for name in dataset_files(dataset):  # one file per region, in order
                        file = demo_dataset() if name == "demo" else Path(name)
                        import_dataset(target, load_file(file), keyring=self._keys())
                with target.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                target.dispose()
            self.templates[dataset] = path
        return self.templates[dataset]

    def _keys(self) -> Keyring:
        if self.keyring is None:
            raise ValueError("in-process calls need the PIN keys")
        return self.keyring

    def _app(self, database_url: str, clock: Callable[[], datetime] | None) -> Any:
        from ivr.tools.localrest import local_rest
        from ivr.web import create_app

        # called at LOCAL_URL, not public_url; agents move callers through the simulated REST API
        app = create_app(self.settings.model_copy(update={
            "database_url": database_url, "auth_token": self.auth_token, "public_url": None,
            **local_rest().settings()}), now=clock, keyring=self._keys())
        flow = app.extensions["ivr12333"].flow
        if self.observe is not None:
            flow.observer = self.observe
        self.flow = flow
        return app

    def simulator(self, transport: Any, url: str, clock: Any) -> Any:
        from simulator import Simulator

        kwargs: dict[str, Any] = {"auth_token": self.auth_token,
                                  "status_callback": self.status_callback,
                                  "dial_status": self.dial_status, "clock": clock}
        if self.from_:
            kwargs["from_"] = self.from_
        if self.url is None:  # in-process: the hotline's REST requests reach this run's calls
            from ivr.tools.localrest import local_rest

            kwargs["rest"] = local_rest().api
        elif self.rest_api is not None:
            kwargs["rest"] = self.rest_api
        return Simulator(transport, url, **kwargs)

    @contextmanager
    def open(self, first: Any) -> Iterator[Callable[[], Any]]:
        """A line for a batch whose first script is `first`: its calls share one clock, which
        starts at the script's `at` (or now) and is the in-process app's time."""
        from simulator import Clock, DirectTransport, HttpTransport

        clock = Clock(first.at)
        if self.url is not None:
            transport, url = HttpTransport(), self.url
            with transport:  # one connection pool for the batch, closed after it
                yield lambda: self.simulator(transport, url, clock)
            return
        if self.live:
            database_url = self.settings.database_url
        else:
            self.batches += 1
            db = self.folder / f"batch-{self.batches}.sqlite3"
            shutil.copyfile(self._template(first.dataset), db)
            database_url = f"sqlite:///{db}"
        app = self._app(database_url, clock)
        try:
            self.status_callback = self.status_callback or LOCAL_STATUS_URL
            yield lambda: self.simulator(DirectTransport(app), LOCAL_URL, clock)
        finally:
            app.extensions["ivr12333"].db.dispose()
            if not self.live:
                for leftover in self.folder.glob(f"batch-{self.batches}.sqlite3*"):
                    leftover.unlink()


def run_call(settings: Settings, *, keyring: Keyring | None, scripts: tuple[Path, ...],
             url: str | None, auth_token: str | None, transcript: Path | None, from_: str | None,
             status_callback: str | None, dial_status: str, coverage: bool,
             console: Console, live: bool = False, at: datetime | None = None,
             verbose: bool = False, rest_port: int | None = None) -> int:
    """Place the call(s); returns the exit status (0: every expectation held). With
    `rest_port`, the app at `url` reaches the simulated REST API there."""
    from ivr.tools.script_prompts import HotlinePrompts
    from simulator import ScriptError, run_scripts, summary, write_transcripts

    if url is not None and (coverage or live):
        console.print("[red]--coverage and --live need the in-process app (leave out --url)[/]")
        return 2
    # in-process nothing listens on a network: the unsigned-webhooks warning is moot here
    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    seen: Seen = set()
    lines = _Lines(settings, keyring=keyring, url=url, live=live, auth_token=auth_token,
                   from_=from_, status_callback=status_callback, dial_status=dial_status,
                   observe=(lambda s, t, d: seen.add((s, t, d))) if coverage else None)
    rest = None
    if rest_port is not None and url is not None and auth_token and settings.account_sid:
        from simulator.rest import RestApi, RestServer

        rest = RestServer(RestApi(settings.account_sid, auth_token), port=rest_port)
        lines.rest_api = rest.api
        console.print(f"the simulated Twilio REST API: {rest.base_url} (account "
                      f"{settings.account_sid}, your auth token; point the app's twilio client "
                      f"at it: docs/simulator.md §15)", highlight=False, markup=False)
    try:
        if not scripts:
            return _phone(lines, settings, at, transcript, console, verbose)
        if url is not None:
            _note_remote_time(scripts, url, console)
        elif live:
            console.print(f"on the live database {settings.database_url}: what these calls "
                          "change (lockouts, attempt counts) stays", highlight=False)
        # `expect_prompt: ID` steps: the wording of ID in this hotline's catalogue
        results = run_scripts(list(scripts), line=lines.open,
                              prompts=HotlinePrompts.load(settings))
        for result in results:
            if not result.passed:
                console.print(result.report(), markup=False, highlight=False)
        if transcript:
            write_transcripts(results, transcript)
        if coverage and lines.flow is not None:
            _report_coverage(lines.flow, seen, console)
        console.print(summary(results), markup=False, highlight=False)
        return 0 if results and all(r.passed for r in results) else 1
    except ScriptError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    finally:
        lines.close()
        if rest is not None:
            rest.close()


def _phone(lines: _Lines, settings: Settings, at: datetime | None, transcript: Path | None,
           console: Console, verbose: bool) -> int:
    """The interactive text phone, on the live database (or the server at --url)."""
    from simulator import Clock, DirectTransport, HttpTransport, run_phone

    clock = Clock(at)
    zone = None  # another app: the time of --at, else this machine's
    if lines.url is not None:
        simulator = lines.simulator(HttpTransport(), lines.url, clock)
        where = lines.url
    else:
        zone = region_zone(settings.database_url)  # the hotline's own: its region's
        app = lines._app(settings.database_url, clock)
        lines.status_callback = lines.status_callback or LOCAL_STATUS_URL
        simulator = lines.simulator(DirectTransport(app), LOCAL_URL, clock)
        where = "the hotline, in-process"
    try:
        call = run_phone(simulator, console=console, where=where, verbose=verbose, zone=zone)
    finally:
        if lines.url is None:
            app.extensions["ivr12333"].db.dispose()
    if transcript:
        from simulator import write_transcript

        write_transcript(transcript / "interactive.txt", call.transcript_text())
    return 0


def region_zone(database_url: str) -> tzinfo:
    """The time zone of the line's region, as the hotline reads it (times callers hear)."""
    from ivr.domain import accounts
    from ivr.store.schema import ensure_schema, make_engine

    engine = make_engine(database_url)
    try:
        ensure_schema(engine)
        with engine.connect() as conn:
            return accounts.region_for(conn).zone
    finally:
        engine.dispose()


def _note_remote_time(scripts: tuple[Path, ...], url: str, console: Console) -> None:
    from simulator import expand, load_script

    try:
        timed = [p for p in expand(scripts) if load_script(p).at is not None]
    except Exception:  # a broken script is reported when it runs
        return
    if timed:
        console.print(f"note: `at:` sets only the simulator's clock; the server at {url} keeps "
                      f"its own time ({len(timed)} script(s) set it)", highlight=False)


def coverage_gaps(flow: Any, seen: Seen) -> tuple[list[str], list[str]]:
    """States and transitions (source --trigger--> dest) the calls never reached."""
    reached = {d for _, _, d in seen} | {s for s, _, _ in seen if s}
    states = [s for s in flow.states if s not in reached]
    edges = sorted(set(flow.edges()) - {(s, t, d) for s, t, d in seen})
    return states, [f"{s} --{t}--> {d}" for s, t, d in edges]


def _report_coverage(flow: Any, seen: Seen, console: Console) -> None:
    states, edges = coverage_gaps(flow, seen)
    total_edges = len(set(flow.edges()))
    console.print(f"flow coverage: {len(flow.states) - len(states)}/{len(flow.states)} states, "
                  f"{total_edges - len(edges)}/{total_edges} transitions", highlight=False)
    for s in states:
        console.print(f"  state never reached: {s}", highlight=False)
    for e in edges:
        console.print(f"  transition never taken: {e}", highlight=False)
