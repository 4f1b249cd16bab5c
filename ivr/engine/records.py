"""Call records for the people who run the line: an append-only event log per call and one
summary row per ended call, with nothing personal in them (the tables: ivr/store/schema.py).

The turn calls in here after its step is claimed and saved (so a duplicate delivery writes
nothing twice); every method catches its own failure, logs it and returns: a record that
cannot be written never breaks or delays a call beyond its one insert.
Repeat calls are found through a keyed hash of the calling number (ivr/domain/callers.py,
`caller_key` in the scope "repeat", under every PIN key so a rotation loses none) kept
REPEAT_WINDOW_SECONDS after its call in `repeat_callers`; the records get yes/no flags.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from ivr.domain import accounts
from ivr.domain.callers import caller_key
from ivr.domain.pinkeys import Keyring
from ivr.engine.flow import CallEvent, FlowModel
from ivr.engine.prompts import DEFAULT_LOCALE
from ivr.engine.session import CallSession
from ivr.store.schema import Periodic, call_events, call_summaries, repeat_callers

log = logging.getLogger("ivr.records")

#: a call is a repeat (and the earlier one "called back") within this long of the earlier's end
REPEAT_WINDOW_SECONDS = 24 * 3600
#: the states where a caller is served without an agent
RESULT_STATES = ("balance", "pool", "transactions", "policy_pool", "policy_withdrawal",
                 "policy_fraud")
#: the caller's side of the queue
QUEUE_STATE = "agent_queue"

Row = tuple[str, str | None, str | None]  # kind, state, detail

# Statements are built once (building one costs more than running it: session.py).
_SID = bindparam("p_sid", type_=call_events.c.call_sid.type)
_APPEND = insert(call_events)
_EVENTS = (select(call_events.c.at, call_events.c.kind, call_events.c.state,
                  call_events.c.detail)
           .where(call_events.c.call_sid == _SID).order_by(call_events.c.id))
_DIGESTS: BindParameter[str] = bindparam("p_digests", expanding=True)
_EARLIER = select(repeat_callers.c.call_sid).where(repeat_callers.c.digest.in_(_DIGESTS),
                                                   repeat_callers.c.call_sid != _SID)
_REMEMBER = insert(repeat_callers)
_FORGET_HASHES = delete(repeat_callers).where(
    repeat_callers.c.at < bindparam("p_before", type_=repeat_callers.c.at.type))
_WINDOW_FROM_END = (update(repeat_callers).where(repeat_callers.c.call_sid == _SID)
                    .values(at=bindparam("p_at", type_=repeat_callers.c.at.type)))
_SUMMARY = insert(call_summaries)
#: hashes past their window are deleted at most this often per process (and by `purge`)
FORGET_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event."""

    at: float
    kind: str
    state: str | None
    detail: str | None


class CallRecords:
    """Writes the events of each turn and the summary of each ended call."""

    def __init__(self, engine: Engine, now: Callable[[], datetime],
                 keyring: Keyring | None = None) -> None:
        """Without `keyring` (housekeeping only), repeat calls are not looked for."""
        self.engine = engine
        self._now = now
        self.keyring = keyring
        self._forgetting = Periodic(FORGET_EVERY_SECONDS)
        self._region_reading = Periodic(FORGET_EVERY_SECONDS)
        self._region_code: str | None = None

    # ---- hooks of the turn (each one: never raises) ------------------------------------------
    def turn(self, session: CallSession, event: CallEvent, model: FlowModel) -> None:
        """A turn was taken and saved: its events (and, at the call's end, its summary)."""
        try:
            self._turn(session, event, model)
        except Exception:
            log.exception("call=%s call record not written", session.call_sid)

    def bridged(self, call_sid: str, agent_id: str | None = None) -> None:
        """An agent (`agent_id`, when known) has the caller."""
        self._safely(call_sid, lambda conn: self._append(conn, call_sid, [("bridged", None,
                                                                            agent_id)]))

    def failed(self, call_sid: str, state: str) -> None:
        """The turn failed in `state` (the caller heard an apology)."""
        self._safely(call_sid, lambda conn: self._append(conn, call_sid, [("error", state,
                                                                            None)]))

    def ended(self, call_sid: str, by: str = "caller") -> None:
        """The call is over (its status callback): who ended it, unless the line already did,
        and its summary."""
        def end(conn: Connection) -> None:
            events = self._events(conn, call_sid)
            if not events or any(e.kind == "hangup" for e in events):
                return  # unknown to the records, or the line ended it (summarised then)
            self._append(conn, call_sid, [("hangup", None, by)])
            self._summarise(conn, call_sid, [*events, Event(self._time(), "hangup", None, by)])
        self._safely(call_sid, end)

    def _safely(self, call_sid: str, work: Callable[[Connection], None]) -> None:
        try:
            with self.engine.begin() as conn:
                work(conn)
        except IntegrityError:  # a duplicate delivery of the end wrote it first
            log.info("call=%s call record already written", call_sid)
        except Exception:
            log.exception("call=%s call record not written", call_sid)

    # ---- writing ------------------------------------------------------------------------------
    def _turn(self, session: CallSession, event: CallEvent, model: FlowModel) -> None:
        rows: list[Row] = []
        outcomes = model.outcomes() if hasattr(model, "outcomes") else {}
        if event.kind == "start":
            rows.append(("answered", None, event.value or "caller"))
        elif event.kind == "left_queue":
            detail = outcomes.get("leaving") if event.value == "leave" else None
            rows.append(("queue_out", None, (detail or event.value)[:48]))
        elif event.kind == "dialed":
            rows.append(("dialed", None, event.value[:48]))
        if getattr(model, "origin", "") == "welcome" and event.kind != "start":
            rows.append(("language", None, session.data.lang))
        for trigger, dest in model.path:
            rows.append((trigger, dest, None) if trigger in ("silence", "invalid")
                        else ("state", dest, trigger[:48]))
        if "verification" in outcomes and ("next", "card_ambiguous") not in model.path:
            rows.append(("verification", None, outcomes["verification"]))
        if "agent_login" in outcomes:
            rows.append(("agent_login", None, outcomes["agent_login"]))
            if outcomes["agent_login"] == "ok" and session.data.agent:  # whose PIN was right
                rows.append(("agent", None, session.data.agent[:48]))
        if "region" in outcomes:  # the call's region was found or chosen (a code, nothing else)
            rows.append(("region", None, outcomes["region"][:48]))
        if session.ended:  # the line hung up, unless the caller did in the queue
            by = "caller" if event.kind == "left_queue" and event.value == "hangup" else "line"
            rows.append(("hangup", session.state, by))
        with self.engine.begin() as conn:
            if event.kind == "start" and not event.value and self.keyring is not None:
                rows += self._repeat(conn, session, self.keyring)
            self._append(conn, session.call_sid, rows)
            if event.kind == "dialed" and session.data.line == "agent" and session.data.caller:
                # the agent's room ended: the caller's time with the agent ends here too
                self._append(conn, session.data.caller, [("agent_left", None, None)])
            if session.ended:
                self._summarise(conn, session.call_sid)

    def _repeat(self, conn: Connection, session: CallSession, keyring: Keyring) -> list[Row]:
        """Flag repeat calls through the number's keyed hash; a withheld number has none."""
        who = caller_key(keyring, session.caller, "repeat")
        if who.withheld:
            return [("withheld", None, None)]
        now = self._time()
        if self._forgetting.due(now):
            conn.execute(_FORGET_HASHES, {"p_before": now - REPEAT_WINDOW_SECONDS})
        earlier = list(conn.execute(_EARLIER, {"p_digests": list(who.hashes),
                                               "p_sid": session.call_sid}).scalars())
        conn.execute(_REMEMBER, {"digest": who.current, "call_sid": session.call_sid,
                                 "at": now})
        if not earlier:
            return []
        for sid in earlier:
            self._append(conn, sid, [("called_back", None, None)])
        conn.execute(update(call_summaries).where(call_summaries.c.call_sid.in_(earlier))
                     .values(called_back=True))
        return [("repeat", None, None)]

    def _append(self, conn: Connection, call_sid: str, rows: Sequence[Row]) -> None:
        if rows:
            at = self._time()
            conn.execute(_APPEND, [
                {"call_sid": call_sid, "at": at, "kind": k, "state": s, "detail": d}
                for k, s, d in rows])

    @staticmethod
    def _has_hangup(conn: Connection, call_sid: str) -> bool:
        return conn.execute(select(func.count()).select_from(call_events).where(
            call_events.c.call_sid == call_sid, call_events.c.kind == "hangup")).scalar_one() > 0

    @staticmethod
    def _events(conn: Connection, call_sid: str) -> list[Event]:
        return [Event(*row) for row in conn.execute(_EVENTS, {"p_sid": call_sid})]

    def _summarise(self, conn: Connection, call_sid: str,
                   events: list[Event] | None = None) -> None:
        if events is None:
            events = self._events(conn, call_sid)
        if not events or events[0].kind != "answered":
            return  # a call the records never saw start (records written since then only)
        # written once, at the end (a late `called_back` updates it in place)
        conn.execute(_SUMMARY, {"call_sid": call_sid,
                                **summarise(events, self._region(conn))})
        # the repeat window runs from the call's end
        if not any(e.kind == "withheld" for e in events):
            conn.execute(_WINDOW_FROM_END, {"p_sid": call_sid, "p_at": events[-1].at})

    def _time(self) -> float:
        return self._now().timestamp()

    def _region(self, conn: Connection) -> str:
        """The line's region code, read at most once a minute per process."""
        if self._region_code is None or self._region_reading.due(self._time()):
            self._region_code = accounts.region_for(conn).code
        return self._region_code

    # ---- housekeeping -------------------------------------------------------------------------
    def close_idle(self, before: float) -> int:
        """Summarise the calls whose last event is older than `before` and that never ended
        (their status callback was lost): ended by `idle`. How many."""
        with self.engine.begin() as conn:
            summarised = select(call_summaries.c.call_sid)
            stale = list(conn.execute(
                select(call_events.c.call_sid).where(call_events.c.call_sid.not_in(summarised))
                .group_by(call_events.c.call_sid)
                .having(func.max(call_events.c.at) < before)).scalars())
            for sid in stale:
                if not self._has_hangup(conn, sid):
                    self._append(conn, sid, [("hangup", None, "idle")])
                self._summarise(conn, sid)
        return len(stale)

    def purge(self, keep_seconds: float) -> dict[str, int]:
        """Records older than `keep_seconds` and repeat hashes past their window: counts."""
        now = self._time()
        with self.engine.begin() as conn:
            summaries = conn.execute(delete(call_summaries).where(
                call_summaries.c.started_at < now - keep_seconds)).rowcount
            events = conn.execute(delete(call_events).where(
                call_events.c.at < now - keep_seconds)).rowcount
            hashes = conn.execute(delete(repeat_callers).where(
                repeat_callers.c.at < now - REPEAT_WINDOW_SECONDS)).rowcount
        return {"call summaries": summaries, "call events": events,
                "repeat-call hashes": hashes}


def summarise(events: Sequence[Event], region: str) -> dict[str, Any]:
    """One call's summary from its events (the first is `answered`); `region` unless the
    events name the call's region."""
    start, end = events[0].at, events[-1].at
    chosen = _last(events, "region")
    if chosen is not None:  # "": the caller never picked one (every region's only)
        region = chosen.detail or ""
    line = "agent" if events[0].detail == "agent" else "caller"
    states = [e.state for e in events if e.kind in ("state", "silence", "invalid") and e.state]
    kinds = {e.kind for e in events}
    hangup = _last(events, "hangup")
    ended_by = hangup.detail if hangup and hangup.detail else "caller"
    language = _last(events, "language")
    verification = _last(events, "verification")
    queue_in = next((e for e in events if e.kind == "state" and e.state == QUEUE_STATE), None)
    queue_out = (next((e for e in events if e.kind == "queue_out" and queue_in
                       and e.at >= queue_in.at), None))
    bridged = _last(events, "bridged")
    dialed_ok = any(e.kind == "dialed" and e.detail in ("completed", "answered")
                    for e in events)
    results = list(dict.fromkeys(s for s in states if s in RESULT_STATES))
    first_result = next((e.at for e in events if e.kind == "state"
                         and e.state in RESULT_STATES), None)
    queue_wait = None
    if queue_in is not None:
        left = bridged or queue_out or hangup
        queue_wait = (left.at if left else end) - queue_in.at
    last_state = _where_it_ended(events)
    detail: str | None = None
    # with the agent: from the move into the agent's room until either leaves it
    parted = next((e.at for e in events if e.kind == "agent_left" and bridged
                   and e.at >= bridged.at), end)
    talk: float | None = min(end, parted) - bridged.at if bridged else None
    logged_in = None
    agent = _last(events, "agent") if line == "agent" else bridged
    if line == "agent":
        outcome = "agent_line"
        talk, logged_in = _agent_times(events, end)
        detail = f"{sum(1 for e in events if e.kind == 'state' and e.state == 'agent_connect')}"
    elif bridged or dialed_ok or (queue_out and queue_out.detail in ("bridged",
                                                                     "bridging-in-process")):
        outcome = "transferred"
    elif queue_out and queue_out.detail == "timeout":
        outcome = "line_busy"
    elif queue_in and (queue_out is None or queue_out.detail == "hangup") and (
            queue_out is not None or ended_by == "caller"):
        outcome = "abandoned_queue"
    elif results:
        outcome, detail = "self_served", ",".join(results)[:96]
    elif "too_many_attempts" in states or (verification and verification.detail == "locked"):
        outcome = "verification_locked"
    elif "verification_failed" in states:
        outcome = "verification_failed"
    elif "error" in kinds:
        outcome = "error"
    elif ended_by == "caller":
        outcome, detail = "abandoned_menu", last_state
    else:
        outcome, detail = "line_ended", last_state
    # time-to-task: to the first result of a self-served call, else to the queue
    first_task = (first_result if outcome == "self_served"
                  else queue_in.at if queue_in is not None else None)
    return {
        "line": line, "started_at": start, "ended_at": end,
        **{k: (round(v, 2) if v is not None else None) for k, v in (
            ("task_seconds", first_task - start if first_task is not None else None),
            ("queue_wait", queue_wait), ("talk_seconds", talk),
            ("logged_in_seconds", logged_in))},
        "lang": language.detail if language and language.detail else DEFAULT_LOCALE,
        "region": region, "outcome": outcome, "detail": detail, "ended_by": ended_by,
        "verification": verification.detail if verification else None,
        # moved out of the queue into an agent's room by the REST API (Twilio's `redirected`):
        # to the records, as to the caller, bridged to the agent
        "queue_result": (("bridged" if queue_out.detail == "redirected" else queue_out.detail)
                         if queue_out else ("bridged" if bridged else None)),
        "repeat": "repeat" in kinds, "called_back": "called_back" in kinds,
        "withheld": "withheld" in kinds,
        "agent_id": agent.detail if agent is not None else None,
    }


def _where_it_ended(events: Sequence[Event]) -> str | None:
    """The state the call was in before its end, and how it left it when the line ended it
    ("balance:silence": the third silence at the balance menu)."""
    entered = [e for e in events if e.kind in ("state", "silence", "invalid") and e.state]
    if not entered:
        return None
    last = entered[-1]
    if last.state != "goodbye" or len(entered) < 2:
        return last.state
    how = last.kind if last.kind != "state" else last.detail
    return f"{entered[-2].state}:{how}"[:96]


def _last(events: Iterable[Event], kind: str) -> Event | None:
    found = None
    for e in events:
        if e.kind == kind:
            found = e
    return found


def _agent_times(events: Sequence[Event], end: float) -> tuple[float, float | None]:
    """An agent's call: seconds connected to callers (each connect to its dial's end), and
    seconds logged in (from the first time ready to the end)."""
    talk, since = 0.0, None
    for e in events:
        if e.kind == "state" and e.state == "agent_connect":
            since = e.at
        elif e.kind == "dialed" and since is not None:
            talk, since = talk + e.at - since, None
    if since is not None:
        talk += end - since
    ready = next((e.at for e in events if e.kind == "state" and e.state == "agent_ready"), None)
    return talk, (end - ready if ready is not None else None)
