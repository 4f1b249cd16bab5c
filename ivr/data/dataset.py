"""Import a dataset file (dataset.md): validate everything, then write it in one transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    select,
    update,
)

from ivr.data.storage import bindings, meta, people, regions, transactions, upsert
from ivr.domain import passwords
from ivr.domain.identity import (
    IdNumber,
    _china_today,
    card_digits,
    mask_id_number,
    normalise_card_number,
    parse_id_number,
)
from ivr.domain.policy import CLOSE_RELATIVES, Region
from ivr.errors import DatasetError, InvalidCardNumber, InvalidIdNumber

KINDS = ("outpatient", "inpatient", "pharmacy", "pool_payment", "credit")
_AMOUNT_RE = re.compile(r"^-?\d{1,13}(\.\d{1,2})?$")
_PASSWORD_RE = re.compile(r"^\d{6}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LONG_NUMBER_RE = re.compile(r"\d{14,}[\dXx]")
_PHONE_MAX = 32  # the people.phone column
MAX_ERRORS = 20
PROGRESS_EVERY = 1000  # people checked between two progress reports
IMPORT_CACHE_KIB = 1024 * 1024  # SQLite page cache while importing (1 GiB at most)

# Built once, with the chunk of keys as an expanding parameter: building `column.in_(chunk)`
# checks each of its 500 values, once per chunk, thousands of chunks for a big file.
_KEYS: BindParameter[str] = bindparam("keys", expanding=True)
_CARD_OWNERS = select(people.c.card_number, people.c.id_number).where(
    people.c.card_number.in_(_KEYS))
_DELETE_TRANSACTIONS = delete(transactions).where(transactions.c.id_number.in_(_KEYS))
_DELETE_FUNDED = delete(bindings).where(bindings.c.funder.in_(_KEYS))
_DELETE_FUNDERS = delete(bindings).where(bindings.c.member.in_(_KEYS))
_FREE_CARDS = update(people).where(people.c.id_number.in_(_KEYS)).values(
    card_number=None, card_digits=None)

Progress = Callable[[str, int], None]  # (phase, records done)


class DatasetInvalid(DatasetError):
    """Several records break rules; `errors` lists each one (record, rule)."""

    def __init__(self, errors: list[DatasetError], total: int) -> None:
        super().__init__(errors[0].record, errors[0].rule)
        self.errors = errors
        self.total = total

    def __str__(self) -> str:
        lines = [f"{e.record}: {e.rule}" for e in self.errors]
        if self.total > len(self.errors):
            lines.append(f"... and {self.total - len(self.errors)} more")
        return "\n".join(lines)


@dataclass
class ImportReport:
    people: int = 0
    bindings: int = 0
    transactions: int = 0
    region: str = ""


def _error(record: str, field: str, problem: str) -> DatasetError:
    """The error for one field of one record, as "field: problem"; "" for the record itself.

    A value quoted in a problem comes from the file: any run of 15 or more digits in it is
    masked like an ID number, whatever field it was found in.
    """
    rule = f"{field}: {problem}" if field else problem
    return DatasetError(record, _LONG_NUMBER_RE.sub(lambda m: mask_id_number(m[0]), rule))


@dataclass
class _Checker:
    errors: list[DatasetError] = field(default_factory=list)
    total: int = 0

    def fail(self, record: str, field: str, problem: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(_error(record, field, problem))


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


def load_file(path: Path) -> dict[str, Any]:
    """Read and parse a dataset file, turning I/O and JSON errors into DatasetError."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh, parse_float=Decimal)
    except FileNotFoundError:
        raise DatasetError(str(path), "file not found") from None
    except UnicodeDecodeError:
        raise DatasetError(str(path), "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise DatasetError(str(path), "the top level must be an object with people")
    return data


def _records(data: dict[str, Any], key: str, ck: _Checker) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        ck.fail(key, "", "must be an array")
        return []
    return value


def _person_rows(items: list[Any], region: Region, ck: _Checker, progress: Progress | None,
                 today: date, seen_ids: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The valid people as rows; `seen_ids` collects every well-formed ID number (-> index)."""
    seen_cards: dict[str, int] = {}
    known_hashes: dict[str, bool] = {}  # files reuse hashes: check each distinct one once
    for i, p in enumerate(items):
        if progress and i % PROGRESS_EVERY == 0:
            progress("checking people", min(PROGRESS_EVERY, len(items) - i))
        if not isinstance(p, dict):
            ck.fail(f"people[{i}]", "", "must be an object")
            continue
        try:
            ident = parse_id_number(str(p.get("id_number", "")), today=today)
        except InvalidIdNumber as exc:
            ck.fail(f"people[{i}]", "id_number", str(exc))
            continue

        def rec(i: int = i, ident: IdNumber = ident) -> str:  # only built for a failure
            return f"people[{i}] ({ident.masked})"

        if ident.value in seen_ids:
            ck.fail(rec(), "id_number", f"duplicates people[{seen_ids[ident.value]}]")
            continue
        seen_ids[ident.value] = i
        card: str | None = p.get("card_number")
        if card is not None:
            try:
                card = normalise_card_number(str(card))
            except InvalidCardNumber as exc:
                ck.fail(rec(), "card_number", str(exc))
                continue
            if card in seen_cards:
                ck.fail(rec(), "card_number", f"duplicates people[{seen_cards[card]}]")
                continue
            seen_cards[card] = i
        name = p.get("name")
        if not isinstance(name, str) or not name.strip():
            ck.fail(rec(), "name", "is required (text)")
            continue
        scheme, status = p.get("scheme"), p.get("status", "active")
        if scheme not in ("employee", "resident"):
            ck.fail(rec(), "scheme", "must be \"employee\" or \"resident\"")
            continue
        if status not in ("active", "suspended"):
            ck.fail(rec(), "status", "must be \"active\" or \"suspended\"")
            continue
        if "password_hash" in p and "password" not in p:
            stored = p["password_hash"]
            if isinstance(stored, str) and stored not in known_hashes:
                known_hashes[stored] = passwords.is_password_hash(stored)
            if not isinstance(stored, str) or not known_hashes[stored]:
                ck.fail(rec(), "password_hash", "is not an scrypt hash from `ivr12333 demo`")
                continue
            pw_hash, pw = p["password_hash"], ""
        else:
            raw_pw = p.get("password")
            if not isinstance(raw_pw, str) or not _PASSWORD_RE.match(raw_pw):
                ck.fail(rec(), "password", "must be 6 digits as a string")
                continue
            pw = raw_pw
            pw_hash = ""  # hashed once every record has passed: no slow work for a bad file
        phone = p.get("phone")
        if phone is not None and (not isinstance(phone, str) or len(phone) > _PHONE_MAX):
            ck.fail(rec(), "phone", f"must be text of at most {_PHONE_MAX} characters")
            continue
        account = p.get("account")
        balance = credit = None
        as_of = None
        if scheme == "employee":
            if account is None:
                ck.fail(rec(), "account", "an employee-scheme person needs an account")
                continue
            if not isinstance(account, dict):
                ck.fail(rec(), "account", "must be an object (balance, monthly_credit, as_of)")
                continue
            key = "balance"
            try:
                balance = _fen(account.get("balance"))
                key = "monthly_credit"
                credit = _fen(account.get("monthly_credit", "0.00"))
                key = "as_of"
                as_of = _date(account.get("as_of"))
            except ValueError as exc:
                ck.fail(rec(), f"account.{key}", str(exc))
                continue
        elif account is not None:
            ck.fail(rec(), "account", "a resident-scheme person has no personal account")
            continue
        retired = p.get("retired", False)
        if not isinstance(retired, bool):
            ck.fail(rec(), "retired", "must be true or false")
            continue
        yield {
            "_index": i,
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
            "region_code": region.code,
            "balance_fen": balance,
            "monthly_credit_fen": credit,
            "as_of": as_of,
        }


def _id_ref(value: Any, today: date | None = None) -> str:
    """A referenced ID number, normalised; ValueError says what is wrong with it (masked)."""
    if value is None:
        raise ValueError("is required (an ID number)")
    return parse_id_number(str(value), today=today).value


#: The region's keys, in the order they are checked and named.
_REGION_KEYS = ("code", "name", "pool_relations", "max_members", "multiple_funders",
                "commercial_insurance", "lockout_after", "agent_number", "agent_hours",
                "timezone")


def _region(raw: Any) -> Region:
    """The file's region; a DatasetError("region", "key: problem") names the key at fault."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _error("region", "", "must be an object")
    code = raw.get("code")
    if code is not None and (not isinstance(code, str) or not code):
        raise _error("region", "code", "must be a non-empty string")
    for key in _REGION_KEYS:  # Region checks each key on its own: try them one at a time
        if raw.get(key) is not None:
            try:
                Region.from_mapping({key: raw[key]})
            except ZoneInfoNotFoundError:
                raise _error("region", key, "is not a known time zone, e.g. Asia/Shanghai"
                             ) from None
            except (ValueError, TypeError, KeyError) as exc:
                problem = str(exc).removeprefix(f"{key} ")
                raise _error("region", key, problem or type(exc).__name__) from None
    try:
        return Region.from_mapping(raw)
    except (ValueError, TypeError, KeyError) as exc:  # not expected after the checks above
        raise _error("region", "", str(exc) or type(exc).__name__) from None


def import_dataset(engine: Engine, data: dict[str, Any], *, scrypt_n: int = passwords.DEFAULT_N,
                   progress: Progress | None = None) -> ImportReport:
    """Validate the whole dataset, then upsert it in one transaction: all or nothing."""
    ck = _Checker()
    region = _region(data.get("region"))
    person_items = _records(data, "people", ck)
    binding_items = _records(data, "bindings", ck)
    tx_items = _records(data, "transactions", ck)

    today = _china_today()  # once: an import is checked against one day
    seen_ids: dict[str, int] = {}
    rows = list(_person_rows(person_items, region, ck, progress, today, seen_ids))
    in_file = {r["id_number"]: r for r in rows}
    # people of the file whose record broke a rule: that error is listed, and the bindings and
    # transactions naming them are not checked against the database's older data instead
    rejected = seen_ids.keys() - in_file.keys()
    person_index = {r["id_number"]: r.pop("_index") for r in rows}

    def ref(value: Any) -> str:
        """An ID number reference, normalised; one already checked in the file is taken as is."""
        if isinstance(value, str) and value in in_file:
            return value
        return _id_ref(value, today)

    with engine.begin() as conn, _roomy_cache(conn):
        def known(id_number: str) -> dict[str, Any] | None:
            if id_number in in_file:
                return in_file[id_number]
            row = conn.execute(
                select(people.c.scheme, people.c.status).where(people.c.id_number == id_number)
            ).mappings().first()
            return dict(row) if row else None

        binding_rows = []
        seen_pairs: dict[tuple[str, str], int] = {}
        for i, b in enumerate(binding_items):
            rec = f"bindings[{i}]"
            if not isinstance(b, dict):
                ck.fail(rec, "", "must be an object")
                continue
            try:
                side = "funder"
                funder = ref(b.get("funder"))
                side = "member"
                member = ref(b.get("member"))
            except ValueError as exc:
                ck.fail(rec, side, str(exc))
                continue
            if funder in rejected or member in rejected:
                continue
            rec = f"bindings[{i}] ({mask_id_number(funder)} -> {mask_id_number(member)})"
            rel = b.get("relationship")
            try:
                since = _date(b.get("since"))
            except ValueError as exc:
                ck.fail(rec, "since", str(exc))
                continue
            if (funder, member) in seen_pairs:
                ck.fail(rec, "funder, member",
                        f"duplicate of bindings[{seen_pairs[(funder, member)]}]")
            elif funder == member:
                ck.fail(rec, "member", "a person cannot bind themselves")
            elif rel not in CLOSE_RELATIVES:
                ck.fail(rec, "relationship", f"must be one of {', '.join(CLOSE_RELATIVES)}")
            elif not region.allows(rel):
                ck.fail(rec, "relationship", f"{rel!r} is not allowed by region {region.code} "
                                             f"({region.pool_relations})")
            elif (f := known(funder)) is None:
                ck.fail(rec, "funder", "not in the data (neither in the file nor stored)")
            elif f["scheme"] != "employee" or f["status"] != "active":
                ck.fail(rec, "funder", "must be an active employee-scheme person")
            elif known(member) is None:
                ck.fail(rec, "member", "not in the data (neither in the file nor stored)")
            else:
                seen_pairs[(funder, member)] = i
                binding_rows.append({"funder": funder, "member": member,
                                     "relationship": rel, "since": since, "_i": i})

        tx_rows = []
        for i, t in enumerate(tx_items):
            rec = f"transactions[{i}]"
            if not isinstance(t, dict):
                ck.fail(rec, "", "must be an object")
                continue
            try:
                owner = ref(t.get("id_number"))
            except ValueError as exc:
                ck.fail(rec, "id_number", str(exc))
                continue
            if owner in rejected:
                continue
            rec = f"transactions[{i}] ({mask_id_number(owner)})"
            if known(owner) is None:
                ck.fail(rec, "id_number", "must be a person in the data (the file or stored)")
                continue
            kind = t.get("kind")
            try:
                key = "amount"
                amount = _fen(t.get("amount"))
                key = "date"
                day = _date(t.get("date"))
            except ValueError as exc:
                ck.fail(rec, key, str(exc))
                continue
            for_id = None
            if kind not in KINDS:
                ck.fail(rec, "kind", f"must be one of {', '.join(KINDS)}")
                continue
            if kind == "pool_payment":
                if t.get("for") is None:
                    ck.fail(rec, "for", "a pool_payment names the family member paid for")
                    continue
                try:
                    for_id = ref(t.get("for"))
                except ValueError as exc:
                    ck.fail(rec, "for", str(exc))
                    continue
                if for_id in rejected:
                    continue
                if known(for_id) is None:
                    ck.fail(rec, "for", "must be a person in the data (the file or stored)")
                    continue
            elif t.get("for") is not None:
                ck.fail(rec, "for", "only a pool_payment names a family member")
                continue
            tx_rows.append({"id_number": owner, "date": day, "kind": kind,
                            "amount_fen": amount, "for_id": for_id})

        cards = {r["card_number"]: i for i, r in enumerate(rows) if r["card_number"]}
        for chunk in _chunks(list(cards), 500):
            for card, owner in conn.execute(_CARD_OWNERS, {"keys": chunk}):
                if owner not in in_file:
                    row = rows[cards[card]]
                    ck.fail(f"people[{person_index[row['id_number']]}] "
                            f"({mask_id_number(row['id_number'])})", "card_number",
                            f"belongs to another person ({mask_id_number(owner)})")

        if ck.total:
            raise DatasetInvalid(ck.errors, ck.total)

        for r in rows:  # slow hashes only once the file is known to be good
            plain = r.pop("_password")
            if plain:
                r["password_hash"] = passwords.hash_password(plain, n=scrypt_n)
                if progress:
                    progress("hashing passwords", 1)
        upsert(conn, regions, [region.as_row()], ["code"])
        upsert(conn, meta, [{"key": "line_region", "value": region.code}], ["key"])
        ids = list(in_file)
        # the file's people have their bindings replaced (the file's pairs are upserted below);
        # transactions have no key, so every account named in the file is replaced
        owners = list({*ids, *(t["id_number"] for t in tx_rows)})
        for chunk in _chunks(owners, 500):
            conn.execute(_DELETE_TRANSACTIONS, {"keys": chunk})
        for chunk in _chunks(ids, 500):
            conn.execute(_DELETE_FUNDED, {"keys": chunk})
            conn.execute(_DELETE_FUNDERS, {"keys": chunk})
            # free the file's cards first, so people may swap card numbers in one file
            conn.execute(_FREE_CARDS, {"keys": chunk})
        for chunk in _chunks(rows, 5000):
            upsert(conn, people, chunk, ["id_number"], keep=["failed_attempts", "locked"])
        if binding_rows:
            upsert(conn, bindings, [
                {k: v for k, v in b.items() if k != "_i"} for b in binding_rows
            ], ["funder", "member"])
        if tx_rows:
            conn.execute(transactions.insert(), tx_rows)
        _check_binding_limits(conn, region, binding_rows)
    return ImportReport(len(rows), len(binding_rows), len(tx_rows), region.code)


def _check_binding_limits(conn: Any, region: Region, binding_rows: list[dict[str, Any]]) -> None:
    """Member limit and multiple_funders, over the merged data (raises: rolls back)."""
    by_funder = {b["funder"]: b["_i"] for b in binding_rows}
    by_member = {b["member"]: b["_i"] for b in binding_rows}
    ck = _Checker()
    over = conn.execute(
        select(bindings.c.funder, func.count()).group_by(bindings.c.funder)
        .having(func.count() > region.max_members)
    ).all()
    for funder, n in over:
        i = max(b["_i"] for b in binding_rows if b["funder"] == funder) if funder in by_funder \
            else None
        ck.fail(f"bindings[{i}] ({mask_id_number(funder)})" if i is not None
                else mask_id_number(funder), "funder",
                f"has {n} members; region {region.code} allows {region.max_members}")
    if not region.multiple_funders:
        multi = conn.execute(
            select(bindings.c.member, func.count()).group_by(bindings.c.member)
            .having(func.count() > 1)
        ).all()
        for member, n in multi:
            i = by_member.get(member)
            ck.fail(f"bindings[{i}] ({mask_id_number(member)})" if i is not None
                    else mask_id_number(member), "member",
                    f"is bound by {n} funders; region {region.code} allows one")
    if ck.total:
        raise DatasetInvalid(ck.errors, ck.total)


@contextmanager
def _roomy_cache(conn: Connection) -> Iterator[None]:
    """SQLite only: a page cache big enough for the import's B-trees while it runs.

    With the default 2 MB, a million people in random key order evict and re-read pages on
    nearly every insert (mostly system time); the cache only grows as pages are used.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
