"""ivr.dataset: the import contract of docs/dataset.md against a real SQLite file."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import keyring_of_tests
from sqlalchemy import Engine, func, select

from ivr.dataset.importer import MAX_ERRORS, DatasetInvalid, import_dataset, load_file
from ivr.domain import passwords
from ivr.domain.accounts import PasswordCheck, check_password
from ivr.domain.identity import mask_id_number, synthetic_id_number
from ivr.domain.pinkeys import Keyring
from ivr.errors import DatasetError
from ivr.store.schema import bindings, ensure_schema, make_engine, metadata, people, transactions
from ivr.tools.cli import main

KEYS = keyring_of_tests()  # the tests' PIN keys

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "dataset-example.json"

JIANGUO = "450102197503150013"  # 李建国, active employee, funder of four
CHENLI = "450102197806200022"  # 陈丽, active employee, funder of 李小雨
LIMING = "450103200201010032"  # 李明, resident
DASHAN = "450103195208080056"  # 李大山, resident
XIAOYU = "450105201506120045"  # 李小雨, resident, two funders
ZHOUQIANG = "450107199009090132"  # 周强, suspended employee
WUFANG = "450107198811110263"  # 吴芳, active employee, no bindings
WANG = "11010519491231002X"  # 王秀英, active retired employee
STRANGER = synthetic_id_number("450109", date(1985, 5, 5), 17, "male")  # valid, in no file
ALL_IDS = (JIANGUO, CHENLI, LIMING, DASHAN, XIAOYU, ZHOUQIANG, WUFANG, WANG, STRANGER)


def masked(id_number: str) -> str:
    return "*" * 14 + id_number[-4:]


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def person(data: dict[str, Any], id_number: str) -> dict[str, Any]:
    return next(p for p in data["people"] if p["id_number"] == id_number)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.c)).all()]
            for t in metadata.sorted_tables
        }


def count(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (people, bindings, transactions)
        )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path}/t.sqlite3")
    ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def loaded(engine: Engine) -> Engine:
    report = import_dataset(engine, example(), keyring=keyring_of_tests())
    assert (report.people, report.bindings, report.transactions) == (8, 5, 6)
    return engine


def person_row(engine: Engine, id_number: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(people).where(people.c.id_number == id_number)).mappings().one()
    return dict(row)


# --- a good file ----------------------------------------------------------------------------


def test_example_imports_exact_counts_and_report(engine: Engine) -> None:
    report = import_dataset(engine, example(), keyring=keyring_of_tests())
    assert (report.people, report.bindings, report.transactions, report.region) == (
        8, 5, 6, "450100",
    )
    assert count(engine) == (8, 5, 6)


def test_example_stores_exact_values(loaded: Engine) -> None:
    row = person_row(loaded, JIANGUO)
    assert row["name"] == "李建国"
    assert row["card_number"] == "D58009678"
    assert row["card_digits"] == "58009678"
    assert row["balance_fen"] == 123456
    assert row["monthly_credit_fen"] == 15000
    assert row["as_of"] == date(2026, 11, 21)
    assert (row["scheme"], row["status"], row["retired"]) == ("employee", "active", False)
    assert row["phone"] == "+8613800000001"
    assert row["region_code"] == "450100"
    assert (row["failed_attempts"], row["locked"]) == (0, False)
    # the password is stored only as a salted hash that verifies
    assert row["password_hash"] != "135790"
    assert row["password_hash"].startswith(f"hmac-sha256${KEYS.current_id}$")
    assert passwords.verify_password("135790", row["password_hash"], KEYS)

    chen = person_row(loaded, CHENLI)
    assert (chen["card_number"], chen["card_digits"]) == ("548426015", "548426015")
    assert (chen["balance_fen"], chen["monthly_credit_fen"]) == (100101, 9840)
    assert chen["phone"] is None
    zhou = person_row(loaded, ZHOUQIANG)
    assert (zhou["card_digits"], zhou["status"], zhou["balance_fen"]) == (
        "12345678", "suspended", 8800,
    )
    assert person_row(loaded, WUFANG)["balance_fen"] == 0
    assert person_row(loaded, WANG)["balance_fen"] == 1050
    dashan = person_row(loaded, DASHAN)
    assert (dashan["scheme"], dashan["retired"]) == ("resident", True)
    assert (dashan["balance_fen"], dashan["monthly_credit_fen"], dashan["as_of"]) == (
        None, None, None,
    )
    assert (dashan["card_number"], dashan["card_digits"]) == (None, None)


def test_example_stores_bindings_transactions_and_region(loaded: Engine) -> None:
    snapshot = dump(loaded)
    assert snapshot["bindings"] == sorted([
        (JIANGUO, CHENLI, "spouse", date(2023, 1, 10)),
        (JIANGUO, LIMING, "child", date(2023, 1, 10)),
        (JIANGUO, DASHAN, "parent", date(2024, 8, 1)),
        (JIANGUO, XIAOYU, "child", date(2024, 3, 1)),
        (CHENLI, XIAOYU, "child", date(2023, 6, 15)),
    ])
    assert sorted(r[1:] for r in snapshot["transactions"]) == sorted([
        (JIANGUO, date(2026, 11, 1), "credit", 15000, None),
        (JIANGUO, date(2026, 11, 3), "pharmacy", -3250, None),
        (JIANGUO, date(2026, 10, 20), "pool_payment", -12000, LIMING),
        (JIANGUO, date(2026, 10, 11), "outpatient", -8520, None),
        (JIANGUO, date(2026, 9, 2), "inpatient", -150000, None),
        (JIANGUO, date(2026, 8, 30), "pharmacy", -1200, None),
    ])
    assert snapshot["regions"] == [(
        "450100", "南宁市", "close_relatives", 7, True, True, 3, "+867711234567",
        '[["mon-fri", "09:00-12:00"], ["mon-fri", "13:00-17:00"]]', "Asia/Shanghai",
        '["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]', 600,
        "医保服务热线", "Healthcare Security hotline", "[]", "Nanning", "[]", '["0771"]',
    )]
    assert snapshot["meta"] == [("line_region", "450100")]


def test_load_file_reads_amounts_as_exact_decimals_not_floats(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"people": [], "x": 0.1}', encoding="utf-8")
    data = load_file(path)
    assert data["x"] == Decimal("0.1")
    assert load_file(EXAMPLE) == example()


def test_in_memory_sqlite_keeps_its_schema() -> None:
    """make_engine("sqlite://") must hand out the same in-memory database on every connect.

    Bug: make_engine uses NullPool when the database part is empty, so every connection
    opens a fresh, empty in-memory database and the schema from ensure_schema is gone.
    """
    eng = make_engine("sqlite://")
    try:
        ensure_schema(eng)
        report = import_dataset(eng, example(), keyring=keyring_of_tests())
        assert report.people == 8
        assert count(eng) == (8, 5, 6)
    finally:
        eng.dispose()


# --- re-import ------------------------------------------------------------------------------


def without_hashes(snapshot: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    hash_col = [c.name for c in people.c].index("password_hash")
    return [r[:hash_col] + r[hash_col + 1:] for r in snapshot["people"]]


def test_reimport_updates_the_changed_person_only(loaded: Engine) -> None:
    before = dump(loaded)
    data = example()
    person(data, CHENLI)["name"] = "陈美丽"
    person(data, CHENLI)["account"]["balance"] = "2000.05"
    report = import_dataset(loaded, data, keyring=keyring_of_tests())
    assert (report.people, report.bindings, report.transactions) == (8, 5, 6)
    after = dump(loaded)
    assert count(loaded) == (8, 5, 6)
    changed = [(a, b) for a, b in zip(without_hashes(before), without_hashes(after), strict=True)
               if a != b]
    assert len(changed) == 1
    row = person_row(loaded, CHENLI)
    assert (row["name"], row["balance_fen"], row["monthly_credit_fen"]) == ("陈美丽", 200005, 9840)
    assert after["bindings"] == before["bindings"]
    assert [r[1:] for r in after["transactions"]] == [r[1:] for r in before["transactions"]]


def test_reimport_replaces_bindings_and_transactions_per_person_in_file(loaded: Engine) -> None:
    data = example()
    partial = {
        "region": data["region"],
        "people": [person(data, JIANGUO)],
        "bindings": [{"funder": JIANGUO, "member": WUFANG, "relationship": "sibling",
                      "since": "2025-01-01"}],
        "transactions": [
            {"id_number": JIANGUO, "date": "2026-11-20", "kind": "outpatient", "amount": "-1.00"},
            {"id_number": JIANGUO, "date": "2026-11-21", "kind": "credit", "amount": "150.00"},
        ],
    }
    report = import_dataset(loaded, partial, keyring=keyring_of_tests())
    assert (report.people, report.bindings, report.transactions) == (1, 1, 2)
    snapshot = dump(loaded)
    assert len(snapshot["people"]) == 8
    # 李建国's four bindings are replaced by the one in the file; 陈丽 -> 李小雨 stays
    assert snapshot["bindings"] == sorted([
        (JIANGUO, WUFANG, "sibling", date(2025, 1, 1)),
        (CHENLI, XIAOYU, "child", date(2023, 6, 15)),
    ])
    assert sorted(r[1:] for r in snapshot["transactions"]) == [
        (JIANGUO, date(2026, 11, 20), "outpatient", -100, None),
        (JIANGUO, date(2026, 11, 21), "credit", 15000, None),
    ]


def test_reimporting_a_member_drops_their_bindings_not_in_file(loaded: Engine) -> None:
    data = example()
    import_dataset(loaded, {"region": data["region"], "people": [person(data, XIAOYU)]},
                   keyring=keyring_of_tests())
    assert dump(loaded)["bindings"] == sorted([
        (JIANGUO, CHENLI, "spouse", date(2023, 1, 10)),
        (JIANGUO, LIMING, "child", date(2023, 1, 10)),
        (JIANGUO, DASHAN, "parent", date(2024, 8, 1)),
    ])
    assert count(loaded) == (8, 3, 6)


def test_reimporting_a_bindings_only_file_is_idempotent(loaded: Engine) -> None:
    """A binding between people already stored, in a file that lists neither of them.

    Bug: the binding is INSERTed although the pair is already there, and the raw
    sqlite3.IntegrityError (carrying both full ID numbers) escapes instead of the row being
    replaced (or a DatasetError naming the record).
    """
    data = example()
    again = {"region": data["region"], "people": [], "bindings": [data["bindings"][0]]}
    import_dataset(loaded, again, keyring=keyring_of_tests())
    assert count(loaded) == (8, 5, 6)


def test_reimporting_a_transactions_only_file_is_idempotent(loaded: Engine) -> None:
    """Importing the same file twice must give the same database.

    Bug (or a gap in the spec): transactions whose owner is not among the file's people are
    appended on every import, so the same entry is stored twice after two imports.
    """
    data = example()
    tx_only = {"region": data["region"], "people": [],
               "transactions": [data["transactions"][0]]}
    import_dataset(loaded, tx_only, keyring=keyring_of_tests())
    first = count(loaded)
    import_dataset(loaded, tx_only, keyring=keyring_of_tests())
    assert count(loaded) == first


def test_lockout_state_survives_reimport(loaded: Engine) -> None:
    for _ in range(2):
        assert check_password(loaded, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert check_password(loaded, JIANGUO, "000000", 3, KEYS) is PasswordCheck.NOW_LOCKED
    assert check_password(loaded, CHENLI, "000000", 3, KEYS) is PasswordCheck.WRONG
    import_dataset(loaded, example(), keyring=keyring_of_tests())
    assert (person_row(loaded, JIANGUO)["failed_attempts"],
            person_row(loaded, JIANGUO)["locked"]) == (3, True)
    assert (person_row(loaded, CHENLI)["failed_attempts"],
            person_row(loaded, CHENLI)["locked"]) == (1, False)
    assert check_password(loaded, JIANGUO, "135790", 3, KEYS) is PasswordCheck.LOCKED


def test_prehashed_password_is_accepted(engine: Engine) -> None:
    data = example()
    stored = passwords.hash_password("909090", KEYS)
    wang = person(data, WANG)
    del wang["password"]
    wang["password_hash"] = stored
    import_dataset(engine, data, keyring=keyring_of_tests())
    assert person_row(engine, WANG)["password_hash"] == stored
    assert check_password(engine, WANG, "909090", 3, KEYS) is PasswordCheck.OK
    assert check_password(engine, WANG, "666777", 3, KEYS) is PasswordCheck.WRONG


def test_prehashed_scrypt_password_is_accepted_and_hashed_anew_at_its_first_success(
    engine: Engine,
) -> None:
    data = example()
    stored = passwords.scrypt_hash("909090", n=16)
    wang = person(data, WANG)
    del wang["password"]
    wang["password_hash"] = stored
    import_dataset(engine, data, keyring=KEYS)
    assert person_row(engine, WANG)["password_hash"] == stored
    assert check_password(engine, WANG, "666777", 3, KEYS) is PasswordCheck.WRONG
    assert person_row(engine, WANG)["password_hash"] == stored  # a failure changes nothing
    assert check_password(engine, WANG, "909090", 3, KEYS) is PasswordCheck.OK
    upgraded = person_row(engine, WANG)["password_hash"]
    assert upgraded.startswith(f"hmac-sha256${KEYS.current_id}$")
    assert passwords.verify_password("909090", upgraded, KEYS)


def test_prehashed_password_under_a_key_not_held_is_refused(engine: Engine) -> None:
    """A file hashed under another installation's key would never verify here: refused at
    import, naming the key id (never the key)."""
    elsewhere = Keyring.of(b"e" * 32)
    data = example()
    wang = person(data, WANG)
    del wang["password"]
    wang["password_hash"] = passwords.hash_password("909090", elsewhere)
    with pytest.raises(DatasetInvalid) as raised:
        import_dataset(engine, data, keyring=KEYS)
    assert [(e.record, e.rule) for e in raised.value.errors] == [
        (f"people[7] ({masked(WANG)})",
         f"password_hash: is hashed under PIN key {elsewhere.current_id}, which this hotline's "
         f"keyring ({KEYS.current_id}) does not hold")]
    assert count(engine) == (0, 0, 0)


# --- every rule: names the record and the rule, changes nothing ----------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _add_binding(funder: str, member: str, relationship: str, since: str = "2025-01-01",
                 ) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["bindings"].append({"funder": funder, "member": member,
                                 "relationship": relationship, "since": since})
    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for m in mutations:
            m(data)
    return mutate


def _del(path: tuple[Any, ...]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def _dup_person(data: dict[str, Any]) -> None:
    data["people"].append(copy.deepcopy(person(data, WANG)))


def _prehash_garbage(data: dict[str, Any]) -> None:
    wang = data["people"][7]
    del wang["password"]
    wang["password_hash"] = "scrypt$16$8$1$not-base64$xyz"


# (id, mutation, record, rule fragment): every rule starts with the field it is about
RULES: list[tuple[str, Mutation, str, str]] = [
    ("bad check digit", _set(("people", 6, "id_number"), WUFANG[:-1] + "4"), "people[6]",
     f"id_number: ID number {mask_id_number(WUFANG[:-1] + '4')} has a wrong check character"),
    ("impossible birth date", _set(("people", 6, "id_number"), "450107198802300268"),
     "people[6]", "id_number: ID number **************0268 has a birth date that does not exist"),
    ("id too short", _set(("people", 6, "id_number"), WUFANG[:-1]), "people[6]",
     "id_number: An ID number has 18 characters (or 15), not 17"),
    ("duplicate id_number", _dup_person, f"people[8] ({masked(WANG)})",
     "id_number: duplicates people[7]"),
    ("duplicate card_number (case-insensitive)", _set(("people", 6, "card_number"), "d58009678"),
     f"people[6] ({masked(WUFANG)})", "card_number: duplicates people[0]"),
    ("bad card_number", _set(("people", 6, "card_number"), "12345"),
     f"people[6] ({masked(WUFANG)})", "card_number: A card number has 9 characters, not 5"),
    ("float amount", _set(("people", 0, "account", "balance"), 1234.56),
     f"people[0] ({masked(JIANGUO)})",
     "account.balance: must be a decimal string with at most 2 places"),
    ("integer amount", _set(("people", 0, "account", "monthly_credit"), 150),
     f"people[0] ({masked(JIANGUO)})",
     "account.monthly_credit: must be a decimal string with at most 2 places"),
    ("3-decimal amount", _set(("transactions", 1, "amount"), "-32.505"),
     f"transactions[1] ({masked(JIANGUO)})",
     "amount: must be a decimal string with at most 2 places"),
    ("bad transaction date", _set(("transactions", 0, "date"), "2026-02-30"),
     f"transactions[0] ({masked(JIANGUO)})", "date: '2026-02-30' is not a valid date YYYY-MM-DD"),
    ("bad as_of date", _set(("people", 1, "account", "as_of"), "2026-13-01"),
     f"people[1] ({masked(CHENLI)})",
     "account.as_of: '2026-13-01' is not a valid date YYYY-MM-DD"),
    ("an ID number as a date is not quoted", _set(("people", 1, "account", "as_of"), CHENLI),
     f"people[1] ({masked(CHENLI)})", "account.as_of: must be a date string YYYY-MM-DD"),
    ("account not an object", _set(("people", 1, "account"), "1001.01"),
     f"people[1] ({masked(CHENLI)})", "account: must be an object"),
    ("bad since date", _set(("bindings", 0, "since"), "2023/01/10"),
     f"bindings[0] ({masked(JIANGUO)} -> {masked(CHENLI)})",
     "since: must be a date string YYYY-MM-DD"),
    ("impossible since date", _set(("bindings", 0, "since"), "2023-02-29"),
     f"bindings[0] ({masked(JIANGUO)} -> {masked(CHENLI)})",
     "since: '2023-02-29' is not a valid date YYYY-MM-DD"),
    ("funder suspended", _add_binding(ZHOUQIANG, WUFANG, "spouse"),
     f"bindings[5] ({masked(ZHOUQIANG)} -> {masked(WUFANG)})",
     "funder: must be an active employee-scheme person"),
    ("funder resident", _add_binding(LIMING, DASHAN, "grandparent"),
     f"bindings[5] ({masked(LIMING)} -> {masked(DASHAN)})",
     "funder: must be an active employee-scheme person"),
    ("funder not an ID number", _add_binding(WUFANG[:-1] + "4", ZHOUQIANG, "spouse"),
     "bindings[5]",
     f"funder: ID number {mask_id_number(WUFANG[:-1] + '4')} has a wrong check character"),
    ("member missing", _del(("bindings", 0, "member")), "bindings[0]",
     "member: is required (an ID number)"),
    ("sibling in an immediate_family region",
     _both(_set(("region", "pool_relations"), "immediate_family"),
           _add_binding(WUFANG, ZHOUQIANG, "sibling")),
     f"bindings[5] ({masked(WUFANG)} -> {masked(ZHOUQIANG)})",
     "relationship: 'sibling' is not allowed by region 450100 (immediate_family)"),
    ("unknown relationship", _add_binding(WUFANG, ZHOUQIANG, "cousin"),
     f"bindings[5] ({masked(WUFANG)} -> {masked(ZHOUQIANG)})", "relationship: must be one of"),
    ("self-binding", _add_binding(WUFANG, WUFANG, "spouse"),
     f"bindings[5] ({masked(WUFANG)} -> {masked(WUFANG)})",
     "member: a person cannot bind themselves"),
    ("member not in data", _add_binding(WUFANG, STRANGER, "child"),
     f"bindings[5] ({masked(WUFANG)} -> {masked(STRANGER)})", "member: not in the data"),
    ("duplicate binding", lambda data: data["bindings"].append(dict(data["bindings"][0])),
     f"bindings[5] ({masked(JIANGUO)} -> {masked(CHENLI)})",
     "funder, member: duplicate of bindings[0]"),
    ("more than max_members", _set(("region", "max_members"), 3),
     f"bindings[3] ({masked(JIANGUO)})", "funder: has 4 members; region 450100 allows 3"),
    ("multiple funders forbidden", _set(("region", "multiple_funders"), False),
     f"bindings[4] ({masked(XIAOYU)})",
     "member: is bound by 2 funders; region 450100 allows one"),
    ("unknown kind", _set(("transactions", 3, "kind"), "refund"),
     f"transactions[3] ({masked(JIANGUO)})", "kind: must be one of"),
    ("pool_payment without for", _del(("transactions", 2, "for")),
     f"transactions[2] ({masked(JIANGUO)})",
     "for: a pool_payment names the family member paid for"),
    ("pool_payment for a bad ID number", _set(("transactions", 2, "for"), LIMING[:-1] + "9"),
     f"transactions[2] ({masked(JIANGUO)})",
     f"for: ID number {mask_id_number(LIMING[:-1] + '9')} has a wrong check character"),
    ("for on a non-pool transaction", _set(("transactions", 1, "for"), LIMING),
     f"transactions[1] ({masked(JIANGUO)})", "for: only a pool_payment names a family member"),
    ("unknown person in a transaction", _set(("transactions", 0, "id_number"), STRANGER),
     f"transactions[0] ({masked(STRANGER)})", "id_number: must be a person in the data"),
    ("bad ID number in a transaction", _set(("transactions", 0, "id_number"), "12345"),
     "transactions[0]", "id_number: An ID number has 18 characters (or 15), not 5"),
    ("employee without account", _del(("people", 6, "account")),
     f"people[6] ({masked(WUFANG)})", "account: an employee-scheme person needs an account"),
    ("resident with account",
     _set(("people", 2, "account"), {"balance": "1.00", "as_of": "2026-11-21"}),
     f"people[2] ({masked(LIMING)})", "account: a resident-scheme person has no personal account"),
    ("password not 6 digits", _set(("people", 3, "password"), "12345"),
     f"people[3] ({masked(DASHAN)})", "password: must be 6 digits as a string"),
    ("password as a number", _set(("people", 3, "password"), 222333),
     f"people[3] ({masked(DASHAN)})", "password: must be 6 digits as a string"),
    ("garbage password_hash", _prehash_garbage, f"people[7] ({masked(WANG)})",
     "password_hash: is not a password hash"),
    ("missing name", _set(("people", 4, "name"), "  "), f"people[4] ({masked(XIAOYU)})",
     "name: is required"),
    ("unknown scheme", _set(("people", 4, "scheme"), "private"), f"people[4] ({masked(XIAOYU)})",
     "scheme: must be"),
    ("unknown status", _set(("people", 4, "status"), "dead"), f"people[4] ({masked(XIAOYU)})",
     "status: must be"),
    ("retired not a boolean", _set(("people", 4, "retired"), "no"),
     f"people[4] ({masked(XIAOYU)})", "retired: must be true or false"),
    ("phone not text", _set(("people", 4, "phone"), {"home": "x"}),
     f"people[4] ({masked(XIAOYU)})", "phone: must be text of at most 32 characters"),
    ("people not an array", _set(("people",), {"a": 1}), "people", "must be an array"),
    ("record not an object", _set(("transactions", 0), "x"), "transactions[0]",
     "must be an object"),
    ("region not an object", _set(("region",), ["450100"]), "region", "must be an object"),
    ("region with a bad time zone", _set(("region", "timezone"), "Mars/Olympus_Mons"), "region",
     "timezone: is not a known time zone"),
    ("region with bad hours", _set(("region", "agent_hours"), [["mon-fri", "9-12"]]), "region",
     "agent_hours: hours '9-12' must look like 09:00-12:00"),
    ("region with a number for code", _set(("region", "code"), 450100), "region",
     "code: must be a non-empty string"),
    ("region with a word for max_members", _set(("region", "max_members"), "3"), "region",
     "max_members: must be a whole number"),
]
#: rules about a whole record (no field to name); every other rule starts with its field
WHOLE_RECORD = ("must be an array", "must be an object")
FIELD = re.compile(r"^[a-z_]+(\.[a-z_]+|, [a-z_]+)?: ")


def _assert_no_full_ids(text: str) -> None:
    for id_number in ALL_IDS + ("450107198802300268", WUFANG[:-1] + "4"):
        assert id_number not in text


@pytest.mark.parametrize(("mutate", "record", "rule"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_rule_violation_names_record_and_rule_and_changes_nothing(
    loaded: Engine, mutate: Mutation, record: str, rule: str,
) -> None:
    check_password(loaded, CHENLI, "000000", 3, KEYS)  # some lockout state in the database too
    before = dump(loaded)
    data = example()
    person(data, WANG)["name"] = "王改名"  # a partial write would show up in the dump
    person(data, CHENLI)["account"]["balance"] = "1.00"
    mutate(data)
    with pytest.raises(DatasetError) as info:
        import_dataset(loaded, data, keyring=keyring_of_tests())
    errors = info.value.errors if isinstance(info.value, DatasetInvalid) else [info.value]
    assert any(e.record == record and e.rule.startswith(rule) for e in errors), [
        (e.record, e.rule) for e in errors
    ]
    _assert_no_full_ids(str(info.value))
    for e in errors:
        _assert_no_full_ids(f"{e.record} {e.rule}")
        assert e.rule in WHOLE_RECORD or FIELD.match(e.rule), (e.record, e.rule)
    assert dump(loaded) == before


def test_rule_violation_in_an_empty_database_writes_nothing(engine: Engine) -> None:
    before = dump(engine)
    data = example()
    data["region"]["max_members"] = 2
    with pytest.raises(DatasetInvalid):
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert dump(engine) == before
    assert count(engine) == (0, 0, 0)


def test_several_errors_are_all_listed_in_file_order(loaded: Engine) -> None:
    before = dump(loaded)
    data = example()
    data["people"][3]["password"] = "abc"
    data["bindings"].append({"funder": WUFANG, "member": WUFANG, "relationship": "spouse",
                             "since": "2025-01-01"})
    data["transactions"][2]["kind"] = "gift"
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(loaded, data, keyring=keyring_of_tests())
    exc = info.value
    assert exc.total == 3
    assert [e.record for e in exc.errors] == [
        f"people[3] ({masked(DASHAN)})",
        f"bindings[5] ({masked(WUFANG)} -> {masked(WUFANG)})",
        f"transactions[2] ({masked(JIANGUO)})",
    ]
    assert str(exc).splitlines() == [f"{e.record}: {e.rule}" for e in exc.errors]
    assert dump(loaded) == before


def test_a_broken_person_is_one_error_not_one_per_binding_and_transaction(
    engine: Engine,
) -> None:
    """Bug: a person whose record broke a rule was then "not in the data" for each of their
    bindings and transactions (14 errors for one bad balance, naming the wrong problem)."""
    data = example()
    person(data, JIANGUO)["account"]["balance"] = 1234.56
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in info.value.errors] == [(
        f"people[0] ({masked(JIANGUO)})",
        'account.balance: must be a decimal string with at most 2 places, e.g. "12.50"',
    )]
    assert count(engine) == (0, 0, 0)


def test_a_broken_member_is_one_error_also_where_a_pool_payment_names_them(
    engine: Engine,
) -> None:
    """李明 is bindings[1]'s member and transactions[2]'s "for": neither repeats his error."""
    data = example()
    person(data, LIMING)["password"] = "1"
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in info.value.errors] == [
        (f"people[2] ({masked(LIMING)})", "password: must be 6 digits as a string"),
    ]
    assert count(engine) == (0, 0, 0)


def test_error_list_is_capped_with_a_count_of_the_rest(engine: Engine) -> None:
    data = example()
    data["bindings"], data["transactions"] = [], []
    for p in data["people"]:
        p["password"] = "x"
    data["people"].extend(
        {"id_number": synthetic_id_number("450110", date(1990, 1, 1), i, "female"),
         "name": "某", "scheme": "resident", "password": "1"} for i in range(0, 40, 2)
    )
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert info.value.total == 28
    assert len(info.value.errors) == MAX_ERRORS
    assert str(info.value).splitlines()[-1] == f"... and {28 - MAX_ERRORS} more"


def test_card_number_of_a_stored_person_is_refused_as_a_rule(loaded: Engine) -> None:
    """Unique card numbers across the database, not only within one file.

    Bug: a new person whose card number belongs to someone already stored (not in the file)
    passes validation and the UNIQUE constraint raises sqlite3.IntegrityError instead of a
    DatasetError naming the record.
    """
    before = dump(loaded)
    newcomer = {"id_number": STRANGER, "card_number": "D58009678", "name": "新人",
                "scheme": "resident", "status": "active", "password": "123456"}
    with pytest.raises(DatasetError) as info:
        import_dataset(loaded, {"region": example()["region"], "people": [newcomer]},
                       keyring=keyring_of_tests())
    assert info.value.record == f"people[0] ({masked(STRANGER)})"
    assert "card_number" in info.value.rule
    assert dump(loaded) == before


def test_swapping_two_card_numbers_in_one_file_is_accepted(loaded: Engine) -> None:
    """Bug: the row-by-row upsert trips the UNIQUE constraint half-way through a valid swap."""
    data = example()
    data["people"][0]["card_number"], data["people"][1]["card_number"] = "548426015", "D58009678"
    import_dataset(loaded, data, keyring=keyring_of_tests())
    assert person_row(loaded, JIANGUO)["card_number"] == "548426015"
    assert person_row(loaded, CHENLI)["card_number"] == "D58009678"


def test_duplicate_binding_in_one_file_is_a_rule_violation(loaded: Engine) -> None:
    """Bug: the same (funder, member) twice in a file raises sqlite3.IntegrityError, whose
    message carries both full ID numbers, instead of a DatasetError naming bindings[5]."""
    before = dump(loaded)
    data = example()
    data["bindings"].append(dict(data["bindings"][0]))
    with pytest.raises(DatasetError) as info:
        import_dataset(loaded, data, keyring=keyring_of_tests())
    _assert_no_full_ids(str(info.value))
    assert "bindings[5]" in str(info.value)
    assert dump(loaded) == before


@pytest.mark.parametrize(("key", "value"), [
    ("pool_relations", "everyone"),
    ("max_members", 0),
    ("lockout_after", 0),
    ("timezone", "Mars/Olympus_Mons"),
    ("agent_hours", [["mon-fri", "9-12"]]),
    ("agent_hours", [["fri-mon", "09:00-12:00"]]),
    ("code", 450100),
])
def test_bad_region_is_refused_and_changes_nothing(loaded: Engine, key: str, value: Any) -> None:
    before = dump(loaded)
    data = example()
    data["region"][key] = value
    with pytest.raises(DatasetError) as info:
        import_dataset(loaded, data, keyring=keyring_of_tests())
    assert info.value.record == "region"
    assert dump(loaded) == before


@pytest.mark.parametrize(("key", "value"), [
    ("multiple_funders", "no"),
    ("commercial_insurance", "yes"),
    ("max_members", 7.5),
    ("lockout_after", "3"),
])
def test_region_values_of_the_wrong_type_are_refused(
    loaded: Engine, key: str, value: Any,
) -> None:
    """Bug: Region doesn't check types, so "no" for a boolean reaches the database as a raw
    StatementError (TypeError) and 7.5 members is accepted; both should be
    DatasetError("region")."""
    before = dump(loaded)
    data = example()
    data["region"][key] = value
    with pytest.raises(DatasetError) as info:
        import_dataset(loaded, data, keyring=keyring_of_tests())
    assert info.value.record == "region"
    assert dump(loaded) == before


def test_float_amount_in_a_json_file_is_refused(loaded: Engine, tmp_path: Path) -> None:
    before = dump(loaded)
    text = EXAMPLE.read_text(encoding="utf-8").replace('"balance": "1234.56"',
                                                       '"balance": 1234.56')
    assert '"balance": 1234.56' in text
    path = tmp_path / "float.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(loaded, load_file(path), keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in info.value.errors] == [(
        f"people[0] ({masked(JIANGUO)})",
        'account.balance: must be a decimal string with at most 2 places, e.g. "12.50"',
    )]
    assert dump(loaded) == before


@pytest.mark.parametrize(("content", "rule"), [
    ('{"people": [', "not valid JSON"),
    ("[]", "the top level must be an object with people"),
    ('"people"', "the top level must be an object with people"),
])
def test_malformed_file_is_refused(tmp_path: Path, content: str, rule: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_file(path)
    assert info.value.record == str(path)
    assert info.value.rule.startswith(rule)


def test_missing_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="file not found"):
        load_file(tmp_path / "nope.json")
    path = tmp_path / "gbk.json"
    path.write_bytes('{"people": [{"name": "李"}]}'.encode("gbk"))
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        load_file(path)


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(runner: CliRunner) -> Callable[..., Any]:
    """`cli(url, *args)`: the command line on the database at `url`, with cheap hashes."""
    return lambda url, *args: runner.invoke(main, ["--database-url", url, *args],
                                            env={})


def flat(text: str) -> str:
    """Rich wraps long lines; compare with the whitespace collapsed."""
    return " ".join(text.split())


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.sqlite3"


@contextmanager
def _engine_for(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


def test_cli_import_good_file(cli: Callable[..., Any], db_url: str) -> None:
    result = cli(db_url, "import", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "imported 8 people, 5 bindings, 6 transactions (region 450100)" in flat(result.output)
    with _engine_for(db_url) as eng:
        assert count(eng) == (8, 5, 6)
        assert person_row(eng, JIANGUO)["password_hash"].startswith(
            f"hmac-sha256${KEYS.current_id}$")


def test_cli_import_of_bad_file_exits_1_and_changes_nothing(
    cli: Callable[..., Any], db_url: str, tmp_path: Path
) -> None:
    assert cli(db_url, "import", str(EXAMPLE)).exit_code == 0
    with _engine_for(db_url) as eng:
        before = dump(eng)
    data = example()
    data["people"][0]["name"] = "改名"
    data["transactions"][2]["kind"] = "gift"
    data["bindings"].append({"funder": ZHOUQIANG, "member": WUFANG, "relationship": "spouse",
                             "since": "2025-01-01"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = cli(db_url, "import", str(bad))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    out = flat(result.output)
    assert "nothing changed" in out
    assert "2 record(s) break the rules" in out
    assert f"transactions[2] ({masked(JIANGUO)}): kind: must be one of" in out
    assert (f"bindings[5] ({masked(ZHOUQIANG)} -> {masked(WUFANG)}): "
            "funder: must be an active employee-scheme person") in out
    assert "Traceback" not in result.output
    _assert_no_full_ids(result.output)
    with _engine_for(db_url) as eng:
        assert dump(eng) == before


@pytest.mark.parametrize("content", ['{"people": [', "[1, 2]"])
def test_cli_import_of_malformed_file_exits_1(
    cli: Callable[..., Any], db_url: str, tmp_path: Path, content: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    result = cli(db_url, "import", str(bad))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "nothing changed" in flat(result.output)
    assert "Traceback" not in result.output


def test_cli_import_of_duplicate_binding_exits_1_without_traceback(
    cli: Callable[..., Any], db_url: str, tmp_path: Path,
) -> None:
    """Bug (see test_duplicate_binding_in_one_file_is_a_rule_violation): the CLI crashes with
    an IntegrityError whose text holds full ID numbers instead of printing the record."""
    data = example()
    data["bindings"].append(dict(data["bindings"][0]))
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = cli(db_url, "import", str(bad))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert "nothing changed" in flat(result.output)
    _assert_no_full_ids(result.output)


def test_cli_demo_twice_is_idempotent(cli: Callable[..., Any], db_url: str) -> None:
    first = cli(db_url, "demo")
    assert first.exit_code == 0, first.output
    assert "imported 9 people, 5 bindings, 8 transactions (region 450100)" in flat(first.output)
    with _engine_for(db_url) as eng:
        counts, snapshot = count(eng), dump(eng)
    second = cli(db_url, "demo")
    assert second.exit_code == 0, second.output
    assert "imported 9 people, 5 bindings, 8 transactions (region 450100)" in flat(second.output)
    with _engine_for(db_url) as eng:
        assert count(eng) == counts == (9, 5, 8)
        after = dump(eng)
        assert without_hashes(after) == without_hashes(snapshot)
        assert after["bindings"] == snapshot["bindings"]
        assert [r[1:] for r in after["transactions"]] == [r[1:] for r in snapshot["transactions"]]
