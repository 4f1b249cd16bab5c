"""Retention an operator sets and sees: `ivr12333 purge` seals idle calls and purges ended
ones now, by the settings (IVR_KEEP_ENDED_DAYS, IVR_SEAL_IDLE_MINUTES), and says what it removed
in counts; the same on SQLite and PostgreSQL. The engine's own housekeeping follows the
settings too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import STATUS_URL, VOICE_URL, FixedClock
from servers import fresh_pg_url, key_file_of_tests, keyring_of_tests, postgres, run_cli  # noqa: F401
from sqlalchemy import func, select

from ivr.settings import Settings
from ivr.store.schema import answers, sessions
from ivr.web import create_app
from simulator import Simulator, WsgiTransport

JIANGUO = "450102197503150013"


def _counts(output: str) -> dict[str, int]:
    """The `  name: N` lines of purge's output."""
    found = {}
    for line in output.splitlines():
        name, sep, count = line.strip().rpartition(": ")
        if sep and line.startswith("  ") and count.isdigit():
            found[name] = int(count)
    return found


def _calls_at(url: str) -> tuple[Any, dict[str, str]]:
    """Five calls on the real app, each at its own time before now: A ended 9 days ago, B
    ended 3 days ago, C idle 5 hours with an ID number typed, E idle 2 hours, D live."""
    now = datetime.now(UTC)
    clock = FixedClock(now)
    app = create_app(Settings(database_url=url, pin_key_file=key_file_of_tests()), now=clock)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL)
    sids = {}

    def call(name: str, ago: timedelta, keys: tuple[str, ...], hang_up: bool) -> None:
        clock.now = now - ago  # newest first: no call's start seals or purges another
        placed = simulator.dial(from_=f"+8613900000{len(sids):03d}")
        for k in keys:
            placed.press(k)
        if hang_up:
            placed.hangup()
        sids[name] = placed.call_sid

    call("D", timedelta(minutes=10), ("1",), False)
    call("E", timedelta(hours=2), ("1",), False)
    call("C", timedelta(hours=5), ("1", "1", "1", JIANGUO + "#"), False)
    call("B", timedelta(days=3), ("1",), True)
    call("A", timedelta(days=9), ("1",), True)
    return app, sids


def test_purge_follows_the_settings_and_counts_what_it_removed(database: str) -> None:
    app, sids = _calls_at(database)
    db = app.extensions["ivr12333"].db

    def rows() -> dict[str, tuple[bool, bool, int, bool]]:
        """call -> (ended, holds the ID number, answers kept, holds the caller's number)."""
        with db.connect() as conn:
            found = {}
            for name, sid in sids.items():
                row = conn.execute(select(sessions.c.ended, sessions.c.data, sessions.c.caller)
                                   .where(sessions.c.call_sid == sid)).first()
                kept = conn.execute(select(func.count()).select_from(answers)
                                    .where(answers.c.call_sid == sid)).scalar_one()
                if row is not None:
                    found[name] = (bool(row.ended), JIANGUO in row.data, int(kept),
                                   row.caller.startswith("+86139"))
            return found

    # an ended call keeps no number; live ones do (the per-number limits need it)
    assert rows() == {"A": (True, False, 0, False), "B": (True, False, 0, False),
                      "C": (False, True, 5, True), "D": (False, False, 2, True),
                      "E": (False, False, 2, True)}
    with db.begin() as conn:  # B as an older version left it: its number kept after its end
        conn.execute(sessions.update().where(sessions.c.call_sid == sids["B"])
                     .values(caller="+8613900000003"))

    done = run_cli("purge", "--database-url", database)
    assert done.returncode == 0, done.stderr
    assert "ended sessions 7 days, idle calls sealed after 240 minutes" in done.stdout
    assert _counts(done.stdout) == {"idle calls sealed": 1, "answers": 5, "queue entries": 0,
                                    "ended sessions": 1, "caller numbers of ended calls": 1,
                                    "queue waits": 0,
                                    "idle calls summarised": 1, "call summaries": 0,
                                    "call events": 0, "repeat-call hashes": 2}
    assert rows() == {"B": (True, False, 0, False), "C": (True, False, 0, False),
                      "D": (False, False, 2, True), "E": (False, False, 2, True)}

    # the operator keeps ended calls 2 days and seals after 90 minutes
    shorter = run_cli("purge", "--database-url", database,
                      env={"IVR_KEEP_ENDED_DAYS": "2", "IVR_SEAL_IDLE_MINUTES": "90"})
    assert shorter.returncode == 0, shorter.stderr
    assert "ended sessions 2 days, idle calls sealed after 90 minutes" in shorter.stdout
    assert _counts(shorter.stdout) == {"idle calls sealed": 1, "answers": 2,
                                       "queue entries": 0, "ended sessions": 1,
                                       "caller numbers of ended calls": 0,
                                       "queue waits": 0, "idle calls summarised": 1,
                                       "call summaries": 0, "call events": 0,
                                       "repeat-call hashes": 0}
    assert rows() == {"C": (True, False, 0, False), "D": (False, False, 2, True),
                      "E": (True, False, 0, False)}
    again = run_cli("purge", "--database-url", database)
    assert _counts(again.stdout) == {"idle calls sealed": 0, "answers": 0, "queue entries": 0,
                                     "ended sessions": 0, "caller numbers of ended calls": 0,
                                     "queue waits": 0,
                                     "idle calls summarised": 0, "call summaries": 0,
                                     "call events": 0, "repeat-call hashes": 0}
    db.dispose()


def test_a_bad_retention_setting_is_refused_by_name(db_url: str) -> None:
    done = run_cli("purge", "--database-url", db_url, env={"IVR_KEEP_ENDED_DAYS": "0"})
    assert done.returncode == 2
    assert "IVR_KEEP_ENDED_DAYS='0': Input should be greater than or equal to 1" in done.stderr


def test_the_engine_seals_and_purges_by_the_settings(app_factory: Callable[..., Any],
                                                      clock: FixedClock) -> None:
    """A call idle 90 minutes is sealed by the next call's start when IVR_SEAL_IDLE_MINUTES is
    90, and an ended call purged after IVR_KEEP_ENDED_DAYS=1 (not 4 hours, not 7 days)."""
    app = app_factory(seal_idle_minutes=90, keep_ended_days=1)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL)
    start = clock.now
    ended = simulator.dial(from_="+8613900000101")
    ended.hangup()
    idle = simulator.dial(from_="+8613900000102")
    for keys in ("1", "1", "1", JIANGUO + "#"):
        idle.press(keys)
    db = app.extensions["ivr12333"].db

    def state() -> dict[str, str]:
        with db.connect() as conn:
            return {sid: data for sid, data in conn.execute(
                select(sessions.c.call_sid, sessions.c.data)
                .where(sessions.c.call_sid.in_([ended.call_sid, idle.call_sid])))}

    clock.now = start + timedelta(minutes=91)
    simulator.dial(from_="+8613900000103").hangup()
    assert state() == {ended.call_sid: "{}", idle.call_sid: "{}"}
    clock.now = start + timedelta(days=1, minutes=2)
    simulator.dial(from_="+8613900000104").hangup()
    assert state() == {}
