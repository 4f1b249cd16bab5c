"""Shared fixtures: a real SQLite file with the demo people, the real WSGI app, a caller."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.data.dataset import import_dataset, load_file
from ivr.data.storage import ensure_schema, make_engine
from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.web import create_app
from simulator import Call, ScriptResult, Simulator, WsgiTransport, expand, load_script, run_script
from simulator import Clock as VirtualClock

#: A Monday in Beijing, 10:00 local: agents are on duty.
STAFFED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
#: A Sunday afternoon in Beijing: nobody staffs the line.
UNSTAFFED = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

VOICE_URL = "http://localhost/voice"
STATUS_URL = "http://localhost/status"
CALLS = Path(__file__).parent / "calls"
#: the project's scripted calls that run alone (the same-number calls run as a sequence)
SCRIPTS = [p for p in expand([CALLS]) if p.parent == CALLS]
SEQUENCE = [p for p in expand([CALLS]) if p.parent.name == "same_number"]


@pytest.fixture(scope="session")
def demo_db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset imported once per test session; each test gets its own copy."""
    path = tmp_path_factory.mktemp("template") / "demo.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def db_url(tmp_path: Path, demo_db_file: Path) -> str:
    target = tmp_path / "ivr.sqlite3"
    shutil.copyfile(demo_db_file, target)
    return f"sqlite:///{target}"


class Clock:
    """An injectable wall clock for agent hours."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(STAFFED)


@pytest.fixture
def app_settings(db_url: str) -> Settings:
    """The tests' settings: the test's own database, the rest the defaults. Built from
    arguments, never from the environment, so a developer's IVR_* variables change nothing."""
    return Settings(database_url=db_url)


@pytest.fixture
def app_factory(app_settings: Settings, clock: Clock) -> Iterator[Callable[..., Any]]:
    """create_app on the test's settings with `overrides` (Settings fields) and the test's clock
    (or `now`); every app's engine disposed at the end."""
    made: list[Any] = []

    def make(*, now: Callable[[], datetime] | None = None, **overrides: Any) -> Any:
        settings = Settings.model_validate({**app_settings.model_dump(), **overrides})
        application = create_app(settings, now=now or clock)
        application.testing = True
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["ivr12333"].db.dispose()


@pytest.fixture
def app(app_factory: Callable[..., Any]) -> Any:
    return app_factory()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Caller:
    """A person on the phone: dial, press, stay silent, hang up, and what they heard."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.call: Call | None = None
        self.calls: list[Call] = []

    def dial(self, **kwargs: Any) -> Caller:
        self.call = self.simulator.dial(**kwargs)
        self.calls.append(self.call)
        return self

    def _current(self) -> Call:
        assert self.call is not None, "dial first"
        return self.call

    def press(self, keys: str) -> Caller:
        self._current().press(keys)
        return self

    def silence(self, n: int = 1) -> Caller:
        self._current().silence(n)
        return self

    def hangup(self) -> Caller:
        self._current().hangup()
        return self

    @property
    def heard(self) -> str:
        return self._current().heard

    @property
    def ended(self) -> bool:
        return self._current().ended

    def close(self) -> None:
        for call in self.calls:
            if not call.ended:
                call.hangup()
            call.close()


@pytest.fixture
def simulator(app: Any) -> Simulator:
    return Simulator(WsgiTransport(app), VOICE_URL, status_callback="http://localhost/status")


@pytest.fixture
def caller(simulator: Simulator) -> Iterator[Caller]:
    person = Caller(simulator)
    yield person
    person.close()


def play_script(app_factory: Callable[..., Any], script: Path,
                default_start: datetime = STAFFED) -> ScriptResult:
    """Play one scripted call on its own app, whose time is the call's virtual time (from the
    script's `at:`, else `default_start`)."""
    clock = VirtualClock(load_script(script).at or default_start)
    app = app_factory(now=clock)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL, clock=clock)
    return run_script(script, lambda: simulator)
