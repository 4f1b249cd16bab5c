"""A caller's number is personal data (PIPL): no table outside the imported people holds it in
clear. The per-number limits key on its keyed hash (comparable across a key rotation); an
ended call's session forgets it; an older database loses the numbers it held."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import STAFFED, FixedClock
from servers import fresh_pg_url, keyring_of_tests, postgres  # noqa: F401  (fixtures)
from sqlalchemy import Engine, inspect, select, text

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import callers, pinkeys
from ivr.engine import session as session_module
from ivr.engine.calldata import CallData
from ivr.engine.session import CallSession, SessionStore
from ivr.resources import demo_dataset
from ivr.store.schema import (
    SCHEMA_VERSION,
    caller_locks,
    ensure_schema,
    make_engine,
    metadata,
    schema_version,
    sessions,
    verify_attempts,
)

KEYS = keyring_of_tests()
NUMBER = "+8613912345678"
DIGITS = NUMBER[3:]  # however it is written, these digits must not be found
LI = "450102197503150013"
SID = "CA" + "7" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'numbers.sqlite3'}"
    return str(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    ensure_schema(eng)
    import_dataset(eng, load_file(demo_dataset()), keyring=KEYS)
    yield eng
    eng.dispose()


def numbers_in_tables(engine: Engine) -> list[str]:
    """Every table and column (outside the imported people and regions) holding the digits."""
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in ("people", "regions", "agents"):
                continue
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if DIGITS in str(value):
                        found.append(f"{table.name}.{column}")
    return found


# ---- the hash -----------------------------------------------------------------------------------

def test_the_hash_is_keyed_and_scoped_and_withheld_is_one_class() -> None:
    who = callers.caller_key(KEYS, NUMBER, "verify")
    assert len(who.current) == 64 and DIGITS not in who.current
    assert who.current != callers.caller_key(KEYS, NUMBER, "queue").current
    assert who.current != callers.caller_key(pinkeys.Keyring.of(pinkeys.new_key()),
                                             NUMBER, "verify").current
    assert callers.caller_key(KEYS, "anonymous", "queue") == callers.caller_key(
        KEYS, "+266696687", "queue")
    assert callers.caller_key(KEYS, "", "queue").withheld and not who.withheld
    assert DIGITS not in repr(who)


def test_limits_count_across_a_key_rotation(engine: Engine) -> None:
    """Rows are written under the current key and counted under every key of the keyring: a
    rotation in the middle of the hour gives no number a fresh limit."""
    now = STAFFED.timestamp()
    old = callers.caller_key(KEYS, NUMBER, "verify")
    for n in range(3):
        assert callers.reserve_check(engine, old, 3, now + n)
    assert not callers.reserve_check(engine, old, 3, now + 3)
    rotated = KEYS.with_new_key()
    new = callers.caller_key(rotated, NUMBER, "verify")
    assert new.current != old.current and old.current in new.hashes
    assert not callers.reserve_check(engine, new, 3, now + 4)  # still three in the hour
    assert callers.reserve_check(engine, new, 4, now + 5)  # a fourth, written under the new key
    with engine.connect() as conn:
        stored = conn.execute(select(verify_attempts.c.caller)).scalars().all()
        locks = conn.execute(select(caller_locks.c.caller)).scalars().all()
    assert sorted(stored) == sorted([old.current] * 3 + [new.current])
    assert set(locks) == set(new.hashes)
    assert not callers.reserve_check(engine, new, 4, now + 6)


# ---- sessions forget the number -----------------------------------------------------------------

@pytest.mark.parametrize("ending", ["status callback", "hung up by the line", "never heard of"])
def test_an_ended_call_forgets_its_number(engine: Engine, ending: str) -> None:
    clock = FixedClock(STAFFED)
    store = SessionStore(engine, clock)
    call = CallSession(SID, NUMBER, "main", 1, CallData())
    assert store.create(call, "<Response/>")
    assert store.load(SID).caller == NUMBER  # type: ignore[union-attr]  # while the call goes on
    if ending == "status callback":
        store.end(SID)
    elif ending == "hung up by the line":
        call.ended = True
        assert store.save(call, "<Response><Hangup/></Response>")
    else:  # the housekeeping at the next call's start seals a call silent for 4 hours
        clock.now = STAFFED + timedelta(seconds=session_module.MAX_CALL_SECONDS + 1)
        assert store.create(CallSession("CA" + "8" * 32, "+8613000000000", "main"), "<R/>")
    ended = store.load(SID)
    assert ended is not None and ended.ended and ended.caller == ""
    assert numbers_in_tables(engine) == []


def test_calls_leave_no_number_in_any_table(engine: Engine, url: str,
                                            app_factory: Callable[..., Any]) -> None:
    """A caller verifies (a wrong password, counted), asks for an agent (a queue place); the
    agents' line is called from the same number (a PIN check, counted): while the calls go on,
    only their sessions hold the number; once they end, nothing does."""
    app = app_factory(database_url=url, now=FixedClock(STAFFED))
    client = app.test_client()
    first, second, agent = "CA" + "1" * 32, "CA" + "2" * 32, "CA" + "3" * 32
    client.post("/voice", data={"CallSid": first, "From": NUMBER})
    for step, digits in enumerate(("1", "1", "1", LI, "1", "000000"), start=1):
        assert client.post(f"/voice/step?s={step}",
                           data={"CallSid": first, "Digits": digits}).status_code == 200
    client.post("/voice", data={"CallSid": second, "From": NUMBER})
    client.post("/voice/step?s=1", data={"CallSid": second, "Digits": "1"})
    queued = client.post("/voice/step?s=2", data={"CallSid": second, "Digits": "0"})
    assert b"<Enqueue" in queued.data
    client.post("/agent", data={"CallSid": agent, "From": NUMBER})
    client.post("/voice/step?s=1", data={"CallSid": agent, "Digits": "1001"})
    client.post("/voice/step?s=2", data={"CallSid": agent, "Digits": "000000"})

    with engine.connect() as conn:
        counted = conn.execute(select(verify_attempts.c.caller)).scalars().all()
    assert sorted(counted) == sorted([callers.caller_key(KEYS, NUMBER, "verify").current,
                                      callers.caller_key(KEYS, NUMBER, "agents").current])
    assert sorted(set(numbers_in_tables(engine))) == ["sessions.caller"]
    for sid in (first, second, agent):
        client.post("/status", data={"CallSid": sid, "CallStatus": "completed"})
    assert numbers_in_tables(engine) == []


# ---- the schema step ----------------------------------------------------------------------------

def test_an_older_database_loses_the_numbers_it_held(url: str) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:  # what the version before left behind
        conn.execute(text("DROP INDEX ix_queue_entries_caller_key"))
        conn.execute(text("ALTER TABLE queue_entries DROP COLUMN caller_key"))
        conn.execute(schema_version.update().values(version=4))  # before the hashed numbers
        conn.execute(verify_attempts.insert().values(caller=NUMBER, at=1.0))
        conn.execute(caller_locks.insert().values(caller=NUMBER, at=1.0))
        for sid, ended in ((SID, True), ("CA" + "9" * 32, False)):
            conn.execute(sessions.insert().values(call_sid=sid, state="main", step=1, data="{}",
                                                  ended=ended,
                                                  caller=NUMBER, updated_at=1.0))
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(select(verify_attempts)).all() == []
        assert conn.execute(select(caller_locks)).all() == []
        kept = dict(conn.execute(select(sessions.c.call_sid, sessions.c.caller)).all())
        columns = {c["name"] for c in inspect(conn).get_columns("queue_entries")}
    assert kept == {SID: "", "CA" + "9" * 32: NUMBER}  # a call in progress keeps it
    assert "caller_key" in columns
    assert ensure_schema(engine) == SCHEMA_VERSION  # and again: nothing to do
    engine.dispose()
