"""One line, many regions, at import: each region keeps its own people, limits and routes; a
family pool never binds people of two regions; a number or area code reaches one region."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CALLS
from servers import keyring_of_tests
from sqlalchemy import Engine, func, select

from ivr.dataset.importer import DatasetInvalid, import_dataset, load_file
from ivr.domain.accounts import region_for
from ivr.store.schema import bindings, make_engine, people

GUILIN = CALLS / "regions" / "_guilin.json"
NANNING_FUNDER = "450102197503150013"  # the demo's 李建国, who funds four relatives
GUILIN_MEMBER = "450302198004120026"  # 黄桂芳 of 桂林市


@pytest.fixture
def demo(db_url: str) -> Engine:
    return make_engine(db_url)


def _guilin() -> dict[str, Any]:
    return copy.deepcopy(json.loads(GUILIN.read_text("utf-8")))


def _people(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(people.c.region_code, func.count())
                                 .group_by(people.c.region_code)).all())


def test_a_second_region_is_added_beside_the_first(demo: Engine) -> None:
    before = _people(demo)
    report = import_dataset(demo, load_file(GUILIN), keyring=keyring_of_tests())
    assert report.region == "450300"
    assert _people(demo) == {**before, "450300": 2}
    with demo.connect() as conn:
        guilin, nanning = region_for(conn, "450300"), region_for(conn, "450100")
    assert (guilin.numbers, guilin.area_codes, guilin.name_en) == (
        ("+867732812333",), ("0773",), "Guilin")
    assert (nanning.area_codes, nanning.max_members) == (("0771",), 7)


def test_a_binding_across_two_regions_is_refused(demo: Engine) -> None:
    """桂林市's file binding a 南宁市 funder: refused, naming the binding and both regions;
    nothing written."""
    data = _guilin()
    data["region"]["pool_relations"] = "close_relatives"
    data["bindings"] = [{"funder": NANNING_FUNDER, "member": GUILIN_MEMBER,
                         "relationship": "sibling", "since": "2025-01-01"}]
    with demo.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(bindings)).scalar_one()
    with pytest.raises(DatasetInvalid) as raised:
        import_dataset(demo, data, keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in raised.value.errors] == [
        ("bindings[0] (**************0013 -> **************0026)",
         "funder: belongs to region 450100, not 450300: a file binds its own region's people "
         "(a family pool is within one region)")]
    with demo.connect() as conn:
        assert conn.execute(select(func.count()).select_from(bindings)).scalar_one() == stored
    assert "450300" not in _people(demo)


def test_each_region_checks_its_own_member_limit(demo: Engine) -> None:
    """桂林市 allows 5 members per funder, 南宁市 7: the demo's funder with four members does
    not break 桂林市's import, nor would a 桂林市 limit of 1 apply to 南宁市's funders."""
    data = _guilin()
    data["region"]["max_members"] = 1
    import_dataset(demo, data, keyring=keyring_of_tests())
    assert _people(demo)["450300"] == 2


def test_a_number_or_area_code_reaches_one_region_only(demo: Engine) -> None:
    data = _guilin()
    data["region"]["area_codes"] = ["0773", "0771"]
    with pytest.raises(DatasetInvalid) as raised:
        import_dataset(demo, data, keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in raised.value.errors] == [
        ("region", "area_codes: 0771 already reaches region 450100: a number or area code "
                   "reaches one region only")]
    assert "450300" not in _people(demo)


@pytest.mark.parametrize("key, value, rule", [
    ("numbers", ["12333"], "numbers: must hold E.164 numbers like +867712333, not '12333'"),
    ("area_codes", ["773"], "area_codes: must hold area codes like 0771, not '773'"),
    ("area_codes", ["0773", "0773"], "area_codes: must list each once"),
    ("name_en", "桂林", "name_en: must be English text of at most 60 characters (letters, "
                        "digits, spaces: the English voice reads it)"),
])
def test_a_broken_route_field_is_named(demo: Engine, key: str, value: Any, rule: str) -> None:
    from ivr.errors import DatasetError

    data = _guilin()
    data["region"][key] = value
    with pytest.raises(DatasetError) as raised:
        import_dataset(demo, data, keyring=keyring_of_tests())
    assert (raised.value.record, raised.value.rule) == ("region", rule)


def test_a_file_never_changes_another_regions_pools_accounts_or_agents(demo: Engine) -> None:
    """桂林市's file binding two 南宁市 people (under 桂林市's rules), replacing a 南宁市 member's
    transactions, or naming 南宁市's agent 1001: each refused, naming the record and rule;
    nothing written."""
    from ivr.store.schema import agents, transactions

    def counts() -> tuple[int, int, str]:
        with demo.connect() as conn:
            return (conn.execute(select(func.count()).select_from(bindings)).scalar_one(),
                    conn.execute(select(func.count()).select_from(transactions).where(
                        transactions.c.id_number == NANNING_FUNDER)).scalar_one(),
                    conn.execute(select(agents.c.region_code)
                                 .where(agents.c.agent_id == "1001")).scalar_one())

    before = counts()
    data = _guilin()
    data["region"]["multiple_funders"] = True
    data["bindings"] = [{"funder": "450102197806200022", "member": "450105201506120045",
                         "relationship": "child", "since": "2025-01-01"}]
    data["transactions"] = [{"id_number": NANNING_FUNDER, "date": "2026-11-01",
                             "kind": "pharmacy", "amount": "-1.00"}]
    data["agents"] = [{"id": "1001", "name": "刘芳", "pin": "864213"}]
    with pytest.raises(DatasetInvalid) as raised:
        import_dataset(demo, data, keyring=keyring_of_tests())
    assert [(e.record, e.rule) for e in raised.value.errors] == [
        ("bindings[0] (**************0022 -> **************0045)",
         "funder: belongs to region 450100, not 450300: a file binds its own region's people "
         "(a family pool is within one region)"),
        ("transactions[0] (**************0013)",
         "id_number: belongs to region 450100, not 450300: a file holds its own region's "
         "accounts"),
        ("agents[0] (1001)", "id: is region 450100's agent: an agent id belongs to one region")]
    assert counts() == before


def test_a_region_the_menu_cannot_offer_is_warned_of(db_url: str, tmp_path: Path) -> None:
    """Ten regions with people: the menu offers nine; the tenth, without a number or an area
    code, is named by `import`'s warning until it gets one."""
    from click.testing import CliRunner

    from ivr.domain.identity import check_character
    from ivr.tools.cli import main

    def region_file(n: int, **route: Any) -> Path:
        first17 = f"4509{n:02d}19800101{n:03d}"
        data = {"region": {"code": f"4509{n:02d}", "name": f"第{n}市", **route},
                "people": [{"id_number": first17 + check_character(first17), "name": "测试",
                            "scheme": "resident", "status": "active", "retired": False,
                            "password": "123456"}]}
        path = tmp_path / f"r{n}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    runner = CliRunner()
    outputs = [runner.invoke(main, ["--database-url", db_url, "import", str(region_file(n))])
               for n in range(10, 19)]  # with the demo's 450100: ten regions
    assert all(r.exit_code == 0 for r in outputs), [r.output for r in outputs]
    assert [("no caller can reach" in r.output) for r in outputs] == [False] * 8 + [True]
    assert "no caller can reach 450918: give each its `numbers`" in outputs[-1].output
    again = runner.invoke(main, ["--database-url", db_url, "import",
                                 str(region_file(18, area_codes=["0999"]))])
    assert again.exit_code == 0 and "no caller can reach" not in again.output
