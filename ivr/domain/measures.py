"""The measures of the line, as the industry defines them, computed from the call records only
(call_summaries and call_events: ivr/store/schema.py); docs/reports.md cites each definition.

Every call counts in the half hour (and day) it started, in the region's time zone.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from ivr.store.schema import call_events, call_summaries

#: the states of the caller's way to a result, in the order a caller passes them (the funnel)
FUNNEL = ("welcome", "main", "verify_method", "password", "verified", "balance", "pool",
          "transactions", "policy", "agent_queue")
#: what a caller comes for: the results without an agent, and the queue
TASKS = ("balance", "pool", "transactions", "policy_pool", "policy_withdrawal", "policy_fraud",
         "agent_queue")


@dataclass(frozen=True, slots=True)
class Definitions:
    """The thresholds a report states: the service-level target (default 80 % within 20 s,
    Genesys Cloud's default) and the short-abandon threshold."""

    service_seconds: float = 20.0
    service_target: float = 0.80
    short_abandon_seconds: float = 5.0


@dataclass(slots=True)
class Figures:
    """The measures of one interval (a half hour, a day, the whole range)."""

    start: datetime
    offered: int = 0  # calls to the callers' line
    self_served: int = 0
    contained: int = 0  # self-served, no call back within 24 h (numbers not withheld)
    containment_base: int = 0  # calls with a number (withheld ones are left out)
    queue_offered: int = 0  # calls that entered the agent queue
    answered: int = 0  # taken by an agent
    answered_in_target: int = 0
    abandoned: int = 0  # hung up in the queue, short abandons included
    short_abandons: int = 0  # abandoned within the short-abandon threshold
    timed_out: int = 0  # the longest wait reached: the line was busy
    left_by_key: int = 0  # pressed * for the main menu
    waits_answered: list[float] = field(default_factory=list)
    longest_wait: float | None = None
    talk: list[float] = field(default_factory=list)  # per answered call
    agent_talk: float = 0.0  # agents' lines: connected to callers
    agent_logged_in: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def containment(self) -> float | None:
        return self.contained / self.containment_base if self.containment_base else None

    @property
    def asa(self) -> float | None:
        """Average speed of answer: mean queue wait of the answered calls only."""
        return statistics.fmean(self.waits_answered) if self.waits_answered else None

    @property
    def service_level(self) -> float | None:
        """Genesys' treatment: answered within the target ÷ (answered + abandoned + timed
        out), short abandons left out of both."""
        base = self.answered + self.abandoned - self.short_abandons + self.timed_out
        return self.answered_in_target / base if base else None

    @property
    def aht(self) -> float | None:
        """Average handle time: talk time of the answered calls (after-call work is not
        seen by the line)."""
        return statistics.fmean(self.talk) if self.talk else None

    @property
    def occupancy(self) -> float | None:
        """Agents' time connected to callers ÷ their time logged in (ready or connected)."""
        return self.agent_talk / self.agent_logged_in if self.agent_logged_in else None

    def add(self, row: dict[str, Any], definitions: Definitions) -> None:
        if row["line"] == "agent":
            self.agent_talk += row["talk_seconds"] or 0.0
            self.agent_logged_in += row["logged_in_seconds"] or 0.0
            return
        outcome = row["outcome"]
        self.offered += 1
        self.outcomes[outcome] += 1
        if outcome == "self_served":
            self.self_served += 1
        if not row["withheld"]:
            self.containment_base += 1
            self.contained += outcome == "self_served" and not row["called_back"]
        wait = row["queue_wait"]
        if wait is None:
            return
        self.queue_offered += 1
        self.longest_wait = wait if self.longest_wait is None else max(self.longest_wait, wait)
        if outcome == "transferred":
            self.answered += 1
            self.waits_answered.append(wait)
            self.answered_in_target += wait <= definitions.service_seconds
            if row["talk_seconds"] is not None:
                self.talk.append(row["talk_seconds"])
        elif outcome == "abandoned_queue":
            self.abandoned += 1
            self.short_abandons += wait < definitions.short_abandon_seconds
        elif outcome == "line_busy":
            self.timed_out += 1
        elif row["queue_result"] == "key":
            self.left_by_key += 1


@dataclass(slots=True)
class AgentFigures:
    """One agent's measures over an interval (a day, the range). Agents' ids are the agents'
    personal data: these are shown only to supervisors (docs/reports.md)."""

    agent_id: str
    start: datetime | None = None  # the day; None over the whole range
    answered: int = 0  # callers bridged to the agent (their calls started in the interval)
    talk: list[float] = field(default_factory=list)  # those callers' time with the agent
    handled: float = 0.0  # the agent's time on calls: the summary heard, then the caller
    logged_in: float = 0.0  # the agent's time logged in: from the first "ready" to the end

    @property
    def aht(self) -> float | None:
        """Average handle time: the agent's time on calls (talk, and the summary the agent
        hears before it: the line's only "work" outside talk) ÷ calls answered."""
        return self.handled / self.answered if self.answered else None

    @property
    def average_talk(self) -> float | None:
        return statistics.fmean(self.talk) if self.talk else None

    @property
    def occupancy(self) -> float | None:
        """Time on calls ÷ time logged in (Amazon Connect: handle ÷ (handle + idle))."""
        return self.handled / self.logged_in if self.logged_in else None

    def add(self, row: dict[str, Any]) -> None:
        """A summary row that names this agent."""
        if row["line"] == "agent":
            self.handled += row["talk_seconds"] or 0.0
            self.logged_in += row["logged_in_seconds"] or 0.0
        elif row["outcome"] == "transferred":
            self.answered += 1
            if row["talk_seconds"] is not None:
                self.talk.append(row["talk_seconds"])


def per_agent(rows: Iterable[dict[str, Any]], zone: ZoneInfo | None = None
              ) -> list[AgentFigures]:
    """Each agent's figures from summary rows, by agent id; with `zone`, one per agent and
    day (the day each call started in) before those over all the rows."""
    found: dict[tuple[datetime | None, str], AgentFigures] = {}
    for row in rows:
        agent = row.get("agent_id")
        if not agent:
            continue
        keys: list[datetime | None] = [None]
        if zone is not None:
            local = datetime.fromtimestamp(row["started_at"], zone)
            keys.insert(0, local.replace(hour=0, minute=0, second=0, microsecond=0))
        for key in keys:
            found.setdefault((key, agent), AgentFigures(agent, key)).add(row)
    def order(key: tuple[datetime | None, str]) -> tuple[bool, float, str]:
        return key[0] is None, key[0].timestamp() if key[0] else 0.0, key[1]
    return [found[k] for k in sorted(found, key=order)]


@dataclass(slots=True)
class Report:
    """Everything a report shows, for [start, end) in `zone`."""

    start: datetime
    end: datetime
    zone: str
    definitions: Definitions
    total: Figures
    days: list[Figures]
    half_hours: list[Figures]
    funnel: list[tuple[str, int]]
    drop_off: Counter[str]
    time_to_task: dict[str, list[float]]
    rows: list[dict[str, Any]]
    #: the region reported on (its code), or None: every region's calls
    region: str | None = None


def summaries(conn: Connection, start: float, end: float,
              region: str | None = None) -> list[dict[str, Any]]:
    """The call summaries of calls started in [start, end), in order; of one region's calls
    only with `region` (a code)."""
    query = select(call_summaries).where(call_summaries.c.started_at >= start,
                                         call_summaries.c.started_at < end)
    if region is not None:
        query = query.where(call_summaries.c.region == region)
    return [dict(r._mapping) for r in conn.execute(
        query.order_by(call_summaries.c.started_at, call_summaries.c.call_sid))]


def reached(conn: Connection, call_sids: Sequence[str]) -> Counter[str]:
    """How many of these calls entered each state at least once."""
    found: Counter[str] = Counter()
    for i in range(0, len(call_sids), 500):
        chunk = list(call_sids[i:i + 500])
        pairs = conn.execute(select(call_events.c.call_sid, call_events.c.state).where(
            call_events.c.call_sid.in_(chunk), call_events.c.state.is_not(None)).distinct())
        found.update(state for _, state in pairs)
    return found


def build(conn: Connection, start: datetime, end: datetime, zone: ZoneInfo,
          definitions: Definitions | None = None, region: str | None = None) -> Report:
    """The report of calls started from `start` up to `end` (aware datetimes); of one
    region's calls with `region` (a code), else of every region's."""
    definitions = definitions or Definitions()
    rows = summaries(conn, start.timestamp(), end.timestamp(), region)
    callers = [r for r in rows if r["line"] == "caller"]
    total = Figures(start.astimezone(zone))
    days: dict[datetime, Figures] = {}
    halves: dict[datetime, Figures] = {}
    tasks: dict[str, list[float]] = {}
    for row in rows:
        local = datetime.fromtimestamp(row["started_at"], zone)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        half = local.replace(minute=local.minute - local.minute % 30, second=0, microsecond=0)
        for figures in (total, days.setdefault(day, Figures(day)),
                        halves.setdefault(half, Figures(half))):
            figures.add(row, definitions)
        task = first_task(row)
        if task is not None and row["task_seconds"] is not None:
            tasks.setdefault(task, []).append(row["task_seconds"])
    counts = reached(conn, [r["call_sid"] for r in callers])
    drop = Counter(str(r["detail"]) for r in callers if r["outcome"] == "abandoned_menu")
    return Report(start, end, str(zone), definitions, total,
                  [days[k] for k in sorted(days)], _every_half_hour(halves, zone),
                  [(s, counts[s]) for s in FUNNEL], drop,
                  {t: tasks[t] for t in TASKS if t in tasks}, rows, region)


def first_task(row: dict[str, Any]) -> str | None:
    """What the caller reached first: a result without an agent, or the queue."""
    if row["line"] != "caller" or row["task_seconds"] is None:
        return None
    if row["outcome"] == "self_served" and row["detail"]:
        return str(row["detail"]).split(",")[0]
    return "agent_queue" if row["queue_wait"] is not None else None


def _every_half_hour(halves: dict[datetime, Figures], zone: ZoneInfo) -> list[Figures]:
    """From the first half hour with calls to the last, the empty ones included."""
    if not halves:
        return []
    first, last = min(halves), max(halves)
    out, at = [], first
    while at <= last:
        out.append(halves.get(at) or Figures(at))
        at = (at.astimezone(ZoneInfo("UTC")) + timedelta(minutes=30)).astimezone(zone)
    return out


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def quantiles(values: Iterable[float]) -> tuple[float, float, float] | None:
    """(median, 90th percentile, maximum), or None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return statistics.median(ordered), p90, ordered[-1]
