"""The project's own scripted calls (tests/calls/*.yaml) against the real app.

Each script is one call, played by the simulator through the in-process WSGI app on a fresh
copy of the demo database (a lockout in one script never leaks into another). The calls in
tests/calls/same_number/ are one phone calling four times: they share one database, in order
(a phone may try 10 verifications an hour but only 3 in a call, so only a fourth call meets
the hourly limit); `ivr12333 call --script tests/calls` leaves that folder out. Agents are on
duty (clock fixed to STAFFED) so the transfer states are reached; the coverage test also runs
them outside staffed hours, since `ivr12333 call --script` runs them on the real clock.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import STAFFED, UNSTAFFED, VOICE_URL, Clock

from ivr.callcmd import coverage_gaps
from ivr.cli import main as cli
from ivr.web import create_app
from simulator import ScriptResult, Simulator, WsgiTransport, load_script, run_script

CALLS = Path(__file__).parent / "calls"
SCRIPTS = sorted(CALLS.glob("*.yaml"))
SEQUENCE = sorted((CALLS / "same_number").glob("*.yaml"))
STATUS_URL = "http://localhost/status"

Seen = set[tuple[str, str, str]]


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 20, SCRIPTS
    assert len(SEQUENCE) == 4, SEQUENCE
    names = [load_script(path).name for path in SCRIPTS + SEQUENCE]
    assert len(set(names)) == len(names), "two scripts share a name"


def test_every_script_calls_from_its_own_number() -> None:
    """`ivr12333 call --script tests/calls` runs them all on one database within the hour:
    the per-number verification limit must not carry over from one script to the next.
    The same-number calls share theirs, and no other script uses it."""
    numbers = [load_script(path).from_ for path in SCRIPTS]
    assert None not in numbers
    assert len(set(numbers)) == len(numbers), numbers
    shared = {load_script(path).from_ for path in SEQUENCE}
    assert len(shared) == 1 and not shared & set(numbers), shared


def _play(script: Path, simulator: Simulator) -> ScriptResult:
    return run_script(script, lambda: simulator)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_passes(script: Path, simulator: Simulator) -> None:
    result = _play(script, simulator)
    assert result.passed, result.report()


def test_same_number_calls_pass_in_order_on_one_database(simulator: Simulator) -> None:
    failed = [r.report() for r in (_play(script, simulator) for script in SEQUENCE)
              if not r.passed]
    assert failed == []


def test_the_fourth_call_alone_is_not_refused(simulator: Simulator) -> None:
    """The refusal in the fourth call comes from the earlier calls, not from the call itself."""
    result = _play(SEQUENCE[-1], simulator)
    assert not result.passed
    assert "您的号码验证次数过多" in result.failures[0].expected


# --- coverage -------------------------------------------------------------------------------------


class _Apps:
    """One app per script, each on its own copy of the demo database, all observed."""

    def __init__(self, template: Path, folder: Path) -> None:
        self.template, self.folder = template, folder
        self.seen: Seen = set()
        self.flow: Any = None

    def run(self, scripts: list[Path], now: datetime) -> list[ScriptResult]:
        """Play `scripts` in order on one fresh copy of the demo database."""
        db = self.folder / f"{scripts[0].stem}-{now:%a}.sqlite3"
        shutil.copyfile(self.template, db)
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{db}", "NOW": Clock(now)})
        engine = app.extensions["ivr12333"]
        try:
            self.flow = engine.flow
            engine.flow.observer = lambda s, t, d: self.seen.add((s, t, d))
            simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL)
            return [_play(script, simulator) for script in scripts]
        finally:
            engine.db.dispose()

    def run_all(self, now: datetime) -> list[str]:
        """Every script on a database of its own, the same-number calls on a shared one;
        returns the reports of those that failed."""
        results = [r for script in SCRIPTS for r in self.run([script], now)]
        results += self.run(SEQUENCE, now)
        return [r.report() for r in results if not r.passed]


@pytest.fixture
def apps(demo_db_file: Path, tmp_path: Path) -> Iterator[_Apps]:
    yield _Apps(demo_db_file, tmp_path)


#: Leaving a menu after the third silence or invalid entry in a row ends the call (or transfers
#: it), so each needs a call of its own; and a password entry always fires `entered`.
LIMIT_EXIT = re.compile(r"^\w+ --(silence|invalid)--> (goodbye|agent_dial)$|^password --invalid-->")


def test_scripts_reach_every_state_and_hold_at_any_time(apps: _Apps) -> None:
    """Within staffed hours the scripts reach every state; they pass outside them too, and
    together take every transition but leaving a menu at its limit."""
    assert apps.run_all(STAFFED) == []
    states, transitions = coverage_gaps(apps.flow, apps.seen)
    assert states == []
    # what staffed hours can't reach: the hours said instead of a transfer
    assert "agent --next--> main" in transitions
    assert "verification_failed --next--> goodbye" in transitions

    assert apps.run_all(UNSTAFFED) == []
    states, transitions = coverage_gaps(apps.flow, apps.seen)
    assert states == []
    assert [t for t in transitions if not LIMIT_EXIT.match(t)] == []
    # and some of the limit exits all the same
    taken = {f"{s} --{t}--> {d}" for s, t, d in apps.seen}
    assert {"main --silence--> goodbye", "main --invalid--> agent_dial",
            "main --invalid--> goodbye"} <= taken


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
    assert "截至2026年11月21日,您的医保个人账户余额为一千二百三十四元五角六分" in report  # heard
    assert "Traceback" not in report


# --- the command: ivr12333 call --script ------------------------------------------------------


@pytest.fixture
def demo_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", url, "demo"])
    assert result.exit_code == 0, result.output
    return url


def _last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def test_cli_runs_every_script_with_transcripts_and_coverage(
    demo_url: str, tmp_path: Path
) -> None:
    transcripts = tmp_path / "transcripts"
    result = CliRunner().invoke(cli, [
        "--database-url", demo_url, "call", "--script", str(CALLS),
        "--transcript", str(transcripts), "--coverage",
    ])
    assert result.exit_code == 0, result.output
    assert _last_line(result.output) == f"{len(SCRIPTS)} passed, 0 failed"
    assert "flow coverage:" in result.output
    files = sorted(transcripts.iterdir())
    assert [f.name for f in files] == sorted(f"{s.stem}.txt" for s in SCRIPTS)
    balance = (transcripts / "balance_by_id.txt").read_text(encoding="utf-8")
    assert "一千二百三十四元五角六分" in balance
    assert "PASS" in balance


def test_cli_runs_the_same_number_calls_in_order(demo_url: str) -> None:
    result = CliRunner().invoke(cli, [
        "--database-url", demo_url, "call", "--script", str(CALLS / "same_number"),
    ])
    assert result.exit_code == 0, result.output
    assert _last_line(result.output) == f"{len(SEQUENCE)} passed, 0 failed"


def test_cli_a_failing_script_exits_1(demo_url: str, tmp_path: Path) -> None:
    broken, index = _broken_copy(tmp_path)
    result = CliRunner().invoke(cli, [
        "--database-url", demo_url, "call",
        "--script", str(CALLS / "policy_topics.yaml"), "--script", str(broken),
    ])
    assert result.exit_code == 1, result.output
    assert _last_line(result.output) == "1 passed, 1 failed"
    assert "broken balance" in result.output
    assert f"step {index}" in result.output
    assert "Traceback" not in result.output
