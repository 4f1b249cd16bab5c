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
