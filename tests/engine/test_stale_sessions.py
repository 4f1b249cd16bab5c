"""A call never heard of again keeps no ID number after 4 hours, though new calls seal stale
ones only once a minute (SEAL_EVERY_SECONDS), not on every call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conftest import STATUS_URL, VOICE_URL, FixedClock

from ivr.engine.session import MAX_CALL_SECONDS, SEAL_EVERY_SECONDS, SEALED
from simulator import Simulator, WsgiTransport

JIANGUO = "450102197503150013"


def _data(app: Any, call_sid: str) -> str:
    from sqlalchemy import select

    from ivr.store.schema import sessions

    with app.extensions["ivr12333"].db.connect() as conn:
        return str(conn.execute(select(sessions.c.data)
                                .where(sessions.c.call_sid == call_sid)).scalar_one())


def test_an_abandoned_call_is_sealed_by_the_next_call_after_four_hours(
        app_factory: Callable[..., Any], clock: FixedClock) -> None:
    app = app_factory()
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL)
    start = clock.now
    abandoned = simulator.dial(from_="+8613800000001")  # a seal runs with this first call
    for keys in ("1", "1", "1", JIANGUO + "#"):
        abandoned.press(keys)
    assert JIANGUO in _data(app, abandoned.call_sid)  # the ID typed, awaiting confirmation
    calls = []

    def new_call(at: timedelta) -> None:
        clock.now = start + at
        call = simulator.dial(from_=f"+86138000001{len(calls):02d}")
        calls.append(call)

    # a seal runs just before the abandoned call is 4 h idle: too early to seal it
    new_call(timedelta(seconds=MAX_CALL_SECONDS - SEAL_EVERY_SECONDS - 1))
    assert JIANGUO in _data(app, abandoned.call_sid)
    new_call(timedelta(seconds=MAX_CALL_SECONDS - 30))  # within a minute of it: no seal run
    # 4 h idle: the next call to start finds it sealed, although the last seal was < 1 min ago
    new_call(timedelta(seconds=MAX_CALL_SECONDS))
    assert _data(app, abandoned.call_sid) == SEALED
    abandoned.press("1")  # a late webhook does not reopen it
    assert abandoned.ended
    for call in calls:
        call.hangup()
