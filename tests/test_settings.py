"""Settings: one typed object; each setting one name (its field, IVR_ + its name in the
environment); only Settings.from_env() reads the environment, so tests never scrub it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ivr.settings import Settings
from simulator import Simulator, WsgiTransport

#: what a developer may have exported in the shell the tests run from
DEVELOPER = {
    "IVR_VOICE_ZH": "Polly.Developer",
    "TWILIO_AUTH_TOKEN": "the-developers-own-token",
    "IVR_DATABASE_URL": "sqlite:////nonexistent/developer.sqlite3",
    "IVR_GATHER_TIMEOUT": "42",
}


def test_a_developers_environment_does_not_reach_the_tests_apps(
    monkeypatch: pytest.MonkeyPatch, app_factory: Callable[..., Any], db_url: str
) -> None:
    for name, value in DEVELOPER.items():
        monkeypatch.setenv(name, value)
    app = app_factory()
    settings = app.extensions["ivr12333"].settings
    assert settings == Settings(database_url=db_url)
    # unsigned requests are served (no token), on the test's database, with the default voice
    call = Simulator(WsgiTransport(app), "http://localhost/voice").dial()
    try:
        assert call.error is None and not call.ended
        assert {u.voice for u in call.said if u.language == "cmn-CN"} == {"Polly.Zhiyu"}
        assert call.waiting is not None and call.waiting.timeout == 5
    finally:
        call.hangup()
        call.close()
    # while the environment is what from_env reads
    read = Settings.from_env()
    assert (read.voice_zh, read.auth_token, read.database_url, read.gather_timeout) == (
        "Polly.Developer", "the-developers-own-token", DEVELOPER["IVR_DATABASE_URL"], 42)
