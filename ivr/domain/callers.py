"""Who is calling, as far as limits go: a caller number, or the one class of withheld callers;
and the per-number limit on password checks, reserved atomically across workers."""

from __future__ import annotations

import re
import weakref
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from ivr.store import prepared as fast
from ivr.store.schema import Periodic, caller_locks, verify_attempts

#: every caller whose number is withheld or not a number shares this one class (and its limit)
WITHHELD = "withheld"
#: what carriers and Twilio send instead of a number: the words, and the words typed on a
#: keypad (+266696687 is ANONYMOUS); anything else that is not +digits is withheld as well
_WITHHELD_WORDS = ("anonymous", "restricted", "unavailable", "blocked", "unknown", "private")
_KEYPAD = str.maketrans("abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999")
_WITHHELD_DIGITS = {"+" + w.translate(_KEYPAD) for w in _WITHHELD_WORDS}
_NUMBER = re.compile(r"\+?[0-9]{5,15}")

ATTEMPT_WINDOW_SECONDS = 3600
#: Attempts and caller locks older than the window are deleted at most this often per process
#: and database (two statements), not on every check: they no longer count either way, and no
#: caller number stays more than ATTEMPT_WINDOW_SECONDS + PURGE_EVERY_SECONDS once checks
#: come in.
PURGE_EVERY_SECONDS = 60.0
_purges: weakref.WeakKeyDictionary[Engine, Periodic] = weakref.WeakKeyDictionary()

_CALLER = bindparam("p_caller", type_=verify_attempts.c.caller.type)
_AT = bindparam("p_at", type_=verify_attempts.c.at.type)
_COUNT = select(func.count()).select_from(verify_attempts).where(
    verify_attempts.c.caller == _CALLER,
    verify_attempts.c.at >= bindparam("p_since", type_=verify_attempts.c.at.type))
_RECORD = insert(verify_attempts).values(caller=_CALLER, at=_AT)
_FORGET = delete(verify_attempts).where(
    verify_attempts.c.at < bindparam("p_before", type_=verify_attempts.c.at.type))


def _lock(insert_: Any) -> Any:
    """The caller's row in caller_locks, inserted or touched: the row reservations queue on."""
    statement = insert_(caller_locks).values(caller=_CALLER, at=_AT)
    return statement.on_conflict_do_update(index_elements=["caller"],
                                           set_={"at": statement.excluded.at})


#: the lock's upsert by dialect (its ON CONFLICT is each one's own)
_LOCK = {"sqlite": _lock(sqlite.insert), "postgresql": _lock(postgresql.insert)}
_FORGET_LOCKS = delete(caller_locks).where(
    caller_locks.c.at < bindparam("p_before", type_=caller_locks.c.at.type))


def caller_class(from_: str) -> str:
    """The caller number limits count against: the number, or WITHHELD."""
    value = from_.strip()
    if not _NUMBER.fullmatch(value) or value in _WITHHELD_DIGITS:
        return WITHHELD
    return value


def reserve_check(engine: Engine, caller: str, limit: int, now: float) -> bool:
    """Record one password check for `caller` if fewer than `limit` were made in the past hour;
    False (and nothing recorded) otherwise. Concurrent reservations for one caller queue on its
    row in caller_locks, so the count read is the one this transaction adds to."""
    params = {"p_caller": caller, "p_at": now, "p_since": now - ATTEMPT_WINDOW_SECONDS,
              "p_before": now - ATTEMPT_WINDOW_SECONDS}
    # the statements compiled once and run on the DB-API (ivr/store/prepared.py)
    with fast.Transaction(engine) as tx:
        tx.run(fast.prepared(engine, _LOCK[engine.dialect.name]), params)
        if tx.run(fast.prepared(engine, _COUNT), params).fetchone()[0] >= limit:
            return False
        tx.run(fast.prepared(engine, _RECORD), params)
        if _purge_due(engine, now):
            tx.run(fast.prepared(engine, _FORGET), params)
            tx.run(fast.prepared(engine, _FORGET_LOCKS), params)
    return True


def _purge_due(engine: Engine, now: float) -> bool:
    periodic = _purges.get(engine)
    if periodic is None:
        periodic = _purges.setdefault(engine, Periodic(PURGE_EVERY_SECONDS))
    return periodic.due(now)
