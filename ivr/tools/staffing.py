"""`ivr12333 staffing`: agents per half hour, Erlang C and Erlang A side by side, from the
calls that asked for an agent in the call records (averaged over the days of a range) or from
a CSV of arrivals, with the assumptions printed."""

from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ivr.domain.measures import Report
from ivr.domain.staffing import Estimate, agents_needed

HALF_HOUR = 1800.0
_SLOT = re.compile(r"([01][0-9]|2[0-3]):(00|30)")


@dataclass(frozen=True, slots=True)
class Demand:
    """Calls for agents per half hour of the day, and what the records say of handle time
    and patience (None where they say nothing)."""

    arrivals: dict[str, float]  # "HH:MM" -> calls
    aht: float | None
    patience: float | None


@dataclass(frozen=True, slots=True)
class Row:
    slot: str
    calls: float
    erlang_c: Estimate
    erlang_a: Estimate


def from_records(report: Report, days: int) -> Demand:
    """The queue's offered calls per half hour, averaged over `days`; AHT from the answered
    calls; mean patience by the exponential estimate with censored waits: all the time spent
    waiting ÷ the number of abandons."""
    per_slot: dict[str, float] = defaultdict(float)
    for half in report.half_hours:
        if half.queue_offered:
            per_slot[half.start.strftime("%H:%M")] += half.queue_offered / days
    talk = [t for half in report.half_hours for t in half.talk]
    waited = sum(r["queue_wait"] or 0.0 for r in report.rows if r["line"] == "caller")
    abandons = report.total.abandoned
    return Demand(dict(sorted(per_slot.items())), statistics.fmean(talk) if talk else None,
                  waited / abandons if abandons else None)


def from_csv(path: Path) -> dict[str, float]:
    """Rows `HH:MM,calls` (a header line is allowed); raises ValueError naming the line."""
    arrivals: dict[str, float] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or (number == 1 and not _SLOT.fullmatch(row[0].strip())):
                continue
            if len(row) != 2 or not _SLOT.fullmatch(row[0].strip()):
                raise ValueError(f"{path}:{number}: expected HH:MM (on the hour or half past)"
                                 f",calls")
            try:
                calls = float(row[1])
            except ValueError:
                raise ValueError(f"{path}:{number}: calls must be a number") from None
            if calls < 0 or calls != calls:
                raise ValueError(f"{path}:{number}: calls must be 0 or more")
            arrivals[row[0].strip()] = calls
    return arrivals


def plan(arrivals: dict[str, float], aht: float, patience: float, target_seconds: float,
         target: float) -> list[Row]:
    return [Row(slot, calls,
                agents_needed(calls, HALF_HOUR, aht, target_seconds, target),
                agents_needed(calls, HALF_HOUR, aht, target_seconds, target, patience))
            for slot, calls in sorted(arrivals.items())]


ASSUMPTIONS = (
    "Both models: each half hour on its own, in a steady state; Poisson arrivals; exponential "
    "handle times of mean AHT (after-call work included only if AHT includes it); one skill; "
    "no redials.",
    "Erlang C: callers never give up, so it overstates the agents needed where abandonment "
    "matters.",
    "Erlang A (Palm, M/M/c+M): each waiting caller gives up after an exponential patience of "
    "the given mean; service level = answered within the target ÷ arrivals.",
)
