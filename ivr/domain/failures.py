"""Failure counting for secrets checked by a hash (callers' passwords, agents' PINs): at most
`lockout_after` failures in a row and FAILURES_PER_WINDOW in FAILURE_WINDOW_SECONDS, under any
concurrency. A check is reserved in one statement before the hash (it counts as a failure until
the hash says otherwise), then settled. The statements are built once per table; the table
needs `failed_attempts`, `window_failures`, `window_start` and `locked` columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, bindparam, case, or_, update

#: Failures are bounded over a longer window too, not only in a row: an attacker who guesses
#: twice between the owner's logins still locks the secret after this many in this window.
FAILURES_PER_WINDOW = 10
FAILURE_WINDOW_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class FailureStatements:
    """The statements of one table; parameters: `params(now, lockout_after)` plus the row's."""

    reserve: Update  # one check, if any is left: returns the row's hash and its counts
    succeeded: Update  # a right secret gives its reservation back, unless locked meanwhile
    release: Update  # a check that could not be made (e.g. a missing key) is given back
    lock: Update


def failure_statements(table: Table, row: ColumnElement[bool], reserve_also: ColumnElement[bool],
                       *returning: Any) -> FailureStatements:
    """`row` selects the row; `reserve_also` is a further condition for reserving a check."""
    c = table.c
    over = c.window_start < bindparam("p_since", type_=c.window_start.type)
    reserve = (
        update(table)
        .where(row, reserve_also, ~c.locked, c.failed_attempts < bindparam("p_limit"),
               or_(over, c.window_failures < FAILURES_PER_WINDOW))
        .values(failed_attempts=c.failed_attempts + 1,
                window_failures=case((over, 1), else_=c.window_failures + 1),
                window_start=case((over, bindparam("p_now", type_=c.window_start.type)),
                                  else_=c.window_start))
        .returning(*returning, c.failed_attempts, c.window_failures)
    )
    return FailureStatements(
        reserve=reserve,
        succeeded=(update(table).where(row, ~c.locked)
                   .values(failed_attempts=0, window_failures=c.window_failures - 1)),
        release=(update(table).where(row, c.failed_attempts > 0)
                 .values(failed_attempts=c.failed_attempts - 1,
                         window_failures=case((c.window_failures > 0, c.window_failures - 1),
                                              else_=0))),
        lock=update(table).where(row).values(locked=True),
    )


def params(now: float, lockout_after: int) -> dict[str, Any]:
    """The counting parameters of a check made at `now`."""
    return {"p_limit": lockout_after, "p_since": now - FAILURE_WINDOW_SECONDS, "p_now": now}


def reaches_limit(reserved: Any, lockout_after: int) -> bool:
    """A wrong secret whose reservation (`reserve`'s row) reached a limit: lock it now."""
    return bool(reserved.failed_attempts >= lockout_after
                or reserved.window_failures >= FAILURES_PER_WINDOW)
