"""The database failing under calls (unavailable, locked, corrupt) and servers restarting mid-call.

Whatever happens to the database, Twilio gets HTTP 200 and valid TwiML: the caller hears
the apology (prompt system_busy) and the goodbye, then <Hangup/>, never an application error. A call
survives its server being restarted (or another instance taking the next webhook).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import say
from defusedxml import ElementTree
from servers import HotlineServer, free_port, run_cli

from ivr.store.schema import make_engine
from simulator import Call, HttpTransport, Simulator, WsgiTransport
from simulator.transport import WEBHOOK_TIMEOUT_SECONDS

APOLOGY = say("system_busy")
GOODBYE = say("goodbye")
LI_ID, LI_PASSWORD = "450102197503150013", "135790"
LI_BALANCE = say("balance_employee", as_of="2026年11月21日",
                 balance="一千二百三十四元五角六分", credit="一百五十元", month="2026年11月")
LI_POOL = say("pool_funder_count", count="四")
ID_READBACK = say("id_readback", last4="0 0 1 3")
#: How long SQLite waits for a lock in these tests (the app's default is 5 s).
LOCK_WAIT = 0.2


class Switch:
    """A WSGI app that hands each request to `app`, or in turn to each of `apps`."""

    def __init__(self, *apps: Any) -> None:
        self.apps = list(apps)
        self.served = [0] * len(apps)
        self._turn = 0

    @property
    def app(self) -> Any:
        return self.apps[0]

    @app.setter
    def app(self, app: Any) -> None:
        self.apps = [app]
        self.served = [0]
        self._turn = 0

    def __call__(self, environ: Any, start_response: Any) -> Any:
        i = self._turn % len(self.apps)
        self._turn += 1
        self.served[i] += 1
        return self.apps[i](environ, start_response)


@pytest.fixture
def apps(app_factory: Callable[..., Any]) -> Callable[..., Any]:
    """create_app on a given database URL (engines disposed by conftest's app_factory)."""
    return lambda url, **overrides: app_factory(database_url=url, **overrides)


@pytest.fixture
def calls() -> Iterator[list[Call]]:
    """Calls placed by a test: hung up and closed at the end."""
    placed: list[Call] = []
    yield placed
    for call in placed:
        call.close()


def dial(wsgi: Any, calls: list[Call], **kwargs: Any) -> Call:
    simulator = Simulator(WsgiTransport(wsgi), "http://localhost/voice",
                          status_callback="http://localhost/status")
    call = simulator.dial(**kwargs)
    calls.append(call)
    return call


def db_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def assert_apology_twiml(response: Any) -> None:
    """HTTP 200, text/xml: <Say>apology</Say><Say>goodbye</Say><Hangup/>, nothing else."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.get_data())
    assert root.tag == "Response"
    assert [(child.tag, (child.text or "").strip()) for child in root] == [
        ("Say", APOLOGY), ("Say", GOODBYE), ("Hangup", "")]


def assert_apology_goodbye(call: Call) -> None:
    """The caller heard the apology and the goodbye, then the application hung up."""
    assert call.error is None, call.transcript_text()
    assert call.ended_by == "application", call.transcript_text()
    assert call.heard == f"{APOLOGY}\n{GOODBYE}", call.transcript_text()


def to_password(call: Call) -> None:
    """Mandarin, balance, by ID number, confirm: the password prompt is waiting."""
    call.press("1")
    call.press("1")
    call.press("1")
    call.press(LI_ID + "#")
    assert ID_READBACK in call.heard
    call.press("1")
    assert say("password_entry") in call.heard


def hear_balance(call: Call) -> None:
    to_password(call)
    call.press(LI_PASSWORD + "#")
    assert LI_BALANCE in call.heard, call.transcript_text()


# --- the knob: a SQLite URL's ?timeout= is how long to wait for a lock -------------------------


def test_sqlite_busy_timeout_defaults_to_five_seconds(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_sqlite_url_timeout_sets_the_busy_timeout(db_url: str) -> None:
    engine = make_engine(f"{db_url}?timeout={LOCK_WAIT}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == LOCK_WAIT * 1000
    finally:
        engine.dispose()


# --- unavailable from the start -------------------------------------------------------------------


def _directory(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}"


def _garbage(tmp_path: Path) -> str:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(os.urandom(64 * 1024))
    return f"sqlite:///{path}"


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are not the tables you are looking for\n" * 100)
    return f"sqlite:///{path}"


def _under_a_regular_file(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("not a folder\n")
    return f"sqlite:///{tmp_path / 'a-file' / 'data' / 'ivr.sqlite3'}"


def _postgres_nobody_listens(tmp_path: Path) -> str:
    return f"postgresql+psycopg://ivr@127.0.0.1:{free_port()}/ivr?connect_timeout=3"


UNAVAILABLE = {
    "a directory": _directory,
    "garbage bytes": _garbage,
    "a text file": _not_a_database,
    "a folder that cannot be created": _under_a_regular_file,
    "PostgreSQL, nobody listening": _postgres_nobody_listens,
}


@pytest.mark.parametrize("make_url", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_unavailable_database_every_webhook_apologises(
    make_url: Callable[[Path], str], tmp_path: Path, apps: Callable[..., Any]
) -> None:
    client = apps(make_url(tmp_path)).test_client()
    form = {"CallSid": "CA" + "1" * 32, "From": "+8613800000000", "CallStatus": "ringing"}
    assert_apology_twiml(client.post("/voice", data=form))
    for query in ("s=1", "s=1&e=silence", "s=3&e=dialed"):
        assert_apology_twiml(client.post(f"/voice/step?{query}", data={**form, "Digits": "1"}))
    assert client.post("/status", data={**form, "CallStatus": "completed"}).status_code == 204


@pytest.mark.parametrize("make_url", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_unavailable_database_caller_hears_apology_and_goodbye(
    make_url: Callable[[Path], str], tmp_path: Path, apps: Callable[..., Any],
    calls: list[Call]
) -> None:
    call = dial(apps(make_url(tmp_path)), calls)
    assert_apology_goodbye(call)
    assert call.status == "completed"


@pytest.mark.parametrize("command", [["demo"], ["unlock", LI_ID]], ids=["demo", "unlock"])
@pytest.mark.parametrize("make_url", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_cli_reports_an_unavailable_database(
    make_url: Callable[[Path], str], command: list[str], tmp_path: Path
) -> None:
    done = run_cli("--database-url", make_url(tmp_path), *command, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: cannot open the database" in done.stderr
    assert "Traceback" not in done.stderr


def test_locked_for_readers_from_the_start(
    db_url: str, apps: Callable[..., Any], calls: list[Call]
) -> None:
    """Another program holds the file exclusively (locking_mode=EXCLUSIVE): nobody can read."""
    holder = sqlite3.connect(db_path(db_url), isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        app = apps(f"{db_url}?timeout={LOCK_WAIT}")
        started = time.monotonic()
        assert_apology_goodbye(dial(app, calls))
        assert time.monotonic() - started < 5
        holder.rollback()
    finally:
        holder.close()
    call = dial(app, calls)  # the lock is gone: calls work again
    assert say("welcome", line="医保服务热线") in call.heard
    hear_balance(call)


# --- failing after a few good webhooks ---------------------------------------------------------


@pytest.mark.parametrize("at_password", [False, True], ids=["at ID entry", "at password"])
def test_locked_mid_call(
    at_password: bool, db_url: str, apps: Callable[..., Any], calls: list[Call]
) -> None:
    """Another connection takes the write lock (BEGIN EXCLUSIVE) between two webhooks."""
    app = apps(f"{db_url}?timeout={LOCK_WAIT}")
    call = dial(app, calls)
    for key in ("1", "1", "1"):
        call.press(key)
    if at_password:
        call.press(LI_ID + "#")
        call.press("1")
    holder = sqlite3.connect(db_path(db_url), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        call.press(LI_PASSWORD + "#" if at_password else LI_ID + "#")
        assert time.monotonic() - started < 5
        assert_apology_goodbye(call)
        holder.rollback()
    finally:
        holder.close()
    again = dial(app, calls)  # the lock is gone: calls work again
    hear_balance(again)


@pytest.mark.slow
def test_locked_with_the_default_wait_answers_before_twilio_gives_up(
    db_url: str, apps: Callable[..., Any], calls: list[Call]
) -> None:
    """Each write in a webhook may wait the full 5 s for the lock: still under Twilio's 15 s."""
    app = apps(db_url)
    call = dial(app, calls)
    to_password(call)
    assert call.waiting is not None
    form = {"CallSid": call.call_sid, "From": call.from_, "Digits": LI_PASSWORD,
            "CallStatus": "in-progress"}
    holder = sqlite3.connect(db_path(db_url), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        response = app.test_client().post(call.waiting.action, data=form)
        elapsed = time.monotonic() - started
        holder.rollback()
    finally:
        holder.close()
    assert_apology_twiml(response)
    assert 5 <= elapsed < WEBHOOK_TIMEOUT_SECONDS - 2


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _replace_by_directory(path: Path) -> None:
    _delete(path)
    path.mkdir()


def _garbage_over_database(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(os.urandom(size))


def _garbage_over_everything(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            with open(part, "r+b") as f:
                f.write(os.urandom(part.stat().st_size))


#: fault -> whether a fresh worker (new process, new connections) takes the next webhook; a
#: process still holding the deleted file open would go on reading the deleted inode.
MID_CALL = {
    "deleted, next webhook on a fresh worker": (_delete, True),
    "replaced by a directory, fresh worker": (_replace_by_directory, True),
    "garbage over the file, fresh worker": (_garbage_over_database, True),
    "garbage over the file, its WAL and shm": (_garbage_over_everything, False),
}


@pytest.mark.parametrize("fault, fresh_worker", MID_CALL.values(), ids=MID_CALL.keys())
@pytest.mark.parametrize("presses", [0, 3, 5], ids=["after dial", "after 3", "after 5"])
def test_database_fails_mid_call(
    fault: Callable[[Path], None], fresh_worker: bool, presses: int, db_url: str,
    apps: Callable[..., Any], calls: list[Call]
) -> None:
    switch = Switch(apps(db_url))
    call = dial(switch, calls)
    for key in ("1", "1", "1", LI_ID + "#", "1")[:presses]:
        call.press(key)
        assert APOLOGY not in call.heard
    if fresh_worker:  # the old worker is gone, and its open files with it
        switch.app.extensions["ivr12333"].db.dispose()
    fault(db_path(db_url))
    if fresh_worker:
        switch.app = apps(db_url)
    call.press(LI_PASSWORD + "#" if presses == 5 else "1")
    assert_apology_goodbye(call)


# --- restarts ------------------------------------------------------------------------------------


def test_two_app_instances_alternate_webhooks(
    db_url: str, apps: Callable[..., Any], calls: list[Call]
) -> None:
    """Two workers on the same database, every other webhook each: one coherent call."""
    switch = Switch(apps(db_url), apps(db_url))
    call = dial(switch, calls)
    hear_balance(call)
    call.press("9")
    call.press("2")
    assert LI_POOL in call.heard
    call.press("*")
    assert LI_POOL in call.heard
    call.hangup()
    assert call.error is None and call.ended_by == "caller"
    assert min(switch.served) >= 5, switch.served


def test_app_restarted_between_webhooks(
    db_url: str, apps: Callable[..., Any], calls: list[Call]
) -> None:
    """After each webhook the app is thrown away and a new one answers the next."""
    switch = Switch(apps(db_url))
    call = dial(switch, calls)
    for key in ("1", "1", "1", LI_ID + "#", "1", LI_PASSWORD + "#"):
        switch.app.extensions["ivr12333"].db.dispose()
        switch.app = apps(db_url)
        call.press(key)
    assert LI_BALANCE in call.heard, call.transcript_text()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_server_restarted_between_webhooks_over_http(
    how: str, db_url: str, tmp_path: Path, calls: list[Call]
) -> None:
    """`ivr12333 serve` stopped (SIGTERM) or killed (SIGKILL) mid-call and started again."""
    server = HotlineServer(db_url, tmp_path / "server", workers=1, auth_token="restart-token")
    try:
        server.start()
        simulator = Simulator(HttpTransport(timeout=10), server.voice_url,
                              auth_token=server.auth_token, status_callback=server.status_url)
        call = simulator.dial()
        calls.append(call)
        for key in ("1", "1", "1"):
            call.press(key)
        getattr(server, how)()
        assert server.proc is not None and server.proc.poll() is not None
        server.start()
        call.press(LI_ID + "#")
        assert ID_READBACK in call.heard, call.transcript_text()
        call.press("1")
        getattr(server, how)()
        server.start()
        call.press(LI_PASSWORD + "#")
        assert LI_BALANCE in call.heard, call.transcript_text()
        call.hangup()
        assert call.error is None, call.transcript_text()
        assert not [e for e in call.transcript if e.kind == "warning"], call.transcript_text()
    finally:
        server.close()
    assert server.starts == 3
    assert "Traceback" not in server.error_log()

