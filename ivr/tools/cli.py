"""The `ivr12333` command: import, unlock, purge, report, staffing, queue, demo, serve, call,
graph, load, key."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from ivr.domain.pinkeys import Keyring
from ivr.errors import DatasetError, InvalidIdNumber, PinKeyError, SettingsError, StorageError
from ivr.settings import Settings, env_name


class _Console(Console):
    """rich's Console, wrapping lines at its width only on a terminal.

    Elsewhere (a pipe, a file, a CI log) rich assumes 80 columns and would break a long message
    over two lines; there each message stays on one line, for the reader's viewer to wrap.
    """

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if soft_wrap is None:
            soft_wrap = not self.is_terminal
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


err = _Console(stderr=True)
out = _Console()


def _settings(ctx: click.Context) -> Settings:
    """The environment's settings with what the command line said (--database-url); a bad
    variable ends the command with one line naming it (exit 2)."""
    given: dict[str, Any] = ctx.find_object(dict) or {}
    try:
        return Settings.from_env(**given)
    except SettingsError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _database_url_given(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:  # on the group and on the command: the command's, parsed later, wins
        ctx.ensure_object(dict)["database_url"] = value


_Command = TypeVar("_Command", bound=Callable[..., Any])

#: the same option on the group and on every command that uses the database
database_url_option: Callable[[_Command], _Command] = click.option(
    "--database-url", metavar="URL", default=None, expose_value=False,
    callback=_database_url_given,
    help="SQLAlchemy URL (default: $IVR_DATABASE_URL, else a SQLite file in "
         "~/.local/share/ivr12333/)")


def _keyring(settings: Settings) -> Keyring:
    """The PIN keys the settings name; none, or an unsafe file, ends the command (exit 2)."""
    from ivr.domain import pinkeys

    try:
        return pinkeys.load(settings)
    except PinKeyError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _demo_keyring(settings: Settings) -> Keyring:
    """The PIN keys, the key file created first when there is none (the demo needs nothing
    set up)."""
    from ivr.domain import pinkeys

    path = settings.pin_key_file
    if settings.pin_key is None and path is not None and not path.exists():
        try:
            keyring = pinkeys.generate(path)
        except (PinKeyError, OSError) as exc:
            err.print(f"[red]error:[/] cannot create the PIN key file {path}: {exc}",
                      highlight=False)
            sys.exit(2)
        err.print(f"created the PIN key file {path} (mode 0600, key {keyring.current_id}): "
                  "passwords are hashed with it. Keep it apart from the database's backups.",
                  highlight=False, markup=False)
    return _keyring(settings)


def _engine(settings: Settings) -> Any:
    from ivr.store.schema import ensure_schema, make_engine

    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine)
    except StorageError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    return engine


@click.group()
@database_url_option
@click.version_option(package_name="ivr12333")
@click.pass_context
def main(ctx: click.Context) -> None:
    """ivr12333 — the 12333 medical-insurance hotline: serve it, call it, load its data."""
    ctx.ensure_object(dict)


def run_import(settings: Settings, path: Path, keyring: Keyring) -> None:
    """Import with a progress bar; a bad file prints every broken record and exits 1."""
    from ivr.dataset.importer import DatasetInvalid, import_dataset, load_file

    engine = _engine(settings)
    try:
        data = load_file(path)
        total = len(data.get("people") or []) if isinstance(data.get("people"), list) else 0
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=total < 1000) as bar:
            tasks: dict[str, Any] = {}

            def advance(phase: str, n: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.advance(tasks[phase], n)

            report = import_dataset(engine, data, keyring=keyring, progress=advance)
    except DatasetInvalid as exc:
        err.print(f"[red]{path}: not imported, nothing changed.[/] "
                  f"{exc.total} record(s) break the rules:")
        for e in exc.errors:
            err.print(f"  {e.record}: {e.rule}", markup=False, highlight=False)
        if exc.total > len(exc.errors):
            err.print(f"  ... and {exc.total - len(exc.errors)} more")
        sys.exit(1)
    except DatasetError as exc:
        err.print(f"[red]{path}: not imported, nothing changed.[/] {exc}", highlight=False)
        sys.exit(1)
    except (StorageError, SQLAlchemyError) as exc:
        err.print(f"[red]{path}: not imported, nothing changed.[/] database error: "
                  f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}", highlight=False)
        sys.exit(2)
    out.print(f"imported {report.people} people, {report.bindings} bindings, "
              f"{report.transactions} transactions (region {report.region})"
              + (f", {report.agents} agents" if report.agents else "") + f" from {path}")
    if report.unreachable:
        err.print(f"[yellow]warning:[/] the region menu offers nine regions; no caller can "
                  f"reach {', '.join(report.unreachable)}: give each its `numbers` or "
                  "`area_codes` (docs/dataset.md §2)", highlight=False)


@main.command("import")
@database_url_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def import_cmd(ctx: click.Context, file: Path) -> None:
    """Load people, accounts, bindings and transactions from FILE.json (all or nothing)."""
    settings = _settings(ctx)
    run_import(settings, file, _keyring(settings))


@main.command()
@database_url_option
@click.option("--people", "people", type=click.IntRange(min=1), default=None,
              help="instead of the bundled demo: generate N synthetic people (N >= 1)")
@click.option("--seed", default=0, show_default=True, type=int,
              help="with --people: the same seed gives the same people and passwords")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="with --people: write the dataset to FILE.json instead of importing it")
@click.pass_context
def demo(ctx: click.Context, people: int | None, seed: int, output: Path | None) -> None:
    """Load the bundled synthetic demo people (safe to repeat), or N generated ones."""
    from ivr.resources import demo_dataset

    if people is None:
        for name in ("seed", "output"):
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
                err.print(f"[red]error:[/] --{name} needs --people")
                sys.exit(2)
        settings = _settings(ctx)
        run_import(settings, demo_dataset(), _demo_keyring(settings))
        return
    settings = _settings(ctx)
    run_synthetic(settings, people, seed, output, _demo_keyring(settings))


def run_synthetic(settings: Settings, people: int, seed: int, output: Path | None,
                  keyring: Keyring) -> None:
    """Generate a synthetic dataset (streaming) and import it, or only write it to `output`."""
    import tempfile

    from ivr.dataset import synthetic

    with tempfile.TemporaryDirectory(prefix="ivr12333-") as tmp:
        path = output or Path(tmp) / f"synthetic-{people}-{seed}.json"
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=people < 1000) as bar:
            task = bar.add_task("generating people", total=people)
            try:
                summary = synthetic.write_file(path, people, seed, keyring=keyring,
                                               progress=lambda n: bar.advance(task, n))
            except (OSError, ValueError) as exc:
                err.print(f"[red]error:[/] cannot write {path}: {exc}", highlight=False)
                sys.exit(1)
        if output is not None:
            out.print(f"wrote {summary.people} people, {summary.bindings} bindings, "
                      f"{summary.transactions} transactions to {output} (seed {seed}); "
                      f"import it with: ivr12333 import {output} (where PIN key "
                      f"{keyring.current_id} is in the keyring)")
            return
        run_import(settings, path, keyring)
    out.print(f"synthetic people (seed {seed}): passwords are derivable from the seed, "
              f"for load tests only (ivr12333 load --people {people} --seed {seed})")


@main.command()
@database_url_option
@click.option("--region", "region_code", default=None, metavar="CODE",
              help="one region's queue only (its code); default: every region's")
@click.pass_context
def queue(ctx: click.Context, region_code: str | None) -> None:
    """Who waits for an agent now (masked), for how long, and today's average wait, per
    region."""
    from datetime import UTC, datetime

    from rich.table import Table

    from ivr.domain import accounts
    from ivr.engine.queue import CallQueue

    engine = _engine(_settings(ctx))
    now = datetime.now(UTC)
    line = CallQueue(engine, lambda: now)
    with engine.connect() as conn:
        codes = accounts.region_codes(conn)
        if region_code is not None and region_code not in codes:
            err.print(f"[red]error:[/] --region {region_code}: no such region; the line has "
                      f"{', '.join(codes) or 'none'}", highlight=False, markup=False)
            sys.exit(2)
        wanted: list[str | None] = [region_code] if region_code is not None else [*codes]
        regions = [accounts.region_for(conn, code) for code in wanted or [None]]
    waiting = line.waiting(region_code)
    title = f"region {region_code}" if region_code is not None else "every region"
    table = Table(title=f"agent queue, {title}: {len(waiting)} waiting")
    for column in ("#", "region", "caller", "verified", "waiting", "last menu", "language",
                   "agent"):
        # the masked number whole, whatever the terminal's width
        table.add_column(column, no_wrap=column == "caller", min_width=18 if column == "caller"
                         else None)
    for n, entry in enumerate(waiting, start=1):
        waited = int(now.timestamp() - entry.entered_at)
        table.add_row(str(n), entry.region or "-",
                      f"**************{entry.last4}" if entry.last4 else "-",
                      "yes" if entry.verified else "no", f"{waited // 60}:{waited % 60:02d}",
                      entry.last_menu, entry.lang, "taken" if entry.taken_by else "")
    out.print(table)
    for region in regions:
        midnight = now.astimezone(region.zone).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
        average, _ = line.waits_since(midnight.timestamp(), region.code)
        if average is None:
            out.print(f"average wait today, region {region.code}: nobody was taken by an "
                      "agent yet", highlight=False)
        else:
            a = int(average)
            out.print(f"average wait today, region {region.code}: {a // 60}:{a % 60:02d}",
                      highlight=False)


@main.command()
@database_url_option
@click.option("--agent", "agent_id", default=None, metavar="AGENT_ID",
              help="unlock an agent's PIN instead (agents' line)")
@click.argument("id_number", required=False)
@click.pass_context
def unlock(ctx: click.Context, id_number: str | None, agent_id: str | None) -> None:
    """Unlock a person's query password (ID_NUMBER), or an agent's PIN (--agent AGENT_ID),
    after too many wrong attempts."""
    from ivr.domain import accounts, agents
    from ivr.domain.identity import from_keypad, mask_id_number, parse_id_number

    if (id_number is None) == (agent_id is None):
        err.print("[red]error:[/] give either an ID number or --agent AGENT_ID", highlight=False)
        sys.exit(2)
    if agent_id is not None:
        if agents.unlock(_engine(_settings(ctx)), agent_id):
            out.print(f"unlocked agent {agent_id}", highlight=False)
            return
        err.print(f"[red]error:[/] no agent {agent_id}", highlight=False)
        sys.exit(1)
    assert id_number is not None
    try:
        ident = parse_id_number(from_keypad(id_number))
    except InvalidIdNumber as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    result = accounts.unlock(_engine(_settings(ctx)), ident.value)
    if result.outcome is accounts.Unlock.UNLOCKED:
        out.print(f"unlocked {ident.masked}", highlight=False)
    elif result.outcome is accounts.Unlock.NOT_LOCKED:
        n = result.failed_attempts
        cleared = f" ({n} failed attempt{'s' * (n != 1)} cleared)" if n else ""
        out.print(f"{ident.masked} was not locked{cleared}", highlight=False)
    else:
        err.print(f"[red]error:[/] nobody with ID number {mask_id_number(ident.value)}",
                  highlight=False)
        sys.exit(1)


@main.command()
@database_url_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="default: the number of CPUs")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="threads per worker that run webhooks (no thread waits on a client)")
@click.option("--no-access-log", is_flag=True, help="do not log each request")
@click.option("--insecure", is_flag=True,
              help="serve WITHOUT an auth token: no signature is checked, anyone who reaches "
                   "the port drives calls (local experiments only)")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int | None, threads: int,
          no_access_log: bool, insecure: bool) -> None:
    """Serve the Twilio voice webhooks under granian (POST /voice, /status).

    Needs Twilio's auth token (TWILIO_AUTH_TOKEN, or a file: IVR_AUTH_TOKEN_FILE): every
    webhook must carry its signature. `--insecure` serves without one, loudly.
    """
    from ivr.web.serve import serve as run

    settings = _settings(ctx)
    if not settings.auth_token and not insecure:
        err.print("[red]error:[/] no auth token: set TWILIO_AUTH_TOKEN or IVR_AUTH_TOKEN_FILE "
                  "(a file holding it) so that every webhook's signature is checked. For a "
                  "local experiment only: ivr12333 serve --insecure", highlight=False)
        sys.exit(2)
    if insecure and settings.auth_token:
        err.print("[red]error:[/] --insecure with an auth token set: drop one of them")
        sys.exit(2)
    _keyring(settings)  # each worker loads it again: refuse here, once, before they start
    _engine(settings)  # create or upgrade the schema once, before the workers start
    if insecure:
        err.print("[bold red]INSECURE:[/] no auth token, no signature is checked: anyone who "
                  f"can reach {host}:{port} can drive calls and end them. Never point a real "
                  "number here.", highlight=False)
    run(settings, host, port, workers, threads, not no_access_log)


@main.command()
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="FILE.svg or FILE.png")
@click.option("--all", "conventions", is_flag=True,
              help="draw the transitions every menu shares (* 9 0, silence, invalid) from "
                   "every menu instead of once (many more arrows)")
@click.pass_context
def graph(ctx: click.Context, output: Path, conventions: bool) -> None:
    """Draw the call flow from state_machines/hotline.yaml (graphviz).

    An SVG carries a fingerprint of the flow it shows; `make diagram` redraws
    docs/call-flow.svg and the tests say when it is stale.
    """
    from ivr.errors import FlowError
    from ivr.resources import data_dir
    from ivr.tools.diagram import draw, load_flow

    settings = _settings(ctx)
    try:
        flow = load_flow(data_dir("state_machines", settings.flows_dir) / "hotline.yaml",
                         data_dir("prompts", settings.prompts_dir))
        draw(output, conventions=conventions, flow=flow)
    except (OSError, RuntimeError, ValueError, FlowError) as exc:
        err.print(f"[red]error:[/] cannot draw {output}: {exc}")
        sys.exit(1)
    out.print(f"wrote {output}")


@main.command()
@database_url_option
@click.option("--script", "scripts", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="a scripted call (YAML) or a folder of them (recursive); repeatable")
@click.option("--url", default=None, help="voice URL of a running server; default: in-process")
@click.option("--live", is_flag=True,
              help="in-process scripted calls on the configured database itself (default: "
                   "each on a throwaway copy, so nothing they do stays)")
@click.option("--at", "at", default=None, metavar="TIME",
              help="when the text phone's call starts, e.g. 2026-11-23T10:00:00+08:00 "
                   "(in-process: the hotline's time too; default: now)")
@click.option("--auth-token", default=None,
              help="sign every request (default: the auth token setting, $TWILIO_AUTH_TOKEN)")
@click.option("--transcript", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write one transcript per call into this folder")
@click.option("--from", "from_", default=None, help="caller number (From)")
@click.option("--status-callback", default=None,
              help="status callback URL (default in-process: the app's /status)")
@click.option("--dial-status", default="completed", show_default=True,
              type=click.Choice(["completed", "busy", "no-answer", "failed", "canceled"]),
              help="how an agent transfer (<Dial>) ends")
@click.option("--coverage", is_flag=True, help="report states and transitions never reached")
@click.option("-v", "--verbose", is_flag=True, help="text phone: show the voice of every line")
@click.option("--rest-port", type=click.IntRange(1, 65535), default=None,
              help="with --url: serve the simulated Twilio REST API on 127.0.0.1:PORT for the "
                   "app's own twilio client (the account IVR_ACCOUNT_SID, the auth token)")
@click.pass_context
def call(ctx: click.Context, scripts: tuple[Path, ...], url: str | None, live: bool,
         at: str | None, auth_token: str | None, transcript: Path | None, from_: str | None,
         status_callback: str | None, dial_status: str, coverage: bool, verbose: bool,
         rest_port: int | None) -> None:
    """Call the hotline from the terminal, or run scripted calls (--script)."""
    from ivr.tools.callcmd import run_call
    from ivr.tools.cli_phone import parse_at

    moment = parse_at(at)
    if at is not None and scripts:
        err.print("[red]error:[/] --at is for the text phone; scripts set `at:` themselves")
        sys.exit(2)
    settings = _settings(ctx)
    token = auth_token or settings.auth_token
    if rest_port is not None and (url is None or not token or not settings.account_sid):
        err.print(f"[red]error:[/] --rest-port serves the REST API to the app at --url: it "
                  f"needs --url, an auth token (--auth-token) and the account "
                  f"({env_name('account_sid')}) the app's client uses", highlight=False)
        sys.exit(2)
    keyring = _keyring(settings) if url is None else None
    sys.exit(run_call(settings, keyring=keyring, scripts=scripts, url=url,
                      auth_token=token,
                      transcript=transcript, from_=from_, status_callback=status_callback,
                      dial_status=dial_status, coverage=coverage, console=out, live=live,
                      at=moment, verbose=verbose, rest_port=rest_port))


@main.command()
@database_url_option
@click.option("--calls", default=100, show_default=True, type=click.IntRange(min=1),
              help="how many full calls to place")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(min=1),
              help="calls in progress at once")
@click.option("--url", default=None, help="voice URL of a running server; default: in-process")
@click.option("--auth-token", default=None,
              help="sign with this token (default: the auth token setting, $TWILIO_AUTH_TOKEN; "
                   "in-process, else a random one)")
@click.option("--people", "people", type=click.IntRange(min=1), default=None,
              help="call as synthetic people 0..N-1 (ivr12333 demo --people N); "
                   "default: the bundled demo people")
@click.option("--seed", default=0, show_default=True, type=int, help="with --people")
@click.option("--status-callback", default=None,
              help="status callback URL (default: /status beside the voice URL)")
@click.option("--think", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="seconds a caller waits before each key press (on average, +-50%)")
@click.option("--max-seconds", default=None, type=click.FloatRange(min=0),
              help="start no new call after this long")
@click.pass_context
def load(ctx: click.Context, calls: int, concurrency: int, url: str | None,
         auth_token: str | None, people: int | None, seed: int, status_callback: str | None,
         think: float, max_seconds: float | None) -> None:
    """Drive full signed calls (verification + balance) and report webhook latencies."""
    import secrets
    from urllib.parse import urljoin

    from ivr.tools import loadgen

    if people is None and ctx.get_parameter_source("seed") not in (None, ParameterSource.DEFAULT):
        err.print("[red]error:[/] --seed needs --people")
        sys.exit(2)
    concurrency = min(concurrency, calls)  # no more callers than calls
    settings = _settings(ctx)
    auth_token = auth_token or settings.auth_token
    transport: Any
    if url is None:
        import logging

        from ivr.web import create_app
        from simulator import DirectTransport

        logging.getLogger("ivr.web").setLevel(logging.ERROR)
        keyring = _keyring(settings)
        _engine(settings)
        auth_token = auth_token or secrets.token_hex(16)
        # called at http://localhost, signed for it: not at the public URL of a real server
        app = create_app(settings.model_copy(update={"auth_token": auth_token,
                                                     "public_url": None}), keyring=keyring)
        transport, voice_url = DirectTransport(app), "http://localhost/voice"
    else:
        from simulator import HttpTransport

        transport, voice_url = HttpTransport(), url
    identities = (loadgen.synthetic_identities(people, seed) if people
                  else loadgen.demo_identities())
    where = url or f"in-process ({settings.database_url})"
    err.print(f"{calls} calls, {concurrency} at a time, to {where}", highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("errors: {task.fields[errors]}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("calls", total=calls, errors=0)
        failed = [0]

        def advance(ok: bool) -> None:
            failed[0] += not ok
            bar.update(task, advance=1, errors=failed[0])

        try:
            result = loadgen.run_load(
                transport, voice_url, identities, calls=calls, concurrency=concurrency,
                auth_token=auth_token,
                status_callback=status_callback or urljoin(voice_url, "/status"),
                think=think, max_seconds=max_seconds, progress=advance)
        except ValueError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            sys.exit(2)
    for line in loadgen.report_lines(result):
        out.print(line, highlight=False, markup=False)
    sys.exit(1 if result.error_count else 0)


# the key commands live in their own module; imported last, as they use the helpers above
from ivr.tools.keycmd import key  # noqa: E402

main.add_command(key)

# `phone` and `prompts` live in their own module; importing it adds them to `main`
from ivr.tools import cli_phone  # noqa: E402, F401


def _add_operators_commands() -> None:
    """The operators' commands (purge, report, staffing) live in their own module."""
    from ivr.tools import opscmd

    for command in (opscmd.purge, opscmd.report, opscmd.staffing):
        main.add_command(command)


_add_operators_commands()
