"""The `ivr12333` command: its sub-commands, and `graph` drawing the call flow."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from servers import keyring_of_tests

from ivr.tools.cli import main as cli

KEYS = keyring_of_tests()  # the tests' PIN keys

FLOW = Path(__file__).resolve().parents[2] / "state_machines" / "hotline.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _states() -> list[str]:
    spec = yaml.safe_load(FLOW.read_text("utf-8"))
    return [s if isinstance(s, str) else s["name"] for s in spec["states"]]


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"^  (\w+)\s", result.output.split("Commands:", 1)[1], re.M))
    assert {"serve", "call", "import", "unlock", "graph", "demo"} <= listed


@pytest.mark.parametrize("command", ["serve", "call", "import", "unlock", "graph", "demo"])
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: main {command}" in result.output or f"{command} [OPTIONS]" in result.output


def test_graph_writes_an_svg_naming_every_state(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "flow.svg"
    result = runner.invoke(cli, ["graph", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    svg = target.read_text("utf-8")
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    for name in ("balance", "agent_queue", "agent_connect", "welcome", "goodbye"):
        assert f">{name}<" in svg, name
    missing = [s for s in _states() if f">{s}<" not in svg]
    assert missing == []


def test_graph_all_draws_the_menu_conventions_too(runner: CliRunner, tmp_path: Path) -> None:
    plain, full = tmp_path / "plain.svg", tmp_path / "all.svg"
    assert runner.invoke(cli, ["graph", "-o", str(plain)]).exit_code == 0
    assert runner.invoke(cli, ["graph", "--all", "-o", str(full)]).exit_code == 0
    plain_svg, full_svg = plain.read_text("utf-8"), full.read_text("utf-8")
    # plain: the shared keys once, from an "in every menu" note; --all: from every menu
    assert ">in every menu<" in plain_svg and ">in every menu<" not in full_svg
    # the agent's key: one arrow from the note, or one from each menu that has the conventions
    assert plain_svg.count("> 0 <") == 1 and full_svg.count("> 0 <") >= 15


def test_graph_writes_a_png(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "flow.png"  # the folder is created
    result = runner.invoke(cli, ["graph", "--output", str(target)])
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000


@pytest.mark.parametrize("name", ["flow.gif", "flow", "flow.svg.txt"])
def test_graph_refuses_another_format_without_a_traceback(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    target = tmp_path / name
    result = runner.invoke(cli, ["graph", "-o", str(target)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    assert ".svg or .png" in result.output
    assert "Traceback" not in result.output
    assert not target.exists()


def test_graph_into_an_impossible_place_says_so(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(cli, ["graph", "-o", str(blocker / "flow.svg")])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "cannot draw" in result.output
    assert "Traceback" not in result.output


def test_graph_needs_an_output(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["graph"])
    assert result.exit_code == 2
    assert "--output" in result.output


# --- demo --------------------------------------------------------------------------------------


def _people_in(url: str) -> int:
    from ivr.domain.accounts import count_people
    from ivr.store.schema import ensure_schema, make_engine

    engine = make_engine(url)
    try:
        ensure_schema(engine)
        with engine.connect() as conn:
            return count_people(conn)
    finally:
        engine.dispose()


def test_demo_refuses_zero_people(tmp_path: Path) -> None:
    """Bug: `demo --people 0` imported nobody and then suggested `load --people 0`, which
    `load` refuses."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", url, "demo", "--people", "0"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--people'" in result.output
    assert "0 is not in the range x>=1" in result.output
    assert "load --people" not in result.output
    assert _people_in(url) == 0


@pytest.mark.parametrize("seed", ["5", "0"])
def test_demo_seed_without_people_is_refused(tmp_path: Path, seed: str) -> None:
    """Bug: `demo --seed 5` imported the bundled people and ignored the seed without a word."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", url, "demo", "--seed", seed])
    assert result.exit_code == 2, result.output
    assert "error: --seed needs --people" in result.stderr
    assert "imported" not in result.output
    assert _people_in(url) == 0


def test_demo_output_without_people_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                      "demo", "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2, result.output
    assert "error: --output needs --people" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_demo_with_people_and_seed_generates_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", url, "demo", "--people", "3",
                                      "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "imported 3 people" in result.stdout
    assert "ivr12333 load --people 3 --seed 5" in " ".join(result.stdout.split())
    assert _people_in(url) == 3


# --- unlock ------------------------------------------------------------------------------------

JIANGUO = "450102197503150013"  # a demo person


def _lock_state(url: str, id_number: str) -> tuple[int, bool]:
    from sqlalchemy import select

    from ivr.store.schema import make_engine, people

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(people.c.failed_attempts, people.c.locked)
                               .where(people.c.id_number == id_number)).one()
            return row[0], bool(row[1])
    finally:
        engine.dispose()


def _wrong_passwords(url: str, id_number: str, n: int) -> None:
    from ivr.domain.accounts import check_password
    from ivr.store.schema import make_engine

    engine = make_engine(url)
    try:
        for _ in range(n):
            check_password(engine, id_number, "000000", 3, KEYS)
    finally:
        engine.dispose()


def test_unlock_of_someone_not_locked_says_so(db_url: str) -> None:
    """Bug: `unlock` said "unlocked" for a person who was not locked."""
    result = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", JIANGUO])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{'*' * 14}0013 was not locked"
    assert "unlocked" not in result.output


def test_unlock_of_someone_not_locked_clears_their_failed_attempts(db_url: str) -> None:
    _wrong_passwords(db_url, JIANGUO, 2)
    assert _lock_state(db_url, JIANGUO) == (2, False)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", JIANGUO])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"{'*' * 14}0013 was not locked "
                                     "(2 failed attempts cleared)")
    assert _lock_state(db_url, JIANGUO) == (0, False)


def test_unlock_of_a_locked_person_unlocks_them(db_url: str) -> None:
    _wrong_passwords(db_url, JIANGUO, 3)
    assert _lock_state(db_url, JIANGUO) == (3, True)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", JIANGUO])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"unlocked {'*' * 14}0013"
    assert _lock_state(db_url, JIANGUO) == (0, False)
    again = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", JIANGUO])
    assert again.stdout.strip() == f"{'*' * 14}0013 was not locked"


def test_unlock_of_nobody_exits_1(db_url: str) -> None:
    stranger = "450102197503150021"
    result = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", stranger])
    assert result.exit_code == 1, result.output
    assert f"error: nobody with ID number {'*' * 14}0021" in result.stderr
    assert stranger not in result.output


# --- output in a log or a pipe -----------------------------------------------------------------


def _demo_data() -> dict[str, Any]:
    from ivr.resources import demo_dataset

    data: dict[str, Any] = json.loads(demo_dataset().read_text("utf-8"))
    return data


def test_messages_are_not_wrapped_when_the_output_is_not_a_terminal(tmp_path: Path) -> None:
    """Bug: rich wraps at 80 columns when the output is not a terminal, so a CI log showed
    `... has a wrong check` and `character.` on two lines."""
    data = _demo_data()
    data["people"][8]["id_number"] = data["people"][8]["id_number"][:-1] + "8"  # wrong check
    data["bindings"].append({"funder": "450107199009090132", "member": "450107198811110263",
                             "relationship": "spouse", "since": "2025-01-01"})
    bad = tmp_path / ("a-folder-name-long-enough-to-push-the-first-line-past-80-columns" * 2)
    bad.mkdir()
    bad = bad / "people.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                      "import", str(bad)], env={"COLUMNS": "80"})
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert f"{bad}: not imported, nothing changed. 2 record(s) break the rules:" in lines
    assert ("  people[8]: id_number: ID number **************0218 has a wrong check "
            "character.") in lines
    assert ("  bindings[5] (**************0132 -> **************0263): funder: must be an "
            "active employee-scheme person") in lines
    assert len(lines) == 3


def test_import_errors_name_the_record_and_the_field(tmp_path: Path) -> None:
    """Bug: `account: must be a decimal string` did not say which of the account's fields."""
    data = _demo_data()
    data["people"][6]["account"]["balance"] = 1234.56
    data["people"][7]["account"]["as_of"] = data["people"][7]["id_number"]
    bad = tmp_path / "people.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}",
                                      "import", str(bad)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[1:] == [
        "  people[6] (**************0263): account.balance: must be a decimal string with at "
        'most 2 places, e.g. "12.50"',
        "  people[7] (**************002X): account.as_of: must be a date string YYYY-MM-DD",
    ]
    assert data["people"][7]["id_number"] not in result.output
