"""The load generator (`ivr12333 load`): full signed calls, per-step latencies, errors counted."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import key_file_of_tests, keyring_of_tests
from werkzeug.serving import make_server

from ivr.dataset import synthetic
from ivr.dataset.importer import import_dataset
from ivr.domain.identity import mask_id_number
from ivr.settings import Settings
from ivr.store.schema import ensure_schema, make_engine
from ivr.tools import loadgen
from ivr.tools.cli import main as cli
from ivr.web import create_app
from simulator import WsgiTransport

KEYS = keyring_of_tests()  # the tests' PIN keys

TOKEN = "loadgen-test-token"
WEBHOOKS_PER_CALL = {"answer": 1, "menu": 4, "id": 1, "password": 1, "status": 1}

#: what a load failure says of a refused password (the line tells no reason apart)
WRONG = ("wrong password, unknown number or locked password (the line does not tell them "
         "apart)")


def _histogram_rows(output: str) -> list[tuple[str, int]]:
    rows = re.findall(r"^\s+([<>=\d -]+ ms) \| █* *(\d+)$", output, re.M)
    return [(label.strip(), int(n)) for label, n in rows]


def test_load_in_process_reports_every_call_and_a_histogram(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(cli, ["--database-url", db_url, "load", "--calls", "20",
                                      "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    assert "20 calls in" in result.output
    assert "20 completed, 0 errors" in result.output
    rows = _histogram_rows(result.output)
    assert rows, result.output
    assert sum(n for _, n in rows) == 20 * sum(WEBHOOKS_PER_CALL.values())
    assert re.search(r"^errors: 0$", result.output, re.M)
    for step in ("answer", "menu", "id", "password", "status"):
        assert re.search(rf"^{step}\s+{20 * WEBHOOKS_PER_CALL[step]}\s", result.output, re.M)


def test_load_as_synthetic_people(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, synthetic.dataset(50, seed=9, keyring=KEYS), keyring=KEYS)
    engine.dispose()
    result = runner.invoke(cli, ["--database-url", url, "load", "--calls", "12",
                                      "--concurrency", "3", "--people", "50", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert "12 completed, 0 errors" in result.output


def test_load_on_a_line_of_two_regions(runner: CliRunner, db_url: str) -> None:
    """The demo's people and synthetic people in one database are two regions: each load
    caller dials their own region's number, so nobody is asked for a region, and both kinds
    complete."""
    engine = make_engine(db_url)  # the demo's 南宁市
    import_dataset(engine, synthetic.dataset(20, seed=9, keyring=KEYS), keyring=KEYS)
    engine.dispose()
    for extra in ([], ["--people", "20", "--seed", "9"]):
        result = runner.invoke(cli, ["--database-url", db_url, "load", "--calls", "8",
                                     "--concurrency", "2", *extra])
        assert result.exit_code == 0, result.output
        assert "8 completed, 0 errors" in result.output


@pytest.fixture
def signed_app(db_url: str) -> Iterator[Any]:
    application = create_app(Settings(database_url=db_url, auth_token=TOKEN,
                                         pin_key_file=key_file_of_tests()))
    yield application
    application.extensions["ivr12333"].db.dispose()


def test_wrong_passwords_and_bad_signatures_are_counted_as_errors(signed_app: Any) -> None:
    right = loadgen.demo_identities()[0]
    wrong = loadgen.Identity(right.id_number, f"{(int(right.password) + 1) % 10**6:06d}")
    result = loadgen.run_load(WsgiTransport(signed_app), "http://localhost/voice", [wrong],
                              calls=2, concurrency=1, auth_token=TOKEN,
                              status_callback="http://localhost/status")
    assert (result.calls, result.completed) == (2, 0)
    assert result.errors == {f"password: {WRONG} (heard password_wrong)": 2}
    assert result.people == {
        f"password: {WRONG} (heard password_wrong)": {
            mask_id_number(right.id_number): 2}}
    unsigned = loadgen.run_load(WsgiTransport(signed_app), "http://localhost/voice", [right],
                                calls=3, concurrency=2, auth_token="not-the-token",
                                status_callback="http://localhost/status")
    assert (unsigned.calls, unsigned.completed, unsigned.error_count) == (3, 0, 3)
    assert all(kind.startswith("answer: ") for kind in unsigned.errors)
    assert str(right.id_number) not in repr(right)


def test_every_webhook_is_timed_under_its_step(signed_app: Any) -> None:
    result = loadgen.run_load(WsgiTransport(signed_app), "http://localhost/voice",
                              loadgen.demo_identities(), calls=6, concurrency=3,
                              auth_token=TOKEN, status_callback="http://localhost/status")
    assert (result.completed, result.error_count) == (6, 0)
    assert {s: len(v) for s, v in result.latencies.items()} == {
        s: 6 * n for s, n in WEBHOOKS_PER_CALL.items()}
    assert result.requests == 6 * 8
    assert 0 < result.p(50) <= result.p(99) <= max(result.webhooks()) * 1000
    assert result.p(99, ["password"]) > 0


def test_max_seconds_stops_starting_calls(signed_app: Any) -> None:
    result = loadgen.run_load(WsgiTransport(signed_app), "http://localhost/voice",
                              loadgen.demo_identities(), calls=1000, concurrency=2,
                              auth_token=TOKEN, status_callback="http://localhost/status",
                              max_seconds=0.0)
    assert result.calls <= 2


def test_percentiles_and_histogram_buckets() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    assert loadgen.percentile(values, 50) == 0.050
    assert loadgen.percentile(values, 99) == 0.099
    assert loadgen.percentile([], 99) == 0.0
    counts = dict(loadgen.histogram([0.0005, 0.0015, 0.003, 0.003, 2.0]))
    assert counts["< 1 ms"] == 1 and counts["1-2 ms"] == 1 and counts["2-5 ms"] == 2
    assert counts[">= 1000 ms"] == 1 and counts["250-500 ms"] == 0
    assert loadgen.histogram([]) == []
    lines = loadgen.format_histogram([0.003] * 4 + [0.0015] * 2, width=8)
    assert lines == ["       1-2 ms | ████     2", "       2-5 ms | ████████ 4"]


@pytest.fixture
def live_url(signed_app: Any) -> Iterator[str]:
    """The app on a loopback port (werkzeug's threaded server in a thread: cheap, not granian)."""
    server = make_server("127.0.0.1", 0, signed_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/voice"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_load_against_a_url(runner: CliRunner, live_url: str) -> None:
    result = runner.invoke(cli, ["load", "--url", live_url, "--auth-token", TOKEN,
                                      "--calls", "6", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "6 completed, 0 errors" in result.output
    assert sum(n for _, n in _histogram_rows(result.output)) == 6 * 8
    wrong = runner.invoke(cli, ["load", "--url", live_url, "--auth-token", "wrong",
                                     "--calls", "2", "--concurrency", "2"])
    assert wrong.exit_code == 1
    assert "0 completed, 2 errors" in wrong.output


def test_load_shows_the_concurrency_it_uses(db_url: str) -> None:
    """Bug: `load --calls 2` said `2 calls, 4 at a time` (the default concurrency)."""
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "2"])
    assert result.exit_code == 0, result.output
    assert "2 calls, 2 at a time, to in-process" in result.stderr
    assert "2 completed, 0 errors" in result.stdout
    more = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "5",
                                    "--concurrency", "3"])
    assert more.exit_code == 0, more.output
    assert "5 calls, 3 at a time, to in-process" in more.stderr


def test_load_seed_without_people_is_refused(db_url: str) -> None:
    """The seed only picks synthetic people: without --people it would be ignored."""
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "1",
                                      "--seed", "5"])
    assert result.exit_code == 2, result.output
    assert "error: --seed needs --people" in result.stderr
    assert "calls in" not in result.output


# --- why calls failed, and as whom --------------------------------------------------------------


def _error_lines(output: str) -> list[str]:
    return output.split("\nerrors: ", 1)[1].splitlines()[1:]


def test_load_names_the_locked_person_and_the_reason(db_url: str) -> None:
    """Bug: a failed call was reported as `password: the balance was not read (verification
    failed?)`, naming neither the person nor what the caller heard."""
    from ivr.domain.accounts import check_password

    engine = make_engine(db_url)
    for _ in range(3):
        check_password(engine, "450102197503150013", "000000", 3, KEYS)
    engine.dispose()
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "9"])
    assert result.exit_code == 1, result.output
    assert "9 calls in" in result.stdout and "8 completed, 1 errors" in result.stdout
    assert _error_lines(result.stdout) == [
        "  1 x password: wrong password, unknown number or locked password (the line does not "
        "tell them apart) (heard password_wrong): **************0013 x 1"]
    assert "450102197503150013" not in result.output


def test_load_groups_wrong_passwords_over_several_people(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, synthetic.dataset(5, seed=9, keyring=KEYS), keyring=KEYS)
    engine.dispose()
    people = loadgen.synthetic_identities(5, seed=8)  # not the people in the database
    callers = [people[i] for i in range(5)]
    result = CliRunner().invoke(cli, ["--database-url", url, "load", "--calls", "7",
                                      "--people", "5", "--seed", "8"])
    assert result.exit_code == 1, result.output
    lines = _error_lines(result.stdout)
    assert len(lines) == 1, lines
    head, people = lines[0].split(" (heard password_wrong): ")
    assert head == f"  7 x password: {WRONG}"
    shown = re.findall(r"(\*{14}[0-9X]{4}) x (\d)", people)
    assert len(shown) == loadgen.MAX_PEOPLE_SHOWN
    assert people.endswith(" and 2 more people")
    assert {who for who, _ in shown} <= {mask_id_number(p.id_number) for p in callers}
    assert sorted(int(n) for _, n in shown) == [1, 2, 2]  # 7 calls over 5 people
    for person in callers:
        assert person.id_number not in result.output


def test_load_names_the_hourly_limit(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.domain import callers

    # every call of a load has a number of its own: here every number is at its limit
    monkeypatch.setattr(callers, "reserve_check", lambda *args: False)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "2"])
    assert result.exit_code == 1, result.output
    [line] = _error_lines(result.stdout)
    assert line.startswith("  2 x password: the caller's number reached the hourly "
                           "verification limit (heard too_many_attempts): ")


def test_load_names_an_application_error(db_url: str) -> None:
    import sqlite3

    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:  # every check now fails
        db.execute("ALTER TABLE people DROP COLUMN password_hash")
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "3"])
    assert result.exit_code == 1, result.output
    [line] = _error_lines(result.stdout)
    assert line.startswith("  3 x password: application error (heard system_busy): ")
    assert "and 0 more" not in line


def test_synthetic_identities_behave_as_a_sequence() -> None:
    """Bug: iterating them never ended (an index past the end wrapped around)."""
    people = loadgen.synthetic_identities(3, seed=4)
    listed = list(people)
    assert len(listed) == 3
    assert listed == [people[0], people[1], people[2]] == people[:]
    assert people[-1] == listed[2]
    assert listed[1].id_number == synthetic.person(1, 4).id_number
    with pytest.raises(IndexError):
        people[3]
