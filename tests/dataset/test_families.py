"""Plausible families only (issue 23, point 11): a parent at least 12 years older than the
child, a grandparent at least 24, both at import and in the synthetic generator."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from servers import keyring_of_tests

from ivr.dataset import synthetic
from ivr.dataset.importer import DatasetInvalid, import_dataset
from ivr.domain.identity import IdNumber, synthetic_id_number
from ivr.store.schema import ensure_schema, make_engine

KEYS = keyring_of_tests()
FUNDER = synthetic_id_number("450102", date(1980, 5, 10), 11, "male")


def _person(id_number: str, scheme: str = "resident") -> dict[str, Any]:
    record: dict[str, Any] = {"id_number": id_number, "name": "覃某", "scheme": scheme,
                              "password": "123456"}
    if scheme == "employee":
        record["account"] = {"balance": "10.00", "as_of": "2026-11-01"}
    return record


def _import(tmp_path: Path, member_birth: date, relationship: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    ensure_schema(engine)
    member = synthetic_id_number("450102", member_birth, 22, "female")
    data = {"people": [_person(FUNDER, "employee"), _person(member)],
            "bindings": [{"funder": FUNDER, "member": member, "relationship": relationship,
                          "since": "2025-01-01"}]}
    try:
        import_dataset(engine, json.loads(json.dumps(data)), keyring=KEYS)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("birth", "relationship"), [
    (date(1981, 1, 10), "child"),                 # eight months younger: a "daughter"
    (date(1980, 9, 10), "grandchild"),            # four months younger: a "granddaughter"
    (date(1992, 5, 9), "child"),                  # 11 years 364 days
    (date(2004, 5, 9), "maternal_grandchild"),    # a day short of 24 years
    (date(1968, 5, 11), "parent"),                # a day short of 12 years older
    (date(1957, 1, 1), "grandparent"),            # 23 years older
])
def test_implausible_generations_are_refused_naming_the_rule(
        tmp_path: Path, birth: date, relationship: str) -> None:
    with pytest.raises(DatasetInvalid) as caught:
        _import(tmp_path, birth, relationship)
    rules = [f"{e.record}: {e.rule}" for e in caught.value.errors]
    assert len(rules) == 1, rules
    assert rules[0].startswith("bindings[0]") and "relationship" in rules[0], rules
    assert "must be born" in rules[0] and "funder" in rules[0], rules


@pytest.mark.parametrize(("birth", "relationship"), [
    (date(1992, 5, 10), "child"),                 # 12 years to the day
    (date(2004, 5, 10), "grandchild"),            # 24 years to the day
    (date(1968, 5, 10), "parent"),
    (date(1956, 5, 10), "maternal_grandparent"),
    (date(1981, 1, 10), "sibling"),               # siblings: any gap
])
def test_plausible_generations_are_imported(tmp_path: Path, birth: date,
                                            relationship: str) -> None:
    _import(tmp_path, birth, relationship)


def _years(older: date, younger: date) -> float:
    return (younger - older).days / 365.25


def test_the_generator_writes_only_plausible_families() -> None:
    data = synthetic.dataset(600, seed=3, keyring=KEYS)
    gaps = {"child": 12, "parent": -12, "grandchild": 24, "maternal_grandchild": 24,
            "grandparent": -24, "maternal_grandparent": -24}
    checked = 0
    for b in data["bindings"]:
        need = gaps.get(b["relationship"])
        if need is None:
            continue
        f, m = IdNumber(b["funder"]).birth_date, IdNumber(b["member"]).birth_date
        apart = _years(f, m) if need > 0 else _years(m, f)
        assert apart >= abs(need) - 0.01, b
        checked += 1
    assert checked >= 20  # the generator does write parents, children and grandchildren


def test_the_demo_command_generates_an_importable_50(tmp_path: Path) -> None:
    """`ivr12333 demo --people 50` once wrote a child eight months younger than the funder."""
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    ensure_schema(engine)
    for seed in range(4):
        import_dataset(engine, synthetic.dataset(50, seed=seed, keyring=KEYS), keyring=KEYS)
    engine.dispose()
