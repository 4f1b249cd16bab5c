"""Import a dataset file (dataset.md): validate everything, then write it in one transaction.

The checks of each kind of record are in dataset_checks.py; this module runs them in order,
stops with every error found, or writes the rows they produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from ivr.dataset.checks import (
    KEYS,
    KINDS,
    MAX_ERRORS,
    AgentCheck,
    BindingCheck,
    Errors,
    KnownPeople,
    PeopleCheck,
    Progress,
    Row,
    TransactionCheck,
    check_region,
    chunks,
    records,
)
from ivr.domain import passwords, routing
from ivr.domain.identity import _china_today, mask_id_number
from ivr.domain.pinkeys import Keyring
from ivr.domain.policy import Region
from ivr.errors import DatasetError
from ivr.store.schema import agents, bindings, meta, people, regions, transactions, upsert

__all__ = ["KINDS", "MAX_ERRORS", "DatasetError", "DatasetInvalid", "ImportReport", "Progress",
           "import_dataset", "load_file"]

IMPORT_CACHE_KIB = 1024 * 1024  # SQLite page cache while importing (1 GiB at most)

_DELETE_TRANSACTIONS = delete(transactions).where(transactions.c.id_number.in_(KEYS))
_DELETE_FUNDED = delete(bindings).where(bindings.c.funder.in_(KEYS))
_DELETE_FUNDERS = delete(bindings).where(bindings.c.member.in_(KEYS))
_FREE_CARDS = update(people).where(people.c.id_number.in_(KEYS)).values(
    card_number=None, card_digits=None)


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

    @classmethod
    def raise_any(cls, errors: Errors) -> None:
        """Raise if any rule was broken."""
        if errors.total:
            raise cls(errors.errors, errors.total)


@dataclass
class ImportReport:
    people: int = 0
    bindings: int = 0
    transactions: int = 0
    region: str = ""
    agents: int = 0
    #: regions with people the region menu cannot offer (past its nine keys) and that no
    #: number or area code reaches: their callers cannot reach them
    unreachable: tuple[str, ...] = ()


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


def import_dataset(engine: Engine, data: dict[str, Any], *, keyring: Keyring,
                   progress: Progress | None = None) -> ImportReport:
    """Validate the whole dataset, then upsert it in one transaction: all or nothing.
    Passwords given in clear are hashed under `keyring`'s current key; a given hash must name
    one of its keys (or be scrypt)."""
    errors = Errors()
    region = check_region(data.get("region"))
    person_items = records(data, "people", errors)
    binding_items = records(data, "bindings", errors)
    tx_items = records(data, "transactions", errors)
    agent_check = AgentCheck(region, errors)
    agent_rows = agent_check.rows(records(data, "agents", errors))

    today = _china_today()  # once: an import is checked against one day
    people_check = PeopleCheck(region, errors, today, keyring, progress)
    rows = people_check.rows(person_items)
    with engine.begin() as conn, _roomy_cache(conn):
        known = KnownPeople.after(people_check, rows, today, conn)
        binding_rows = BindingCheck(region, known, errors).rows(binding_items)
        tx_rows = TransactionCheck(known, errors, region.code).rows(tx_items)
        _check_agents_region(conn, region, agent_rows, agent_check, errors)
        people_check.check_stored_cards(conn, rows, known.in_file)
        DatasetInvalid.raise_any(errors)

        _hash_passwords(rows, keyring, progress)
        for a in agent_rows:  # PINs are stored like callers' passwords
            pin = a.pop("_pin")
            if pin:
                a["pin_hash"] = passwords.hash_password(pin, keyring)
        _write(conn, region, rows, binding_rows, tx_rows)
        if agent_rows:  # a stored agent keeps their count of wrong PINs and their lock
            upsert(conn, agents, agent_rows, ["agent_id"], keep=["failed_attempts", "locked"])
        _check_binding_limits(conn, region, binding_rows)
        _check_routes(conn, region)
    return ImportReport(len(rows), len(binding_rows), len(tx_rows), region.code,
                        len(agent_rows), _unreachable(engine))


def _unreachable(engine: Engine) -> tuple[str, ...]:
    """The regions with people past the region menu's nine keys, without a number or an area
    code of their own (docs/dataset.md §2)."""
    menu = {o.code for o in routing.offered(engine)}
    with engine.connect() as conn:
        rows = conn.execute(select(regions.c.code, regions.c.numbers, regions.c.area_codes)
                            .where(regions.c.code.in_(select(people.c.region_code)))).all()
    return tuple(sorted(code for code, numbers, area_codes in rows if code not in menu
                        and json.loads(numbers or "[]") == []
                        and json.loads(area_codes or "[]") == []))


def _hash_passwords(rows: list[Row], keyring: Keyring, progress: Progress | None) -> None:
    """The passwords given in clear: hashed only once the file is known to be good."""
    for r in rows:
        plain = r.pop("_password")
        if plain:
            r["password_hash"] = passwords.hash_password(plain, keyring)
            if progress:
                progress("hashing passwords", 1)


def _write(conn: Connection, region: Region, rows: list[Row], binding_rows: list[Row],
           tx_rows: list[Row]) -> None:
    """Upsert the region and the file's people; replace their bindings and transactions.

    A person already stored keeps their lockout state (failed_attempts, locked).
    """
    upsert(conn, regions, [region.as_row()], ["code"])
    upsert(conn, meta, [{"key": "line_region", "value": region.code}], ["key"])
    ids = [r["id_number"] for r in rows]
    # the file's people have their bindings replaced (the file's pairs are upserted below);
    # transactions have no key, so every account named in the file is replaced
    owners = list({*ids, *(t["id_number"] for t in tx_rows)})
    for chunk in chunks(owners, 500):
        conn.execute(_DELETE_TRANSACTIONS, {"keys": chunk})
    for chunk in chunks(ids, 500):
        conn.execute(_DELETE_FUNDED, {"keys": chunk})
        conn.execute(_DELETE_FUNDERS, {"keys": chunk})
        # free the file's cards first, so people may swap card numbers in one file
        conn.execute(_FREE_CARDS, {"keys": chunk})
    for chunk in chunks(rows, 5000):
        upsert(conn, people, chunk, ["id_number"], keep=["failed_attempts", "locked"])
    if binding_rows:
        upsert(conn, bindings, [
            {k: v for k, v in b.items() if k != "_i"} for b in binding_rows
        ], ["funder", "member"])
    if tx_rows:
        conn.execute(transactions.insert(), tx_rows)


def _check_binding_limits(conn: Any, region: Region, binding_rows: list[dict[str, Any]]) -> None:
    """Member limit and multiple_funders, over the merged data (raises: rolls back)."""
    by_funder = {b["funder"]: b["_i"] for b in binding_rows}
    by_member = {b["member"]: b["_i"] for b in binding_rows}
    ck = Errors()
    # this region's people only: each region has its own limits (one line, many regions)
    mine = select(people.c.id_number).where(people.c.region_code == region.code)
    over = conn.execute(
        select(bindings.c.funder, func.count()).where(bindings.c.funder.in_(mine))
        .group_by(bindings.c.funder).having(func.count() > region.max_members)
    ).all()
    for funder, n in over:
        i = max(b["_i"] for b in binding_rows if b["funder"] == funder) if funder in by_funder \
            else None
        ck.fail(f"bindings[{i}] ({mask_id_number(funder)})" if i is not None
                else mask_id_number(funder), "funder",
                f"has {n} members; region {region.code} allows {region.max_members}")
    if not region.multiple_funders:
        multi = conn.execute(
            select(bindings.c.member, func.count()).where(bindings.c.member.in_(mine))
            .group_by(bindings.c.member).having(func.count() > 1)
        ).all()
        for member, n in multi:
            i = by_member.get(member)
            ck.fail(f"bindings[{i}] ({mask_id_number(member)})" if i is not None
                    else mask_id_number(member), "member",
                    f"is bound by {n} funders; region {region.code} allows one")
    _check_one_region_per_binding(conn, binding_rows, ck)
    DatasetInvalid.raise_any(ck)


def _check_one_region_per_binding(conn: Connection, binding_rows: list[dict[str, Any]],
                                  ck: Errors) -> None:
    """A family pool binds people of one region (家庭共济 is within a 统筹区): over the merged
    data, so a person moved to another region by this file can't leave a binding behind."""
    funder, member = people.alias("f"), people.alias("m")
    index = {(b["funder"], b["member"]): b["_i"] for b in binding_rows}
    crossing = conn.execute(
        select(bindings.c.funder, bindings.c.member, funder.c.region_code,
               member.c.region_code.label("member_region"))
        .join(funder, funder.c.id_number == bindings.c.funder)
        .join(member, member.c.id_number == bindings.c.member)
        .where(funder.c.region_code != member.c.region_code)).all()
    for f, m, f_region, m_region in crossing:
        i = index.get((f, m))
        ck.fail(f"bindings[{i}]" if i is not None
                else f"binding {mask_id_number(f)} -> {mask_id_number(m)}", "member",
                f"belongs to region {m_region} and the funder to region {f_region}: a family "
                "pool binds people of one region")


def _check_agents_region(conn: Connection, region: Region, agent_rows: list[Row],
                         check: AgentCheck, errors: Errors) -> None:
    """An agent id belongs to one region: another region's agent keeps theirs (ids are
    keyed alone, so a second region's 1001 would otherwise take over the first's)."""
    ids = [a["agent_id"] for a in agent_rows]
    if not ids:
        return
    held = conn.execute(select(agents.c.agent_id, agents.c.region_code).where(
        agents.c.agent_id.in_(ids), agents.c.region_code != region.code)).all()
    for agent_id, theirs in sorted(held):
        errors.fail(f"agents[{check.index_of(agent_id)}] ({agent_id})", "id",
                    f"is region {theirs}'s agent: an agent id belongs to one region")


def _check_routes(conn: Connection, region: Region) -> None:
    """A number or area code reaches one region only (raises: rolls back)."""
    ck = Errors()
    others = conn.execute(select(regions.c.code, regions.c.numbers, regions.c.area_codes)
                          .where(regions.c.code != region.code)).all()
    for code, numbers, area_codes in others:
        for what, mine, theirs in (("numbers", region.numbers, numbers),
                                   ("area_codes", region.area_codes, area_codes)):
            for value in sorted(set(mine) & set(json.loads(theirs or "[]"))):
                ck.fail("region", what, f"{value} already reaches region {code}: a number "
                        "or area code reaches one region only")
    DatasetInvalid.raise_any(ck)


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
