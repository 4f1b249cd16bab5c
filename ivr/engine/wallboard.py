"""The live wallboard's figures: who is in the menus and in the queue now, the longest wait
now, agents logged in / on a call / free, and today's answered, abandoned, service level and
ASA (from the call records since midnight in the region's time zone). Counts only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from ivr.domain import accounts
from ivr.domain.measures import Definitions, Figures, summaries
from ivr.engine.records import QUEUE_STATE
from ivr.store.schema import queue_entries, sessions

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
                "service_level_today": t.service_level, "asa_today": t.asa}


def has_region(engine: Engine, code: str) -> bool:
    """Does the line hold this region (`?region=CODE`)?"""
    with engine.connect() as conn:
        return code in accounts.region_codes(conn)


def board(engine: Engine, now: datetime, definitions: Definitions | None = None,
          region: str | None = None) -> Board:
    """The figures at `now`: of one region (a code; its time zone, its queue, its agents, the
    calls that are its), else of the whole line (in the line's region's time zone)."""
    definitions = definitions or Definitions()
    ts = now.timestamp()
    with engine.connect() as conn:
        zone = accounts.region_for(conn, region).zone
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        live = conn.execute(select(sessions.c.state, sessions.c.data)
                            .where(~sessions.c.ended)).all()
        waiting_query = select(queue_entries.c.entered_at).where(
            queue_entries.c.taken_by.is_(None), queue_entries.c.leaving.is_(None),
            queue_entries.c.call_sid.in_(select(sessions.c.call_sid).where(~sessions.c.ended)))
        if region is not None:
            waiting_query = waiting_query.where(queue_entries.c.region == region)
        waiting = conn.execute(waiting_query).scalars().all()
        rows = summaries(conn, midnight.timestamp(), ts + 1, region)
    menus = logged_in = on_call = 0
    for state, data in live:
        line, theirs = _line(data)
        if region is not None and theirs != region:
            continue  # another region's call, or one whose region is not picked yet
        if line == "agent":
            logged_in += state in _LOGGED_IN
            on_call += state == "agent_connect"
        elif state != QUEUE_STATE:
            menus += 1
    today = Figures(midnight)
    for row in rows:
        today.add(row, definitions)
    return Board(local, menus, len(waiting), ts - min(waiting) if waiting else None,
                 logged_in, on_call, today)


def _line(data: str) -> tuple[str, str | None]:
    """A live call's line ("" callers, "agent") and region (None: not known yet)."""
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return "", None
    if not isinstance(value, dict):
        return "", None
    region = value.get("region")
    return str(value.get("line") or ""), str(region) if region else None
