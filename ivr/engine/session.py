"""One call's state between webhooks, stored by CallSid so any worker can take the next one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ivr.data.storage import sessions
from ivr.engine.calldata import CallData

#: Ended calls are kept this long (replayed webhooks of an ended call change nothing), then purged.
KEEP_ENDED_SECONDS = 7 * 24 * 3600


def _param(name: str, column: str) -> Any:
    return bindparam(name, type_=sessions.c[column].type)


# Statements are built once: building one costs more than running it (~80 of ~110 us for a
# load), and every webhook runs three of them. Values arrive as parameters (p_*).
_LOAD = select(sessions.c.caller, sessions.c.state, sessions.c.step, sessions.c.data,
               sessions.c.last_response, sessions.c.ended
               ).where(sessions.c.call_sid == _param("p_sid", "call_sid"))
_CREATE = insert(sessions)
_CLAIM = (update(sessions)
          .where(sessions.c.call_sid == _param("p_sid", "call_sid"),
                 sessions.c.step == _param("p_expected", "step"))
          .values(step=_param("p_step", "step"), last_response="",
                  updated_at=_param("p_now", "updated_at")))
_SAVE = (update(sessions)
         .where(sessions.c.call_sid == _param("p_sid", "call_sid"),
                sessions.c.step == _param("p_expected", "step"))
         .values(state=_param("p_state", "state"), step=_param("p_step", "step"),
                 data=_param("p_data", "data"),
                 last_response=_param("p_last_response", "last_response"),
                 ended=_param("p_ended", "ended"), updated_at=_param("p_now", "updated_at")))
_END = (update(sessions)
        .where(sessions.c.call_sid == _param("p_sid", "call_sid"), ~sessions.c.ended)
        .values(ended=True, data="{}", last_response=_param("p_last_response", "last_response"),
                updated_at=_param("p_now", "updated_at")))
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
    last_response: str = ""
    ended: bool = False


class SessionStore:
    """Load and save sessions; saving is conditional on the step, so a duplicate can't win twice."""

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self.engine = engine
        self._now = now

    def _time(self) -> float:
        return self._now().timestamp()

    def load(self, call_sid: str) -> CallSession | None:
        with self.engine.connect() as conn:
            row = conn.execute(_LOAD, {"p_sid": call_sid}).first()
        if row is None:
            return None
        return CallSession(call_sid, row.caller, row.state, row.step,
                           CallData.from_json(row.data), row.last_response, bool(row.ended))

    def create(self, session: CallSession) -> bool:
        """Insert a new call; False when another worker created it first."""
        try:
            with self.engine.begin() as conn:
                conn.execute(_CREATE, {
                    "call_sid": session.call_sid, "caller": session.caller,
                    "state": session.state, "step": session.step,
                    "data": session.data.to_json(),
                    "last_response": session.last_response, "ended": session.ended,
                    "updated_at": self._time(),
                })
        except IntegrityError:
            return False
        return True

    def claim(self, call_sid: str, step: int) -> bool:
        """Take step `step` of a call for this request: advance it and blank the stored answer.

        Exactly one delivery of a webhook wins; the others see the blank answer and wait.
        """
        with self.engine.begin() as conn:
            result = conn.execute(_CLAIM, {"p_sid": call_sid, "p_expected": step,
                                           "p_step": step + 1, "p_now": self._time()})
            return result.rowcount == 1

    def save(self, session: CallSession, expected_step: int) -> bool:
        """Write the session if nobody advanced it meanwhile; False when the race was lost."""
        with self.engine.begin() as conn:
            result = conn.execute(_SAVE, {
                "p_sid": session.call_sid, "p_expected": expected_step,
                "p_state": session.state, "p_step": session.step,
                "p_data": session.data.to_json(),
                "p_last_response": session.last_response, "p_ended": session.ended,
                "p_now": self._time(),
            })
            return result.rowcount == 1

    def end(self, call_sid: str, final_answer: str) -> bool:
        """Close a call: forget its data (the verified person), keep the row against replays,
        which get `final_answer` from now on."""
        now = self._time()
        with self.engine.begin() as conn:
            result = conn.execute(_END, {"p_sid": call_sid, "p_last_response": final_answer,
                                         "p_now": now})
            conn.execute(_PURGE, {"p_before": now - KEEP_ENDED_SECONDS})
            return result.rowcount == 1
