"""One line, many regions, for the people who run it: every call record names the call's
region (found, picked, or the agent's own), and `report`, `staffing` and the wallboard give
one region's figures with `--region` / `?region=`."""

from __future__ import annotations

import base64
import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CALLS, play_script
from servers import keyring_of_tests
from sqlalchemy import create_engine, select

from ivr.dataset.importer import import_dataset, load_file
from ivr.store.schema import call_summaries
from ivr.tools.cli import main

TOKEN = "operators-token-0123456789"
GUILIN = CALLS / "regions" / "_guilin.json"


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The regions scenario (two callers of two regions, three agents) played once; its
    database's URL."""
    from servers import key_file_of_tests

    from ivr.settings import Settings
    from ivr.tools.localrest import local_rest
    from ivr.web import create_app

    target = tmp_path_factory.mktemp("regions") / "ivr.sqlite3"
    url = f"sqlite:///{target}"
    settings = Settings(database_url=url, pin_key_file=key_file_of_tests(),
                        **local_rest().settings())
    apps: list[Any] = []

    def factory(*, now: Callable[..., Any] | None = None, **overrides: Any) -> Any:
        apps.append(create_app(settings.model_copy(update=overrides), now=now))
        return apps[-1]

    result = play_script(factory, CALLS / "regions" / "agents_per_region.yaml",
                         database_url=url)
    assert result.passed, result.report()
    for app in apps:
        app.extensions["ivr12333"].db.dispose()
    return url


def _summaries(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(call_summaries.c.line, call_summaries.c.region,
                                   call_summaries.c.outcome)
                            .order_by(call_summaries.c.started_at)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_every_record_names_its_calls_region(played: str) -> None:
    assert Counter(_summaries(played)) == Counter({
        ("caller", "450100", "transferred"): 1,   # picked 南宁市 from the menu
        ("caller", "450300", "transferred"): 1,   # 桂林市's own number
        ("agent", "450100", "agent_line"): 2,     # 1002 and 1001: their own region
        ("agent", "450300", "agent_line"): 1})    # 3001


def test_the_report_of_one_region_holds_its_calls_only(played: str, tmp_path: Path) -> None:
    runner = CliRunner()
    page, records = tmp_path / "r.html", tmp_path / "r.csv"
    args = ["report", "--database-url", played, "--from", "2026-11-23", "--to", "2026-11-23",
            "-o", str(page), "--csv", str(records)]
    result = runner.invoke(main, [*args, "--region", "450300"])
    assert result.exit_code == 0, result.output
    assert "1 calls offered" in result.output and "2 call records" in result.output
    with records.open(encoding="utf-8") as f:
        assert {r["region"] for r in csv.DictReader(f)} == {"450300"}
    assert "Region 450300" in page.read_text("utf-8")
    result = runner.invoke(main, args)  # every region's
    assert result.exit_code == 0, result.output
    assert "2 calls offered" in result.output and "5 call records" in result.output
    assert "All regions" in page.read_text("utf-8")
    result = runner.invoke(main, [*args, "--region", "999999"])
    assert result.exit_code == 2
    assert "--region 999999: no such region; the line has 450100, 450300" in result.output


def test_staffing_plans_one_region(played: str) -> None:
    result = CliRunner().invoke(main, [
        "staffing", "--database-url", played, "--from", "2026-11-23", "--to", "2026-11-23",
        "--region", "450300", "--aht", "180", "--patience", "120"])
    assert result.exit_code == 0, result.output
    assert "the call records of region 450300, 2026-11-23 to 2026-11-23" in result.output
    assert "10:00" in result.output  # the one half hour with a call


def test_the_wallboard_of_one_region(app_factory: Callable[..., Any]) -> None:
    """Live calls: one routed to 桂林市 by its area code, one routed to 南宁市, one whose
    caller has not picked yet (only on the whole line's board)."""
    app = app_factory(operator_token=TOKEN)
    import_dataset(app.extensions["ivr12333"].db, load_file(GUILIN),
                   keyring=keyring_of_tests())
    client = app.test_client()
    for n, caller in enumerate(("+867732345678", "+867712345678", "+8613800000001")):
        assert client.post("/voice", data={"CallSid": f"CA{n:032x}", "From": caller,
                                           "To": "+8612333"}).status_code == 200
    auth = {"Authorization": "Basic " + base64.b64encode(f"operator:{TOKEN}".encode()).decode()}

    def in_menus(query: str) -> int:
        response = client.get(f"/ops/wallboard.json{query}", headers=auth)
        assert response.status_code == 200, response.text
        return int(response.json["in_menus"])

    assert (in_menus(""), in_menus("?region=450300"), in_menus("?region=450100")) == (3, 1, 1)
    assert client.get("/ops/wallboard.json?region=999999", headers=auth).status_code == 404
    page = client.get("/ops/wallboard?region=450300", headers=auth)
    assert page.status_code == 200 and "id='in_menus'><span class='value'>1<" in page.text
    assert "<h1>ivr12333 wallboard, region 450300</h1>" in page.text
    assert client.get("/ops/wallboard.json?region=450300", headers=auth).json["region"] == \
        "450300"


def test_a_call_that_never_picked_a_region_is_no_regions(
        app_factory: Callable[..., Any]) -> None:
    """A mobile caller who hangs up at the region menu is counted on the whole line's report,
    in no region's (not in the last-imported region's abandons)."""
    app = app_factory()
    hotline = app.extensions["ivr12333"]
    import_dataset(hotline.db, load_file(GUILIN), keyring=keyring_of_tests())
    client = app.test_client()
    sid = "CA" + "7" * 32
    client.post("/voice", data={"CallSid": sid, "From": "+8613800000001", "To": "+8612333"})
    client.post("/voice/step?s=1", data={"CallSid": sid, "Digits": "1"})  # the region menu
    client.post("/status", data={"CallSid": sid, "CallStatus": "completed"})
    with hotline.db.connect() as conn:
        assert conn.execute(select(call_summaries.c.region, call_summaries.c.outcome,
                                   call_summaries.c.detail)).all() == [
            ("", "abandoned_menu", "region_menu")]
