"""The load generator (`ivr12333 load`): full signed calls, per-step latencies, errors counted."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from ivr.data import synthetic
from ivr.data.dataset import import_dataset
from ivr.data.storage import ensure_schema, make_engine
from ivr.settings import Settings
from ivr.tools import loadgen
from ivr.tools.cli import main as cli
from ivr.web import create_app
from simulator import WsgiTransport

TOKEN = "loadgen-test-token"
CHEAP = 2
WEBHOOKS_PER_CALL = {"answer": 1, "menu": 4, "id": 1, "password": 1, "status": 1}


def _histogram_rows(output: str) -> list[tuple[str, int]]:
    rows = re.findall(r"^\s+([<>=\d -]+ ms) \| █* *(\d+)$", output, re.M)
    return [(label.strip(), int(n)) for label, n in rows]


def test_load_in_process_reports_every_call_and_a_histogram(db_url: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", db_url, "load", "--calls", "20",
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


def test_load_as_synthetic_people(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, synthetic.dataset(50, seed=9, scrypt_n=CHEAP))
    engine.dispose()
    result = CliRunner().invoke(cli, ["--database-url", url, "load", "--calls", "12",
                                      "--concurrency", "3", "--people", "50", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert "12 completed, 0 errors" in result.output


@pytest.fixture
def signed_app(db_url: str) -> Iterator[Any]:
    application = create_app(Settings(database_url=db_url, auth_token=TOKEN))
    yield application
    application.extensions["ivr12333"].db.dispose()


def test_wrong_passwords_and_bad_signatures_are_counted_as_errors(signed_app: Any) -> None:
    right = loadgen.demo_identities()[0]
    wrong = loadgen.Identity(right.id_number, f"{(int(right.password) + 1) % 10**6:06d}")
    result = loadgen.run_load(WsgiTransport(signed_app), "http://localhost/voice", [wrong],
                              calls=2, concurrency=1, auth_token=TOKEN,
                              status_callback="http://localhost/status")
    assert (result.calls, result.completed) == (2, 0)
    assert result.errors == {"password: the balance was not read (verification failed?)": 2}
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
    """The app on a loopback port (werkzeug's threaded server in a thread: cheap, not gunicorn)."""
    server = make_server("127.0.0.1", 0, signed_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/voice"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_load_against_a_url(live_url: str) -> None:
    result = CliRunner().invoke(cli, ["load", "--url", live_url, "--auth-token", TOKEN,
                                      "--calls", "6", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "6 completed, 0 errors" in result.output
    assert sum(n for _, n in _histogram_rows(result.output)) == 6 * 8
    wrong = CliRunner().invoke(cli, ["load", "--url", live_url, "--auth-token", "wrong",
                                     "--calls", "2", "--concurrency", "2"])
    assert wrong.exit_code == 1
    assert "0 completed, 2 errors" in wrong.output
