"""Settings: one typed object; each setting one name (its field, IVR_ + its name in the
environment); only Settings.from_env() reads the environment, so tests never scrub it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.resources import data_dir
from ivr.settings import Settings
from ivr.tools.cli import main as cli
from simulator import Simulator, WsgiTransport

#: what a developer may have exported in the shell the tests run from
DEVELOPER = {
    "IVR_VOICE_ZH": "Polly.Developer",
    "TWILIO_AUTH_TOKEN": "the-developers-own-token",
    "IVR_DATABASE_URL": "sqlite:////nonexistent/developer.sqlite3",
    "IVR_GATHER_TIMEOUT": "42",
    "IVR_PROMPTS_DIR": "/nonexistent/prompts",
    "IVR_FLOWS_DIR": "/nonexistent/flows",
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


def test_the_operators_prompts_and_flow_folders_are_used(
    tmp_path: Path, app_factory: Callable[..., Any]
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(data_dir("prompts"), prompts)
    zh = prompts / "zh-CN.yaml"
    zh.write_text(zh.read_text("utf-8").replace("欢迎致电12333", "您好，这里是12333"), "utf-8")
    flows = tmp_path / "flows"
    shutil.copytree(data_dir("state_machines"), flows)
    app = app_factory(prompts_dir=prompts, flows_dir=flows)
    call = Simulator(WsgiTransport(app), "http://localhost/voice").dial()
    try:
        assert call.heard.startswith("您好，这里是12333"), call.heard
    finally:
        call.hangup()
        call.close()
    assert app.extensions["ivr12333"].flow.path.parent == flows


def test_graph_draws_the_flow_of_ivr_flows_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", "-o", str(tmp_path / "flow.svg")],
                                env={"IVR_FLOWS_DIR": str(tmp_path / "none")})
    assert result.exit_code == 1
    assert "cannot draw" in result.output and "none" in result.output
