"""Who is calling, as far as limits go: a caller number, or the one class of withheld callers,
never in clear in a table: a keyed hash (`CallerKey`); and the per-number limit on password
checks, reserved atomically across workers.

The hash is an HMAC-SHA256 under a subkey of each PIN key (HMAC(PIN key, a fixed label)): a
stolen database alone cannot tell which numbers called, as it cannot check a password. A row
is written under the current key; it is looked up under every key of the keyring, so counts
stay whole across a rotation (an older key stays in the keyring for days, far longer than any
limit's window) and a key dropped later only forgets rows long expired.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import weakref
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, Engine, Select, bindparam, delete, func, insert, select

from ivr.domain.pinkeys import Keyring
from ivr.store.schema import Periodic, caller_locks, upsert, verify_attempts

#: every caller whose number is withheld or not a number shares this one class (and its limit)
WITHHELD = "withheld"
#: what carriers and Twilio send instead of a number: the words, and the words typed on a
#: keypad (+266696687 is ANONYMOUS); anything else that is not +digits is withheld as well
_WITHHELD_WORDS = ("anonymous", "restricted", "unavailable", "blocked", "unknown", "private")
_KEYPAD = str.maketrans("abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999")
_WITHHELD_DIGITS = {"+" + w.translate(_KEYPAD) for w in _WITHHELD_WORDS}
_NUMBER = re.compile(r"\+?[0-9]{5,15}")

ATTEMPT_WINDOW_SECONDS = 3600
#: Attempts and caller locks older than the window are deleted at most this often per process
#: and database (two statements), not on every check: they no longer count either way, and no
#: caller number stays more than ATTEMPT_WINDOW_SECONDS + PURGE_EVERY_SECONDS once checks
#: come in.
PURGE_EVERY_SECONDS = 60.0
_purges: weakref.WeakKeyDictionary[Engine, Periodic] = weakref.WeakKeyDictionary()

_CALLER = bindparam("p_caller", type_=verify_attempts.c.caller.type)
_AT = bindparam("p_at", type_=verify_attempts.c.at.type)


@lru_cache(maxsize=8)
def _count(keys: int) -> Select[int]:
    """Checks since p_since under any of `keys` hashes (p_h0, p_h1 ...): one statement per
    keyring size, built once (an expanding IN is rendered anew on every check)."""
    return select(func.count()).select_from(verify_attempts).where(
        verify_attempts.c.caller.in_([bindparam(f"p_h{i}", type_=verify_attempts.c.caller.type)
                                      for i in range(keys)]),
        verify_attempts.c.at >= bindparam("p_since", type_=verify_attempts.c.at.type))

_RECORD = insert(verify_attempts).values(caller=_CALLER, at=_AT)
_FORGET = delete(verify_attempts).where(
    verify_attempts.c.at < bindparam("p_before", type_=verify_attempts.c.at.type))
_FORGET_LOCKS = delete(caller_locks).where(
    caller_locks.c.at < bindparam("p_before", type_=caller_locks.c.at.type))


def caller_class(from_: str) -> str:
    """The caller number limits count against: the number, or WITHHELD."""
    value = from_.strip()
    if not _NUMBER.fullmatch(value) or value in _WITHHELD_DIGITS:
        return WITHHELD
    return value


_NUMBER_LABEL = b"ivr12333 caller numbers"


@lru_cache(maxsize=16)
def _number_macs(keyring: Keyring) -> tuple[hmac.HMAC, ...]:
    """An HMAC keyed with the subkey for numbers of each PIN key, oldest first (the current
    one last), never updated: each hash starts from a copy (half the cost of a new HMAC)."""
    return tuple(hmac.new(hmac.digest(key, _NUMBER_LABEL, "sha256"), digestmod=hashlib.sha256)
                 for _, key in keyring.keys)


def _keyed(mac: hmac.HMAC, message: bytes) -> str:
    h = mac.copy()
    h.update(message)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class CallerKey:
    """A caller class (a number, or WITHHELD) within a scope, as the tables hold it: its keyed
    hash under each PIN key, the current one last. Its repr shows no hash and no number."""

    hashes: tuple[str, ...]
    withheld: bool

    @property
    def current(self) -> str:
        """The hash a new row is written under."""
        return self.hashes[-1]

    def __repr__(self) -> str:
        return f"CallerKey(withheld={self.withheld})"


def caller_key(keyring: Keyring, from_: str, scope: str) -> CallerKey:
    """The keyed hashes of `from_`'s caller class in `scope` ("verify", "agents", "queue":
    each limit counts apart)."""
    who = caller_class(from_)
    message = f"{scope}\x00{who}".encode()
    hashes = tuple(_keyed(mac, message) for mac in _number_macs(keyring))
    # the same hash twice (never, but a keyring of equal keys is refused anyway) counts once
    return CallerKey(tuple(dict.fromkeys(hashes)), who == WITHHELD)


def lock_caller(conn: Connection, who: CallerKey, now: float) -> None:
    """Hold the caller's rows in caller_locks for this transaction (PostgreSQL: the rows;
    SQLite: the database's write lock): reservations for one caller run one at a time, in
    one order of hashes (no deadlock between servers of different keyrings)."""
    upsert(conn, caller_locks, [{"caller": h, "at": now} for h in sorted(who.hashes)],
           keys=["caller"])


def reserve_check(engine: Engine, who: CallerKey, limit: int, now: float) -> bool:
    """Record one check for `who` if fewer than `limit` were made in the past hour; False (and
    nothing recorded) otherwise. Concurrent reservations for one caller queue on its rows in
    caller_locks, so the count read is the one this transaction adds to."""
    params = {"p_caller": who.current, "p_at": now, "p_since": now - ATTEMPT_WINDOW_SECONDS,
              **{f"p_h{i}": h for i, h in enumerate(who.hashes)}}
    with engine.begin() as conn:
        lock_caller(conn, who, now)
        if conn.execute(_count(len(who.hashes)), params).scalar_one() >= limit:
            return False
        conn.execute(_RECORD, params)
        forget_expired(engine, conn, now)
    return True


def forget_expired(engine: Engine, conn: Connection, now: float) -> None:
    """Delete attempts and lock rows older than the window (at most every
    PURGE_EVERY_SECONDS per process and database): they no longer count either way."""
    if _purge_due(engine, now):
        params = {"p_before": now - ATTEMPT_WINDOW_SECONDS}
        conn.execute(_FORGET, params)
        conn.execute(_FORGET_LOCKS, params)


def _purge_due(engine: Engine, now: float) -> bool:
    periodic = _purges.get(engine)
    if periodic is None:
        periodic = _purges.setdefault(engine, Periodic(PURGE_EVERY_SECONDS))
    return periodic.due(now)
