"""Password help before the lock (issue 23 §7), for a region that locks sooner than the call's
three tries: the warning comes before the try that may lock, whatever the number."""

from __future__ import annotations

from typing import Any

from conftest import say
from sqlalchemy import update

from ivr.store.schema import make_engine, regions

JIANGUO = "450102197503150013"
NOBODY = "450102198001010015"


def _lock_after_two(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(regions).values(lockout_after=2))
    engine.dispose()


def _first_wrong(caller: Any, id_number: str) -> str:
    caller.dial().press("1").press("1").press("1").press(id_number + "#").press("1")
    caller.press("000000#")
    return str(caller.heard)


def test_the_warning_comes_before_the_try_that_may_lock(caller: Any, db_url: str) -> None:
    _lock_after_two(db_url)
    known = _first_wrong(caller, JIANGUO)
    assert say("password_last_try", lockout="两") in known
    assert say("password_wrong", left="两") not in known
    caller.hangup()
    unknown = _first_wrong(caller, NOBODY)  # nobody has it: the same words
    assert say("password_last_try", lockout="两") in unknown
    caller.press("000001#")  # the call still has a try: said as such, nothing of a lock
    assert say("password_wrong", left="一") in str(caller.heard)
