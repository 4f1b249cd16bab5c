"""The operators' commands of `ivr12333`: purge (retention now), report (the measures as HTML
and CSV), staffing (agents per half hour); registered on the group by ivr/tools/cli.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from ivr.tools.cli import _engine, _settings, database_url_option, err, out


@click.command()
@database_url_option
@click.pass_context
def purge(ctx: click.Context) -> None:
    """Run the housekeeping now: seal idle calls, purge ended sessions and what is past its
    time (IVR_KEEP_ENDED_DAYS, IVR_SEAL_IDLE_MINUTES, IVR_KEEP_RECORDS_DAYS); counts only."""
    from datetime import UTC, datetime

    from ivr.engine.retention import purge as run

    settings = _settings(ctx)
    engine = _engine(settings)
    try:
        removed = run(engine, settings, lambda: datetime.now(UTC))
    except SQLAlchemyError as exc:
        err.print(f"[red]error:[/] database error, nothing removed: {exc.__class__.__name__}",
                  highlight=False)
        sys.exit(2)
    finally:
        engine.dispose()
    out.print(f"retention: ended sessions {settings.keep_ended_days} days, idle calls sealed "
              f"after {settings.seal_idle_minutes} minutes, call records "
              f"{settings.keep_records_days} days", highlight=False, markup=False)
    for what, count in removed.items():
        out.print(f"  {what}: {count}", highlight=False, markup=False)


#: one line, many regions: a report or plan of one region's calls
region_option = click.option(
    "--region", "region_code", default=None, metavar="CODE",
    help="one region's calls only (its code), in its time zone; default: every region's, in "
         "the line's region's time zone")


def _zone(conn: Any, region_code: str | None) -> Any:
    """The time zone of the region asked for (a message and exit 2 for one the line does not
    have), else the line's region's."""
    from ivr.domain import accounts

    if region_code is not None and region_code not in (codes := accounts.region_codes(conn)):
        err.print(f"[red]error:[/] --region {region_code}: no such region; the line has "
                  f"{', '.join(codes) or 'none'}", highlight=False, markup=False)
        sys.exit(2)
    return accounts.region_for(conn, region_code).zone


@click.command()
@database_url_option
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="first day (YYYY-MM-DD, in the region's time zone)")
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="last day, included")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="the HTML report (one file: plots inline, nothing fetched)")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="also write the call records of the range as CSV")
@click.option("--service-seconds", default=20.0, show_default=True,
              type=click.FloatRange(min=1), help="service level: answered within this long")
@click.option("--service-target", default=80.0, show_default=True,
              type=click.FloatRange(1, 100), help="service level goal, in percent")
@click.option("--short-abandon", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="abandons in the queue under this many seconds are short abandons")
@click.option("--agents", is_flag=True, default=False,
              help="for supervisors: per-agent figures and agents' ids (their personal data); "
                   "the files are written private (0600)")
@region_option
@click.pass_context
def report(ctx: click.Context, first: Any, last: Any, output: Path, csv_path: Path | None,
           service_seconds: float, service_target: float, short_abandon: float,
           agents: bool, region_code: str | None) -> None:
    """The line's measures for a date range from the call records: an HTML report with plots
    and, with --csv, the records for your own tools. Nothing about callers is in either; with
    --agents (for supervisors) the per-agent figures and agents' ids are."""
    from datetime import timedelta

    from ivr.domain.measures import Definitions, build

    if last < first:
        err.print(f"[red]error:[/] --to {last.date()} is before --from {first.date()}",
                  highlight=False)
        sys.exit(2)
    try:
        import matplotlib  # noqa: F401

        from ivr.tools.report import write_csv, write_html
    except ImportError:
        err.print("[red]error:[/] the report draws with matplotlib: pip install "
                  "'ivr12333[report]'", highlight=False)
        sys.exit(2)
    engine = _engine(_settings(ctx))
    try:
        with engine.connect() as conn:
            zone = _zone(conn, region_code)
            start = first.replace(tzinfo=zone)
            end = (last + timedelta(days=1)).replace(tzinfo=zone)
            built = build(conn, start, end, zone, Definitions(
                service_seconds=service_seconds, service_target=service_target / 100,
                short_abandon_seconds=short_abandon), region=region_code)
    except SQLAlchemyError as exc:
        err.print(f"[red]error:[/] database error: {exc.__class__.__name__}", highlight=False)
        sys.exit(2)
    finally:
        engine.dispose()
    try:
        write_html(output, built, agents)
        rows = write_csv(csv_path, built, agents) if csv_path is not None else None
    except OSError as exc:
        err.print(f"[red]error:[/] cannot write the report: {exc}", highlight=False)
        sys.exit(1)
    out.print(f"wrote {output}: {built.total.offered} calls offered from {first.date()} to "
              f"{last.date()} ({zone.key})" + (", per agent: for supervisors only" if agents
                                                else ""), highlight=False, markup=False)
    if csv_path is not None:
        out.print(f"wrote {csv_path}: {rows} call records", highlight=False, markup=False)


@click.command()
@database_url_option
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="arrivals from the call records: first day (region's time zone)")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="last day, included (the half hours are averaged over the days)")
@click.option("--arrivals", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="instead: a CSV of HH:MM,calls (calls asking for an agent)")
@click.option("--aht", type=click.FloatRange(min=1), default=None,
              help="average handle time, seconds (default: measured in the records)")
@click.option("--patience", type=click.FloatRange(min=1), default=None,
              help="mean seconds a waiting caller holds on (default: estimated from the "
                   "records' waits and abandons)")
@click.option("--service-seconds", default=20.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--service-target", default=80.0, show_default=True,
              type=click.FloatRange(1, 99.9), help="percent")
@click.option("--simulate/--no-simulate", default=True, show_default=True,
              help="also simulate the day on the real hotline (the third answer)")
@click.option("--passes", default=3, show_default=True, type=click.IntRange(0, 20),
              help="simulation: times the plan is moved by one agent per half hour")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 50),
              help="simulation: days drawn per plan (more: steadier figures, longer run)")
@click.option("--seed", default=12333, show_default=True, type=int,
              help="simulation: the random draw (one seed, one answer)")
@click.option("--verified", default=25.0, show_default=True, type=click.FloatRange(0, 100),
              help="simulation: percent of callers who check their balance (ID number and "
                   "password) before asking for an agent")
@click.option("--max-queue-wait", type=click.IntRange(60, 3600), default=None,
              help="simulation: seconds before the line tells a waiting caller it is busy "
                   "(default: the region's, 600 with --arrivals)")
@region_option
@click.pass_context
def staffing(ctx: click.Context, first: Any, last: Any, arrivals: Path | None,
             aht: float | None, patience: float | None, service_seconds: float,
             service_target: float, simulate: bool, passes: int, days: int, seed: int,
             verified: float, max_queue_wait: int | None, region_code: str | None) -> None:
    """Agents per half hour for a service-level target, three ways side by side with their
    assumptions: Erlang C, Erlang A and (--simulate) a simulated day of the real hotline."""
    from datetime import timedelta

    from rich.table import Table

    from ivr.tools import staffing as plans

    if (arrivals is None) == (first is None or last is None):
        err.print("[red]error:[/] give either --from DAY --to DAY (the call records) or "
                  "--arrivals FILE.csv", highlight=False)
        sys.exit(2)
    if arrivals is not None:
        try:
            demand = plans.Demand(plans.from_csv(arrivals), None, None)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
            sys.exit(2)
        source = str(arrivals)
    else:
        from ivr.domain import accounts
        from ivr.domain.measures import build

        if last < first:
            err.print(f"[red]error:[/] --to {last.date()} is before --from {first.date()}",
                      highlight=False)
            sys.exit(2)
        engine = _engine(_settings(ctx))
        try:
            with engine.connect() as conn:
                zone = _zone(conn, region_code)
                max_queue_wait = max_queue_wait or accounts.region_for(
                    conn, region_code).max_queue_wait
                built = build(conn, first.replace(tzinfo=zone),
                              (last + timedelta(days=1)).replace(tzinfo=zone), zone,
                              region=region_code)
        finally:
            engine.dispose()
        demand = plans.from_records(built, (last - first).days + 1)
        source = (f"the call records{f' of region {region_code}' if region_code else ''}, "
                  f"{first.date()} to {last.date()} (calls asking for an agent)")
    aht = aht or demand.aht
    patience = patience or demand.patience
    missing = [name for name, value in (("--aht", aht), ("--patience", patience))
               if value is None]
    if missing:
        err.print(f"[red]error:[/] give {' and '.join(missing)}: the records do not measure "
                  "it (no answered call, or no abandon)", highlight=False)
        sys.exit(2)
    assert aht is not None and patience is not None
    rows = plans.plan(demand.arrivals, aht, patience, service_seconds, service_target / 100)
    out.print(f"arrivals: {source}; AHT {aht:.0f} s; mean patience {patience:.0f} s; target "
              f"{service_target:g} % answered within {service_seconds:g} s", highlight=False,
              markup=False)
    table = Table(title="agents per half hour")
    for column in ("half hour", "calls", "Erlang C agents", "C: service level",
                   "Erlang A agents", "A: service level", "A: abandon"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.slot, f"{r.calls:g}", str(r.erlang_c.agents),
                      f"{r.erlang_c.service_level * 100:.1f} %", str(r.erlang_a.agents),
                      f"{r.erlang_a.service_level * 100:.1f} %",
                      f"{r.erlang_a.abandon * 100:.1f} %")
    out.print(table)
    for line in plans.ASSUMPTIONS:
        out.print(line, highlight=False, markup=False)
    if not simulate:
        out.print("Simulation: not run (--no-simulate).", highlight=False, markup=False)
        return
    from ivr.tools.staffing_sim import simulate_plan

    simulate_plan(_settings(ctx), rows, aht, patience, service_seconds,
                  service_target / 100, seed=seed, days=days, passes=passes,
                  verified=verified / 100, max_queue_wait=max_queue_wait or 600)

