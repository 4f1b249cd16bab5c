"""Safe by default: no serving without an auth token unless the operator says so loudly, the
token may come from a file, and files holding personal data are private whatever the umask."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.errors import SettingsError
from ivr.settings import Settings
from ivr.store.schema import ensure_schema, make_engine
from ivr.tools.cli import main as cli
from simulator import write_transcript


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most permissive umask a user may have: nothing is masked."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("token", [None, "", "   "])
def test_serve_refuses_to_start_without_a_token(runner: CliRunner, tmp_path: Path,
                                                token: str | None) -> None:
    env = {"TWILIO_AUTH_TOKEN": token} if token is not None else {}
    result = runner.invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}",
                                 "serve", "--port", "1"], env=env)
    assert result.exit_code == 2, result.output
    assert "no auth token" in result.output and "--insecure" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_insecure_with_a_token_set(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}",
                                 "serve", "--insecure"], env={"TWILIO_AUTH_TOKEN": "a-real-token"})
    assert result.exit_code == 2 and "drop one of them" in result.output


def test_a_token_with_spaces_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="an auth token is 8 or more printable"):
        Settings(database_url="sqlite://", auth_token="my token")
    result = runner.invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}",
                                 "serve"], env={"TWILIO_AUTH_TOKEN": "my token"})
    assert result.exit_code == 2
    assert "TWILIO_AUTH_TOKEN: an auth token is 8 or more" in result.output
    assert "my token" not in result.output  # the token is never shown


def test_the_token_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    monkeypatch.setenv("IVR_AUTH_TOKEN_FILE", str(secret))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "the-variable-loses")
    assert Settings.from_env().auth_token == "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("IVR_AUTH_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="IVR_AUTH_TOKEN_FILE.*cannot read the token file"):
        Settings.from_env()


def test_a_new_database_and_its_folder_are_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "data" / "ivr12333"
    engine = make_engine(f"sqlite:///{folder / 'ivr.sqlite3'}")
    ensure_schema(engine)
    with engine.begin() as conn:  # a write: the -wal and -shm files exist now
        conn.exec_driver_sql("CREATE TABLE t (x)")
        modes = {p.name: _mode(p) for p in folder.iterdir()}
    engine.dispose()
    assert _mode(folder) == _mode(folder.parent) == 0o700
    assert modes == {"ivr.sqlite3": 0o600, "ivr.sqlite3-shm": 0o600, "ivr.sqlite3-wal": 0o600}


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    path = shared / "old.sqlite3"
    path.touch()
    os.chmod(path, 0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600
    assert _mode(shared) == 0o755  # a folder it did not create is left as it is


def test_transcripts_are_private(tmp_path: Path, loose_umask: None) -> None:
    target = tmp_path / "transcripts" / "call.txt"
    write_transcript(target, "keys 450102197503150013#\n")
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700


def test_a_big_body_is_refused_before_it_is_read(app_factory: Any) -> None:
    """A 10 MB form is refused (413) before parsing or signature work: the app reads none of
    it (a body that would be read raises here)."""
    app = app_factory(auth_token="a-real-token")
    read: list[int] = []

    class Body(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            read.append(len(buffer))
            raise AssertionError("the body was read")

    size = 10 * 1024 * 1024
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/voice", "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BufferedReader(Body()),
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(size),
    }
    status: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda s, h, exc=None: status.append(s)))
    assert status[0].startswith("413"), (status, body[:200])
    assert read == []


def test_a_twilio_form_is_well_under_the_cap() -> None:
    from ivr.web import MAX_BODY_BYTES

    form = "&".join(f"{k}={'x' * 64}" for k in (
        "CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction",
        "ApiVersion", "Digits", "FinishedOnKey", "FromCity", "FromState", "FromZip",
        "FromCountry", "ToCity", "ToState", "ToZip", "ToCountry", "CallerCity", "CallerState",
        "CallerZip", "CallerCountry", "CalledCity", "CalledState", "CalledZip", "CalledCountry"))
    assert len(form) * 10 < MAX_BODY_BYTES
