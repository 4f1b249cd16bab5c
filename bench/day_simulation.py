"""How fast `ivr12333 staffing` simulates a day: callers per wall-clock second of a simulated day
of the real hotline in-process (ivr/tools/dayrun.py), for a day of demand given per half hour,
under Erlang A's plan; and the simulated service level next to Erlang A's.

    .venv/bin/python bench/day_simulation.py [--calls 120] [--half-hours 8] [--aht 180]
        [--patience 120] [--days 1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from ivr.domain.staffing import agents_needed
from ivr.settings import Settings
from ivr.tools import dayrun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=float, default=120.0, help="mean calls per half hour")
    parser.add_argument("--half-hours", type=int, default=8)
    parser.add_argument("--aht", type=float, default=180.0)
    parser.add_argument("--patience", type=float, default=120.0)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("ivr").setLevel(logging.ERROR)
    slots = [f"{9 + i // 2:02d}:{30 * (i % 2):02d}" for i in range(args.half_hours)]
    inputs = dayrun.Inputs(dict.fromkeys(slots, args.calls), args.aht, args.patience, 20, 0.8,
                           seed=12333, days=args.days)
    estimate = agents_needed(args.calls, 1800, args.aht, 20, 0.8, args.patience)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        line = dayrun.Line(Settings(database_url=f"sqlite:///{Path(tmp) / 'x.sqlite3'}"),
                           estimate.agents, 600)
        try:
            began, cpu = time.perf_counter(), time.process_time()
            result = dayrun.simulate(line, inputs, dict.fromkeys(slots, estimate.agents))
            wall, used = time.perf_counter() - began, time.process_time() - cpu
        finally:
            line.close()
    figures = dayrun.SlotFigures()
    for f in result.slots.values():
        figures.add(f)
    print(f"{result.calls} callers, {estimate.agents} agents x {args.half_hours} half hours, "
          f"{args.days} day(s): {wall:.1f} s wall, {used:.1f} s CPU; "
          f"{result.calls / wall:.1f} calls per wall second")
    print(f"service level: simulated {figures.service_level or 0:.3f}, Erlang A "
          f"{estimate.service_level:.3f}; abandon: simulated {figures.abandon or 0:.3f}, "
          f"Erlang A {estimate.abandon:.3f}")


if __name__ == "__main__":
    main()
