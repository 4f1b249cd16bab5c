"""People, accounts, pool bindings and transactions: a repository over SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from ivr.data.storage import bindings, meta, people, regions, transactions
from ivr.domain import passwords
from ivr.domain.identity import IdNumber
from ivr.domain.policy import Region, Sex, relation_to_funder, relation_to_member


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


def find_by_card_digits(conn: Connection, digits: str) -> list[Person]:
    """Everyone whose card number has these digits (two or more means: ask for the ID)."""
    rows = conn.execute(
        select(*_PERSON_COLUMNS).where(people.c.card_digits == digits).limit(2)
    ).all()
    return [_person(r) for r in rows]


class PasswordCheck(Enum):
    OK = "ok"
    WRONG = "wrong"  # also for an unknown number: the caller must not tell them apart
    LOCKED = "locked"  # was locked before this attempt: no check, no data
    NOW_LOCKED = "now_locked"  # this wrong attempt reached the region's threshold


def check_password(engine: Engine, id_number: str | None, password: str,
                   lockout_after: int) -> PasswordCheck:
    """Verify and count consecutive failures across calls; lock at the threshold."""
    with engine.connect() as conn:
        row = conn.execute(
            select(people.c.password_hash, people.c.locked).where(
                people.c.id_number == id_number
            )
        ).first() if id_number else None
    if row is None:
        passwords.verify_password(password, passwords.DUMMY_HASH)
        return PasswordCheck.WRONG
    if row.locked:
        return PasswordCheck.LOCKED
    if passwords.verify_password(password, row.password_hash):
        with engine.begin() as conn:
            conn.execute(
                update(people).where(people.c.id_number == id_number,
                                     people.c.failed_attempts != 0)
                .values(failed_attempts=0)
            )
        return PasswordCheck.OK
    with engine.begin() as conn:
        failed = conn.execute(
            update(people).where(people.c.id_number == id_number)
            .values(failed_attempts=people.c.failed_attempts + 1)
            .returning(people.c.failed_attempts)
        ).scalar_one()
        if failed >= lockout_after:
            conn.execute(update(people).where(people.c.id_number == id_number).values(locked=True))
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


def recent_transactions(conn: Connection, id_number: str, limit: int = 5) -> list[Transaction]:
    """The latest entries, newest first (ties: latest imported first)."""
    other = people.alias("other")
    rows = conn.execute(
        select(transactions.c.date, transactions.c.kind, transactions.c.amount_fen, other.c.name)
        .select_from(transactions.outerjoin(other, other.c.id_number == transactions.c.for_id))
        .where(transactions.c.id_number == id_number)
        .order_by(transactions.c.date.desc(), transactions.c.id.desc())
        .limit(limit)
    ).all()
    return [Transaction(r[0], r[1], Decimal(r[2]) / 100, r[3]) for r in rows]


@dataclass(frozen=True, slots=True)
class PoolMember:
    """One side of a binding as heard by the caller: relation word key, name, date."""

    relation: str
    name: str
    since: date


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
        result.append(PoolMember(word, name, since))
    return result


def members_of(conn: Connection, funder: Person) -> list[PoolMember]:
    """The caller as funder: the members they fund, in binding order."""
    return _other_side(conn, funder, bindings.c.funder, bindings.c.member, relation_to_funder)


def funders_of(conn: Connection, member: Person) -> list[PoolMember]:
    """The caller as beneficiary: who funds them, in deduction order (binding date)."""
    return _other_side(conn, member, bindings.c.member, bindings.c.funder, relation_to_member)


def region_for(conn: Connection, code: str | None = None) -> Region:
    """The region by code, else the line's region (the last one imported), else the defaults."""
    if code is None:
        code = conn.execute(select(meta.c.value).where(meta.c.key == "line_region")).scalar()
    if code is None:
        return Region()
    row = conn.execute(select(regions).where(regions.c.code == code)).mappings().first()
    if row is None:
        return Region()
    data = dict(row)
    data["agent_hours"] = json.loads(data["agent_hours"])
    return Region.from_mapping(data)


def count_people(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(people)).scalar_one())
