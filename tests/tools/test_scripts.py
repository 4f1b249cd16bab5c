"""The project's own scripted calls (tests/calls/**/*.yaml) against the real app.

Each script is one call, played by the simulator through the in-process WSGI app on a fresh
copy of the demo database (a lockout in one script never leaks into another). The calls in
tests/calls/same_number/ are one phone calling four times: they share one database, in order
(a phone may try 10 verifications an hour but only 3 in a call, so only a fourth call meets
the hourly limit); its _folder.yaml says so. Scripts that depend on staffed hours set `at:`;
the others must pass at any time, so the coverage test runs them at two times.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import (
    CALLS,
    SCRIPTS,
    SEQUENCE,
    SHARED,
    STAFFED,
    STATUS_URL,
    UNSTAFFED,
    VOICE_URL,
    play_script,
    prompt_pattern,
    say,
)
from servers import key_file_of_tests

from ivr.dataset.importer import import_dataset, load_file
from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.tools.callcmd import coverage_gaps
from ivr.tools.cli import main as cli
from ivr.tools.localrest import local_rest
from ivr.tools.script_prompts import HotlinePrompts
from ivr.web import create_app
from simulator import Clock as VirtualClock
from simulator import (
    ScriptResult,
    Simulator,
    WsgiTransport,
    load_script,
    plan,
    run_batch,
    run_script,
    run_scripts,
)
from simulator.script_format import dataset_files

Seen = set[tuple[str, str, str]]


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 20, SCRIPTS
    assert len(SEQUENCE) == 4, SEQUENCE
    assert not [p for p in SCRIPTS + SHARED if p.name.startswith("_")]
    # a shared folder's calls are one batch, in file-name order; every other script its own
    batches = [b.paths for b in plan([CALLS])]
    assert tuple(SEQUENCE) in batches and SEQUENCE == sorted(SEQUENCE)
    assert len(batches) == len(SCRIPTS) + 2  # same_number/ and locked/
    names = [load_script(path).name for path in SCRIPTS + SHARED]
    assert len(set(names)) == len(names), "two scripts share a name"


def test_every_script_calls_from_its_own_number() -> None:
    """`ivr12333 call --script tests/calls` runs them all on one database within the hour:
    the per-number verification limit must not carry over from one script to the next.
    The same-number calls share theirs, and no other script uses it."""
    # one number for the calls of one script (queue_same_number.yaml), never for two scripts
    numbers = [number for path in SCRIPTS
               for number in {call.from_ for call in (load_script(path).calls
                                                      or (load_script(path),))}]
    assert None not in numbers
    assert len(set(numbers)) == len(numbers), numbers
    shared = {load_script(path).from_ for path in SEQUENCE}
    assert len(shared) == 1 and not shared & set(numbers), shared


def _play(script: Path, simulator: Simulator) -> ScriptResult:
    return run_script(script, lambda: simulator, prompts=HotlinePrompts.load())


def _at(script: Path) -> datetime | None:
    return load_script(script).at


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_passes(script: Path, app_factory: Any) -> None:
    result = play_script(app_factory, script)
    assert result.passed, result.report()


def test_at_drives_the_hotline_time(tmp_path: Path, app_factory: Any) -> None:
    """agent_transfer.yaml is set on a Monday morning; moved to a Sunday, it fails."""
    text = (CALLS / "agent_transfer.yaml").read_text(encoding="utf-8")
    assert 'at: "2026-11-23T10:00:00+08:00"' in text
    sunday = tmp_path / "agent_sunday.yaml"
    sunday.write_text(text.replace("2026-11-23T10:00", "2026-11-22T10:00"), encoding="utf-8")
    for script, passes in ((CALLS / "agent_transfer.yaml", True), (sunday, False)):
        clock = VirtualClock(_at(script))
        app = app_factory(now=clock)
        simulator = Simulator(WsgiTransport(app), VOICE_URL, clock=clock, rest=local_rest().api)
        result = _play(script, simulator)
        assert result.passed is passes, result.report()
    assert prompt_pattern("agent_closed").search(result.failures[0].heard)


def _sequence(simulator: Simulator, folder: Path) -> list[ScriptResult]:
    """A shared folder's calls in order, with the folder's settings, on one line."""
    (batch,) = plan([folder])
    return run_batch(batch, lambda first: nullcontext(lambda: simulator),
                     prompts=HotlinePrompts.load())


def test_same_number_calls_pass_in_order_on_one_database(simulator: Simulator,
                                                         clock: Any) -> None:
    clock.now = UNSTAFFED  # the folder's `at:`: a Sunday (on duty, an agent queue would wait)
    failed = [r.report() for r in _sequence(simulator, CALLS / "same_number") if not r.passed]
    assert failed == []


def test_the_fourth_call_alone_is_not_refused(simulator: Simulator) -> None:
    """The refusal in the fourth call comes from the earlier calls, not from the call itself."""
    result = _play(SEQUENCE[-1], simulator)
    assert not result.passed
    heard = result.failures[0].heard  # where the script expects the refusal: the balance
    assert say("too_many_attempts") not in heard and "一千二百三十四元五角六分" in heard, heard


# --- coverage -------------------------------------------------------------------------------------


class _Apps:
    """Every batch of scripts (one script, or a shared folder) on its own copy of the demo
    database and its own app, all observed — as `ivr12333 call --script` runs them."""

    def __init__(self, template: Path, folder: Path) -> None:
        self.template, self.folder = template, folder
        self.seen: Seen = set()
        self.flow: Any = None
        self.now = STAFFED

    @contextmanager
    def line(self, first: Any) -> Iterator[Callable[[], Simulator]]:
        db = self.folder / f"{first.path.stem}-{self.now:%a%H}.sqlite3"
        if first.dataset in (None, "demo"):
            shutil.copyfile(self.template, db)  # else its own data alone, as `call` does
        clock = VirtualClock(first.at or self.now)
        app = create_app(Settings(database_url=f"sqlite:///{db}",
                                  pin_key_file=key_file_of_tests(), **local_rest().settings()),
                         now=clock)
        engine = app.extensions["ivr12333"]
        if first.dataset not in (None, "demo"):  # the script's own data (one file per region)
            for name in dataset_files(first.dataset):
                import_dataset(engine.db, load_file(demo_dataset() if name == "demo"
                                                    else Path(name)), keyring=engine.keyring)
        try:
            self.flow = engine.flow
            engine.flow.observer = lambda s, t, d: self.seen.add((s, t, d))
            yield lambda: Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL,
                                    clock=clock, rest=local_rest().api)
        finally:
            engine.db.dispose()

    def run_all(self, now: datetime) -> list[str]:
        """Every script of tests/calls (the calls without `at:` at `now`); returns the reports
        of those that failed."""
        self.now = now
        results = run_scripts([CALLS], line=self.line, prompts=HotlinePrompts.load())
        assert len(results) == len(SCRIPTS) + len(SHARED)
        return [r.report() for r in results if not r.passed]


@pytest.fixture
def apps(demo_db_file: Path, tmp_path: Path) -> Iterator[_Apps]:
    yield _Apps(demo_db_file, tmp_path)


#: Leaving a menu after the third silence or invalid entry in a row ends the call (or transfers
#: it, or, when the number holds its queue places, goes to the main menu), so each needs a call
#: of its own; and a password entry always fires `entered`.
LIMIT_EXIT = re.compile(r"^(?!welcome )\w+ --(silence|invalid)--> (goodbye|agent_queue|main)$"
                        r"|^agent_pin --invalid-->"
                        # a REST API that fails, a caller Twilio's queue does not hold: no
                        # script can arrange either; tests/engine/test_agent_bridge.py does
                        r"|^agent_ready --next--> agent_(menu|waiting)$"
                        r"|^agent_waiting --"
                        # keys past the two regions of the test data (regions/): the menu
                        # offers up to nine; tests/domain/test_routing.py orders them
                        r"|^region_menu --press_[3-9]--> region_chosen$")
#: reached only when Twilio's queue and the hotline's table disagree (test_agent_bridge.py)
UNSCRIPTABLE_STATES = ["agent_waiting"]


@pytest.mark.parametrize("now", [STAFFED, UNSTAFFED], ids=["monday-10h", "sunday-15h"])
def test_scripts_reach_every_state_and_every_transition_at_any_time(
    apps: _Apps, now: datetime
) -> None:
    """At any hour the scripts pass, reach every state (the agent paths through `at:`) and take
    every transition but leaving a menu at its limit; some of those too."""
    assert apps.run_all(now) == []
    states, transitions = coverage_gaps(apps.flow, apps.seen)
    assert states == UNSCRIPTABLE_STATES
    assert [t for t in transitions if not LIMIT_EXIT.match(t)] == []
    taken = {f"{s} --{t}--> {d}" for s, t, d in apps.seen}
    assert {"main --silence--> goodbye", "main --invalid--> agent_queue",
            "agent --next--> main", "agent --next--> agent_queue",
            "verification_failed --next--> goodbye",
            "verification_failed --next--> agent_queue",
            "verification_failed --next--> main",
            "agent_queue --left_queue--> goodbye", "agent_queue --left_queue--> main",
            "agent_connect --dialed--> agent_menu"} <= taken


# --- a failing script reads well ----------------------------------------------------------------


def _broken_copy(tmp_path: Path, wrong: str = "九千九百九十九元") -> tuple[Path, int]:
    """balance_by_id.yaml with the balance expectation replaced; returns (path, step number)."""
    text = (CALLS / "balance_by_id.yaml").read_text(encoding="utf-8")
    assert 'expect: "一千二百三十四元五角六分"' in text
    path = tmp_path / "broken_balance.yaml"
    path.write_text(text.replace("name: balance by ID number", "name: broken balance")
                    .replace("一千二百三十四元五角六分", wrong), encoding="utf-8")
    steps = load_script(path).steps
    index = next(i for i, s in enumerate(steps, start=1) if s.value == wrong)
    return path, index


def test_a_wrong_expectation_fails_with_a_readable_report(
    tmp_path: Path, simulator: Simulator
) -> None:
    path, index = _broken_copy(tmp_path)
    result = _play(path, simulator)
    assert not result.passed
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.step_index == index
    assert failure.step == 'expect: "九千九百九十九元"'
    assert "一千二百三十四元五角六分" in failure.heard
    report = result.report()
    assert "FAIL" in report
    assert "broken balance" in report  # the script's name
    assert str(path) in report  # and its file
    assert f"step {index}" in report
    assert "九千九百九十九元" in report  # what was expected
    assert say("balance_employee", as_of="2026年11月21日", balance="一千二百三十四元五角六分",
               credit="一百五十元", month="2026年11月") in report  # what was heard
    assert "Traceback" not in report


# --- the command: ivr12333 call --script ------------------------------------------------------


@pytest.fixture
def demo_url(runner: CliRunner, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    result = runner.invoke(cli, ["--database-url", url, "demo"])
    assert result.exit_code == 0, result.output
    return url


def _last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def _traces(url: str) -> dict[str, int]:
    """What calls leave in a database: sessions, attempt records, failure counters, locks."""
    from sqlalchemy import text

    from ivr.store.schema import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "sessions": conn.execute(text("SELECT count(*) FROM sessions")).scalar_one(),
                "attempts": conn.execute(text("SELECT count(*) FROM verify_attempts")).scalar_one(),
                "people": conn.execute(text("SELECT count(*) FROM people")).scalar_one(),
                "failures": conn.execute(
                    text("SELECT coalesce(sum(failed_attempts), 0) FROM people")).scalar_one(),
            }
    finally:
        engine.dispose()


def test_cli_runs_every_script_twice_in_a_row_leaving_no_trace(
    runner: CliRunner, demo_url: str, tmp_path: Path
) -> None:
    """`ivr12333 call --script tests/calls`: recursive, every state reached, the same result
    the second time, and the configured database exactly as it was."""
    before = _traces(demo_url)
    total = len(SCRIPTS) + len(SHARED)
    for run in (1, 2):
        transcripts = tmp_path / f"transcripts-{run}"
        result = runner.invoke(cli, [
            "--database-url", demo_url, "call", "--script", str(CALLS),
            "--transcript", str(transcripts), "--coverage",
        ])
        assert result.exit_code == 0, result.output
        assert _last_line(result.output) == f"{total} passed, 0 failed"
        reached = len(apps_states()) - len(UNSCRIPTABLE_STATES)
        assert f"flow coverage: {reached}/{len(apps_states())} states" in result.output
        assert [line.split(": ")[1] for line in result.output.splitlines()
                if "state never reached" in line] == UNSCRIPTABLE_STATES
        assert _traces(demo_url) == before
    names = sorted(f.name for f in transcripts.iterdir())
    assert names == sorted(f"{s.stem}.txt" for s in SCRIPTS + SHARED)
    balance = (transcripts / "balance_by_id.txt").read_text(encoding="utf-8")
    assert "一千二百三十四元五角六分" in balance
    assert "PASS" in balance
    assert "Started 2026-11-23 10:00:00+08:00" in (
        transcripts / "agent_transfer.txt").read_text(encoding="utf-8")


def apps_states() -> list[str]:
    from ivr.engine.flow import Flow
    from ivr.engine.model import CallModel
    from ivr.engine.prompts import Catalogue
    from ivr.resources import data_dir

    flow = Flow(data_dir("state_machines") / "hotline.yaml", CallModel,
                Catalogue.load(data_dir("prompts")))
    return list(flow.states)


def test_cli_live_runs_on_the_configured_database(runner: CliRunner, demo_url: str) -> None:
    """--live is the explicit way to let calls change the operator's database."""
    before = _traces(demo_url)
    result = runner.invoke(cli, [
        "--database-url", demo_url, "call", "--live",
        "--script", str(CALLS / "verification_failed.yaml"),
    ])
    assert result.exit_code == 0, result.output
    assert "live database" in result.output
    after = _traces(demo_url)
    assert after["attempts"] > before["attempts"] and after["sessions"] > before["sessions"]


def test_cli_runs_the_same_number_calls_in_order(runner: CliRunner, demo_url: str) -> None:
    for _ in (1, 2):
        result = runner.invoke(cli, [
            "--database-url", demo_url, "call", "--script", str(CALLS / "same_number"),
        ])
        assert result.exit_code == 0, result.output
        assert _last_line(result.output) == f"{len(SEQUENCE)} passed, 0 failed"


def test_cli_one_file_of_a_shared_folder_runs_alone(runner: CliRunner, demo_url: str) -> None:
    """The fourth same-number call alone is not refused: the folder's database is not shared
    with a call run by itself."""
    result = runner.invoke(cli, [
        "--database-url", demo_url, "call", "--script", str(SEQUENCE[-1]),
    ])
    assert result.exit_code == 1, result.output
    assert _last_line(result.output) == "0 passed, 1 failed"


def test_cli_a_script_without_a_dataset_runs_on_a_copy_of_the_configured_database(
    runner: CliRunner, tmp_path: Path
) -> None:
    """No `dataset:` and no _folder.yaml: the configured database's people, on a copy."""
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    script = tmp_path / "alone" / "balance.yaml"
    script.parent.mkdir()
    text = (CALLS / "balance_by_id.yaml").read_text(encoding="utf-8")
    script.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["--database-url", empty, "call", "--script", str(script)])
    assert result.exit_code == 1, result.output  # nobody in the configured database
    script.write_text("dataset: demo\n" + text, encoding="utf-8")
    result = runner.invoke(cli, ["--database-url", empty, "call", "--script", str(script)])
    assert result.exit_code == 0, result.output
    assert _traces(empty)["people"] == 0


def test_cli_a_failing_script_exits_1(runner: CliRunner, demo_url: str, tmp_path: Path) -> None:
    broken, index = _broken_copy(tmp_path)
    result = runner.invoke(cli, [
        "--database-url", demo_url, "call",
        "--script", str(CALLS / "policy_topics.yaml"), "--script", str(broken),
    ])
    assert result.exit_code == 1, result.output
    assert _last_line(result.output) == "1 passed, 1 failed"
    assert "broken balance" in result.output
    assert f"step {index}" in result.output
    assert "Traceback" not in result.output
