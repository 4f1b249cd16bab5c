"""The checks of a dataset file (dataset.md), one per kind of record: region, people (with their
accounts), bindings, transactions.

Each checker validates its records and produces the rows to write. A broken record is listed
in `Errors` as `record: field: problem` and left out; nothing is written here. dataset.py runs
the checkers in order and writes only if no record broke a rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import BindParameter, Connection, bindparam, select

from ivr.domain import passwords
from ivr.domain.identity import (
    IdNumber,
    card_digits,
    mask_id_number,
    normalise_card_number,
    parse_id_number,
)
from ivr.domain.pinkeys import Keyring
from ivr.domain.policy import CLOSE_RELATIVES, Region, implausible
from ivr.errors import DatasetError, InvalidCardNumber, InvalidIdNumber
from ivr.store.schema import people

KINDS = ("outpatient", "inpatient", "pharmacy", "pool_payment", "credit")
_AMOUNT_RE = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")
_PASSWORD_RE = re.compile(r"^\d{6}$")
_NOT_A_HASH = ("is not a password hash (hmac-sha256$KEY_ID$SALT$DIGEST as `ivr12333 demo` "
               "writes, or scrypt$N$r$p$SALT$HASH)")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LONG_NUMBER_RE = re.compile(r"\d{14,}[\dXx]")
_PHONE_MAX = 32  # the people.phone column
MAX_ERRORS = 20
PROGRESS_EVERY = 1000  # people checked between two progress reports

# Built once, with the chunk of keys as an expanding parameter: building `column.in_(chunk)`
# checks each of its 500 values, once per chunk, thousands of chunks for a big file.
KEYS: BindParameter[str] = bindparam("keys", expanding=True)
_CARD_OWNERS = select(people.c.card_number, people.c.id_number).where(
    people.c.card_number.in_(KEYS))

Progress = Callable[[str, int], None]  # (phase, records done)
Row = dict[str, Any]


def error(record: str, field: str, problem: str) -> DatasetError:
    """The error for one field of one record, as "field: problem"; "" for the record itself.

    A value quoted in a problem comes from the file: any run of 15 or more digits in it is
    masked like an ID number, whatever field it was found in.
    """
    rule = f"{field}: {problem}" if field else problem
    return DatasetError(record, _LONG_NUMBER_RE.sub(lambda m: mask_id_number(m[0]), rule))


@dataclass
class Errors:
    """The rules broken so far: the first MAX_ERRORS of them, and how many in all."""

    errors: list[DatasetError] = field(default_factory=list)
    total: int = 0

    def fail(self, record: str, field: str, problem: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error(record, field, problem))


class _Reject(Exception):
    """A field of the record being checked breaks a rule; its checker names the record."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem


class _Skip(Exception):
    """The record names a person of the file whose own record broke a rule: that error is
    listed, and this record is not checked against the database's older data instead."""


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _fen(value: Any) -> int:
    """A decimal string with at most 2 places -> integer fen (floats are refused)."""
    if not isinstance(value, str) or not _AMOUNT_RE.match(value):
        raise ValueError("must be a decimal string with at most 2 places, e.g. \"12.50\"")
    return int(Decimal(value) * 100)


def _date(value: Any) -> date:
    """A date string YYYY-MM-DD; the value is quoted only when it has that shape."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date YYYY-MM-DD") from None


def records(data: dict[str, Any], key: str, errors: Errors) -> list[Any]:
    """The file's array `key` (none if absent); anything else than an array is an error."""
    value = data.get(key, [])
    if not isinstance(value, list):
        errors.fail(key, "", "must be an array")
        return []
    return value


#: The region's keys, in the order they are checked and named.
_REGION_KEYS = ("code", "name", "pool_relations", "max_members", "multiple_funders",
                "commercial_insurance", "lockout_after", "agent_number", "agent_hours",
                "timezone", "holidays", "workdays", "max_queue_wait", "line_name", "line_name_en",
                "name_en", "numbers", "area_codes")


def check_region(raw: Any) -> Region:
    """The file's region; a DatasetError("region", "key: problem") names the key at fault."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise error("region", "", "must be an object")
    code = raw.get("code")
    if code is not None and (not isinstance(code, str) or not code):
        raise error("region", "code", "must be a non-empty string")
    for key in _REGION_KEYS:  # Region checks each key on its own: try them one at a time
        if raw.get(key) is not None:
            try:
                Region.from_mapping({key: raw[key]})
            except ZoneInfoNotFoundError:
                raise error("region", key, "is not a known time zone, e.g. Asia/Shanghai"
                            ) from None
            except (ValueError, TypeError, KeyError) as exc:
                problem = str(exc).removeprefix(f"{key} ")
                raise error("region", key, problem or type(exc).__name__) from None
    try:
        return Region.from_mapping(raw)
    except (ValueError, TypeError, KeyError) as exc:  # not expected after the checks above
        raise error("region", "", str(exc) or type(exc).__name__) from None


class PeopleCheck:
    """people[]: each person, with their account, -> a row of the people table.

    `ids` collects every well-formed ID number of the file (-> its index), valid or not.
    Passwords given in clear are left in the row as "_password", to be hashed once every
    record has passed: no slow work for a bad file.
    """

    def __init__(self, region: Region, errors: Errors, today: date, keyring: Keyring,
                 progress: Progress | None = None) -> None:
        self.ids: dict[str, int] = {}
        self._keyring = keyring
        self._region = region
        self._errors = errors
        self._today = today
        self._progress = progress
        self._cards: dict[str, int] = {}
        # files reuse hashes: check each distinct one once (-> what is wrong with it, or "")
        self._hashes: dict[str, str] = {}

    def rows(self, items: list[Any]) -> list[Row]:
        rows = []
        for i, p in enumerate(items):
            if self._progress and i % PROGRESS_EVERY == 0:
                self._progress("checking people", min(PROGRESS_EVERY, len(items) - i))
            try:
                ident = self._identity(p)
            except _Reject as exc:
                self._errors.fail(f"people[{i}]", exc.field, exc.problem)
                continue
            try:
                rows.append(self._row(i, ident, p))
            except _Reject as exc:
                self._errors.fail(f"people[{i}] ({ident.masked})", exc.field, exc.problem)
        return rows

    def _identity(self, p: Any) -> IdNumber:
        if not isinstance(p, dict):
            raise _Reject("", "must be an object")
        try:
            return parse_id_number(str(p.get("id_number", "")), today=self._today)
        except InvalidIdNumber as exc:
            raise _Reject("id_number", str(exc)) from None

    def _row(self, i: int, ident: IdNumber, p: dict[str, Any]) -> Row:
        if ident.value in self.ids:
            raise _Reject("id_number", f"duplicates people[{self.ids[ident.value]}]")
        self.ids[ident.value] = i
        card = self._card(i, p.get("card_number"))
        name = p.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Reject("name", "is required (text)")
        scheme, status = p.get("scheme"), p.get("status", "active")
        if scheme not in ("employee", "resident"):
            raise _Reject("scheme", "must be \"employee\" or \"resident\"")
        if status not in ("active", "suspended"):
            raise _Reject("status", "must be \"active\" or \"suspended\"")
        pw_hash, pw = self._password(p)
        phone = _phone(p.get("phone"))
        balance, credit, as_of = _account(scheme, p.get("account"))
        retired = p.get("retired", False)
        if not isinstance(retired, bool):
            raise _Reject("retired", "must be true or false")
        return {
            "id_number": ident.value,
            "card_number": card,
            "card_digits": card_digits(card) if card else None,
            "name": name.strip(),
            "scheme": scheme,
            "status": status,
            "retired": retired,
            "password_hash": pw_hash,
            "_password": pw,
            "phone": phone,
            "region_code": self._region.code,
            "balance_fen": balance,
            "monthly_credit_fen": credit,
            "as_of": as_of,
        }

    def _card(self, i: int, value: Any) -> str | None:
        """The card number, normalised, if there is one; each card belongs to one person."""
        if value is None:
            return None
        try:
            card = normalise_card_number(str(value))
        except InvalidCardNumber as exc:
            raise _Reject("card_number", str(exc)) from None
        if card in self._cards:
            raise _Reject("card_number", f"duplicates people[{self._cards[card]}]")
        self._cards[card] = i
        return card

    def _password(self, p: dict[str, Any]) -> tuple[str, str]:
        """(a stored hash, "") or ("", the 6-digit password to hash)."""
        if "password_hash" in p and "password" not in p:
            stored = p["password_hash"]
            if not isinstance(stored, str):
                raise _Reject("password_hash", _NOT_A_HASH)
            if stored not in self._hashes:
                self._hashes[stored] = self._hash_problem(stored)
            if self._hashes[stored]:
                raise _Reject("password_hash", self._hashes[stored])
            return stored, ""
        plain = p.get("password")
        if not isinstance(plain, str) or not _PASSWORD_RE.match(plain):
            raise _Reject("password", "must be 6 digits as a string")
        return "", plain

    def _hash_problem(self, stored: str) -> str:
        """What makes `stored` unusable here ("" if nothing): its form, or a key not held."""
        if not passwords.is_password_hash(stored):
            return _NOT_A_HASH
        kid = passwords.key_id_of(stored)
        if kid is not None and self._keyring.key(kid) is None:
            return (f"is hashed under PIN key {kid}, which this hotline's keyring "
                    f"({', '.join(self._keyring.ids)}) does not hold")
        return ""

    def check_stored_cards(self, conn: Connection, rows: list[Row],
                           in_file: dict[str, Row]) -> None:
        """A card number of the file must not be stored for a person who is not in the file."""
        cards = {r["card_number"]: i for i, r in enumerate(rows) if r["card_number"]}
        for chunk in chunks(list(cards), 500):
            for card, owner in conn.execute(_CARD_OWNERS, {"keys": chunk}):
                if owner not in in_file:
                    id_number = rows[cards[card]]["id_number"]
                    self._errors.fail(f"people[{self.ids[id_number]}] "
                                      f"({mask_id_number(id_number)})", "card_number",
                                      f"belongs to another person ({mask_id_number(owner)})")


def _phone(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > _PHONE_MAX):
        raise _Reject("phone", f"must be text of at most {_PHONE_MAX} characters")
    return value


def _account(scheme: str, account: Any) -> tuple[int | None, int | None, date | None]:
    """(balance, monthly credit, as of): an employee-scheme person's account, in fen."""
    if scheme != "employee":
        if account is not None:
            raise _Reject("account", "a resident-scheme person has no personal account")
        return None, None, None
    if account is None:
        raise _Reject("account", "an employee-scheme person needs an account")
    if not isinstance(account, dict):
        raise _Reject("account", "must be an object (balance, monthly_credit, as_of)")
    key = "balance"
    try:
        balance = _fen(account.get("balance"))
        key = "monthly_credit"
        credit = _fen(account.get("monthly_credit", "0.00"))
        key = "as_of"
        as_of = _date(account.get("as_of"))
    except ValueError as exc:
        raise _Reject(f"account.{key}", str(exc)) from None
    return balance, credit, as_of


_AGENT_ID_RE = re.compile(r"^\d{3,8}$")


class AgentCheck:
    """agents[]: the people who answer the queue -> rows of the agents table. A PIN given in
    clear is left in the row as "_pin", hashed like a caller's password once the file passed."""

    def __init__(self, region: Region, errors: Errors) -> None:
        self._region = region
        self._errors = errors
        self._ids: dict[str, int] = {}

    def index_of(self, agent_id: str) -> int:
        """The file's index of a checked agent (for messages naming the record)."""
        return self._ids[agent_id]

    def rows(self, items: list[Any]) -> list[Row]:
        rows = []
        for i, a in enumerate(items):
            label = f"agents[{i}]"
            if isinstance(a, dict) and isinstance(a.get("id"), str):
                label += f" ({a['id'][:8]})"
            try:
                rows.append(self._row(i, a))
            except _Reject as exc:
                self._errors.fail(label, exc.field, exc.problem)
        return rows

    def _row(self, i: int, a: Any) -> Row:
        if not isinstance(a, dict):
            raise _Reject("", "must be an object")
        agent_id = a.get("id")
        if not isinstance(agent_id, str) or not _AGENT_ID_RE.match(agent_id):
            raise _Reject("id", "must be 3 to 8 digits as a string (the agent keys it in)")
        if agent_id in self._ids:
            raise _Reject("id", f"duplicates agents[{self._ids[agent_id]}]")
        self._ids[agent_id] = i
        name = a.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Reject("name", "is required (text)")
        if "pin_hash" in a and "pin" not in a:
            stored = a["pin_hash"]
            if not isinstance(stored, str) or not passwords.is_password_hash(stored):
                raise _Reject("pin_hash", "is not a PIN hash as the hotline stores them")
            pin_hash, pin = stored, ""
        else:
            given = a.get("pin")
            if not isinstance(given, str) or not _PASSWORD_RE.match(given):
                raise _Reject("pin", "must be 6 digits as a string")
            pin_hash, pin = "", given
        return {"agent_id": agent_id, "name": name.strip(), "pin_hash": pin_hash, "_pin": pin,
                "region_code": self._region.code}


class KnownPeople:
    """The people bindings and transactions may name: the file's checked people, then the
    stored ones. `rejected`: people of the file whose record broke a rule."""

    def __init__(self, in_file: dict[str, Row], rejected: set[str], today: date,
                 conn: Connection) -> None:
        self.in_file = in_file
        self.rejected = rejected
        self._today = today
        self._conn = conn

    @classmethod
    def after(cls, check: PeopleCheck, rows: list[Row], today: date,
              conn: Connection) -> KnownPeople:
        """The people known once `check` has produced `rows`."""
        in_file = {r["id_number"]: r for r in rows}
        return cls(in_file, check.ids.keys() - in_file.keys(), today, conn)

    def ref(self, value: Any) -> str:
        """An ID number reference, normalised; one already checked in the file is taken as is.

        ValueError says what is wrong with it (masked).
        """
        if isinstance(value, str) and value in self.in_file:
            return value
        if value is None:
            raise ValueError("is required (an ID number)")
        return parse_id_number(str(value), today=self._today).value

    def get(self, id_number: str) -> Row | None:
        """The person's scheme, status and region; None if neither in the file nor stored."""
        if id_number in self.in_file:
            return self.in_file[id_number]
        row = self._conn.execute(
            select(people.c.scheme, people.c.status, people.c.region_code)
            .where(people.c.id_number == id_number)
        ).mappings().first()
        return dict(row) if row else None

    def elsewhere(self, id_number: str, region: str) -> str | None:
        """The region a stored person belongs to when it is not `region` (a file names only
        its own region's people: one region's file never changes another's data)."""
        person = self.get(id_number)
        if person is None or person["region_code"] == region:
            return None
        return str(person["region_code"])


class BindingCheck:
    """bindings[]: each funder -> member pair, under the region's rules -> a row of bindings.

    A row keeps its index as "_i", for the limits checked once the data is merged.
    """

    def __init__(self, region: Region, known: KnownPeople, errors: Errors) -> None:
        self._region = region
        self._known = known
        self._errors = errors
        self._pairs: dict[tuple[str, str], int] = {}

    def rows(self, items: list[Any]) -> list[Row]:
        rows = []
        for i, b in enumerate(items):
            try:
                funder, member = self._pair(b)
            except _Reject as exc:
                self._errors.fail(f"bindings[{i}]", exc.field, exc.problem)
                continue
            try:
                rows.append(self._row(i, funder, member, b))
            except _Reject as exc:
                self._errors.fail(
                    f"bindings[{i}] ({mask_id_number(funder)} -> {mask_id_number(member)})",
                    exc.field, exc.problem)
            except _Skip:
                pass
        return rows

    def _pair(self, b: Any) -> tuple[str, str]:
        if not isinstance(b, dict):
            raise _Reject("", "must be an object")
        side = "funder"
        try:
            funder = self._known.ref(b.get("funder"))
            side = "member"
            return funder, self._known.ref(b.get("member"))
        except ValueError as exc:
            raise _Reject(side, str(exc)) from None

    def _row(self, i: int, funder: str, member: str, b: dict[str, Any]) -> Row:
        if funder in self._known.rejected or member in self._known.rejected:
            raise _Skip
        rel = b.get("relationship")
        try:
            since = _date(b.get("since"))
        except ValueError as exc:
            raise _Reject("since", str(exc)) from None
        self._check_rules(funder, member, rel)
        self._pairs[(funder, member)] = i
        return {"funder": funder, "member": member, "relationship": rel, "since": since, "_i": i}

    def _check_rules(self, funder: str, member: str, rel: Any) -> None:
        """The first rule the binding breaks, in the order dataset.md gives them."""
        if (funder, member) in self._pairs:
            raise _Reject("funder, member",
                          f"duplicate of bindings[{self._pairs[(funder, member)]}]")
        if funder == member:
            raise _Reject("member", "a person cannot bind themselves")
        if rel not in CLOSE_RELATIVES:
            raise _Reject("relationship", f"must be one of {', '.join(CLOSE_RELATIVES)}")
        region = self._region
        if not region.allows(rel):
            raise _Reject("relationship", f"{rel!r} is not allowed by region {region.code} "
                                          f"({region.pool_relations})")
        f = self._known.get(funder)
        if f is None:
            raise _Reject("funder", "not in the data (neither in the file nor stored)")
        if f["scheme"] != "employee" or f["status"] != "active":
            raise _Reject("funder", "must be an active employee-scheme person")
        if self._known.get(member) is None:
            raise _Reject("member", "not in the data (neither in the file nor stored)")
        for side, who in (("funder", funder), ("member", member)):
            theirs = self._known.elsewhere(who, region.code)
            if theirs is not None:
                raise _Reject(side, f"belongs to region {theirs}, not {region.code}: a file "
                                    "binds its own region's people (a family pool is within "
                                    "one region)")
        self._check_plausible(funder, member, rel)


    @staticmethod
    def _check_plausible(funder: str, member: str, rel: str) -> None:
        """What the line would read as nonsense (ivr.domain.policy.implausible)."""
        f, m = IdNumber(funder), IdNumber(member)
        problem = implausible(rel, f.birth_date, f.sex, m.birth_date, m.sex)
        if problem:
            raise _Reject("relationship", problem)


class TransactionCheck:
    """transactions[]: each entry of an account's history -> a row of transactions."""

    def __init__(self, known: KnownPeople, errors: Errors, region: str | None = None) -> None:
        self._known = known
        self._errors = errors
        self._region = region  # the file's: its transactions are its own region's people's

    def rows(self, items: list[Any]) -> list[Row]:
        rows = []
        for i, t in enumerate(items):
            try:
                owner = self._owner(t)
            except _Reject as exc:
                self._errors.fail(f"transactions[{i}]", exc.field, exc.problem)
                continue
            try:
                rows.append(self._row(owner, t))
            except _Reject as exc:
                self._errors.fail(f"transactions[{i}] ({mask_id_number(owner)})",
                                  exc.field, exc.problem)
            except _Skip:
                pass
        return rows

    def _owner(self, t: Any) -> str:
        if not isinstance(t, dict):
            raise _Reject("", "must be an object")
        try:
            return self._known.ref(t.get("id_number"))
        except ValueError as exc:
            raise _Reject("id_number", str(exc)) from None

    def _row(self, owner: str, t: dict[str, Any]) -> Row:
        if owner in self._known.rejected:
            raise _Skip
        person = self._known.get(owner)
        if person is None:
            raise _Reject("id_number", "must be a person in the data (the file or stored)")
        if person["scheme"] != "employee":
            raise _Reject("id_number", "a resident-scheme person has no personal account, "
                                       "so no transactions")
        self._own_region("id_number", owner)
        kind = t.get("kind")
        key = "amount"
        try:
            amount = _fen(t.get("amount"))
            key = "date"
            day = _date(t.get("date"))
        except ValueError as exc:
            raise _Reject(key, str(exc)) from None
        if kind not in KINDS:
            raise _Reject("kind", f"must be one of {', '.join(KINDS)}")
        return {"id_number": owner, "date": day, "kind": kind, "amount_fen": amount,
                "for_id": self._paid_for(kind, t.get("for"))}

    def _paid_for(self, kind: str, value: Any) -> str | None:
        """The family member a pool_payment paid for; no other kind names one."""
        if kind != "pool_payment":
            if value is not None:
                raise _Reject("for", "only a pool_payment names a family member")
            return None
        if value is None:
            raise _Reject("for", "a pool_payment names the family member paid for")
        try:
            for_id = self._known.ref(value)
        except ValueError as exc:
            raise _Reject("for", str(exc)) from None
        if for_id in self._known.rejected:
            raise _Skip
        if self._known.get(for_id) is None:
            raise _Reject("for", "must be a person in the data (the file or stored)")
        self._own_region("for", for_id)
        return for_id

    def _own_region(self, key: str, who: str) -> None:
        theirs = self._known.elsewhere(who, self._region) if self._region else None
        if theirs is not None:
            raise _Reject(key, f"belongs to region {theirs}, not {self._region}: a file holds "
                               "its own region's accounts")
