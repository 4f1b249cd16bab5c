"""`ivr12333 report`: designed scripted calls give exactly the figures their design implies,
in a self-contained HTML report read in headless Chromium and in its CSV; and no personal
datum of the test people reaches the records, the report or the CSV."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CALLS, play_script
from servers import key_file_of_tests
from sqlalchemy import create_engine, select

from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.store.schema import call_events, call_summaries, repeat_callers
from ivr.tools.cli import main
from ivr.tools.localrest import local_rest
from ivr.tools.report import CSV_COLUMNS
from ivr.web import create_app

#: designed calls, all on Monday 2026-11-23 from 10:00 Beijing time (docs in each script)
SCRIPTS = ("queue_two_callers.yaml", "verification_failed.yaml", "silence_limit.yaml",
           "queue_max_wait.yaml", "balance_by_id.yaml", "english_call.yaml")


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory, demo_db_file: Path) -> str:
    """The demo people's database after the designed calls, shared by this module's tests
    (they only read it)."""
    target = tmp_path_factory.mktemp("report") / "ivr.sqlite3"
    shutil.copyfile(demo_db_file, target)
    url = f"sqlite:///{target}"
    settings = Settings(database_url=url, pin_key_file=key_file_of_tests(),
                        **local_rest().settings())
    apps: list[Any] = []

    def factory(*, now: Callable[[], datetime] | None = None) -> Any:
        apps.append(create_app(settings, now=now))
        return apps[-1]

    for name in SCRIPTS:
        assert play_script(factory, CALLS / name).passed, name
    for app in apps:
        app.extensions["ivr12333"].db.dispose()
    return url


def _report(runner: CliRunner, db_url: str, folder: Path, *extra: str) -> tuple[Path, Path]:
    page, records = folder / "report.html", folder / "records.csv"
    result = runner.invoke(main, ["report", "--database-url", db_url, "--from", "2026-11-23",
                                  "--to", "2026-11-23", "-o", str(page), "--csv", str(records),
                                  *extra])
    assert result.exit_code == 0, result.output
    assert f"wrote {page}: 7 calls offered from 2026-11-23 to 2026-11-23 (Asia/Shanghai)" \
        in result.output
    assert f"wrote {records}: 8 call records" in result.output
    return page, records


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium + chromium-driver, headless, offline (explicit driver path)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _cells(browser: Any, table: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, f"table[data-table='{table}'] tr")
    return [[c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")] for r in rows]


def test_the_report_shows_what_the_calls_design_implies(played: str, tmp_path: Path,
                                                        browser: Any) -> None:
    page, _ = _report(CliRunner(), played, tmp_path)
    text = page.read_text(encoding="utf-8")
    # self-contained: four plots inline, nothing to fetch, no script
    assert text.count("<svg") == 4
    assert not re.search(r"<script|<link|<img|src=|url\((?!#)|href=\"(?!#)", text)
    browser.get(page.as_uri())
    head, total = _cells(browser, "range")
    figures = dict(zip(head, total, strict=True))
    asa = figures.pop("ASA")
    longest = figures.pop("longest wait")
    assert figures == {
        "range": "all",
        "offered": "7",  # 7 callers (the agent's call is not offered)
        "self-served": "3",  # balance twice, balance + transactions in English
        "containment": "42.9 %",  # 3 of 7, nobody called back
        "queue offered": "4",  # the taken caller, the one who left by *, the failed
        "answered": "1",  # verification, the one at the longest wait
        "abandoned": "1",  # hung up after 10 s: not a short abandon
        "short abandons": "0",
        "timed out": "1",
        "service level": "0.0 %",  # the one answered waited more than 20 s; 0 of 3
        "AHT": "36.7 s",  # in the agent's room from the move (as the agent hears the
        # summary, 6.7 s) until the agent hangs up 30 s after it
        "occupancy": "100.0 %",  # the agent was connected from ready to the end
    }
    assert 77 < float(asa.removesuffix(" s")) < 107  # the agent called in 95 s after
    assert 600 <= float(longest.removesuffix(" s")) < 700  # the region's longest wait
    funnel = dict(tuple(r) for r in _cells(browser, "funnel")[1:])
    # four began verification (three right, one failed three times), three verified
    assert funnel == {"welcome": "7", "main": "7", "verify_method": "4", "password": "4",
                      "verified": "3", "balance": "3", "pool": "0", "transactions": "1",
                      "policy": "0", "agent_queue": "4"}
    outcomes = dict(tuple(r) for r in _cells(browser, "outcomes")[1:])
    assert outcomes == {"self_served": "3", "transferred": "1", "abandoned_menu": "0",
                        "abandoned_queue": "1", "line_busy": "1", "verification_failed": "0",
                        "verification_locked": "0", "line_ended": "1", "error": "0"}
    tasks = {r[0]: r[1] for r in _cells(browser, "time-to-task")[1:]}
    assert tasks == {"balance": "3", "agent_queue": "3"}
    assert _cells(browser, "half hour")[1][:2] == ["2026-11-23 10:00", "7"]


def test_a_stricter_target_changes_the_service_level_and_the_csv_holds_every_call(
        played: str, tmp_path: Path) -> None:
    """With 120 s the taken caller (about 93 s) meets the target: 1 of 3."""
    page, records = _report(CliRunner(), played, tmp_path, "--service-seconds", "120")
    assert "<td>33.3 %</td>" in page.read_text(encoding="utf-8")
    with records.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sorted(r["outcome"] for r in rows) == sorted(
        ["transferred", "self_served", "self_served", "self_served", "agent_line",
         "abandoned_queue", "line_ended", "line_busy"])
    assert {r["started"][:16] for r in rows} <= {f"2026-11-23T10:0{m}" for m in range(10)}


def test_bad_ranges_are_refused(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    result = runner.invoke(main, ["report", "--database-url", db_url, "--from", "2026-11-24",
                                  "--to", "2026-11-23", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "--to 2026-11-23 is before --from 2026-11-24" in result.output
    assert not (tmp_path / "r.html").exists()


def _personal_values() -> set[str]:
    """Every personal field of the test people, as stored and as said or typed: ID and card
    numbers, names, phones, passwords, balances and credits, and the scripts' caller numbers."""
    data = json.loads(Path(demo_dataset()).read_text(encoding="utf-8"))
    values: set[str] = set()
    for person in data["people"]:
        for key in ("id_number", "card_number", "name", "phone", "password"):
            if person.get(key):
                values.add(str(person[key]))
        for key in ("balance", "monthly_credit"):
            amount = (person.get("account") or {}).get(key)
            if amount:
                values |= {amount, amount.replace(".", "")}
    for agent in data.get("agents", []):
        values |= {str(agent.get("name", "")), str(agent.get("agent_id", ""))}
    for script in CALLS.glob("*.yaml"):
        values |= set(re.findall(r"\+86[0-9]{8,}", script.read_text(encoding="utf-8")))
    # names whole; numbers and amounts of 5 characters or more (a "0.00" or "98.40" would be
    # found in any duration or hash: noise, not a person)
    return {v for v in values if v and (not v.isascii() or len(v) >= 5)}


def test_no_personal_datum_reaches_the_records_the_report_or_the_csv(
        played: str, tmp_path: Path) -> None:
    personal = _personal_values()
    assert {"450102197503150013", "李建国", "+8613800000201", "135790", "1234.56"} <= personal
    page, records = _report(CliRunner(), played, tmp_path)
    engine = create_engine(played)
    texts = {}
    with engine.connect() as conn:
        for table in (call_events, call_summaries, repeat_callers):
            rows = conn.execute(select(table)).all()
            assert rows, table.name  # the calls wrote records: the search is not empty
            texts[table.name] = "\n".join("|".join(str(v) for v in r) for r in rows)
    engine.dispose()
    report = page.read_text(encoding="utf-8")
    # the plots' geometry is numbers of their own: their words (labels) are searched
    words = re.findall(r"<text[^>]*>([^<]*)</text>", report)
    texts["report"] = re.sub(r"<svg.*?</svg>", "", report, flags=re.S) + "\n".join(words)
    assert len(words) > 20 and "calls offered" in texts["report"]
    texts["csv"] = records.read_text(encoding="utf-8")
    # a number is found as a whole number (not as digits inside a timestamp or a duration)
    patterns = {value: re.compile(re.escape(value) if not value.replace(".", "").isdigit()
                                  else rf"(?<![0-9.]){re.escape(value)}(?![0-9])")
                for value in personal}
    found = {(where, value) for where, text in texts.items()
             for value, pattern in patterns.items() if pattern.search(text)}
    assert found == set()


def test_staffing_from_the_records_of_those_calls(played: str) -> None:
    """Four calls asked for an agent at 10:00; the one answered talked 30 s; one abandon:
    a tiny load, one agent either way."""
    result = CliRunner().invoke(main, ["staffing", "--database-url", played, "--from",
                                       "2026-11-23", "--to", "2026-11-23"])
    assert result.exit_code == 0, result.output
    assert "AHT 37 s;" in result.output
    line = next(x for x in result.output.splitlines() if "10:00" in x)
    assert [c.strip() for c in line.split("│")[1:-1]][:3] == ["10:00", "4", "1"]


#: the agents of the demo dataset: (id, PIN)
AGENTS = {(a["id"], a["pin"]) for a in json.loads(demo_dataset().read_text(encoding="utf-8"))
          ["agents"]}


def _texts(page: Path, records: Path) -> dict[str, str]:
    """The report's text (its plots' words, not their geometry) and the CSV's."""
    report = page.read_text(encoding="utf-8")
    words = re.findall(r"<text[^>]*>([^<]*)</text>", report)
    return {"report": re.sub(r"<svg.*?</svg>", "", report, flags=re.S) + "\n".join(words),
            "csv": records.read_text(encoding="utf-8")}


def _whole(value: str) -> re.Pattern[str]:
    """A number as a whole (not digits inside a CallSid, a time or a duration)."""
    return re.compile(rf"(?<![0-9A-Za-z.]){re.escape(value)}(?![0-9A-Za-z])")


def test_agent_ids_only_for_supervisors_and_never_a_pin(played: str, tmp_path: Path,
                                                         browser: Any) -> None:
    """Without --agents no agent id anywhere in the report or the CSV; with it, the per-agent
    figures the design implies, in files only their owner reads; no PIN anywhere."""
    assert {"1001", "1002"} <= {agent for agent, _ in AGENTS}
    (tmp_path / "all").mkdir()
    (tmp_path / "supervisors").mkdir()
    everyone = _texts(*_report(CliRunner(), played, tmp_path / "all"))
    page, records = _report(CliRunner(), played, tmp_path / "supervisors", "--agents")
    supervisors = _texts(page, records)
    ids = {agent: _whole(agent) for agent, _ in AGENTS}
    assert {(where, agent) for where, text in everyone.items()
            for agent, pattern in ids.items() if pattern.search(text)} == set()
    # the same search finds the agent who worked in the supervisors' files
    assert {(where, agent) for where, text in supervisors.items()
            for agent, pattern in ids.items() if pattern.search(text)} == {
        ("report", "1001"), ("csv", "1001")}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (page, records))
    assert "for supervisors" in supervisors["report"].split("</title>")[0]
    assert "for supervisors" not in everyone["report"]
    with records.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == (*CSV_COLUMNS, "agent_id")
    assert sorted((r["line"], r["outcome"]) for r in rows if r["agent_id"]) == [
        ("agent", "agent_line"), ("caller", "transferred")]
    assert {r["agent_id"] for r in rows if r["agent_id"]} == {"1001"}
    browser.get(page.as_uri())
    head, *agents = _cells(browser, "agents")
    # one caller taken, moved into the room as the agent began to hear the summary (6.7 s);
    # the agent hung up 30 s after it, and was connected from being ready to hanging up
    assert [dict(zip(head, row, strict=True)) for row in agents] == [{
        "agent": "1001", "calls answered": "1", "AHT": "36.7 s", "average talk": "36.7 s",
        "logged in": "36.7 s", "occupancy": "100.0 %"}]
    assert [row[:3] for row in _cells(browser, "agents-per-day")[1:]] == [
        ["2026-11-23", "1001", "1"]]
    # no agent's PIN in the records, the reports or the CSVs
    engine = create_engine(played)
    with engine.connect() as conn:
        tables = {t.name: "\n".join("|".join(str(v) for v in r)
                                    for r in conn.execute(select(t)).all())
                  for t in (call_events, call_summaries, repeat_callers)}
    engine.dispose()
    assert "1001" in tables["call_summaries"]  # the search is not empty
    texts = {**tables, **{f"all {k}": v for k, v in everyone.items()},
             **{f"supervisors {k}": v for k, v in supervisors.items()}}
    assert {(where, pin) for where, text in texts.items() for _, pin in AGENTS
            if _whole(pin).search(text)} == set()
