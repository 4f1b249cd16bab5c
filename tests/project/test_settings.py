"""Settings: one typed object; each setting one name (its field, IVR_ + its name in the
environment); only Settings.from_env() reads the environment, so tests never scrub it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from servers import key_file_of_tests

from ivr.errors import SettingsError
from ivr.resources import data_dir, demo_dataset
from ivr.settings import Settings, env_name
from ivr.tools.cli import main as cli
from ivr.tools.localrest import local_rest
from simulator import Simulator, WsgiTransport

#: what a developer may have exported in the shell the tests run from
DEVELOPER = {
    "IVR_VOICE_ZH": "Polly.Developer",
    "TWILIO_AUTH_TOKEN": "the-developers-own-token",
    "IVR_GATHER_TIMEOUT": "42",
    "IVR_PROMPTS_DIR": "/nonexistent/prompts",
    "IVR_FLOWS_DIR": "/nonexistent/flows",
}


def test_a_developers_environment_does_not_reach_the_tests_apps(
    monkeypatch: pytest.MonkeyPatch, app_factory: Callable[..., Any], db_url: str,
    tmp_path: Path
) -> None:
    developers_db = tmp_path / "developer.sqlite3"
    for name, value in {**DEVELOPER, "IVR_DATABASE_URL": f"sqlite:///{developers_db}"}.items():
        monkeypatch.setenv(name, value)
    app = app_factory()
    settings = app.extensions["ivr12333"].settings
    assert settings == Settings(database_url=db_url, pin_key_file=key_file_of_tests(),
                                **local_rest().settings())
    # unsigned requests are served (no token), on the test's database, with the default voice
    call = Simulator(WsgiTransport(app), "http://localhost/voice").dial()
    try:
        assert call.error is None and not call.ended
        assert {u.voice for u in call.said if u.language == "cmn-CN"} == {"Polly.Zhiyu"}
        assert call.waiting is not None and call.waiting.timeout == 5
    finally:
        call.hangup()
        call.close()
    assert not developers_db.exists()
    # while the environment is what from_env reads
    read = Settings.from_env()
    assert (read.voice_zh, read.auth_token, read.database_url, read.gather_timeout) == (
        "Polly.Developer", "the-developers-own-token", f"sqlite:///{developers_db}", 42)


def test_the_operators_prompts_and_flow_folders_are_used(
    tmp_path: Path, app_factory: Callable[..., Any]
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(data_dir("prompts"), prompts)
    zh = prompts / "zh-CN.yaml"
    zh.write_text(zh.read_text("utf-8").replace("欢迎致电{line}", "您好，这里是{line}"),
                  "utf-8")
    flows = tmp_path / "flows"
    shutil.copytree(data_dir("state_machines"), flows)
    app = app_factory(prompts_dir=prompts, flows_dir=flows)
    call = Simulator(WsgiTransport(app), "http://localhost/voice").dial()
    try:
        assert call.heard.startswith("您好，这里是医保服务热线"), call.heard
    finally:
        call.hangup()
        call.close()
    assert app.extensions["ivr12333"].flow.path.parent == flows


def test_graph_draws_the_flow_of_ivr_flows_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["graph", "-o", str(tmp_path / "flow.svg")],
                                env={"IVR_FLOWS_DIR": str(tmp_path / "none")})
    assert result.exit_code == 1
    assert "cannot draw" in result.output and "none" in result.output


# --- each variable is its field -------------------------------------------------------------

#: (variable, what it holds, field, the value the field gets): every field of Settings
VARIABLES = [
    ("IVR_DATABASE_URL", "postgresql+psycopg://u@db/ivr", "database_url",
     "postgresql+psycopg://u@db/ivr"),
    ("TWILIO_AUTH_TOKEN", "secret-token", "auth_token", "secret-token"),
    ("IVR_PUBLIC_URL", "https://ivr.example/", "public_url", "https://ivr.example"),
    ("IVR_VOICE_ZH", "Polly.Zhiyu-Neural", "voice_zh", "Polly.Zhiyu-Neural"),
    ("IVR_VOICE_ZH_LANGUAGE", "zh-CN", "voice_zh_language", "zh-CN"),
    ("IVR_VOICE_EN", "Polly.Matthew", "voice_en", "Polly.Matthew"),
    ("IVR_VOICE_EN_LANGUAGE", "en-GB", "voice_en_language", "en-GB"),
    ("IVR_ZH_LIANG", "0", "zh_liang", False),
    ("IVR_GATHER_TIMEOUT", "7", "gather_timeout", 7),
    ("IVR_VERIFY_ATTEMPTS_PER_HOUR", "3", "verify_attempts_per_hour", 3),
    ("IVR_WITHHELD_ATTEMPTS_PER_HOUR", "40", "withheld_attempts_per_hour", 40),
    ("IVR_QUEUE_PLACES_PER_NUMBER", "1", "queue_places_per_number", 1),
    ("IVR_WITHHELD_QUEUE_PLACES", "8", "withheld_queue_places", 8),
    ("IVR_PIN_KEY_FILE", "/srv/ivr/pin-keys", "pin_key_file", Path("/srv/ivr/pin-keys")),
    ("IVR_PIN_KEY", "0123abcd:a2V5", "pin_key", "0123abcd:a2V5"),
    ("IVR_PIN_KEY_PERMISSIVE", "1", "pin_key_permissive", True),
    ("IVR_PROMPTS_DIR", "/srv/prompts", "prompts_dir", Path("/srv/prompts")),
    ("IVR_FLOWS_DIR", "/srv/flows", "flows_dir", Path("/srv/flows")),
    ("IVR_HOLD_MUSIC_URL", "https://cdn.example/hold.mp3", "hold_music_url",
     "https://cdn.example/hold.mp3"),
    ("IVR_LOG_LEVEL", "debug", "log_level", "DEBUG"),
    ("IVR_ACCOUNT_SID", "AC" + "ab" * 16, "account_sid", "AC" + "ab" * 16),
    ("IVR_API_KEY_SID", "SK" + "cd" * 16, "api_key_sid", "SK" + "cd" * 16),
    ("IVR_API_KEY_SECRET", "a-secret-of-the-key", "api_key_secret", "a-secret-of-the-key"),
    ("IVR_REST_API_URL", "http://127.0.0.1:8089/", "rest_api_url", "http://127.0.0.1:8089"),
    ("IVR_KEEP_ENDED_DAYS", "2", "keep_ended_days", 2),
    ("IVR_SEAL_IDLE_MINUTES", "120", "seal_idle_minutes", 120),
    ("IVR_KEEP_RECORDS_DAYS", "90", "keep_records_days", 90),
    ("IVR_OPERATOR_TOKEN", "operators-token-0123", "operator_token", "operators-token-0123"),
    ("IVR_SUPERVISOR_TOKEN", "supervisors-token-012", "supervisor_token",
     "supervisors-token-012"),
]


#: fields whose variable is tested on its own (tests/web/test_safe_defaults.py: a file to read)
ELSEWHERE = {"auth_token_file", "api_key_secret_file", "supervisor_token_file"}


def test_the_table_names_every_field() -> None:
    assert {field for _, _, field, _ in VARIABLES} | ELSEWHERE == set(Settings.model_fields)


@pytest.mark.parametrize(("name", "value", "field", "expected"), VARIABLES,
                         ids=[v[0] for v in VARIABLES])
def test_each_variable_sets_its_field(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                      field: str, expected: Any) -> None:
    assert env_name(field) == name
    monkeypatch.setenv(name, value)
    assert getattr(Settings.from_env(), field) == expected
    assert getattr(Settings(database_url="sqlite://"), field) != expected  # not read by Settings()


def test_voices_are_the_four_voice_settings() -> None:
    settings = Settings(database_url="sqlite://", voice_zh="Z", voice_zh_language="zl",
                        voice_en="E", voice_en_language="el")
    assert settings.voices == {"zh-CN": ("Z", "zl"), "en-US": ("E", "el")}
    assert Settings(database_url="sqlite://").voices == {
        "zh-CN": ("Polly.Zhiyu", "cmn-CN"), "en-US": ("Polly.Joanna", "en-US")}


def test_ivr_database_is_a_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", "")  # blank: unset
    monkeypatch.setenv("IVR_DATABASE", str(tmp_path / "here.sqlite3"))
    assert Settings.from_env().database_url == f"sqlite:///{tmp_path / 'here.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", "sqlite:///elsewhere.sqlite3")  # the URL wins
    assert Settings.from_env().database_url == "sqlite:///elsewhere.sqlite3"
    assert Settings.from_env(database_url="sqlite://").database_url == "sqlite://"  # the flag's


def test_the_default_database_is_in_the_users_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("IVR_DATABASE_URL", "IVR_DATABASE"):
        monkeypatch.setenv(name, "")  # blank: unset
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings.from_env().database_url == (
        f"sqlite:///{tmp_path / 'ivr12333' / 'ivr12333.sqlite3'}")


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_auth_token_is_unset(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", blank)
    assert Settings.from_env().auth_token is None
    assert Settings(database_url="sqlite://", auth_token=blank).auth_token is None


def test_settings_are_built_from_arguments_only() -> None:
    with pytest.raises(ValidationError):
        Settings()  # type: ignore[call-arg]  # no database: nothing comes from the environment
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://", gather_timout=3)  # type: ignore[call-arg]  # a typo


@pytest.mark.parametrize(("name", "value", "complaint"), [
    ("IVR_GATHER_TIMEOUT", "abc", "valid integer"),
    ("IVR_GATHER_TIMEOUT", "0", "greater than or equal to 1"),
    ("IVR_ZH_LIANG", "maybe", "valid boolean"),
    ("IVR_PIN_KEY_PERMISSIVE", "maybe", "valid boolean"),
    ("IVR_LOG_LEVEL", "loud", "'DEBUG', 'INFO'"),
    # retention: a replayed webhook must find its ended call (a day at least), nothing kept
    # for a month; an idle call is sealed after the longest queue wait, within Twilio's 4 h
    ("IVR_KEEP_ENDED_DAYS", "0", "greater than or equal to 1"),
    ("IVR_KEEP_ENDED_DAYS", "31", "less than or equal to 30"),
    ("IVR_SEAL_IDLE_MINUTES", "30", "greater than or equal to 90"),
    ("IVR_SEAL_IDLE_MINUTES", "241", "less than or equal to 240"),
    ("IVR_KEEP_RECORDS_DAYS", "0", "greater than or equal to 1"),
])
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                        complaint: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert message.startswith(f"{name}={value!r}: ") and complaint in message
    assert "\n" not in message


def test_a_short_operator_token_is_refused_without_showing_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_OPERATOR_TOKEN", "short")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith("IVR_OPERATOR_TOKEN: an operator token is 16 or more")
    assert "short" not in str(raised.value)


def test_the_supervisor_token_comes_from_its_file_and_is_not_the_operators(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "supervisor-token"
    token.write_text("supervisors-from-the-file\n", encoding="utf-8")
    monkeypatch.setenv("IVR_SUPERVISOR_TOKEN", "supervisors-from-the-env")
    monkeypatch.setenv("IVR_SUPERVISOR_TOKEN_FILE", str(token))
    assert Settings.from_env().supervisor_token == "supervisors-from-the-file"
    assert "supervisors-from-the-file" not in repr(Settings.from_env())
    monkeypatch.setenv("IVR_OPERATOR_TOKEN", "supervisors-from-the-file")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert "must be their own" in str(raised.value)
    assert "supervisors-from-the-file" not in str(raised.value)
    monkeypatch.setenv("IVR_SUPERVISOR_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="IVR_SUPERVISOR_TOKEN_FILE=.*cannot read the token"):
        Settings.from_env()


def test_the_auth_token_is_not_shown_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(auth_token=12345)
    assert str(raised.value).startswith("TWILIO_AUTH_TOKEN: ") and "12345" not in str(raised.value)


def test_the_cli_says_which_variable_is_bad_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["demo"], env={"IVR_GATHER_TIMEOUT": "abc"})
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.strip().splitlines() == [
        "error: IVR_GATHER_TIMEOUT='abc': Input should be a valid integer, unable to parse "
        "string as an integer"]
    # help needs no settings
    assert CliRunner().invoke(cli, ["demo", "--help"],
                              env={"IVR_GATHER_TIMEOUT": "abc"}).exit_code == 0


# --- --database-url, before or after the command's name ----------------------------------------

def _people(url: str) -> int | None:
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        return conn.execute("SELECT count(*) FROM people").fetchone()[0] if "people" in tables \
            else None


@pytest.fixture
def empty_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'empty.sqlite3'}"


def _placements(command: list[str], url: str, other: str) -> list[list[str]]:
    """The URL before the command, after it, and after it overriding another before it."""
    return [["--database-url", url, *command], [*command, "--database-url", url],
            ["--database-url", other, *command, "--database-url", url]]


COMMANDS = {
    "unlock": ["unlock", "450102197503150013"],
    "call": ["call", "--live", "--script",
             str(Path(__file__).parent.parent / "calls" / "balance_by_id.yaml")],
    "load": ["load", "--calls", "1", "--concurrency", "1"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_database_url_on_the_group_or_the_command(
    command: str, db_url: str, empty_url: str
) -> None:
    """On the demo people it works; on an empty database it cannot (nobody to find)."""
    runner = CliRunner()
    env = {"IVR_DATABASE_URL": empty_url}  # the flag beats the variable
    for args in _placements(COMMANDS[command], db_url, empty_url):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, (args, result.output)
    result = runner.invoke(cli, [*COMMANDS[command], "--database-url", empty_url], env=env)
    assert result.exit_code != 0, result.output


@pytest.mark.parametrize("command", [["demo"], ["import", "DEMO"]])
def test_database_url_on_the_group_or_the_command_imports_there(
    command: list[str], tmp_path: Path
) -> None:
    command = [str(demo_dataset()) if arg == "DEMO" else arg for arg in command]
    for i, args in enumerate(_placements(command, "URL", "OTHER")):
        url, other = (f"sqlite:///{tmp_path / f'{name}-{i}.sqlite3'}" for name in ("in", "out"))
        args = [{"URL": url, "OTHER": other}.get(arg, arg) for arg in args]
        result = CliRunner().invoke(cli, args, env={})
        assert result.exit_code == 0, (args, result.output)
        assert _people(url) == 9 and not _people(other), args


def test_serve_takes_database_url_before_or_after(
    monkeypatch: pytest.MonkeyPatch, db_url: str, empty_url: str
) -> None:
    served: list[Settings] = []
    monkeypatch.setattr("ivr.web.serve.serve", lambda settings, *args: served.append(settings))
    for args in _placements(["serve"], db_url, empty_url):
        result = CliRunner().invoke(cli, args, env={"TWILIO_AUTH_TOKEN": "secret-token"})
        assert result.exit_code == 0, result.output
        assert served.pop().database_url == db_url
    assert CliRunner().invoke(cli, ["serve", "--database-url", db_url, "--help"]).exit_code == 0


def test_graph_needs_no_database_url() -> None:
    assert "--database-url" not in CliRunner().invoke(cli, ["graph", "--help"]).output


def test_in_process_calls_ignore_the_public_url(db_url: str) -> None:
    """`call` and `load` in-process reach their app at http://localhost and sign for it."""
    env = {"IVR_PUBLIC_URL": "https://ivr.example", "TWILIO_AUTH_TOKEN": "secret-token"}
    for args in (COMMANDS["call"], COMMANDS["load"]):
        result = CliRunner().invoke(cli, [*args, "--database-url", db_url], env=env)
        assert result.exit_code == 0, (args, result.output)


def test_the_auth_token_is_not_in_the_settings_repr() -> None:
    settings = Settings(database_url="sqlite://", auth_token="s3cr3t-token")
    assert "s3cr3t-token" not in repr(settings) and "s3cr3t-token" not in str(settings)


def test_the_api_key_secret_comes_from_its_file(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    secret = tmp_path / "api-secret"
    secret.write_text("from-the-file\n", encoding="utf-8")
    monkeypatch.setenv("IVR_API_KEY_SECRET", "from-the-environment")
    monkeypatch.setenv("IVR_API_KEY_SECRET_FILE", str(secret))
    assert Settings.from_env().api_key_secret == "from-the-file"
    assert "from-the-file" not in repr(Settings.from_env())
    monkeypatch.setenv("IVR_API_KEY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="IVR_API_KEY_SECRET_FILE=.*cannot read the secret"):
        Settings.from_env()


@pytest.mark.parametrize("name, value", [("IVR_ACCOUNT_SID", "AC123"),
                                         ("IVR_API_KEY_SID", "AC" + "ab" * 16)])
def test_a_sid_of_the_wrong_form_is_named(monkeypatch: pytest.MonkeyPatch, name: str,
                                          value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        Settings.from_env()
