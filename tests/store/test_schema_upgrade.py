"""Schema upgrades: a v1 database gets the verify_attempts time index (v2) and the people's
failure window (v3), the region fields and queue tables (v4), no caller number in clear
(v5), loses sessions.last_response (v6, on SQLite and PostgreSQL), make-up working days and the
index of pool payments made for a person (v7), one line for many regions (v8), the agent's
id in the call summaries (v9), its data intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import fresh_pg_url, postgres  # noqa: F401  (fixtures)
from sqlalchemy import inspect, select

from ivr.store.schema import (
    SCHEMA_VERSION,
    call_summaries,
    ensure_schema,
    make_engine,
    schema_version,
    sessions,
    verify_attempts,
)


def _indexes(engine: object) -> set[str]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(verify_attempts)")}


def test_a_new_database_has_the_index(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert ensure_schema(engine) == SCHEMA_VERSION == 9
    assert "ix_verify_attempts_at" in _indexes(engine)
    engine.dispose()


def test_a_v1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # what v1 left behind: no time index, version 1, some rows
        conn.exec_driver_sql("DROP INDEX ix_verify_attempts_at")
        conn.exec_driver_sql("ALTER TABLE people DROP COLUMN window_failures")
        conn.exec_driver_sql("ALTER TABLE people DROP COLUMN window_start")
        conn.execute(schema_version.update().values(version=1))
        conn.execute(verify_attempts.insert(), [{"caller": "+861", "at": 1.0},
                                                {"caller": "+862", "at": 2.0}])
    assert "ix_verify_attempts_at" not in _indexes(engine)
    assert ensure_schema(engine) == SCHEMA_VERSION
    assert "ix_verify_attempts_at" in _indexes(engine)
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
        columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(people)")}
        assert {"window_failures", "window_start"} <= columns
        # v5: the numbers the limits held in clear are gone (they counted one hour)
        assert conn.execute(select(verify_attempts.c.caller)).scalars().all() == []
    assert ensure_schema(engine) == SCHEMA_VERSION  # and again: nothing to do
    engine.dispose()


def test_a_v3_database_gets_the_region_fields_and_the_queue_tables(tmp_path: Path) -> None:
    """v4: the regions table gains holidays, max_queue_wait, line_name(_en) with their
    defaults; the agents and queue tables appear; the region's row is intact."""
    from ivr.domain.accounts import region_for
    from ivr.store.schema import regions

    engine = make_engine(f"sqlite:///{tmp_path / 'v3.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # what v3 left behind
        for column in ("holidays", "max_queue_wait", "line_name", "line_name_en", "workdays"):
            conn.exec_driver_sql(f"ALTER TABLE regions DROP COLUMN {column}")
        for table in ("queue_waits", "queue_entries", "agents"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql(
            "INSERT INTO regions (code, name, pool_relations, max_members, multiple_funders, "
            "commercial_insurance, lockout_after, agent_number, agent_hours, timezone) VALUES "
            "('450100', '南宁市', 'close_relatives', 7, 1, 1, 3, NULL, '[]', 'Asia/Shanghai')")
        conn.execute(schema_version.update().values(version=3))
    assert ensure_schema(engine) == SCHEMA_VERSION == 9
    with engine.connect() as conn:
        tables = {row[0] for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"agents", "queue_entries", "queue_waits"} <= tables
        row = conn.execute(select(regions.c.name, regions.c.holidays, regions.c.max_queue_wait,
                                  regions.c.line_name, regions.c.line_name_en)).one()
        assert tuple(row) == ("南宁市", "[]", 600, "医保服务热线", "Healthcare Security hotline")
        region = region_for(conn, "450100")
    assert (region.holidays, region.max_queue_wait, region.line_name) == ((), 600, "医保服务热线")
    assert ensure_schema(engine) == SCHEMA_VERSION
    engine.dispose()


@pytest.mark.parametrize("backend",
                         ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_v4_database_loses_the_unused_last_response(request: pytest.FixtureRequest,
                                                      tmp_path: Path, backend: str) -> None:
    """v6: sessions.last_response (written "", never read) is dropped; the sessions stay and
    new ones are written without it."""
    url = (f"sqlite:///{tmp_path / 'v4.sqlite3'}" if backend == "sqlite"
           else str(request.getfixturevalue("fresh_pg_url")))
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:  # what v4 left behind: the column, NOT NULL, and a call in it
        conn.exec_driver_sql("ALTER TABLE sessions ADD COLUMN last_response TEXT NOT NULL "
                             "DEFAULT ''")
        conn.exec_driver_sql("INSERT INTO sessions (call_sid, state, step, data, last_response, "
                             "ended, caller, updated_at) VALUES ('CA1', 'main', 2, '{}', '', "
                             "false, '+8613900000001', 1.0)")
        conn.execute(schema_version.update().values(version=4))

    def columns() -> set[str]:
        with engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("sessions")}

    assert "last_response" in columns()
    assert ensure_schema(engine) == SCHEMA_VERSION
    assert "last_response" not in columns()
    with engine.begin() as conn:
        conn.execute(sessions.insert().values(call_sid="CA2", state="welcome", step=1, data="{}",
                                              ended=False, caller="+8613900000002",
                                              updated_at=2.0))
        assert conn.execute(select(sessions.c.call_sid, sessions.c.state)
                            .order_by(sessions.c.call_sid)).all() == [("CA1", "main"),
                                                                      ("CA2", "welcome")]
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    engine.dispose()


def test_a_v4_database_gets_workdays_and_the_index_of_payments_for(tmp_path: Path) -> None:
    """v7: regions.workdays ('[]' for the rows there) and ix_transactions_for."""
    from ivr.domain.accounts import region_for

    engine = make_engine(f"sqlite:///{tmp_path / 'v4.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # what v4 left behind
        conn.exec_driver_sql("DROP INDEX ix_transactions_for")
        conn.exec_driver_sql("ALTER TABLE regions DROP COLUMN workdays")
        conn.exec_driver_sql(
            "INSERT INTO regions (code, name, pool_relations, max_members, multiple_funders, "
            "commercial_insurance, lockout_after, agent_number, agent_hours, timezone, holidays) "
            "VALUES ('450100', '南宁市', 'close_relatives', 7, 1, 1, 3, NULL, '[]', "
            "'Asia/Shanghai', '[\"2026-10-01\"]')")
        conn.execute(schema_version.update().values(version=4))
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(transactions)")}
        assert "ix_transactions_for" in indexes
        region = region_for(conn, "450100")
    assert region.workdays == () and [d.isoformat() for d in region.holidays] == ["2026-10-01"]
    assert ensure_schema(engine) == SCHEMA_VERSION
    engine.dispose()


def test_a_v7_database_gets_many_regions(tmp_path: Path) -> None:
    """v8: regions.name_en, numbers, area_codes (empty for the rows there); the region of
    queue entries and measured waits (NULL for the rows there)."""
    from ivr.domain.accounts import region_for
    from ivr.store.schema import queue_waits

    engine = make_engine(f"sqlite:///{tmp_path / 'v7.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # what v7 left behind
        for table, column in (("regions", "name_en"), ("regions", "numbers"),
                              ("regions", "area_codes"), ("queue_entries", "region"),
                              ("queue_waits", "region")):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.exec_driver_sql(
            "INSERT INTO regions (code, name, pool_relations, max_members, multiple_funders, "
            "commercial_insurance, lockout_after, agent_number, agent_hours, timezone) VALUES "
            "('450100', '南宁市', 'close_relatives', 7, 1, 1, 3, NULL, '[]', 'Asia/Shanghai')")
        conn.exec_driver_sql("INSERT INTO queue_waits (at, waited, places) VALUES (1.0, 30, 2)")
        conn.execute(schema_version.update().values(version=7))
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        region = region_for(conn, "450100")
        assert conn.execute(select(queue_waits.c.waited, queue_waits.c.region)).all() == [
            (30.0, None)]
    assert (region.name, region.name_en, region.numbers, region.area_codes) == (
        "南宁市", "", (), ())
    assert ensure_schema(engine) == SCHEMA_VERSION
    engine.dispose()


def test_a_v8_database_gets_the_agent_id_of_its_call_summaries(tmp_path: Path) -> None:
    """v9: call_summaries.agent_id, empty for the calls summarised before; their rows kept."""
    engine = make_engine(f"sqlite:///{tmp_path / 'v8.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # what v8 left behind: a summary without the column
        conn.exec_driver_sql("ALTER TABLE call_summaries DROP COLUMN agent_id")
        conn.exec_driver_sql(
            "INSERT INTO call_summaries (call_sid, line, started_at, ended_at, lang, region, "
            "outcome, ended_by, repeat, called_back, withheld) VALUES ('CA1', 'caller', 1.0, "
            "2.0, 'zh-CN', '450100', 'transferred', 'caller', 0, 0, 0)")
        conn.execute(schema_version.update().values(version=8))
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(select(call_summaries.c.call_sid, call_summaries.c.outcome,
                                   call_summaries.c.agent_id)).all() == [
            ("CA1", "transferred", None)]
    assert ensure_schema(engine) == SCHEMA_VERSION  # again: nothing to do
    engine.dispose()
