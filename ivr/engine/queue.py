"""The agent queue as every worker sees it: who waits, in which order, and today's waits.

Twilio holds the calls (<Enqueue>); this table holds what the hotline needs about them, shared
across workers: the order of entry (a caller's position counts those still waiting before it),
the agent's summary (verified or not, last four of the ID number, the last menu), why a
caller was sent out. An entry goes when its caller leaves, is connected, or the call ends
(session.py seals it with the call). What is measured (queue_waits) holds no person.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ivr.domain.callers import CallerKey, forget_expired, lock_caller
from ivr.store.schema import queue_entries, queue_waits, sessions

#: measured waits are kept this long (today's average needs one day)
KEEP_WAITS_SECONDS = 8 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Entry:
    """One caller in the queue."""

    call_sid: str
    entered_at: float
    verified: bool
    last4: str | None
    last_menu: str
    lang: str
    taken_by: str | None
    leaving: str | None
    told_until: float | None = None
    region: str | None = None  # whose queue (v8; None in an older row)


class Moved(enum.Enum):
    """What became of a request to move a queued caller into an agent's room."""

    MOVED = "moved"  # the caller left the queue for the room
    GONE = "gone"  # the caller is no longer in the queue (hung up, left, bridged elsewhere)
    FAILED = "failed"  # nobody knows: the telephony API did not answer as it should


class Bridge(Protocol):
    """Moves one particular queued caller (not the head of the queue) into a conference room,
    and ends a room. Twilio's REST API does it (ivr/web/rest.py): a queue Member updated with
    a Url."""

    def move(self, queue: str, call_sid: str, room: str) -> Moved: ...

    def end_room(self, room: str) -> bool: ...


class NoBridge:
    """No telephony API configured: nobody can be moved, and the agent is told so."""

    def move(self, queue: str, call_sid: str, room: str) -> Moved:
        return Moved.FAILED

    def end_room(self, room: str) -> bool:
        return False


_COLUMNS = (queue_entries.c.call_sid, queue_entries.c.entered_at, queue_entries.c.verified,
            queue_entries.c.last4, queue_entries.c.last_menu, queue_entries.c.lang,
            queue_entries.c.taken_by, queue_entries.c.leaving, queue_entries.c.told_until,
            queue_entries.c.region)


#: calls still in progress: an entry of any other call (its end raced its joining) is never
#: summarised to an agent, and housekeeping removes it (session.py)
_LIVE = select(sessions.c.call_sid).where(~sessions.c.ended).scalar_subquery()


class CallQueue:
    """The queue's rows; every change is one statement (or a conditional update), so two
    workers never both take one caller."""

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self._now = now

    def _time(self) -> float:
        return self._now().timestamp()

    def join(self, call_sid: str, *, verified: bool, last4: str | None, last_menu: str,
             lang: str, caller: CallerKey, places_per_caller: int,
             region: str | None = None) -> bool:
        """The caller enters `region`'s queue (its agents take it), unless `caller` (a
        number's keyed hash, or the withheld class) already holds `places_per_caller` places:
        False. Decided and written in one transaction that holds the caller's lock row, so
        concurrent joins of one number on any worker never pass the cap. Joining again
        changes nothing (True)."""
        now = self._time()
        mine = queue_entries.c.caller_key.in_(caller.hashes)
        try:
            with self.engine.begin() as conn:
                lock_caller(conn, caller, now)
                if conn.execute(select(queue_entries.c.id)
                                .where(queue_entries.c.call_sid == call_sid)).first():
                    return True
                held = conn.execute(select(func.count()).select_from(queue_entries)
                                    .where(mine, queue_entries.c.call_sid.in_(_LIVE))
                                    ).scalar_one()
                if held >= places_per_caller:
                    return False
                ahead = conn.execute(select(func.count()).select_from(queue_entries)
                                     .where(queue_entries.c.taken_by.is_(None),
                                            queue_entries.c.region == region)).scalar_one()
                conn.execute(insert(queue_entries).values(
                    call_sid=call_sid, entered_at=now, verified=verified, last4=last4,
                    last_menu=last_menu[:48], lang=lang, places=int(ahead) + 1,
                    caller_key=caller.current, region=region))
                forget_expired(self.engine, conn, now)
        except IntegrityError:  # another delivery of this turn joined it first
            return True
        return True

    def entry(self, call_sid: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS)
                               .where(queue_entries.c.call_sid == call_sid)).first()
        return Entry(**row._mapping) if row else None

    def position(self, call_sid: str) -> int:
        """1 for the next caller an agent of its region takes; 0 when the caller is not waiting
        (any more)."""
        mine = (select(queue_entries.c.id, queue_entries.c.region)
                .where(queue_entries.c.call_sid == call_sid, queue_entries.c.taken_by.is_(None)))
        with self.engine.connect() as conn:
            row = conn.execute(mine).first()
            if row is None:
                return 0
            return int(conn.execute(
                select(func.count()).select_from(queue_entries)
                .where(queue_entries.c.taken_by.is_(None), queue_entries.c.id <= row.id,
                       queue_entries.c.region == row.region)
            ).scalar_one())

    def told(self, call_sid: str, until: float) -> None:
        """The caller was just told they would be through by `until` (a timestamp)."""
        with self.engine.begin() as conn:
            conn.execute(update(queue_entries).where(queue_entries.c.call_sid == call_sid)
                         .values(told_until=until))

    def mark_leaving(self, call_sid: str, reason: str) -> None:
        """Why the caller is sent out (`key`: they pressed *; `timeout`: the maximum wait)."""
        with self.engine.begin() as conn:
            conn.execute(update(queue_entries).where(queue_entries.c.call_sid == call_sid)
                         .values(leaving=reason))

    def leave(self, call_sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(queue_entries).where(queue_entries.c.call_sid == call_sid))

    def take_next(self, agent_sid: str, region: str | None = None) -> Entry | None:
        """The caller at the head of `region`'s queue, taken for this agent (no other agent
        gets them); None when nobody waits there."""
        for _ in range(10):  # another agent took the head meanwhile: the next one
            with self.engine.begin() as conn:
                head = conn.execute(select(*_COLUMNS, queue_entries.c.id)
                                    .where(queue_entries.c.taken_by.is_(None),
                                           queue_entries.c.leaving.is_(None),
                                           queue_entries.c.region == region,
                                           queue_entries.c.call_sid.in_(_LIVE))
                                    .order_by(queue_entries.c.id).limit(1)).first()
                if head is None:
                    return None
                taken = conn.execute(update(queue_entries).where(
                    queue_entries.c.id == head.id, queue_entries.c.taken_by.is_(None))
                    .values(taken_by=agent_sid)).rowcount
            if taken == 1:
                return Entry(*head[:6], agent_sid, head.leaving, head.told_until, head.region)
        return None

    def release(self, call_sid: str) -> None:
        """Give a taken caller back to the queue (their move failed: they still wait)."""
        with self.engine.begin() as conn:
            conn.execute(update(queue_entries).where(queue_entries.c.call_sid == call_sid)
                         .values(taken_by=None))

    def connected(self, call_sid: str) -> None:
        """An agent has the caller: their wait is measured (nothing else) and the entry goes."""
        now = self._time()
        with self.engine.begin() as conn:
            row = conn.execute(select(queue_entries.c.entered_at, queue_entries.c.places,
                                      queue_entries.c.region)
                               .where(queue_entries.c.call_sid == call_sid)).first()
            if row is None:
                return
            conn.execute(delete(queue_waits).where(queue_waits.c.at < now - KEEP_WAITS_SECONDS))
            conn.execute(insert(queue_waits).values(at=now, waited=now - row.entered_at,
                                                    places=row.places, region=row.region))
            conn.execute(delete(queue_entries).where(queue_entries.c.call_sid == call_sid))

    def waiting(self, region: str | None = None) -> list[Entry]:
        """Everyone in the queue (of `region`, a code, else of every region), in order of
        entry."""
        query = select(*_COLUMNS).order_by(queue_entries.c.id)
        if region is not None:
            query = query.where(queue_entries.c.region == region)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Entry(**r._mapping) for r in rows]

    def waits_since(self, since: float,
                    region: str | None = None) -> tuple[float | None, float | None]:
        """(the average wait of the callers agents of `region` took since `since`, the wait
        per place in the queue at their entry); None without any."""
        with self.engine.connect() as conn:
            n, waited, places = conn.execute(
                select(func.count(), func.sum(queue_waits.c.waited), func.sum(queue_waits.c.places))
                .where(and_(queue_waits.c.at >= since, queue_waits.c.region == region))).one()
        if not n:
            return None, None
        return float(waited) / n, float(waited) / max(int(places), 1)
