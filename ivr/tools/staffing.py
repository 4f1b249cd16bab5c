"""`ivr12333 staffing`: how many agents each half hour needs, by Erlang C and Erlang A side by
side, each with the assumptions it makes printed under the table."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ivr.domain.erlang import Interval, Performance, agents_needed

HALF_HOUR = 1800


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Calls offered to the agent queue in one half hour starting at `start` (HH:MM)."""

    start: str
    calls: int


class ArrivalsError(ValueError):
    """A CSV of arrivals that breaks its rule; the message names the line and the rule."""


def read_arrivals(path: Path) -> list[Arrivals]:
    """A CSV with the header `start,calls`: one row per half hour (HH:MM, a whole number)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArrivalsError(f"{path}: cannot read it ({exc.__class__.__name__})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip().lower() for c in rows[0]] != ["start", "calls"]:
        raise ArrivalsError(f"{path}: line 1: the header must be exactly `start,calls`")
    found: list[Arrivals] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise ArrivalsError(f"{path}: line {number}: two fields (start,calls), not {len(row)}")
        start, calls = row[0].strip(), row[1].strip()
        match = re.fullmatch(r"([01][0-9]|2[0-3]):(00|30)", start)
        if match is None:
            raise ArrivalsError(f"{path}: line {number}: start {start!r} is not a half hour "
                                f"as HH:00 or HH:30")
        if start in seen:
            raise ArrivalsError(f"{path}: line {number}: the half hour {start} comes twice")
        if not calls.isascii() or not calls.isdigit():
            raise ArrivalsError(f"{path}: line {number}: calls {calls!r} is not a whole "
                                f"number of calls")
        seen.add(start)
        found.append(Arrivals(start, int(calls)))
    if not found:
        raise ArrivalsError(f"{path}: no half hour in it")
    return sorted(found, key=lambda a: a.start)


@dataclass(frozen=True, slots=True)
class Plan:
    """One half hour's answers."""

    arrivals: Arrivals
    load: float
    erlang_c: Performance
    erlang_a: Performance


def plan(arrivals: list[Arrivals], *, handle_seconds: float, patience_seconds: float,
         target_share: float, target_seconds: float) -> list[Plan]:
    plans = []
    for a in arrivals:
        c = Interval(a.calls / HALF_HOUR, handle_seconds)
        ab = Interval(a.calls / HALF_HOUR, handle_seconds, patience_seconds)
        plans.append(Plan(a, c.load, agents_needed(c, target_share, target_seconds, "C"),
                          agents_needed(ab, target_share, target_seconds, "A")))
    return plans


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def show(plans: list[Plan], console: Console, *, handle_seconds: float,
         patience_seconds: float, target_share: float, target_seconds: float) -> None:
    table = Table(title="Agents per half hour", title_justify="left")
    for name in ("start", "calls", "Erl.", "C agents", "C SL", "C ASA", "A agents", "A SL",
                 "A aband", "A ASA", "A−C"):
        table.add_column(name, justify="left" if name == "start" else "right", no_wrap=True)
    for p in plans:
        c, a = p.erlang_c, p.erlang_a
        table.add_row(p.arrivals.start, str(p.arrivals.calls), f"{p.load:.1f}", str(c.agents),
                      _pct(c.service_level), f"{c.mean_wait_answered:.0f} s", str(a.agents),
                      _pct(a.service_level), _pct(a.abandon_probability),
                      f"{a.mean_wait_answered:.0f} s", f"{a.agents - c.agents:+d}")
    console.print(table)
    console.print("Erl.: offered load in Erlangs (calls × handle time ÷ 1800 s).")
    goal = f"{_pct(target_share)} of calls answered within {target_seconds:g} s"
    console.print(
        f"Target: {goal} (service level = answered within the target ÷ all calls offered, "
        f"abandons count as misses: Genesys Cloud's treatment). ASA: mean wait of the answered.\n"
        f"Erlang C (M/M/N): Poisson arrivals at a steady rate within the half hour; handle "
        f"times exponential with mean {handle_seconds:g} s; callers never give up; one skill; "
        f"no redials. It overstates the agents where callers abandon.\n"
        f"Erlang A (M/M/N+M, Palm): the same, but each waiting caller gives up after an "
        f"exponential patience with mean {patience_seconds:g} s; those who give up are not "
        f"answered (and redials are not added back). It is stable at any load, and it needs "
        f"fewer agents than Erlang C because abandons shorten the queue — at the price of the "
        f"callers who hang up.\n"
        f"Both are steady-state models of each half hour on its own: a queue left over from "
        f"the half hour before is not carried over.")


@click.command()
@click.option("--arrivals", "arrivals_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV `start,calls`: calls offered to the agent queue per half hour")
@click.option("--handle-time", "handle", default=240.0, show_default=True,
              type=click.FloatRange(min=1), help="mean handle time per call, seconds")
@click.option("--patience", default=120.0, show_default=True, type=click.FloatRange(min=1),
              help="mean patience of a waiting caller, seconds (Erlang A)")
@click.option("--target", default=0.8, show_default=True, type=click.FloatRange(0.01, 0.99),
              help="the share of calls to answer within --within")
@click.option("--within", "within", default=20.0, show_default=True,
              type=click.FloatRange(min=0), help="the service level's threshold, seconds")
def staffing(arrivals_file: Path, handle: float, patience: float, target: float,
             within: float) -> None:
    """How many agents each half hour needs: Erlang C and Erlang A side by side, with the
    assumptions each makes."""
    try:
        arrivals = read_arrivals(arrivals_file)
    except ArrivalsError as exc:
        raise click.ClickException(str(exc)) from None
    plans = plan(arrivals, handle_seconds=handle, patience_seconds=patience,
                 target_share=target, target_seconds=within)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the table at its natural width
        console = Console(width=132, soft_wrap=True)
    show(plans, console, handle_seconds=handle, patience_seconds=patience,
         target_share=target, target_seconds=within)
