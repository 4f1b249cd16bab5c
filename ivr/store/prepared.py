"""The hot statements of a webhook, compiled once per engine and run on the pooled DB-API
connection: the same SQL SQLAlchemy would send, for SQLite and PostgreSQL alike, without its
per-execution machinery (cache lookup, parameter construction, execution context, result
object: about 85 of 140 µs for a one-statement transaction on SQLite).

The statements are still SQLAlchemy Core (ivr/store/schema.py's tables), compiled by the
engine's own dialect with its parameter style and bind processors; the connection is the
pool's, with its checkout events and pre-ping, and a transaction commits on success and rolls
back on any error. Statement listeners (`before_cursor_execute`, which the statement bounds of
tests/store/test_statements.py and bench/profile_webhooks.py count) are told of each statement,
without a SQLAlchemy connection or execution context (None), since there is none.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import ClauseElement


class Prepared:
    """A Core statement compiled for `engine`'s dialect: its SQL text and how parameters (a
    mapping by bind name) are passed to the driver."""

    __slots__ = ("sql", "_order", "_names", "_processors", "_constants")

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        compiled: Any = statement.compile(dialect=engine.dialect)
        self.sql: str = compiled.string
        #: bind names in the order of a positional parameter style (SQLite's qmark), else None
        self._order: tuple[str, ...] | None = (tuple(compiled.positiontup)
                                               if compiled.positional else None)
        #: bind names of a named parameter style (PostgreSQL's pyformat): only these are sent
        self._names: tuple[str, ...] = tuple(compiled.binds)
        # values written into the statement (`.values(ended=True)`): bound like the others
        self._constants: dict[str, Any] = {
            name: bind.effective_value for name, bind in compiled.binds.items()
            if not bind.required}
        # the dialect's conversions of a parameter (e.g. a Boolean to 0/1 on SQLite)
        self._processors: dict[str, Callable[[Any], Any]] = dict(
            getattr(compiled, "_bind_processors", {}) or {})

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """`values` as the driver takes them for this statement."""
        if self._constants:
            values = {**self._constants, **values}
        processors = self._processors
        if processors:
            values = {k: processors[k](v) if k in processors else v for k, v in values.items()}
        if self._order is not None:
            return tuple(values[name] for name in self._order)
        return {name: values[name] for name in self._names}


class Transaction:
    """One pooled connection, one transaction: `with Transaction(engine) as tx:` runs
    `tx.run(prepared, values)`; commits when the block ends, rolls back if it raises.
    Driver errors are the DB-API's own (`integrity_error(engine)` names the duplicate key's)."""

    __slots__ = ("_engine", "_connection", "_cursor", "_listeners")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._cursor: Any = None
        self._listeners: Any = None

    def __enter__(self) -> Transaction:
        self._connection = self._engine.raw_connection()
        self._cursor = self._connection.cursor()
        dispatch = self._engine.dispatch.before_cursor_execute
        self._listeners = dispatch if dispatch else None
        return self

    def run(self, prepared: Prepared, values: Mapping[str, Any]) -> Any:
        """Execute `prepared` with `values`; the DB-API cursor (rowcount, fetchone)."""
        parameters = prepared.parameters(values)
        if self._listeners is not None:
            self._listeners(None, self._cursor, prepared.sql, parameters, None, False)
        self._cursor.execute(prepared.sql, parameters)
        return self._cursor

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        connection = self._connection
        try:
            self._cursor.close()
            if kind is None:
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()  # back to the pool


def integrity_error(engine: Engine) -> type[Exception]:
    """The driver's IntegrityError (a duplicate key), which `Transaction` lets through."""
    error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
    return error


_prepared: weakref.WeakKeyDictionary[Engine, dict[int, Prepared]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def prepared(engine: Engine, statement: ClauseElement) -> Prepared:
    """`statement` (a module-level constant: it is known by its identity) compiled for
    `engine`, once per engine and process."""
    known = _prepared.get(engine)
    if known is None:
        with _lock:
            known = _prepared.setdefault(engine, {})
    found = known.get(id(statement))
    if found is None:
        found = known[id(statement)] = Prepared(engine, statement)
    return found
