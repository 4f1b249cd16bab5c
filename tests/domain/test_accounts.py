"""ivr.accounts over the bundled demo data in a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import keyring_of_tests
from sqlalchemy import Engine, select, update

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain.accounts import (
    PasswordCheck,
    PoolMember,
    Transaction,
    Unlock,
    UnlockResult,
    check_password,
    count_people,
    find_by_card_digits,
    find_person,
    funders_of,
    members_of,
    recent_transactions,
    region_for,
    unlock,
)
from ivr.domain.identity import synthetic_id_number
from ivr.domain.policy import Region
from ivr.resources import demo_dataset
from ivr.store.schema import ensure_schema, make_engine, meta, people, regions
from ivr.tools.cli import main

KEYS = keyring_of_tests()  # the tests' PIN keys

JIANGUO = "450102197503150013"  # 李建国 135790
CHENLI = "450102197806200022"  # 陈丽 246802
LIMING = "450103200201010032"  # 李明
DASHAN = "450103195208080056"  # 李大山
XIAOYU = "450105201506120045"  # 李小雨
ZHOUQIANG = "450107199009090132"  # 周强, card A12345678
WUFANG = "450107198811110263"  # 吴芳, card B12345678
WANG = "11010519491231002X"  # 王秀英 666777
STRANGER = synthetic_id_number("450109", date(1985, 5, 5), 17, "male")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/accounts.sqlite3"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    ensure_schema(eng)
    import_dataset(eng, load_file(demo_dataset()), keyring=keyring_of_tests())
    yield eng
    eng.dispose()


def state(engine: Engine, id_number: str) -> tuple[int, bool]:
    with engine.connect() as conn:
        row = conn.execute(
            select(people.c.failed_attempts, people.c.locked).where(
                people.c.id_number == id_number)
        ).one()
    return int(row[0]), bool(row[1])


# --- finding people -------------------------------------------------------------------------


def test_find_person_by_id(engine: Engine) -> None:
    with engine.connect() as conn:
        p = find_person(conn, JIANGUO)
        assert count_people(conn) == 9
        assert find_person(conn, STRANGER) is None
        resident = find_person(conn, XIAOYU)
    assert p is not None
    assert (p.id_number, p.name, p.scheme, p.status, p.retired, p.region_code) == (
        JIANGUO, "李建国", "employee", "active", False, "450100",
    )
    assert (p.balance_fen, p.monthly_credit_fen, p.as_of, p.locked) == (
        123456, 15000, date(2026, 11, 21), False,
    )
    assert p.balance == Decimal("1234.56")
    assert p.monthly_credit == Decimal("150.00")
    assert p.has_account is True
    assert p.id.sex == "male"
    assert "135790" not in repr(p)
    assert resident is not None
    assert (resident.name, resident.has_account, resident.balance) == ("李小雨", False, Decimal(0))


def test_find_by_card_digits(engine: Engine) -> None:
    with engine.connect() as conn:
        one = find_by_card_digits(conn, "58009678")  # D58009678
        all_digits = find_by_card_digits(conn, "548426015")
        shared = find_by_card_digits(conn, "12345678")  # A12345678 and B12345678
        none = find_by_card_digits(conn, "99999999")
    assert [p.name for p in one] == ["李建国"]
    assert [p.id_number for p in all_digits] == [CHENLI]
    assert sorted(p.id_number for p in shared) == sorted([ZHOUQIANG, WUFANG])
    assert none == []


# --- passwords and lockout ------------------------------------------------------------------


def test_password_ok_and_wrong(engine: Engine) -> None:
    assert check_password(engine, JIANGUO, "135790", 3, KEYS) is PasswordCheck.OK
    assert check_password(engine, JIANGUO, "135791", 3, KEYS) is PasswordCheck.WRONG
    # someone else's
    assert check_password(engine, JIANGUO, "246802", 3, KEYS) is PasswordCheck.WRONG
    assert state(engine, JIANGUO) == (2, False)


def test_unknown_number_is_checked_against_nothing(engine: Engine) -> None:
    before = [state(engine, i) for i in (JIANGUO, CHENLI)]
    assert check_password(engine, STRANGER, "135790", 3, KEYS) is PasswordCheck.UNKNOWN
    assert check_password(engine, None, "135790", 3, KEYS) is PasswordCheck.UNKNOWN
    assert check_password(engine, "", "135790", 3, KEYS) is PasswordCheck.UNKNOWN
    assert [state(engine, i) for i in (JIANGUO, CHENLI)] == before


def test_lockout_after_consecutive_wrong_passwords_across_calls(url: str, engine: Engine) -> None:
    # every attempt through its own engine, as separate calls (or processes) would
    def attempt(password: str) -> PasswordCheck:
        eng = make_engine(url)
        try:
            return check_password(eng, CHENLI, password, 3, KEYS)
        finally:
            eng.dispose()

    assert attempt("000000") is PasswordCheck.WRONG
    assert attempt("111111") is PasswordCheck.WRONG
    assert state(engine, CHENLI) == (2, False)
    assert attempt("222222") is PasswordCheck.NOW_LOCKED
    assert state(engine, CHENLI) == (3, True)
    assert attempt("246802") is PasswordCheck.LOCKED  # even the right one
    assert attempt("000000") is PasswordCheck.LOCKED
    assert state(engine, CHENLI) == (3, True)
    with engine.connect() as conn:
        p = find_person(conn, CHENLI)
    assert p is not None and p.locked is True
    # other people are untouched
    assert check_password(engine, JIANGUO, "135790", 3, KEYS) is PasswordCheck.OK


@pytest.mark.parametrize("lockout_after", [1, 2, 5])
def test_lockout_threshold_follows_the_argument(engine: Engine, lockout_after: int) -> None:
    results = [check_password(engine, WANG, "000000", lockout_after, KEYS)
               for _ in range(lockout_after)]
    assert results == [PasswordCheck.WRONG] * (lockout_after - 1) + [PasswordCheck.NOW_LOCKED]
    assert check_password(engine, WANG, "666777", lockout_after, KEYS) is PasswordCheck.LOCKED


def test_success_resets_the_consecutive_count(engine: Engine) -> None:
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert check_password(engine, JIANGUO, "135790", 3, KEYS) is PasswordCheck.OK
    assert state(engine, JIANGUO) == (0, False)
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert state(engine, JIANGUO) == (2, False)
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.NOW_LOCKED


def test_unlock_clears_lock_and_count(engine: Engine) -> None:
    for _ in range(3):
        check_password(engine, JIANGUO, "000000", 3, KEYS)
    assert state(engine, JIANGUO) == (3, True)
    assert unlock(engine, JIANGUO) == UnlockResult(Unlock.UNLOCKED, 3)
    assert state(engine, JIANGUO) == (0, False)
    assert unlock(engine, JIANGUO) == UnlockResult(Unlock.NOT_LOCKED, 0)
    assert check_password(engine, JIANGUO, "135790", 3, KEYS) is PasswordCheck.OK
    # a fresh count: two wrong do not lock again
    check_password(engine, JIANGUO, "000000", 3, KEYS)
    assert check_password(engine, JIANGUO, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert unlock(engine, JIANGUO) == UnlockResult(Unlock.NOT_LOCKED, 2)
    assert state(engine, JIANGUO) == (0, False)
    assert unlock(engine, STRANGER) == UnlockResult(Unlock.UNKNOWN)


def test_cli_unlock_with_star_for_x(runner: CliRunner, url: str, engine: Engine) -> None:
    for _ in range(3):
        check_password(engine, WANG, "000000", 3, KEYS)
    assert check_password(engine, WANG, "666777", 3, KEYS) is PasswordCheck.LOCKED
    result = runner.invoke(main, ["--database-url", url, "unlock", "11010519491231002*"])
    assert result.exit_code == 0, result.output
    assert "unlocked **************002X" in result.output
    assert WANG not in result.output
    assert state(engine, WANG) == (0, False)
    assert check_password(engine, WANG, "666777", 3, KEYS) is PasswordCheck.OK


def test_cli_unlock_unknown_or_invalid_exits_1(runner: CliRunner, url: str, engine: Engine) -> None:
    result = runner.invoke(main, ["--database-url", url, "unlock", STRANGER])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"nobody with ID number {'*' * 14}{STRANGER[-4:]}" in " ".join(result.output.split())
    assert STRANGER not in result.output
    bad = runner.invoke(main, ["--database-url", url, "unlock", JIANGUO[:-1] + "4"])
    assert bad.exit_code == 1
    assert isinstance(bad.exception, SystemExit)
    assert "wrong check character" in bad.output
    assert JIANGUO[:-1] + "4" not in bad.output


# --- transactions and pool relations --------------------------------------------------------


def test_recent_transactions_newest_first_limited_to_five(engine: Engine) -> None:
    with engine.connect() as conn:
        recent = recent_transactions(conn, JIANGUO)
        two = recent_transactions(conn, JIANGUO, limit=2)
        chen = recent_transactions(conn, CHENLI)
        nothing = recent_transactions(conn, XIAOYU)
    assert recent == [
        Transaction(date(2026, 11, 3), "pharmacy", Decimal("-32.50"), None),
        Transaction(date(2026, 11, 1), "credit", Decimal("150.00"), None),
        Transaction(date(2026, 10, 20), "pool_payment", Decimal("-120.00"), "李明"),
        Transaction(date(2026, 10, 11), "outpatient", Decimal("-85.20"), None),
        Transaction(date(2026, 9, 2), "inpatient", Decimal("-1500.00"), None),
    ]
    assert two == recent[:2]
    assert chen == [
        Transaction(date(2026, 11, 12), "outpatient", Decimal("-46.80"), None),
        Transaction(date(2026, 11, 1), "credit", Decimal("98.40"), None),
    ]
    assert nothing == []


def test_same_day_transactions_latest_imported_first(engine: Engine) -> None:
    data = load_file(demo_dataset())
    data["people"] = [p for p in data["people"] if p["id_number"] == WUFANG]
    data["bindings"] = []
    data["transactions"] = [
        {"id_number": WUFANG, "date": "2026-11-05", "kind": "pharmacy", "amount": "-1.00"},
        {"id_number": WUFANG, "date": "2026-11-05", "kind": "outpatient", "amount": "-2.00"},
    ]
    import_dataset(engine, data, keyring=keyring_of_tests())
    with engine.connect() as conn:
        assert [t.kind for t in recent_transactions(conn, WUFANG)] == ["outpatient", "pharmacy"]


def test_members_of_the_funder(engine: Engine) -> None:
    with engine.connect() as conn:
        jianguo = find_person(conn, JIANGUO)
        chen = find_person(conn, CHENLI)
        wang = find_person(conn, WANG)
        assert jianguo is not None and chen is not None and wang is not None
        members = members_of(conn, jianguo)
        chen_members = members_of(conn, chen)
        wang_members = members_of(conn, wang)
    assert members == [
        PoolMember("wife", "陈丽", date(2023, 1, 10)),
        PoolMember("son", "李明", date(2023, 1, 10)),
        PoolMember("daughter", "李小雨", date(2024, 3, 1)),
        PoolMember("father", "李大山", date(2024, 8, 1)),
    ]
    assert chen_members == [PoolMember("daughter", "李小雨", date(2023, 6, 15))]
    assert wang_members == []


def test_funders_of_the_beneficiary_in_deduction_order(engine: Engine) -> None:
    with engine.connect() as conn:
        found = {i: find_person(conn, i) for i in (XIAOYU, CHENLI, LIMING, DASHAN, WUFANG)}
        assert all(p is not None for p in found.values())
        funders = {i: funders_of(conn, p) for i, p in found.items() if p is not None}
    assert funders[XIAOYU] == [
        PoolMember("mother", "陈丽", date(2023, 6, 15)),
        PoolMember("father", "李建国", date(2024, 3, 1)),
    ]
    assert funders[CHENLI] == [PoolMember("husband", "李建国", date(2023, 1, 10))]
    assert funders[LIMING] == [PoolMember("father", "李建国", date(2023, 1, 10))]
    assert funders[DASHAN] == [PoolMember("son", "李建国", date(2024, 8, 1))]
    assert funders[WUFANG] == []


def test_region_for(tmp_path: Path, engine: Engine) -> None:
    with engine.connect() as conn:
        line = region_for(conn)
        by_code = region_for(conn, "450100")
        unknown = region_for(conn, "999999")
    assert line == by_code
    assert (line.code, line.name, line.agent_number, line.lockout_after, line.max_members) == (
        "450100", "南宁市", "+867711234567", 3, 7,
    )
    assert line.agent_hours == (("mon-fri", "09:00-12:00"), ("mon-fri", "13:00-17:00"))
    assert len(line.shifts) == 2
    assert unknown == Region()

    empty = make_engine(f"sqlite:///{tmp_path}/empty.sqlite3")
    try:
        ensure_schema(empty)
        with empty.connect() as conn:
            default = region_for(conn)
    finally:
        empty.dispose()
    assert default == Region()
    assert (default.code, default.agent_number, default.lockout_after) == ("000000", None, 3)


def test_region_for_sees_a_changed_region(engine: Engine) -> None:
    """Parsed regions are cached by row: a region changed under a running worker (an import)
    is what the next turn reads, here and in another connection."""
    with engine.connect() as conn:
        before = region_for(conn)
    with engine.begin() as conn:
        conn.execute(update(regions).where(regions.c.code == "450100")
                     .values(lockout_after=5, agent_number=None))
    with engine.connect() as conn:
        after = region_for(conn)
    assert (before.lockout_after, before.agent_number) == (3, "+867711234567")
    assert (after.lockout_after, after.agent_number) == (5, None)
    with engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "line_region").values(value="999999"))
    with engine.connect() as conn:
        assert region_for(conn) == Region()
