"""The database schema (SQLAlchemy Core) and the engine: SQLite by default, any URL by setting."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from ivr.errors import StorageError


class _NoRows(logging.Filter):
    """Drop SQLAlchemy's DEBUG "Row ..." records: fetched rows hold ID numbers, names, hashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Row %r" not in str(record.msg)


# SQLAlchemy logs every statement at INFO and every fetched row at DEBUG once the root logger
# is that verbose (IVR_LOG_LEVEL): statements stay at WARNING unless an operator set the level
# themselves, and rows never get through, parameters hidden or not.
_sql_log = logging.getLogger("sqlalchemy.engine.Engine")
if not any(isinstance(f, _NoRows) for f in _sql_log.filters):
    _sql_log.addFilter(_NoRows())
if logging.getLogger("sqlalchemy.engine").level == logging.NOTSET:
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

#: the line's spoken name when the region does not give one (neutral: not 12333's nor 12393's)
DEFAULT_LINE_NAME = "医保服务热线"
DEFAULT_LINE_NAME_EN = "Healthcare Security hotline"

#: Bump when the schema changes and add the step to _UPGRADES.
SCHEMA_VERSION = 9

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata, Column("version", Integer, nullable=False)
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

regions = Table(
    "regions",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("name", Text, nullable=False),
    Column("pool_relations", String(20), nullable=False),
    Column("max_members", Integer, nullable=False),
    Column("multiple_funders", Boolean, nullable=False),
    Column("commercial_insurance", Boolean, nullable=False),
    Column("lockout_after", Integer, nullable=False),
    Column("agent_number", String(32)),
    Column("agent_hours", Text, nullable=False),  # JSON list of [days, "HH:MM-HH:MM"]
    Column("timezone", String(64), nullable=False),
    # v4: closed days, the longest wait in the agent queue, the line's spoken name
    Column("holidays", Text, nullable=False, default="[]", server_default="[]"),  # JSON dates
    Column("max_queue_wait", Integer, nullable=False, default=600, server_default="600"),
    Column("line_name", Text, nullable=False, default=DEFAULT_LINE_NAME,
           server_default=DEFAULT_LINE_NAME),
    Column("line_name_en", Text, nullable=False, default=DEFAULT_LINE_NAME_EN,
           server_default=DEFAULT_LINE_NAME_EN),
    # v7: make-up working days (调休上班): weekend dates staffed like a weekday
    Column("workdays", Text, nullable=False, default="[]", server_default="[]"),  # JSON dates
    # v8: one line, many regions: its English name, the numbers that reach it, its callers'
    # area codes (JSON lists)
    Column("name_en", Text, nullable=False, default="", server_default=""),
    Column("numbers", Text, nullable=False, default="[]", server_default="[]"),
    Column("area_codes", Text, nullable=False, default="[]", server_default="[]"),
)

agents = Table(
    "agents",
    metadata,
    # the people who answer the queue; they call /agent and key their id and PIN
    Column("agent_id", String(8), primary_key=True),
    Column("name", Text, nullable=False),
    Column("pin_hash", Text, nullable=False),
    Column("region_code", String(12), ForeignKey("regions.code"), nullable=False, index=True),
    Column("failed_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("locked", Boolean, nullable=False, default=False, server_default="0"),
    # failures in the current 30-day window, as for callers' passwords (accounts.py)
    Column("window_failures", Integer, nullable=False, default=0, server_default="0"),
    Column("window_start", Float, nullable=False, default=0.0, server_default="0"),
)

people = Table(
    "people",
    metadata,
    Column("id_number", String(18), primary_key=True),
    Column("card_number", String(9), unique=True),
    Column("card_digits", String(9), index=True),
    Column("name", Text, nullable=False),
    Column("scheme", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("retired", Boolean, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("phone", String(32)),
    # v8: indexed: the line's regions with people are looked up at every call's start
    Column("region_code", String(12), ForeignKey("regions.code"), nullable=False, index=True),
    Column("balance_fen", BigInteger),
    Column("monthly_credit_fen", BigInteger),
    Column("as_of", Date),
    Column("failed_attempts", Integer, nullable=False, default=0),  # in a row
    Column("locked", Boolean, nullable=False, default=False),
    # failures since window_start (a Unix time), bounded over a longer window than in a row
    Column("window_failures", Integer, nullable=False, default=0, server_default="0"),
    Column("window_start", Float, nullable=False, default=0.0, server_default="0"),
)

bindings = Table(
    "bindings",
    metadata,
    Column("funder", String(18), primary_key=True),
    Column("member", String(18), primary_key=True, index=True),
    Column("relationship", String(24), nullable=False),
    Column("since", Date, nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("id_number", String(18), nullable=False),
    Column("date", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("for_id", String(18)),
    Index("ix_transactions_person_date", "id_number", "date"),
    # v7: the pool payments made for a person, heard in their recent transactions
    Index("ix_transactions_for", "for_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("state", String(48), nullable=False),
    Column("step", Integer, nullable=False),
    Column("data", Text, nullable=False),  # JSON: language, counters, verified person ...
    Column("ended", Boolean, nullable=False, default=False),
    Column("caller", String(64), nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
)

answers = Table(
    "answers",
    metadata,
    # the answer given at each step of a call in progress, for replays; gone when it ends
    Column("call_sid", String(64), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("body", Text, nullable=False),
)

verify_attempts = Table(
    "verify_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # v5: the keyed hash of the caller's class (ivr/domain/callers.py), never a number
    Column("caller", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_verify_attempts_caller_at", "caller", "at"),
    # every password check purges attempts older than the window: without this index the
    # purge read the whole table (an hour of attempts) on every check
    Index("ix_verify_attempts_at", "at"),
)


caller_locks = Table(
    "caller_locks",
    metadata,
    # one row per caller (its keyed hash) with checks or a queue place in the past hour:
    # reserving a check or a place locks it first
    Column("caller", String(64), primary_key=True),
    Column("at", Float, nullable=False, index=True),
)


queue_entries = Table(
    "queue_entries",
    metadata,
    # a caller waiting for an agent, in order of entry (id); only what the agent's summary
    # needs, deleted when the call leaves the queue or ends
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("entered_at", Float, nullable=False),
    Column("places", Integer, nullable=False),  # its position when it entered
    Column("verified", Boolean, nullable=False),
    Column("last4", String(4)),  # of the verified ID number
    Column("last_menu", String(48), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("taken_by", String(64), index=True),  # the agent's CallSid once an agent takes it
    Column("leaving", String(16)),  # why the wait document sent <Leave>: key, timeout
    # when the caller was last told they would be through (an estimate never grows)
    Column("told_until", Float),
    # v5: the keyed hash of the calling number (ivr/domain/callers.py), never the number:
    # places per number are capped
    Column("caller_key", String(64), index=True),
    # v8: the region whose queue it is (its agents take it); NULL in a v7 row: the line's
    Column("region", String(12)),
)

queue_waits = Table(
    "queue_waits",
    metadata,
    # how long each caller an agent took had waited (nothing else): today's average wait
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("waited", Float, nullable=False),
    Column("places", Integer, nullable=False),  # its position when it entered the queue
    Column("region", String(12)),  # v8: whose queue
)

# ---- call records: privacy-free, for the people who run the line (ivr/engine/records.py) ------
# No caller number, ID or card number, name, key, balance or amount, not even hashed: a call is
# named by its CallSid, its states by the flow's names.

call_events = Table(
    "call_events",
    metadata,
    # append-only: what happened in a call, in order (answered, states entered, invalid and
    # silent turns, verification result, queue in and out, bridge, hang-up and who ended it)
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False),
    Column("at", Float, nullable=False, index=True),
    Column("kind", String(24), nullable=False),
    Column("state", String(48)),
    Column("detail", String(48)),
    Index("ix_call_events_call", "call_sid", "id"),
)

call_summaries = Table(
    "call_summaries",
    metadata,
    # one row per ended call, derived from its events (written again if a late event comes)
    Column("call_sid", String(64), primary_key=True),
    Column("line", String(8), nullable=False),  # caller | agent
    Column("started_at", Float, nullable=False, index=True),
    Column("ended_at", Float, nullable=False),
    Column("lang", String(8), nullable=False),
    Column("region", String(12), nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("detail", String(96)),  # what was self-served, or the state a caller left in
    Column("ended_by", String(8), nullable=False),  # caller | line | idle
    Column("verification", String(8)),  # the last result: ok | wrong | locked | limit
    Column("task_seconds", Float),  # start to the first result or the queue (time-to-task)
    Column("queue_wait", Float),  # seconds in the agent queue
    Column("queue_result", String(24)),  # bridged | hangup | key | timeout | ...
    Column("talk_seconds", Float),  # bridged to an agent until the end (agents: connected)
    Column("logged_in_seconds", Float),  # the agents' line: from first ready to the end
    Column("repeat", Boolean, nullable=False),  # within 24 h of an earlier call, same number
    Column("called_back", Boolean, nullable=False),  # the same number called within 24 h
    Column("withheld", Boolean, nullable=False),  # no number: out of the repeat measures
    # v9: the agent's id (the agents' line: whose PIN was right; a caller: the agent they were
    # bridged to). The agents' personal data: shown only to supervisors (docs/reports.md)
    Column("agent_id", String(8)),
)

repeat_callers = Table(
    "repeat_callers",
    metadata,
    # the keyed hash of a calling number (ivr/domain/callers.py), for 24 hours after its
    # call: only to flag repeat calls in the records above
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, index=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False, index=True),
)


def _index_attempts_by_time(conn: Connection) -> None:
    """v2: ix_verify_attempts_at (v1 databases have the table without it)."""
    next(i for i in verify_attempts.indexes if i.name == "ix_verify_attempts_at").create(
        conn, checkfirst=True)


def _failure_window(conn: Connection) -> None:
    """v3: people.window_failures and window_start (failures bounded over a window)."""
    have = {c["name"] for c in inspect(conn).get_columns("people")}
    for name, kind in (("window_failures", "INTEGER"), ("window_start", "FLOAT")):
        if name not in have:
            conn.exec_driver_sql(
                f"ALTER TABLE people ADD COLUMN {name} {kind} NOT NULL DEFAULT 0")


def _region_v4(conn: Connection) -> None:
    """v4: regions.holidays, max_queue_wait, line_name, line_name_en (the agents and queue
    tables are new tables: create_all made them)."""
    have = {c["name"] for c in inspect(conn).get_columns("regions")}
    for column in ("holidays", "max_queue_wait", "line_name", "line_name_en"):
        if column not in have:
            col = regions.c[column]
            kind = col.type.compile(dialect=conn.dialect)
            default = str(col.server_default.arg)  # type: ignore[union-attr]
            literal = default if default.isdigit() else "'" + default.replace("'", "''") + "'"
            conn.exec_driver_sql(
                f"ALTER TABLE regions ADD COLUMN {column} {kind} NOT NULL DEFAULT {literal}")


def _hashed_numbers(conn: Connection) -> None:
    """v5: no caller number in clear outside the imported people. The per-number limits'
    rows held numbers: they are dropped (they count one hour; the keyring that hashes them
    now is not the schema's to hold); ended sessions forget their number; queue entries get
    `caller_key` (the number's keyed hash) for the places-per-number cap."""
    have = {c["name"] for c in inspect(conn).get_columns("queue_entries")}
    if "caller_key" not in have:
        conn.exec_driver_sql("ALTER TABLE queue_entries ADD COLUMN caller_key VARCHAR(64)")
        next(i for i in queue_entries.indexes if "caller_key" in i.columns).create(
            conn, checkfirst=True)
    conn.execute(verify_attempts.delete())
    conn.execute(caller_locks.delete())
    conn.execute(sessions.update().where(sessions.c.ended).values(caller=""))


def _drop_last_response(conn: Connection) -> None:
    """v6: sessions.last_response goes (written as "" and never read since answers are kept
    per step in `answers`). SQLite has DROP COLUMN since 3.35 (Python 3.11 ships later)."""
    if "last_response" in {c["name"] for c in inspect(conn).get_columns("sessions")}:
        conn.exec_driver_sql("ALTER TABLE sessions DROP COLUMN last_response")


def _workdays_and_payments_for(conn: Connection) -> None:
    """v7: regions.workdays (make-up working days) and ix_transactions_for (pool payments made
    for a person)."""
    if "workdays" not in {c["name"] for c in inspect(conn).get_columns("regions")}:
        conn.exec_driver_sql(
            "ALTER TABLE regions ADD COLUMN workdays TEXT NOT NULL DEFAULT '[]'")
    next(i for i in transactions.indexes if i.name == "ix_transactions_for").create(
        conn, checkfirst=True)


def _many_regions(conn: Connection) -> None:
    """v8: one line, many regions: regions.name_en, numbers and area_codes; the region of each
    queue entry and measured wait (NULL in older rows: the line's region); people by region."""
    for table, columns in (
            ("regions", (("name_en", "TEXT NOT NULL DEFAULT ''"),
                         ("numbers", "TEXT NOT NULL DEFAULT '[]'"),
                         ("area_codes", "TEXT NOT NULL DEFAULT '[]'"))),
            ("queue_entries", (("region", "VARCHAR(12)"),)),
            ("queue_waits", (("region", "VARCHAR(12)"),))):
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        for name, kind in columns:
            if name not in have:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    next(i for i in people.indexes if i.name == "ix_people_region_code").create(
        conn, checkfirst=True)


def _agent_ids(conn: Connection) -> None:
    """v9: call_summaries.agent_id (per-agent figures; empty for the calls summarised before)."""
    if "agent_id" not in {c["name"] for c in inspect(conn).get_columns("call_summaries")}:
        conn.exec_driver_sql("ALTER TABLE call_summaries ADD COLUMN agent_id VARCHAR(8)")


# version reached -> function upgrading the schema from the previous version
_UPGRADES: dict[int, Any] = {2: _index_attempts_by_time, 3: _failure_window, 4: _region_v4,
                             5: _hashed_numbers, 6: _drop_last_response,
                             7: _workdays_and_payments_for, 8: _many_regions,
                             9: _agent_ids}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_file(path: Path) -> None:
    """The database holds names, ID numbers, balances and password hashes: its folder (when
    created here) is 0700 and the file 0600, whatever the umask. SQLite gives its -wal and -shm
    files the database file's mode."""
    try:
        missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:  # connecting fails: "cannot open the database", not a crash here
        pass


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and their folder created.

    Statement parameters are hidden from errors and logs: they hold ID numbers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            _private_file(Path(database).expanduser())
        if database in ("", ":memory:"):  # one shared in-memory database, not one per connection
            engine = create_engine(url, poolclass=StaticPool, hide_parameters=True,
                                   connect_args={"check_same_thread": False})
        else:  # wait 5 s for a lock, unless the URL says ?timeout=SECONDS (the driver's own)
            wait = {} if "timeout" in parsed.query else {"timeout": 5.0}
            engine = create_engine(url, hide_parameters=True, connect_args=wait)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def ensure_schema(engine: Engine) -> int:
    """Create the schema on an empty database, or upgrade it step by step; returns the version."""
    try:
        with engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
            version = conn.execute(select(schema_version.c.version)).scalar()
            if version is None:
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                return SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"database schema v{version} is newer than this program (v{SCHEMA_VERSION})"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _UPGRADES[target](conn)
                conn.execute(schema_version.update().values(version=target))
            return SCHEMA_VERSION
    except StorageError:
        raise
    except Exception as exc:  # database unreachable, locked or not a database
        raise StorageError(f"cannot open the database: {exc.__class__.__name__}: {exc}") from exc


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Iterable[str],
    keep: Iterable[str] = (),
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL; `keep` columns aren't touched."""
    if not rows:
        return
    key_set, keep_set = set(keys), set(keep)
    dialect = conn.dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
    if insert is None:
        raise StorageError(f"upsert is not supported on {dialect}")
    stmt: Any = insert(table)
    updates = {
        c: stmt.excluded[c] for c in rows[0] if c not in key_set and c not in keep_set
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key_set), set_=updates), rows)


class Periodic:
    """Housekeeping of the call tables that need not run on every request, per process:
    `due(now)` is True at most once every `seconds` of the caller's clock (a Unix time), and
    again whenever that clock went back (tests, a corrected clock). Thread-safe; `missed()`
    makes the next call due (when the housekeeping it allowed was rolled back)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        with self._lock:
            last = self._last
            if last is not None and last <= now < last + self.seconds:
                return False
            self._last = now
            return True

    def missed(self) -> None:
        with self._lock:
            self._last = None


#: tables about calls in progress, not about people: a copy of a database leaves them empty
CALL_TABLES = ("sessions", "answers", "verify_attempts", "caller_locks", "queue_entries",
               "queue_waits", "call_events", "call_summaries", "repeat_callers")


def copy_database(source: Engine, target: Engine) -> None:
    """Copy the people, accounts, bindings and transactions of `source` into the empty
    `target` (a SQLite file, any source), leaving the call tables empty."""
    if source.dialect.name == "sqlite" and target.dialect.name == "sqlite":
        src, dst = source.raw_connection(), target.raw_connection()
        try:  # the SQLite online backup: consistent even while the source is in use
            src.driver_connection.backup(dst.driver_connection)  # type: ignore[union-attr]
        finally:
            src.close()
            dst.close()
        ensure_schema(target)
        with target.begin() as conn:
            for name in CALL_TABLES:
                conn.execute(metadata.tables[name].delete())
        return
    ensure_schema(target)
    with source.connect() as read, target.begin() as write:
        for table in metadata.sorted_tables:
            if table.name in CALL_TABLES or table is schema_version:
                continue
            rows = [dict(row._mapping) for row in read.execute(table.select())]
            if rows:
                write.execute(table.delete())
                write.execute(table.insert(), rows)
