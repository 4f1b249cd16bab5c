"""Scenarios whose app uses the REST API with the twilio library: a warm transfer end to end,
parties that are busy or do not answer, and the requests a scenario expects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import DirectTransport, Simulator, run_script
from simulator.rest import RestApi, RestServer
from tests.apps.warm_transfer import create_app

HERE = Path(__file__).parent
BASE = "http://ivr.test"
ACCOUNT = "AC" + "a1" * 16
TOKEN = "warm-transfer-token"


@pytest.fixture(scope="module")
def server() -> Iterator[RestServer]:
    with RestServer(RestApi(ACCOUNT, TOKEN)) as served:
        yield served


def simulator(server: RestServer) -> Simulator:
    app = create_app(server.client())
    return Simulator(DirectTransport(app), BASE + "/voice", rest=server.api)


def test_a_warm_transfer_runs_end_to_end(server: RestServer) -> None:
    result = run_script(HERE / "scenarios" / "warm_transfer.yaml", lambda: simulator(server))
    assert result.passed, result.report() + "\n" + result.transcript_text
    text = result.transcript_text
    assert "placed over the REST API from +15550100000 to +15550100001" in text
    assert "placed over the REST API from +15550100000 to +15550100002" in text
    # agent 1 left first; the customer and the specialist were still in the room
    agent_left = next(e.at for e in result.transcript if e.kind == "hangup"
                      and e.text == "by the caller" and e.at < 60)
    joined = [e for e in result.transcript if e.kind == "conference" and "joins" in e.text]
    assert len(joined) == 3 and agent_left > max(e.at for e in joined)


def test_a_party_no_call_reaches_fails_and_expect_rest_says_what_was_made(
        server: RestServer, tmp_path: Path) -> None:
    path = tmp_path / "nobody.yaml"
    path.write_text("""
calls:
  - name: customer
    steps:
      - expect: "Please hold while we find an agent."
      - expect_rest: {resource: Queues, method: POST}
      - hangup
  - name: agent 1
    answers: "+15550100001"
    steps:
      - expect: "A customer is waiting."
      - press: "1"
      - hangup
  - name: nobody
    answers: "+15550100077"
""", encoding="utf-8")
    result = run_script(path, lambda: simulator(server))
    messages = [failure.message for failure in result.failures]
    assert len(messages) == 2, messages
    assert "a REST request POST Queues" in messages[0]
    assert "POST /Calls.json -> 201" in messages[0]
    assert "a call to +15550100077 placed over the REST API" in messages[1]


def test_answer_without_answers_is_a_malformed_scenario(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
calls:
  - name: caller
    answer: busy
    steps:
      - hangup
""", encoding="utf-8")
    result = run_script(path, lambda: pytest.fail("no call is placed"))  # type: ignore[no-any-return]
    assert not result.passed
    assert "`answer` is for a party that answers a REST call" in result.failures[0].message
