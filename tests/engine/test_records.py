"""Call records: scripted calls whose paths are designed give exactly their summaries; repeat
calls are flagged through a keyed hash kept 24 h, withheld numbers left out; a record that
cannot be written never breaks the call."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import CALLS, STATUS_URL, VOICE_URL, FixedClock, play_script, say
from servers import fresh_pg_url, keyring_of_tests, postgres  # noqa: F401  (fixtures)
from sqlalchemy import create_engine, select

from ivr.store.schema import (
    call_events,
    call_summaries,
    repeat_callers,
)
from simulator import Simulator, WsgiTransport


def _summaries(db_url: str) -> list[dict[str, Any]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(call_summaries).order_by(call_summaries.c.started_at,
                                            call_summaries.c.outcome))]
    engine.dispose()
    return rows


LI_BALANCE_SAID = say("balance_employee", as_of="2026年11月21日",
                      balance="一千二百三十四元五角六分", credit="一百五十元",
                      month="2026年11月")
KEYS = ("line", "outcome", "detail", "ended_by", "verification", "queue_result", "lang")


def test_designed_calls_give_their_designed_summaries(app_factory: Callable[..., Any],
                                                       db_url: str) -> None:
    for name in ("queue_two_callers.yaml", "verification_failed.yaml", "silence_limit.yaml",
                 "queue_max_wait.yaml", "balance_by_id.yaml", "english_call.yaml"):
        assert play_script(app_factory, CALLS / name).passed, name
    rows = _summaries(db_url)
    got = sorted(tuple(str(r[k]) for k in KEYS) for r in rows)
    assert got == sorted(tuple(str(v) for v in row) for row in [
        # two callers and an agent: the first is taken by the agent; the second heard the
        # balance, waited, left the queue with * and hung up at the main menu (the first, moved
        # into the agent's room, ends there: its end is heard from the status callback)
        ("caller", "transferred", None, "caller", None, "bridged", "zh-CN"),
        ("caller", "self_served", "balance", "caller", "ok", "key", "zh-CN"),
        ("agent", "agent_line", "1", "caller", None, None, "zh-CN"),
        # three wrong passwords, then the queue, where the caller hangs up
        ("caller", "abandoned_queue", None, "caller", "wrong", "hangup", "zh-CN"),
        # three silences at the main menu: the line ends the call
        ("caller", "line_ended", "main:silence", "line", None, None, "zh-CN"),
        # the longest wait reached: the line is busy
        ("caller", "line_busy", None, "line", None, "timeout", "en-US"),
        ("caller", "self_served", "balance", "caller", "ok", None, "zh-CN"),
        ("caller", "self_served", "balance,transactions", "caller", "ok", None, "en-US"),
    ])
    by_outcome = {r["outcome"]: r for r in rows}
    # the agent calls in 95 s after the first caller, who entered the queue ~18 s in; the
    # agent keys id and PIN before the bridge
    assert 77 < by_outcome["transferred"]["queue_wait"] < 107
    # in the agent's room from the move: the agent's summary (about 8 s), then the 30 s talk
    assert 30.0 < by_outcome["transferred"]["talk_seconds"] < 45.0
    assert 600 <= by_outcome["line_busy"]["queue_wait"] < 700  # the region's max wait: 600 s
    assert by_outcome["agent_line"]["talk_seconds"] > 30
    assert {r["repeat"] for r in rows} == {False}  # every script calls from its own number


def _repeat_rows(app: Any) -> list[tuple[str, Any]]:
    with app.extensions["ivr12333"].db.connect() as conn:
        return list(conn.execute(select(repeat_callers.c.digest, repeat_callers.c.call_sid)))


def test_repeat_calls_within_a_day_are_flagged_withheld_numbers_left_out(
        app_factory: Callable[..., Any], clock: FixedClock, database: str) -> None:
    db_url = database
    app = app_factory(database_url=database)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL)
    start = clock.now
    number = "+8613900000777"

    def call(after: timedelta, from_: str) -> str:
        clock.now = start + after
        placed = simulator.dial(from_=from_)
        placed.press("1")
        clock.now += timedelta(seconds=30)
        placed.hangup()
        return placed.call_sid

    first = call(timedelta(0), number)
    second = call(timedelta(hours=23), number)  # within 24 h of the first's end: a repeat
    third = call(timedelta(hours=48), number)  # 25 h after the second: not a repeat
    hidden = [call(timedelta(hours=49, minutes=m), "anonymous") for m in (0, 5)]
    flags = {r["call_sid"]: (r["repeat"], r["called_back"], r["withheld"])
             for r in _summaries(db_url)}
    assert flags == {first: (False, True, False), second: (True, False, False),
                     third: (False, False, False), hidden[0]: (False, False, True),
                     hidden[1]: (False, False, True)}
    # the table holds a keyed hash, not the number nor its plain hash, and only of the
    # calls of the last 24 h (the first two went with the third's start)
    rows = _repeat_rows(app)
    assert [sid for _, sid in rows] == [third]
    assert rows[0][0] not in (number, hashlib.sha256(number.encode()).hexdigest())
    assert len(rows[0][0]) == 64


def test_a_record_that_cannot_be_written_never_breaks_the_call(
        app: Any, simulator: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    with app.extensions["ivr12333"].db.begin() as conn:
        call_events.drop(conn)
    with caplog.at_level(logging.ERROR, logger="ivr.records"):
        call = simulator.dial(from_="+8613900000888")
        for keys in ("1", "1", "1", "450102197503150013#", "1", "135790#"):
            call.press(keys)
        assert LI_BALANCE_SAID in call.heard
        call.hangup()
    failures = [r for r in caplog.records if r.name == "ivr.records"]
    assert len(failures) >= 7  # every turn and the end, each logged
    assert {r.getMessage() for r in failures} == {f"call={call.call_sid} call record not "
                                                  "written"}
