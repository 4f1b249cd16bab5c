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


def board(engine: Engine, now: datetime, definitions: Definitions | None = None) -> Board:
    """The figures at `now`."""
    definitions = definitions or Definitions()
    ts = now.timestamp()
    with engine.connect() as conn:
        zone = accounts.region_for(conn).zone
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        live = conn.execute(select(sessions.c.state, sessions.c.data)
                            .where(~sessions.c.ended)).all()
        waiting = conn.execute(select(queue_entries.c.entered_at).where(
            queue_entries.c.taken_by.is_(None), queue_entries.c.leaving.is_(None),
            queue_entries.c.call_sid.in_(select(sessions.c.call_sid)
                                         .where(~sessions.c.ended)))).scalars().all()
        rows = summaries(conn, midnight.timestamp(), ts + 1)
    menus = logged_in = on_call = 0
    for state, data in live:
        line = _line(data)
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


def _line(data: str) -> str:
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return ""
    return str(value.get("line") or "") if isinstance(value, dict) else ""
