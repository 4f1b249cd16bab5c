"""People, accounts, pool bindings and transactions: a repository over SQLAlchemy Core."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, literal, select, true, update

from ivr.domain import failures, passwords
from ivr.domain.identity import IdNumber
from ivr.domain.pinkeys import ID_DIGITS, Keyring
from ivr.domain.policy import Region, Sex, relation_to_funder, relation_to_member
from ivr.store import prepared as fast
from ivr.store.schema import agents, bindings, meta, people, regions, transactions


@dataclass(frozen=True, slots=True)
class Person:
    """One insured person as the hotline sees them (never holds the password)."""

    id_number: str
    name: str
    scheme: str
    status: str
    retired: bool
    region_code: str
    balance_fen: int | None
    monthly_credit_fen: int | None
    as_of: date | None
    locked: bool

    @property
    def id(self) -> IdNumber:
        return IdNumber(self.id_number)

    @property
    def has_account(self) -> bool:
        """Only the employee scheme has a personal account."""
        return self.scheme == "employee" and self.balance_fen is not None

    @property
    def balance(self) -> Decimal:
        return Decimal(self.balance_fen or 0) / 100

    @property
    def monthly_credit(self) -> Decimal:
        return Decimal(self.monthly_credit_fen or 0) / 100


_PERSON_COLUMNS = (
    people.c.id_number, people.c.name, people.c.scheme, people.c.status, people.c.retired,
    people.c.region_code, people.c.balance_fen, people.c.monthly_credit_fen, people.c.as_of,
    people.c.locked,
)


def _person(row: Any) -> Person:
    return Person(*row)


def find_person(conn: Connection, id_number: str) -> Person | None:
    """Look a person up by their 18-character ID number."""
    row = conn.execute(
        select(*_PERSON_COLUMNS).where(people.c.id_number == id_number)
    ).first()
    return _person(row) if row else None


def find_by_card_digits(conn: Connection, digits: str,
                        region_code: str | None = None) -> list[Person]:
    """Everyone whose card number has these digits (two or more means: ask for the ID); with
    `region_code`, that region's people only."""
    query = select(*_PERSON_COLUMNS).where(people.c.card_digits == digits)
    if region_code is not None:
        query = query.where(people.c.region_code == region_code)
    rows = conn.execute(query.limit(2)).all()
    return [_person(r) for r in rows]


class PasswordCheck(Enum):
    OK = "ok"
    WRONG = "wrong"  # a check was made and failed
    UNKNOWN = "unknown"  # nobody has that number: a dummy check, the same cost
    LOCKED = "locked"  # locked, or no check left: a dummy check, no data
    NOW_LOCKED = "now_locked"  # this wrong attempt reached a limit: now locked


_ID = bindparam("p_id", type_=people.c.id_number.type)
# Reserve one check before the costly hash, in one statement: it counts as a failure until the
# hash says otherwise, and only a person with checks left gets one. Concurrent guesses queue on
# the row (PostgreSQL) or the database's write lock (SQLite): at most `p_limit` in a row, ever.
_COUNTS = failures.failure_statements(people, people.c.id_number == _ID, true(),
                                      people.c.password_hash)
# A right password stored the old way (scrypt, or a key no longer current) is stored anew, unless
# the stored hash changed meanwhile (an import, another call's upgrade).
_REHASH = (
    update(people)
    .where(people.c.id_number == _ID, people.c.password_hash == bindparam("p_old"))
    .values(password_hash=bindparam("p_new"))
)
_EXISTS = select(people.c.id_number).where(people.c.id_number == _ID)
# People belong to their region: a call's check sees only its region's people (anyone else's
# number is unknown there, at the same cost).
_IN_REGION = people.c.region_code == bindparam("p_region", type_=people.c.region_code.type)
_COUNTS_IN = failures.failure_statements(people, people.c.id_number == _ID, _IN_REGION,
                                         people.c.password_hash)
_EXISTS_IN = select(people.c.id_number).where(people.c.id_number == _ID, _IN_REGION)


def check_password(engine: Engine, id_number: str | None, password: str,
                   lockout_after: int, keyring: Keyring, *,
                   now: float | None = None, region_code: str | None = None) -> PasswordCheck:
    """Check a password against a person's, at most `lockout_after` failures in a row (and
    FAILURES_PER_WINDOW in FAILURE_WINDOW_SECONDS) ever, under any concurrency: the check is
    reserved before the hash and decided after. Every outcome costs one hash; a right password
    stored the old way is stored anew under the current key."""
    now = time.time() if now is None else now
    params = {"p_id": id_number, **failures.params(now, lockout_after)}
    counts, exists_ = _COUNTS, _EXISTS
    if region_code is not None:  # a call's: its region's people only
        params["p_region"] = region_code
        counts, exists_ = _COUNTS_IN, _EXISTS_IN
    reserved = None
    if id_number:
        with engine.begin() as conn:
            reserved = conn.execute(counts.reserve, params).first()
            known = reserved is not None or conn.execute(exists_, params).first() is not None
    else:
        known = False
    if reserved is None:
        passwords.verify_password(password, passwords.dummy_hash(keyring), keyring)
        return PasswordCheck.LOCKED if known else PasswordCheck.UNKNOWN
    stored = reserved.password_hash
    try:
        right = passwords.verify_password(password, stored, keyring)
    except Exception:
        with engine.begin() as conn:
            conn.execute(_COUNTS.release, params)
        raise
    if right:
        fresh = passwords.hash_password(password, keyring) \
            if passwords.needs_rehash(stored, keyring) else None
        with engine.begin() as conn:
            if conn.execute(_COUNTS.succeeded, params).rowcount == 1:
                if fresh is not None:
                    conn.execute(_REHASH, {**params, "p_old": stored, "p_new": fresh})
                return PasswordCheck.OK
        return PasswordCheck.LOCKED  # locked by other guesses while this one was hashing
    if failures.reaches_limit(reserved, lockout_after):
        with engine.begin() as conn:
            conn.execute(_COUNTS.lock, params)
        return PasswordCheck.NOW_LOCKED
    return PasswordCheck.WRONG


class Unlock(Enum):
    UNLOCKED = "unlocked"  # was locked: now unlocked, its failure count cleared
    NOT_LOCKED = "not_locked"  # was not locked: only its failure count (if any) cleared
    UNKNOWN = "unknown"  # nobody has that ID number


@dataclass(frozen=True, slots=True)
class UnlockResult:
    """What an operator unlock found and did."""

    outcome: Unlock
    failed_attempts: int = 0  # the consecutive failures counted before the unlock cleared them


def unlock(engine: Engine, id_number: str) -> UnlockResult:
    """Operator unlock: clears the lock and the failure count, saying whether it was locked."""
    where = people.c.id_number == id_number
    with engine.begin() as conn:
        # a write first, changing nothing: it holds the row (PostgreSQL) or the database's write
        # lock (SQLite), so the state read next is the one this transaction changes
        if conn.execute(update(people).where(where)
                        .values(failed_attempts=people.c.failed_attempts)).rowcount != 1:
            return UnlockResult(Unlock.UNKNOWN)
        row = conn.execute(select(people.c.locked, people.c.failed_attempts).where(where)).one()
        if row.locked or row.failed_attempts:
            conn.execute(update(people).where(where).values(locked=False, failed_attempts=0))
        return UnlockResult(Unlock.UNLOCKED if row.locked else Unlock.NOT_LOCKED,
                            row.failed_attempts)


@dataclass(frozen=True, slots=True)
class Transaction:
    date: date
    kind: str
    amount: Decimal
    for_name: str | None
    #: the family member a pool payment paid for (for 先生/女士; `for_name` identifies them)
    for_id: str | None = field(default=None, compare=False)
    #: a pool payment made FOR the caller from a relative's account: whose account paid
    payer_id: str | None = field(default=None, compare=False)
    payer_name: str | None = field(default=None, compare=False)

    @property
    def received(self) -> bool:
        """Paid for the caller from a relative's account (not an entry of their own)."""
        return self.payer_id is not None


def recent_transactions(conn: Connection, id_number: str, limit: int = 5) -> list[Transaction]:
    """The latest entries, newest first (ties: latest imported first): the caller's own, and
    the pool payments relatives' accounts made for the caller."""
    other = people.alias("other")
    payer = people.alias("payer")
    t = transactions.c
    received = (t.kind == "pool_payment") & (t.for_id == id_number) & (t.id_number != id_number)
    rows = conn.execute(
        select(t.date, t.kind, t.amount_fen, other.c.name, t.for_id,
               case((received, t.id_number), else_=None), payer.c.name)
        .select_from(transactions
                     .outerjoin(other, other.c.id_number == t.for_id)
                     .outerjoin(payer, (payer.c.id_number == t.id_number) & received))
        .where((t.id_number == id_number) | received)
        .order_by(t.date.desc(), t.id.desc())
        .limit(limit)
    ).all()
    return [Transaction(r[0], r[1], Decimal(r[2]) / 100, r[3], r[4], r[5],
                        r[6] if r[5] is not None else None) for r in rows]


@dataclass(frozen=True, slots=True)
class PoolMember:
    """One side of a binding as heard by the caller: relation word key, name, date."""

    relation: str
    name: str
    since: date
    #: from the ID number: the voice says 先生/女士, Mr/Ms (not part of what the binding is)
    sex: Sex | None = field(default=None, compare=False)
    #: the other side's ID number: birth order among relatives of one kind, minors
    id_number: str = field(default="", compare=False)

    @property
    def birth_date(self) -> date:
        return IdNumber(self.id_number).birth_date


def _other_side(conn: Connection, me: Person, mine: Any, theirs: Any,
                relation: Callable[[str, Sex, date, date], str]) -> list[PoolMember]:
    """The people bound to `me` on the other side of bindings, in binding-date order."""
    rows = conn.execute(
        select(theirs, bindings.c.relationship, bindings.c.since, people.c.name)
        .join(people, people.c.id_number == theirs)
        .where(mine == me.id_number)
        .order_by(bindings.c.since, theirs)
    ).all()
    my_birth = me.id.birth_date
    result = []
    for other_id, relationship, since, name in rows:
        other = IdNumber(other_id)
        word = relation(relationship, other.sex, other.birth_date, my_birth)
        result.append(PoolMember(word, name, since, other.sex, other_id))
    return result


def members_of(conn: Connection, funder: Person) -> list[PoolMember]:
    """The caller as funder: the members they fund, in binding order."""
    return _other_side(conn, funder, bindings.c.funder, bindings.c.member, relation_to_funder)


def funders_of(conn: Connection, member: Person) -> list[PoolMember]:
    """The caller as beneficiary: who funds them, in deduction order (binding date)."""
    return _other_side(conn, member, bindings.c.member, bindings.c.funder, relation_to_member)


#: how many agents answer for the region read, in the same statement as the region
_AGENT_COUNT = (select(func.count()).select_from(agents)
                .where(agents.c.region_code == regions.c.code)
                .scalar_subquery().label("agent_count"))
#: the line's region (the last one imported) in one statement: no row without either
_LINE_REGION = (select(regions, _AGENT_COUNT)
                .select_from(regions.join(meta, meta.c.value == regions.c.code))
                .where(meta.c.key == "line_region"))
_REGION = select(regions, _AGENT_COUNT).where(
    regions.c.code == bindparam("p_code", type_=regions.c.code.type))


def region_for(conn: Connection, code: str | None = None) -> Region:
    """The region by code, else the line's region (the last one imported), else the defaults;
    with how many agents answer for it (`Region.agents`).

    Read on every turn that needs it (an import may change it under running workers); only
    parsing it is cached, keyed on the row as read, so a changed row is parsed again."""
    if code is None:
        row = conn.execute(_LINE_REGION).first()
    else:
        row = conn.execute(_REGION, {"p_code": code}).first()
    if row is None:
        return Region()
    return _parsed_region(tuple(row._fields), tuple(row))


_LINE_REGION_NAMES = tuple(_LINE_REGION.selected_columns.keys())


def line_region(engine: Engine) -> Region:
    """`region_for(conn)` for a turn: the line's region in one statement on the DB-API
    (ivr/store/prepared.py), its parsing cached on the row as read."""
    with fast.Transaction(engine) as tx:
        row = tx.run(fast.prepared(engine, _LINE_REGION), {}).fetchone()
    if row is None:
        return Region()
    return _parsed_region(_LINE_REGION_NAMES, tuple(row))


_REGION_NAMES = tuple(_REGION.selected_columns.keys())


def call_region(engine: Engine, code: str | None) -> Region:
    """The region of a call for a turn: by its code (routing.py), else the line's region; one
    prepared statement, its parsing cached on the row as read."""
    if code is None:
        return line_region(engine)
    with fast.Transaction(engine) as tx:
        row = tx.run(fast.prepared(engine, _REGION), {"p_code": code}).fetchone()
    if row is None:  # gone since the call began (an operator's change): the line's
        return line_region(engine)
    return _parsed_region(_REGION_NAMES, tuple(row))


@functools.lru_cache(maxsize=64)
def _parsed_region(names: tuple[str, ...], values: tuple[Any, ...]) -> Region:
    """A region row as a Region (immutable, so one may be shared by every turn and thread)."""
    data = dict(zip(names, values, strict=True))
    data["agent_hours"] = json.loads(data["agent_hours"])
    data["holidays"] = json.loads(data["holidays"])
    data["workdays"] = json.loads(data["workdays"])
    for key in ("numbers", "area_codes"):
        data[key] = json.loads(data[key] or "[]")
    for flag in ("multiple_funders", "commercial_insurance"):  # 0/1 from the DB-API on SQLite
        data[flag] = bool(data[flag])
    return dataclasses.replace(Region.from_mapping(data), agents=int(data["agent_count"]))


def region_codes(conn: Connection) -> list[str]:
    """The codes of the regions the line holds, in order."""
    return list(conn.execute(select(regions.c.code).order_by(regions.c.code)).scalars())


def any_agents(engine: Engine) -> bool:
    """Does any region have agents (a line serving several regions)?"""
    with engine.connect() as conn:
        return conn.execute(select(agents.c.agent_id).limit(1)).first() is not None


def count_people(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(people)).scalar_one())


#: the secrets hashed under the PIN keys, by kind (what `key status` and `key drop` count)
HASHED_SECRETS = {"password": people.c.password_hash, "agent PIN": agents.c.pin_hash}


def hash_forms(conn: Connection) -> dict[str, dict[str, int]]:
    """How many stored hashes of each kind (HASHED_SECRETS) each form has: a PIN key id
    (hmac-sha256), "scrypt" (the former form) or "other" (counts only; never a hash)."""
    start = len(passwords.HMAC_PREFIX) + 2  # 1-based, after "hmac-sha256$"
    counts: dict[str, dict[str, int]] = {}
    for kind, stored in HASHED_SECRETS.items():
        form = case(
            (stored.like(passwords.HMAC_PREFIX + "$%"), func.substr(stored, start, ID_DIGITS)),
            (stored.like(passwords.SCRYPT_PREFIX + "$%"), literal(passwords.SCRYPT_PREFIX)),
            else_=literal("other"))
        counts[kind] = {str(f): int(n)
                        for f, n in conn.execute(select(form, func.count()).group_by(form))}
    return counts
