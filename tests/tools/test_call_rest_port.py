"""`ivr12333 call --url URL --rest-port PORT`: an app served over real HTTP, written against the
twilio library, reaches the simulated REST API on the port the command opened, with the
account and auth token it was given: a warm transfer end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import free_port
from werkzeug.serving import make_server

from ivr.tools.cli import main
from simulator.rest import local_client
from tests.apps.warm_transfer import create_app

SCENARIO = Path(__file__).resolve().parents[1] / "simulator" / "scenarios" / "warm_transfer.yaml"
ACCOUNT = "AC" + "c3" * 16
TOKEN = "an-auth-token-of-the-app-0123"


@pytest.fixture
def app_url() -> Iterator[tuple[str, int]]:
    """The warm-transfer app on a real loopback server, its client aimed at a REST port."""
    rest_port = free_port()
    app = create_app(local_client(f"http://127.0.0.1:{rest_port}", ACCOUNT, TOKEN, ACCOUNT))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/voice", rest_port
    finally:
        server.shutdown()
        thread.join()


def test_an_app_over_http_uses_the_rest_api_the_command_serves(app_url: tuple[str, int]) -> None:
    url, rest_port = app_url
    result = CliRunner().invoke(main, [
        "call", "--url", url, "--script", str(SCENARIO), "--auth-token", TOKEN,
        "--rest-port", str(rest_port)], env={"IVR_ACCOUNT_SID": ACCOUNT})
    assert f"the simulated Twilio REST API: http://127.0.0.1:{rest_port}" in result.output
    assert result.output.rstrip().splitlines()[-1] == "1 passed, 0 failed", result.output
    assert result.exit_code == 0


def test_without_the_account_or_a_url_the_port_is_refused() -> None:
    for args, env in ((["--rest-port", "8089"], {"IVR_ACCOUNT_SID": ACCOUNT}),
                      (["--url", "http://127.0.0.1:9/voice", "--rest-port", "8089",
                        "--auth-token", TOKEN], {"IVR_ACCOUNT_SID": ""})):
        result = CliRunner().invoke(main, ["call", *args], env=env)
        assert result.exit_code == 2 and "--rest-port serves the REST API" in result.output
