"""The live wallboard's figures: who is in the menus and in the queue now, the longest wait
now, agents logged in / on a call / free, and today's answered, abandoned, service level and
ASA (from the call records since midnight in the region's time zone). Counts only; for
supervisors alone, each agent's state now and figures today (`agents=True`: agents' ids are
their personal data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ivr.domain import accounts
from ivr.domain.measures import AgentFigures, Definitions, Figures, per_agent, summaries
from ivr.engine.records import QUEUE_STATE, Event, summarise
from ivr.store.schema import call_events, call_summaries, queue_entries, sessions

#: the agents' line states of an agent whose PIN was right
_LOGGED_IN = ("agent_ready", "agent_nobody_waiting", "agent_connect", "agent_menu")


@dataclass(frozen=True, slots=True)
class Board:
    at: datetime  # now, in the region's time zone
    in_menus: int
    in_queue: int
    longest_wait_now: float | None
    agents_logged_in: int
    agents_on_call: int
    today: Figures
    #: for supervisors only: each agent logged in now or with calls today (else None)
    agents: list[AgentNow] | None = None

    @property
    def agents_free(self) -> int:
        return self.agents_logged_in - self.agents_on_call

    def as_dict(self) -> dict[str, object]:
        t = self.today
        return {"at": self.at.isoformat(timespec="seconds"), "in_menus": self.in_menus,
                "in_queue": self.in_queue, "longest_wait_now": self.longest_wait_now,
                "agents_logged_in": self.agents_logged_in,
                "agents_on_call": self.agents_on_call, "agents_free": self.agents_free,
                "answered_today": t.answered, "abandoned_today": t.abandoned,
                "service_level_today": t.service_level, "asa_today": t.asa,
                **({"agents": [a.as_dict() for a in self.agents]} if self.agents is not None
                   else {})}


def has_region(engine: Engine, code: str) -> bool:
    """Does the line hold this region (`?region=CODE`)?"""
    with engine.connect() as conn:
        return code in accounts.region_codes(conn)


@dataclass(frozen=True, slots=True)
class AgentNow:
    """One agent on the supervisors' wallboard: the state now and since when, and today's
    figures (the calls on now included, up to now)."""

    agent_id: str
    state: str  # free | on a call | logged out
    since: datetime | None  # in that state since (logged in now)
    today: AgentFigures

    def as_dict(self) -> dict[str, object]:
        t = self.today
        return {"agent_id": self.agent_id, "state": self.state,
                "since": self.since.isoformat(timespec="seconds") if self.since else None,
                "answered_today": t.answered, "aht_today": t.aht,
                "average_talk_today": t.average_talk, "occupancy_today": t.occupancy}


def board(engine: Engine, now: datetime, definitions: Definitions | None = None,
          agents: bool = False, region: str | None = None) -> Board:
    """The figures at `now`; with `agents` (supervisors only), each agent's too. Of one region
    with `region` (a code: its time zone, its queue, its agents, the calls that are its), else
    of the whole line (in the line's region's time zone)."""
    definitions = definitions or Definitions()
    ts = now.timestamp()
    with engine.connect() as conn:
        zone = accounts.region_for(conn, region).zone
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        live = conn.execute(select(sessions.c.call_sid, sessions.c.state, sessions.c.data)
                            .where(~sessions.c.ended)).all()
        waiting_query = select(queue_entries.c.entered_at).where(
            queue_entries.c.taken_by.is_(None), queue_entries.c.leaving.is_(None),
            queue_entries.c.call_sid.in_(select(sessions.c.call_sid).where(~sessions.c.ended)))
        if region is not None:
            waiting_query = waiting_query.where(queue_entries.c.region == region)
            # another region's call, or one whose region is not picked yet: not this board's
            live = [r for r in live if _line(r.data).get("region") == region]
        waiting = conn.execute(waiting_query).scalars().all()
        rows = summaries(conn, midnight.timestamp(), ts + 1, region)
        panel = _agents(conn, live, rows, midnight.timestamp(), now, region) if agents else None
    menus = logged_in = on_call = 0
    for _sid, state, data in live:
        line = _line(data).get("line")
        if line == "agent":
            logged_in += state in _LOGGED_IN
            on_call += state == "agent_connect"
        elif state != QUEUE_STATE:
            menus += 1
    today = Figures(midnight)
    for row in rows:
        today.add(row, definitions)
    return Board(local, menus, len(waiting), ts - min(waiting) if waiting else None,
                 logged_in, on_call, today, panel)


def _agents(conn: Connection, live: Any, rows: list[dict[str, Any]], since: float,
            now: datetime, region: str | None = None) -> list[AgentNow]:
    """Each agent logged in now or with calls today: the summaries of today's ended calls and,
    summarised up to now, the calls on now of the agents' line and of the callers an agent
    has."""
    ts = now.timestamp()
    logged = {sid: (state, str(_line(data).get("agent") or "")) for sid, state, data in live
              if _line(data).get("line") == "agent" and state in _LOGGED_IN}
    bridged = conn.execute(select(call_events.c.call_sid).where(
        call_events.c.kind == "bridged", call_events.c.at >= since,
        call_events.c.call_sid.not_in(select(call_summaries.c.call_sid)))).scalars().all()
    going = sorted({*logged, *bridged})
    events: dict[str, list[Event]] = {sid: [] for sid in going}
    if going:
        for sid, *event in conn.execute(
                select(call_events.c.call_sid, call_events.c.at, call_events.c.kind,
                       call_events.c.state, call_events.c.detail)
                .where(call_events.c.call_sid.in_(going)).order_by(call_events.c.id)):
            events[sid].append(Event(*event))
    provisional = [summarise([*e, Event(ts, "now", None, None)], "")
                   for e in events.values() if e and e[0].kind == "answered" and e[0].at >= since]
    if region is not None:  # a region's board: its calls on now only
        provisional = [p for p in provisional if p["region"] == region]
    figures = {f.agent_id: f for f in per_agent([*rows, *provisional])}
    states: dict[str, tuple[str, datetime | None]] = {}
    for sid, (state, agent) in logged.items():
        if agent:
            states[agent] = _state_since(state, events.get(sid, []), now)
            figures.setdefault(agent, AgentFigures(agent))
    return [AgentNow(agent, *states.get(agent, ("logged out", None)), figures[agent])
            for agent in sorted(figures)]


def _state_since(state: str, events: list[Event], now: datetime) -> tuple[str, datetime | None]:
    """free or on a call, since the first state event of the agent's current run of it."""
    calling = state == "agent_connect"
    since = None
    for e in reversed(events):
        if e.kind != "state" or e.state is None:
            continue
        if (e.state == "agent_connect") != calling or e.state not in (*_LOGGED_IN,
                                                                      "agent_waiting"):
            break
        since = e.at
    return ("on a call" if calling else "free",
            datetime.fromtimestamp(since, now.tzinfo) if since is not None else None)


def _line(data: str) -> dict[str, Any]:
    """A live call's data (its line, and on the agents' line the agent's id)."""
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
