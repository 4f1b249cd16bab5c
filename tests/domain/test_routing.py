"""One line, many regions: which region a call is for (ivr/domain/routing.py), on a real
SQLite file holding the demo's 南宁市 and the regions test data's 桂林市."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CALLS
from servers import keyring_of_tests
from sqlalchemy import Engine

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import routing
from ivr.store.schema import make_engine

GUILIN = CALLS / "regions" / "_guilin.json"


@pytest.fixture
def two_regions(db_url: str) -> Engine:
    engine = make_engine(db_url)
    import_dataset(engine, load_file(GUILIN), keyring=keyring_of_tests())
    return engine


@pytest.mark.parametrize("number, code", [
    ("+867712345678", "0771"), ("07732345678", "0773"), ("+861012345678", "010"),
    ("+862087654321", "020"), ("+867552345678", "0755"),
    ("+8613800000001", None),   # a mobile number has no area code
    ("+14155550100", None), ("anonymous", None), ("", None), ("+8677", None),
    ("00867712345678", None),   # an international prefix is not an area code
    ("+864001234567", None), ("+868001234567", None),   # nationwide service numbers
    ("+86955181234", None),     # 95518: a service number, too short for a landline
    ("+869551234567", "0955"),  # a landline in 中卫 (Ningxia: 0951-0955)
    ("+8607712345678", "0771"),  # the trunk 0 kept after +86
])
def test_the_area_code_of_a_fixed_line(number: str, code: str | None) -> None:
    assert routing.area_code(number) == code


def test_the_number_called_wins_then_the_area_code_then_the_menu(two_regions: Engine) -> None:
    route = routing.route
    assert route(two_regions, "+867732812333", "+867712345678") == routing.Route("450300",
                                                                                 "number")
    assert route(two_regions, "+8612333", "+867732345678") == routing.Route("450300", "area")
    assert route(two_regions, "+8612333", "+867712345678") == routing.Route("450100", "area")
    assert route(two_regions, "+8612333", "+8613800000001") == routing.Route(None, "")
    assert route(two_regions, "+8612333", "+862087654321") == routing.Route(None, "")


def test_a_line_with_one_region_asks_nobody(db_url: str, tmp_path: Path) -> None:
    one = make_engine(db_url)  # the demo alone
    assert routing.route(one, "+8612333", "+8613800000001") == routing.Route("450100", "only")
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    from ivr.store.schema import ensure_schema

    ensure_schema(empty)
    assert routing.route(empty, "", "+8613800000001") == routing.Route(None, "only")
    assert routing.offered(empty) == ()


def test_the_menu_offers_regions_with_people_in_code_order(two_regions: Engine) -> None:
    assert routing.offered(two_regions) == (routing.Offered("450100", "南宁市", "Nanning"),
                                            routing.Offered("450300", "桂林市", "Guilin"))
    # the greeting before a region is picked: the name both share, else the neutral one
    assert routing.greeting(two_regions) == ("医保服务热线", "Healthcare Security hotline")


@pytest.mark.parametrize("name, english", [
    ("南宁市", "Nanning"), ("防城港市", "Fangchenggang"), ("吕梁市", "Luliang"), ("市", "Shi"),
    ("广西壮族自治区", "Guangxi"), ("大理白族自治州", "Dali"), ("内蒙古自治区", "Neimenggu"),
    ("湘西土家族苗族自治州", "Xiangxi")])
def test_a_region_without_an_english_name_is_said_in_pinyin(name: str, english: str) -> None:
    assert routing.english_name(name) == english


def test_routing_finds_the_regions_with_people_by_index(two_regions: Engine) -> None:
    """Every call's start asks which regions have people: by the index of people's region,
    never by a scan of the people (160 ms a call at a million people without it)."""
    from sqlalchemy.dialects import sqlite

    sql = str(routing._ROWS.compile(dialect=sqlite.dialect()))
    with two_regions.connect() as conn:
        plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_people_region_code" in plan, plan
    assert "SCAN people" not in plan, plan
