"""One call's state between webhooks, stored by CallSid so any worker can take the next one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ivr.engine.calldata import CallData
from ivr.store.prepared import Prepared, Transaction, integrity_error
from ivr.store.schema import Periodic, answers, queue_entries, sessions

#: what an ended call keeps of its data: nothing
SEALED = "{}"
#: what an ended call keeps of its caller's number: nothing (PIPL: the number is personal data;
#: the limits that count numbers key on a keyed hash, ivr/domain/callers.py)
NO_CALLER = ""

#: Ended calls are kept this long by default (replayed webhooks of an ended call change
#: nothing), then purged: the setting keep_ended_days.
KEEP_ENDED_SECONDS = 7 * 24 * 3600
#: A call that has not been heard of for this long is over by default (Twilio ends every call
#: within four hours) even if its status callback never came: it is sealed like any ended call.
#: The setting seal_idle_minutes.
MAX_CALL_SECONDS = 4 * 3600
#: New calls seal and purge (three statements) at most this often per process, not each one.
#: The cutoff is earlier by as much, so a call idle for MAX_CALL_SECONDS is still sealed by the
#: time the next call starts, as when every new call sealed: no ID number outlives 4 h of silence
#: once calls come in (with no calls at all, nothing runs either way).
SEAL_EVERY_SECONDS = 60.0


def _param(name: str, column: str) -> Any:
    return bindparam(name, type_=sessions.c[column].type)


_SID = _param("p_sid", "call_sid")
_NOW = _param("p_now", "updated_at")
# Statements are built once: building one costs more than running it (~80 of ~110 us for a
# load), and every webhook runs three of them. Values arrive as parameters (p_*).
_LOAD = select(sessions.c.caller, sessions.c.state, sessions.c.step, sessions.c.data,
               sessions.c.ended).where(sessions.c.call_sid == _SID)
_CREATE = insert(sessions)
_CLAIM = (update(sessions)
          .where(sessions.c.call_sid == _SID, sessions.c.step == _param("p_expected", "step"),
                 ~sessions.c.ended)
          .values(step=_param("p_step", "step"), updated_at=_NOW))
# the claim that also reads the call: one statement for load + claim in the usual case
_CLAIM_LOADED = _CLAIM.returning(sessions.c.caller, sessions.c.state, sessions.c.data)
_SAVE = (update(sessions)
         .where(sessions.c.call_sid == _SID, sessions.c.step == _param("p_step", "step"),
                ~sessions.c.ended)
         .values(state=_param("p_state", "state"), data=_param("p_data", "data"),
                 ended=_param("p_ended", "ended"), caller=_param("p_caller", "caller"),
                 updated_at=_NOW))
# a side webhook's note in a call's data between its steps (not if a step was taken meanwhile)
_AMEND = (update(sessions)
          .where(sessions.c.call_sid == _SID, sessions.c.step == _param("p_step", "step"),
                 ~sessions.c.ended)
          .values(data=_param("p_data", "data")))
_ANSWER = select(answers.c.body).where(answers.c.call_sid == _SID,
                                       answers.c.step == bindparam("p_step", type_=Integer))
_KEEP_ANSWER = insert(answers)
_FORGET_ANSWERS = delete(answers).where(answers.c.call_sid == _SID)
# the end of a call: whatever ended it and whenever, nothing personal is left (the caller's
# number included)
_END = (update(sessions).where(sessions.c.call_sid == _SID)
        .values(ended=True, data=SEALED, caller=NO_CALLER, updated_at=_NOW))
# nothing of a call outlives it in the agent queue either: its entry goes, and a caller an
# agent's call had taken is free for the next agent
_FORGET_QUEUED = delete(queue_entries).where(queue_entries.c.call_sid == _SID)
_RELEASE_TAKEN = (update(queue_entries).where(queue_entries.c.taken_by == _SID)
                  .values(taken_by=None))
_CUTOFF = _param("p_cutoff", "updated_at")
_STALE = select(sessions.c.call_sid).where(~sessions.c.ended, sessions.c.updated_at < _CUTOFF)
_FORGET_STALE_ANSWERS = delete(answers).where(answers.c.call_sid.in_(_STALE.scalar_subquery()))
_FORGET_STALE_QUEUED = delete(queue_entries).where(
    queue_entries.c.call_sid.in_(_STALE.scalar_subquery()))
# an entry whose call has ended or is unknown (its end raced its joining), and a caller
# taken by an agent's call that has ended: gone, and free for the next agent
_LIVE = select(sessions.c.call_sid).where(~sessions.c.ended).scalar_subquery()
_FORGET_ORPHANED = delete(queue_entries).where(queue_entries.c.call_sid.not_in(_LIVE))
_RELEASE_ORPHANED = (update(queue_entries)
                     .where(queue_entries.c.taken_by.is_not(None),
                            queue_entries.c.taken_by.not_in(_LIVE))
                     .values(taken_by=None))
_SEAL_STALE = (update(sessions).where(~sessions.c.ended, sessions.c.updated_at < _CUTOFF)
               .values(ended=True, data=SEALED, caller=NO_CALLER))
# ended calls of an older version still holding their caller's number (`ivr12333 purge`)
_FORGET_ENDED_CALLERS = (update(sessions).where(sessions.c.ended,
                                                sessions.c.caller != NO_CALLER)
                         .values(caller=NO_CALLER))
_PURGE = delete(sessions).where(sessions.c.ended,
                                sessions.c.updated_at < _param("p_before", "updated_at"))


@dataclass(slots=True)
class CallSession:
    """A call's state: the machine state, a step counter for idempotency, and the call data."""

    call_sid: str
    caller: str
    state: str
    step: int = 0
    data: CallData = field(default_factory=CallData)
    ended: bool = False


class SessionStore:
    """Sessions and the answer given at each step. Saving is conditional on the step, so a
    duplicate can't win twice, and on the call not having ended, so nothing reopens it."""

    def __init__(self, engine: Engine, now: Callable[[], datetime], *,
                 keep_ended_seconds: float = KEEP_ENDED_SECONDS,
                 max_call_seconds: float = MAX_CALL_SECONDS) -> None:
        self.engine = engine
        self._now = now
        self._sealing = Periodic(SEAL_EVERY_SECONDS)
        self.keep_ended_seconds = keep_ended_seconds
        self.max_call_seconds = max_call_seconds
        # a webhook's statements, compiled once for this engine and run on the DB-API
        # (ivr/store/prepared.py): the same SQL, without SQLAlchemy's per-execution work
        self._sql = {name: Prepared(engine, statement) for name, statement in (
            ("load", _LOAD), ("create", _CREATE), ("claim", _CLAIM),
            ("claim_loaded", _CLAIM_LOADED), ("save", _SAVE), ("answer", _ANSWER),
            ("keep_answer", _KEEP_ANSWER), ("forget_answers", _FORGET_ANSWERS),
            ("end", _END), ("forget_queued", _FORGET_QUEUED),
            ("release_taken", _RELEASE_TAKEN))}
        self._duplicate = (IntegrityError, integrity_error(engine))

    def _time(self) -> float:
        return self._now().timestamp()

    def load(self, call_sid: str) -> CallSession | None:
        with Transaction(self.engine) as tx:
            row = tx.run(self._sql["load"], {"p_sid": call_sid}).fetchone()
        if row is None:
            return None
        caller, state, step, data, ended = row
        return CallSession(call_sid, caller, state, step, CallData.from_json(data), bool(ended))

    def answer(self, call_sid: str, step: int) -> str | None:
        """The answer given at `step` (1 is the answer to the call's start)."""
        with Transaction(self.engine) as tx:
            row = tx.run(self._sql["answer"], {"p_sid": call_sid, "p_step": step}).fetchone()
        return str(row[0]) if row is not None else None

    def create(self, session: CallSession, answer: str) -> bool:
        """Insert a new call with its first answer; False when another worker created it first.
        Calls that were never heard of again are sealed and old ones purged on the way (at
        most every SEAL_EVERY_SECONDS)."""
        now = self._time()
        row = {"call_sid": session.call_sid,
               "caller": NO_CALLER if session.ended else session.caller,
               "state": session.state, "step": session.step,
               "data": SEALED if session.ended else session.data.to_json(),
               "ended": session.ended, "updated_at": now}
        keep = {"call_sid": session.call_sid, "step": session.step, "body": answer}
        sealing = self._sealing.due(now)
        try:
            if sealing:  # once a minute: the housekeeping's statements, then the call
                with self.engine.begin() as conn:
                    self._seal_stale(conn, now, self.max_call_seconds, self.keep_ended_seconds)
                    conn.execute(_CREATE, row)
                    if not session.ended:
                        conn.execute(_KEEP_ANSWER, keep)
            else:
                with Transaction(self.engine) as tx:
                    tx.run(self._sql["create"], row)
                    if not session.ended:
                        tx.run(self._sql["keep_answer"], keep)
        except self._duplicate:
            if sealing:  # rolled back with the insert: the next call seals
                self._sealing.missed()
            return False
        return True

    def claim(self, call_sid: str, step: int) -> bool:
        """Take step `step` of a call for this request: advance it before any effect. Exactly
        one delivery of a webhook wins; the others wait for its answer."""
        with Transaction(self.engine) as tx:
            cursor = tx.run(self._sql["claim"], {"p_sid": call_sid, "p_expected": step,
                                                 "p_step": step + 1, "p_now": self._time()})
            return bool(cursor.rowcount == 1)

    def claim_current(self, call_sid: str, step: int) -> CallSession | None:
        """`claim` for a request that answers the call's current step, reading the call in
        the same statement: the claimed call as it was at `step`, or None when it was not
        claimed (unknown, ended, another step, or another delivery won): `load` tells which."""
        with Transaction(self.engine) as tx:
            row = tx.run(self._sql["claim_loaded"], {
                "p_sid": call_sid, "p_expected": step, "p_step": step + 1,
                "p_now": self._time()}).fetchone()
        if row is None:
            return None
        caller, state, data = row
        return CallSession(call_sid, caller, state, step, CallData.from_json(data))

    def save(self, session: CallSession, answer: str) -> bool:
        """Write the session and its answer at `session.step`, unless the call has ended
        meanwhile (False). A call that ends here keeps no data, no number and no answers."""
        sql = self._sql
        with Transaction(self.engine) as tx:
            cursor = tx.run(sql["save"], {
                "p_sid": session.call_sid, "p_step": session.step, "p_state": session.state,
                "p_data": SEALED if session.ended else session.data.to_json(),
                "p_ended": session.ended, "p_now": self._time(),
                "p_caller": NO_CALLER if session.ended else session.caller,
            })
            if cursor.rowcount != 1:
                return False
            if session.ended:
                sid = {"p_sid": session.call_sid}
                tx.run(sql["forget_answers"], sid)
                tx.run(sql["forget_queued"], sid)
                tx.run(sql["release_taken"], sid)
            else:
                tx.run(sql["keep_answer"], {"call_sid": session.call_sid,
                                            "step": session.step, "body": answer})
            return True

    def amend(self, session: CallSession) -> bool:
        """Write `session`'s data between its steps (a webhook that is not a step noted
        something), unless a step was taken meanwhile or the call has ended (False)."""
        with self.engine.begin() as conn:
            return bool(conn.execute(_AMEND, {"p_sid": session.call_sid,
                                              "p_step": session.step,
                                              "p_data": session.data.to_json()}).rowcount == 1)

    def end(self, call_sid: str) -> None:
        """Close a call (its status callback): forget its data, its caller's number and its
        answers, keep the row so replays get a hang-up."""
        sql, sid = self._sql, {"p_sid": call_sid}
        with Transaction(self.engine) as tx:
            tx.run(sql["end"], {"p_sid": call_sid, "p_now": self._time()})
            tx.run(sql["forget_answers"], sid)
            tx.run(sql["forget_queued"], sid)
            tx.run(sql["release_taken"], sid)

    def housekeeping(self) -> dict[str, int]:
        """Seal idle calls and purge old ended ones now (`ivr12333 purge`): what was removed,
        counted (idle calls sealed, answers, queue entries, ended sessions, and the numbers an
        older version left in ended calls)."""
        with self.engine.begin() as conn:
            removed = self._seal_stale(conn, self._time(), self.max_call_seconds,
                                       self.keep_ended_seconds, margin=0.0)
            removed["caller numbers of ended calls"] = conn.execute(
                _FORGET_ENDED_CALLERS).rowcount
            return removed

    @staticmethod
    def _seal_stale(conn: Connection, now: float, max_call_seconds: float = MAX_CALL_SECONDS,
                    keep_ended_seconds: float = KEEP_ENDED_SECONDS,
                    margin: float = SEAL_EVERY_SECONDS) -> dict[str, int]:
        params = {"p_cutoff": now - (max_call_seconds - margin),
                  "p_before": now - keep_ended_seconds}
        answers_gone = conn.execute(_FORGET_STALE_ANSWERS, params).rowcount
        queued_gone = conn.execute(_FORGET_STALE_QUEUED, params).rowcount
        sealed = conn.execute(_SEAL_STALE, params).rowcount
        queued_gone += conn.execute(_FORGET_ORPHANED).rowcount
        conn.execute(_RELEASE_ORPHANED)
        purged = conn.execute(_PURGE, params).rowcount
        return {"idle calls sealed": sealed, "answers": answers_gone,
                "queue entries": queued_gone, "ended sessions": purged}
