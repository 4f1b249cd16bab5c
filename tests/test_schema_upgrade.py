"""Schema upgrades: a v1 database gets the verify_attempts time index (v2) and the people's
failure window (v3), its data intact."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from ivr.data.storage import (
    SCHEMA_VERSION,
    ensure_schema,
    make_engine,
    schema_version,
    verify_attempts,
)


def _indexes(engine: object) -> set[str]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(verify_attempts)")}


def test_a_new_database_has_the_index(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert ensure_schema(engine) == SCHEMA_VERSION == 3
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
    assert ensure_schema(engine) == 3
    assert "ix_verify_attempts_at" in _indexes(engine)
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [3]
        columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(people)")}
        assert {"window_failures", "window_start"} <= columns
        assert conn.execute(select(verify_attempts.c.caller)).scalars().all() == ["+861", "+862"]
    assert ensure_schema(engine) == 3  # and again: nothing to do
    engine.dispose()
