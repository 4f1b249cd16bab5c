"""`ivr12333 staffing`'s third answer on screen: the simulated day (ivr/tools/dayrun.py) run
from Erlang A's plan with a progress bar, then its plan and figures next to Erlang C's and A's,
its assumptions, and where and why the three disagree."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ivr.settings import Settings
from ivr.tools import dayrun
from ivr.tools.cli import err, out
from ivr.tools.staffing import Row


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def simulate_plan(settings: Settings, rows: Sequence[Row], aht: float, patience: float,
                  target_seconds: float, target: float, *, seed: int, days: int, passes: int,
                  max_queue_wait: int, verified: float = 0.0) -> dayrun.DayResult | None:
    """Simulate, print, and return the chosen plan's result (None: nothing to simulate); a day
    that fails (an application error in a call) is named and ends the command (exit 1)."""
    inputs = dayrun.Inputs({r.slot: r.calls for r in rows if r.calls > 0}, aht, patience,
                           target_seconds, target, seed, days, verified)
    if not inputs.slots:
        out.print("Simulation: no half hour has calls; nothing to simulate.", highlight=False,
                  markup=False)
        return None
    erlang_a = {r.slot: r.erlang_a.agents for r in rows}
    erlang_c = {r.slot: r.erlang_c.agents for r in rows}
    agents = max(erlang_a.get(s, 0) for s in inputs.slots) + passes + 1
    total = dayrun.expected_calls(inputs, passes)
    began = time.perf_counter()
    placed = 0
    line = dayrun.Line(settings, agents, max_queue_wait)
    try:
        with Progress(TextColumn("simulating the day"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("calls"), TimeElapsedColumn(), console=err,
                      transient=True) as progress:
            task = progress.add_task("calls", total=total)

            def one() -> None:
                nonlocal placed
                placed += 1
                progress.advance(task)

            best, tried = dayrun.improve(line, inputs, erlang_a, passes, one)
    except RuntimeError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise SystemExit(1) from None
    finally:
        line.close()
    took = time.perf_counter() - began
    met = all(best.meets(s, target) for s in inputs.slots)
    out.print(f"Simulation: {placed} calls over {len(tried)} plan(s) × {days} day(s) in "
              f"{took:.0f} s ({placed / took:.1f} calls/s); seed {seed}, max queue wait "
              f"{max_queue_wait} s, {verified * 100:g} % verifying first; chosen: per half "
              "hour the fewest agents that met the target in any plan tried"
              + ("" if met else " (some half hours still miss it: more --passes or --days)"),
              highlight=False, markup=False)
    table = Table(title="agents per half hour: the three answers")
    for column in ("half hour", "Erlang C", "Erlang A", "sim", "sim calls", "sim SL",
                   "sim abandon", "sim busy"):
        table.add_column(column)
    for slot in inputs.slots:
        f = best.slots[slot]
        table.add_row(slot, str(erlang_c.get(slot, 0)), str(erlang_a.get(slot, 0)),
                      str(best.plan[slot]), f"{best.drawn[slot] / days:g}",
                      _percent(f.service_level), _percent(f.abandon),
                      str(f.timed_out))
    out.print(table)
    out.print("Plans tried (agents in all, half hours meeting the target): " + "; ".join(
        f"{sum(r.plan.values())}, {sum(r.meets(s, target) for s in inputs.slots)}/"
        f"{len(inputs.slots)}" for r in tried), highlight=False, markup=False)
    above = [s for s in inputs.slots if best.plan[s] > erlang_a.get(s, 0)]
    below = [s for s in inputs.slots if best.plan[s] < erlang_a.get(s, 0)]
    out.print(f"The simulation needs more agents than Erlang A in {len(above)} half hour(s)"
              f"{': ' + ', '.join(above) if above else ''}; fewer in {len(below)}"
              f"{': ' + ', '.join(below) if below else ''}.", highlight=False, markup=False)
    for text in dayrun.ASSUMPTIONS + dayrun.DISAGREEMENTS:
        out.print(text, highlight=False, markup=False)
    return best
