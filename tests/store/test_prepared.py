"""ivr/store/prepared.py: statements compiled once and run on the pooled DB-API connection
send what SQLAlchemy would, on SQLite and PostgreSQL: values written into a statement, the
dialect's conversions, commit on success, roll back on error, listeners told of each one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from servers import PostgresServer, fresh_pg_url, postgres  # noqa: F401  (fixtures)
from sqlalchemy import Engine, bindparam, event, insert, select, update

from ivr.store import prepared as fast
from ivr.store.schema import ensure_schema, make_engine, sessions

_SID = bindparam("p_sid", type_=sessions.c.call_sid.type)
_ADD = insert(sessions).values(call_sid=_SID, caller="+8613800000000", state="main",
                               step=bindparam("p_step", type_=sessions.c.step.type),
                               data="{}",
                               ended=bindparam("p_ended", type_=sessions.c.ended.type),
                               updated_at=1.0)
# values written into the statement (ended=True, data) travel as parameters too
_SEAL = update(sessions).where(sessions.c.call_sid == _SID).values(ended=True, data="sealed")
_READ = select(sessions.c.step, sessions.c.ended, sessions.c.data).where(
    sessions.c.call_sid == _SID)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    url = (f"sqlite:///{tmp_path / 'ivr.db'}" if request.param == "sqlite"
           else request.getfixturevalue("fresh_pg_url"))
    db = make_engine(url)
    ensure_schema(db)
    request.addfinalizer(db.dispose)
    return db


def _read(engine: Engine, sid: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(_READ, {"p_sid": sid}).first()


def test_statements_write_what_sqlalchemy_reads(engine: Engine) -> None:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with fast.Transaction(engine) as tx:
        tx.run(fast.prepared(engine, _ADD), {"p_sid": "CA1", "p_step": 3, "p_ended": False})
        # a value the statement does not bind is not sent (PostgreSQL would refuse it)
        tx.run(fast.prepared(engine, _ADD), {"p_sid": "CA2", "p_step": 4, "p_ended": False,
                                             "p_unused": "x"})
        cursor = tx.run(fast.prepared(engine, _SEAL), {"p_sid": "CA2"})
        assert cursor.rowcount == 1
    assert len(seen) == 3 and seen[0].startswith("INSERT INTO sessions")
    assert tuple(_read(engine, "CA1")) == (3, False, "{}")
    assert tuple(_read(engine, "CA2")) == (4, True, "sealed")
    with fast.Transaction(engine) as tx:
        row = tx.run(fast.prepared(engine, _READ), {"p_sid": "CA2"}).fetchone()
    assert row[0] == 4 and bool(row[1]) is True


def test_an_error_rolls_the_transaction_back(engine: Engine) -> None:
    with fast.Transaction(engine) as tx:
        tx.run(fast.prepared(engine, _ADD), {"p_sid": "CA1", "p_step": 1, "p_ended": False})
    with pytest.raises(fast.integrity_error(engine)):
        with fast.Transaction(engine) as tx:
            tx.run(fast.prepared(engine, _SEAL), {"p_sid": "CA1"})
            tx.run(fast.prepared(engine, _ADD), {"p_sid": "CA1", "p_step": 2, "p_ended": False})
    assert tuple(_read(engine, "CA1")) == (1, False, "{}")  # the seal went with the duplicate
    # the connection went back to the pool usable
    with fast.Transaction(engine) as tx:
        tx.run(fast.prepared(engine, _SEAL), {"p_sid": "CA1"})
    assert tuple(_read(engine, "CA1")) == (1, True, "sealed")


def test_compiled_once_per_engine(engine: Engine, tmp_path: Path) -> None:
    assert fast.prepared(engine, _SEAL) is fast.prepared(engine, _SEAL)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert fast.prepared(other, _SEAL) is not fast.prepared(engine, _SEAL)
    finally:
        other.dispose()
