"""Synthetic datasets (`ivr12333 demo --people N`): valid, reproducible, importable as counted."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import keyring_of_tests
from sqlalchemy import func, select

from ivr.dataset import synthetic
from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import passwords
from ivr.domain.identity import card_digits, parse_id_number
from ivr.store.schema import bindings, ensure_schema, make_engine, people, transactions
from ivr.tools.cli import main as cli

KEYS = keyring_of_tests()  # the tests' PIN keys

AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def _text(n: int, seed: int, **kwargs: int) -> tuple[str, synthetic.Summary]:
    buf = io.StringIO()
    summary = synthetic.write_dataset(buf, n, seed, keyring=KEYS, **kwargs)
    return buf.getvalue(), summary


def _count(engine: object, table: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_people() -> None:
    first, summary = _text(120, seed=7)
    again, _ = _text(120, seed=7)
    other, _ = _text(120, seed=8)
    assert first == again
    assert first != other
    data = json.loads(first)
    assert len(data["people"]) == summary.people == 120
    assert len(data["bindings"]) == summary.bindings > 0
    assert len(data["transactions"]) == summary.transactions > 0
    ids = {p["id_number"] for p in data["people"]}
    assert ids.isdisjoint(p["id_number"] for p in json.loads(other)["people"])


def test_every_record_is_valid_and_unique() -> None:
    data = json.loads(_text(400, seed=3)[0])
    ids = [p["id_number"] for p in data["people"]]
    assert len(set(ids)) == len(ids) == 400
    assert all(parse_id_number(i).value == i for i in ids)
    cards = [p["card_number"] for p in data["people"] if "card_number" in p]
    assert 0 < len(cards) < 400
    assert len({card_digits(c) for c in cards}) == len(cards)  # no ambiguous card digits
    schemes = Counter(p["scheme"] for p in data["people"])
    assert schemes["employee"] > 0 and schemes["resident"] > 0
    for p in data["people"]:
        assert ("account" in p) == (p["scheme"] == "employee")
        if "account" in p:
            assert AMOUNT.match(p["account"]["balance"])
            assert AMOUNT.match(p["account"]["monthly_credit"])
        assert passwords.is_password_hash(p["password_hash"])
        assert "password" not in p
    for t in data["transactions"]:
        assert AMOUNT.match(t["amount"]) and isinstance(t["amount"], str)
    members = Counter(b["member"] for b in data["bindings"])
    funders = Counter(b["funder"] for b in data["bindings"])
    assert max(members.values()) == 1
    assert max(funders.values()) <= synthetic.REGION["max_members"]


def test_each_persons_password_is_derivable_and_matches_their_hash() -> None:
    data = json.loads(_text(60, seed=5)[0])
    for i in (0, 1, 17, 59):
        person = synthetic.person(i, seed=5)
        record = data["people"][i]
        assert person.id_number == record["id_number"]
        assert person.name == record["name"]
        assert re.fullmatch(r"\d{6}", person.password)
        assert passwords.verify_password(person.password, record["password_hash"], KEYS)
        assert not passwords.verify_password(
            f"{(int(person.password) + 1) % 1_000_000:06d}", record["password_hash"], KEYS)
    assert len(set(synthetic.password_pool(5))) > 1


def test_a_generated_dataset_imports_cleanly_with_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    summary = synthetic.write_file(path, 500, seed=11, keyring=KEYS)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    ensure_schema(engine)
    report = import_dataset(engine, load_file(path), keyring=KEYS)
    assert (report.people, report.bindings, report.transactions) == (
        summary.people, summary.bindings, summary.transactions)
    assert report.region == synthetic.REGION["code"]
    assert _count(engine, people) == 500
    assert _count(engine, bindings) == summary.bindings
    assert _count(engine, transactions) == summary.transactions
    # idempotent: replaced, not doubled
    again = import_dataset(engine, load_file(path), keyring=KEYS)
    assert again.people == 500 and _count(engine, transactions) == summary.transactions
    engine.dispose()


def test_the_demo_and_a_synthetic_dataset_share_one_database(tmp_path: Path) -> None:
    from ivr.resources import demo_dataset

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()), keyring=KEYS)
    import_dataset(engine, synthetic.dataset(300, seed=2, keyring=KEYS), keyring=KEYS)
    assert _count(engine, people) == 300 + len(load_file(demo_dataset())["people"])
    engine.dispose()


def test_sizes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        synthetic.write_dataset(io.StringIO(), -1, keyring=KEYS)
    with pytest.raises(ValueError):
        synthetic.write_dataset(io.StringIO(), synthetic.CAPACITY + 1, keyring=KEYS)
    with pytest.raises(ValueError):
        synthetic.person(synthetic.CAPACITY)
    assert synthetic.write_dataset(io.StringIO(), 0, keyring=KEYS).people == 0


def test_progress_counts_every_person() -> None:
    seen: list[int] = []
    synthetic.write_dataset(io.StringIO(), 10_007, keyring=KEYS, progress=seen.append)
    assert sum(seen) == 10_007


def test_demo_people_output_writes_the_file_without_importing(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "big.json"
    db = tmp_path / "db.sqlite3"
    result = runner.invoke(
        cli, ["--database-url", f"sqlite:///{db}", "demo", "--people", "40", "--seed", "4",
              "--output", str(target)], env={})
    assert result.exit_code == 0, result.output
    assert "wrote 40 people" in result.output
    assert json.loads(target.read_text("utf-8")) == synthetic.dataset(
        40, seed=4, keyring=KEYS)
    assert not db.exists()


def test_demo_people_imports_them(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    result = runner.invoke(
        cli, ["--database-url", f"sqlite:///{db}", "demo", "--people", "40", "--seed", "4"],
        env={})
    assert result.exit_code == 0, result.output
    assert "imported 40 people" in result.output
    engine = make_engine(f"sqlite:///{db}")
    assert _count(engine, people) == 40
    engine.dispose()


def test_demo_without_options_still_loads_the_bundled_people(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite3"
    result = runner.invoke(cli, ["--database-url", f"sqlite:///{db}", "demo"])
    assert result.exit_code == 0, result.output
    assert "imported 9 people" in result.output
    assert "demo.json" in result.output


def test_output_without_people_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'db'}",
                                      "demo", "--output", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "--output needs --people" in result.output


def test_the_import_gives_the_connection_its_usual_page_cache_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    ensure_schema(engine)
    with engine.connect() as conn:
        usual = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    import_dataset(engine, synthetic.dataset(50, seed=1, keyring=KEYS), keyring=KEYS)
    with engine.connect() as conn:  # the pool hands back the connection the import used
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == usual
    engine.dispose()
