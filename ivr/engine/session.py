"""One call's state between webhooks, stored by CallSid so any worker can take the next one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ivr.engine.calldata import CallData
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

    def _time(self) -> float:
        return self._now().timestamp()

    def load(self, call_sid: str) -> CallSession | None:
        with self.engine.connect() as conn:
            row = conn.execute(_LOAD, {"p_sid": call_sid}).first()
        if row is None:
            return None
        return CallSession(call_sid, row.caller, row.state, row.step,
                           CallData.from_json(row.data), bool(row.ended))

    def answer(self, call_sid: str, step: int) -> str | None:
        """The answer given at `step` (1 is the answer to the call's start)."""
        with self.engine.connect() as conn:
            body = conn.execute(_ANSWER, {"p_sid": call_sid, "p_step": step}).scalar()
        return str(body) if body is not None else None

    def create(self, session: CallSession, answer: str) -> bool:
        """Insert a new call with its first answer; False when another worker created it first.
        Calls that were never heard of again are sealed and old ones purged on the way (at
        most every SEAL_EVERY_SECONDS)."""
        now = self._time()
        try:
            sealing = self._sealing.due(now)
            with self.engine.begin() as conn:
                if sealing:
                    self._seal_stale(conn, now, self.max_call_seconds, self.keep_ended_seconds)
                conn.execute(_CREATE, {
                    "call_sid": session.call_sid,
                    "caller": NO_CALLER if session.ended else session.caller,
                    "state": session.state, "step": session.step,
                    "data": SEALED if session.ended else session.data.to_json(),
                    "ended": session.ended, "updated_at": now,
                })
                if not session.ended:
                    conn.execute(_KEEP_ANSWER, {"call_sid": session.call_sid,
                                                "step": session.step, "body": answer})
        except IntegrityError:
            if sealing:  # rolled back with the insert: the next call seals
                self._sealing.missed()
            return False
        return True

    def claim(self, call_sid: str, step: int) -> bool:
        """Take step `step` of a call for this request: advance it before any effect. Exactly
        one delivery of a webhook wins; the others wait for its answer."""
        with self.engine.begin() as conn:
            result = conn.execute(_CLAIM, {"p_sid": call_sid, "p_expected": step,
                                           "p_step": step + 1, "p_now": self._time()})
            return result.rowcount == 1

    def claim_current(self, call_sid: str, step: int) -> CallSession | None:
        """`claim` for a request that answers the call's current step, reading the call in
        the same statement: the claimed call as it was at `step`, or None when it was not
        claimed (unknown, ended, another step, or another delivery won): `load` tells which."""
        with self.engine.begin() as conn:
            row = conn.execute(_CLAIM_LOADED, {"p_sid": call_sid, "p_expected": step,
                                               "p_step": step + 1,
                                               "p_now": self._time()}).first()
        if row is None:
            return None
        return CallSession(call_sid, row.caller, row.state, step, CallData.from_json(row.data))

    def save(self, session: CallSession, answer: str) -> bool:
        """Write the session and its answer at `session.step`, unless the call has ended
        meanwhile (False). A call that ends here keeps no data, no number and no answers."""
        with self.engine.begin() as conn:
            result = conn.execute(_SAVE, {
                "p_sid": session.call_sid, "p_step": session.step, "p_state": session.state,
                "p_data": SEALED if session.ended else session.data.to_json(),
                "p_ended": session.ended, "p_now": self._time(),
                "p_caller": NO_CALLER if session.ended else session.caller,
            })
            if result.rowcount != 1:
                return False
            if session.ended:
                conn.execute(_FORGET_ANSWERS, {"p_sid": session.call_sid})
                conn.execute(_FORGET_QUEUED, {"p_sid": session.call_sid})
                conn.execute(_RELEASE_TAKEN, {"p_sid": session.call_sid})
            else:
                conn.execute(_KEEP_ANSWER, {"call_sid": session.call_sid, "step": session.step,
                                            "body": answer})
            return True

    def end(self, call_sid: str) -> None:
        """Close a call (its status callback): forget its data, its caller's number and its
        answers, keep the row so replays get a hang-up."""
        with self.engine.begin() as conn:
            conn.execute(_END, {"p_sid": call_sid, "p_now": self._time()})
            conn.execute(_FORGET_ANSWERS, {"p_sid": call_sid})
            conn.execute(_FORGET_QUEUED, {"p_sid": call_sid})
            conn.execute(_RELEASE_TAKEN, {"p_sid": call_sid})

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
