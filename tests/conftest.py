"""Shared fixtures: a real SQLite file with the demo people, the real WSGI app, a caller."""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
from click.testing import CliRunner
from servers import key_file_of_tests, keyring_of_tests

from ivr.dataset.importer import import_dataset, load_file
from ivr.engine.prompts import Catalogue
from ivr.resources import data_dir, demo_dataset
from ivr.settings import Settings
from ivr.store.schema import ensure_schema, make_engine
from ivr.tools.localrest import local_rest
from ivr.tools.script_prompts import HotlinePrompts
from ivr.web import create_app
from simulator import Call, ScriptResult, Simulator, WsgiTransport, expand, load_script, run_script
from simulator import Clock as VirtualClock  # the simulator's: advances with the call
from simulator.script import settings_above
from simulator.script_format import dataset_files

#: A Monday in Beijing, 10:00 local: agents are on duty.
STAFFED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
#: A Sunday afternoon in Beijing: nobody staffs the line.
UNSTAFFED = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

VOICE_URL = "http://localhost/voice"
STATUS_URL = "http://localhost/status"
CALLS = Path(__file__).parent / "calls"
#: the project's scripted calls that run alone (the same-number calls run as a sequence)
#: the folders whose calls run in order on one database (`shared_database: true`)
SHARED_FOLDERS = ("same_number", "locked")
#: every script that runs on its own database (tests/calls and regions/)
SCRIPTS = [p for p in expand([CALLS]) if p.parent.name not in SHARED_FOLDERS]
SEQUENCE = [p for p in expand([CALLS]) if p.parent.name == "same_number"]
#: every script of a shared folder (same_number/, locked/)
SHARED = [p for p in expand([CALLS]) if p.parent.name in SHARED_FOLDERS]


@pytest.fixture(scope="session", autouse=True)
def _pin_keys_of_the_tests() -> Iterator[None]:
    """Every command a test runs finds the tests' PIN key file (IVR_PIN_KEY_FILE), never the
    developer's own (~/.config/ivr12333/pin-keys) nor an IVR_PIN_KEY of their shell."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IVR_PIN_KEY_FILE", str(key_file_of_tests()))
        env.delenv("IVR_PIN_KEY", raising=False)
        env.delenv("IVR_PIN_KEY_PERMISSIVE", raising=False)
        yield


@pytest.fixture(scope="session")
def demo_db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset imported once per test session; each test gets its own copy."""
    path = tmp_path_factory.mktemp("template") / "demo.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def db_url(tmp_path: Path, demo_db_file: Path) -> str:
    target = tmp_path / "ivr.sqlite3"
    shutil.copyfile(demo_db_file, target)
    return f"sqlite:///{target}"


class FixedClock:
    """An injectable wall clock for agent hours."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(STAFFED)


@pytest.fixture
def app_settings(db_url: str) -> Settings:
    """The tests' settings: the test's own database, the rest the defaults. Built from
    arguments, never from the environment, so a developer's IVR_* variables change nothing.
    Agents move callers through this process's simulated REST API."""
    return Settings(database_url=db_url, pin_key_file=key_file_of_tests(),
                    **local_rest().settings())


@pytest.fixture
def app_factory(app_settings: Settings, clock: FixedClock) -> Iterator[Callable[..., Any]]:
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
    return Simulator(WsgiTransport(app), VOICE_URL, status_callback="http://localhost/status",
                     rest=local_rest().api)


@pytest.fixture
def caller(simulator: Simulator) -> Iterator[Caller]:
    person = Caller(simulator)
    yield person
    person.close()


def play_script(app_factory: Callable[..., Any], script: Path,
                default_start: datetime = STAFFED,
                prepare: Callable[[Any], None] | None = None,
                **overrides: Any) -> ScriptResult:
    """Play one scripted call (or scenario) on its own app, whose time is the call's virtual
    time (from the script's `at:`, else `default_start`); `prepare(app)` runs before the call,
    `overrides` are the app's settings."""
    loaded = settings_above(script).apply(load_script(script))  # its folder's defaults too
    clock = VirtualClock(loaded.at or default_start)
    own = loaded.dataset not in (None, "demo")
    if own and "database_url" not in overrides:
        # the script's own data alone, as `call --script` does (not on top of the demo's:
        # two regions with people would ask the caller for theirs)
        folder = Path(tempfile.mkdtemp(prefix="ivr-script-"))
        overrides["database_url"] = f"sqlite:///{folder / 'ivr.sqlite3'}"
    app = app_factory(now=clock, **overrides)
    for name in dataset_files(loaded.dataset) if own else ():  # one file per region, in order
        import_dataset(app.extensions["ivr12333"].db,
                       load_file(demo_dataset() if name == "demo" else Path(name)),
                       keyring=app.extensions["ivr12333"].keyring)
    if prepare is not None:
        prepare(app)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL, clock=clock,
                          rest=local_rest().api)
    return run_script(script, lambda: simulator, prompts=HotlinePrompts.load())


# --- the prompt catalogue: tests pin behaviour, the wording lives in prompts/*.yaml ------------

@functools.cache
def catalogue() -> Catalogue:
    """The catalogue the app speaks from: the repo's prompts (an operator's IVR_PROMPTS_DIR is
    ignored here, as _clean_env drops it for every app a test builds)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("IVR_PROMPTS_DIR", raising=False)
        return Catalogue.load(data_dir("prompts"))


def _parts(prompt_id: str, locale: str) -> tuple[frozenset[str], list[tuple[str, str | None]]]:
    """The prompt's placeholders, and its text as (fixed wording, placeholder or None) pairs."""
    try:
        prompt = catalogue().prompts[locale][prompt_id]
    except KeyError:
        raise KeyError(f"no prompt {prompt_id!r} in {locale}") from None
    return prompt.fields, [(lit, field) for lit, field, _, _ in Formatter().parse(prompt.text)]


def say(prompt_id: str, locale: str = "zh-CN", **values: str) -> str:
    """What a caller hears for `prompt_id` in `locale`, its wording taken from the catalogue.

    `values` fill the placeholders as the caller hears them ("一千二百三十四元五角六分",
    "0 0 1 3", "李*国", "2026年11月21日"): a test keeps its data literal, the fixed wording
    around it comes from prompts/*.yaml. Every placeholder needs a value, every value a
    placeholder.
    """
    fields, parts = _parts(prompt_id, locale)
    if set(values) != fields:
        raise TypeError(f"prompt {prompt_id!r} has placeholders {sorted(fields)}, "
                        f"given {sorted(values)}")
    if not values:
        return catalogue().render(prompt_id, locale, {})[0]
    for name, value in values.items():
        if not isinstance(value, str):
            raise TypeError(f"{prompt_id}: give {name} as heard (a str), not {value!r}")
    return "".join(lit + (values[field] if field is not None else "") for lit, field in parts)


def said_start(prompt_id: str, locale: str = "zh-CN") -> str:
    """A prompt's fixed wording up to its first value: password_wrong and password_last_try
    both start as every wrong password does, whatever the number (nothing told apart)."""
    return catalogue().prompts[locale][prompt_id].text.split("{", 1)[0]


def prompt_pattern(prompt_id: str, locale: str = "zh-CN") -> re.Pattern[str]:
    """`prompt_id` said with any values (within one line): a regex whose named groups are the
    placeholders, for "was this prompt said at all" and for picking the data out of it."""
    _, parts = _parts(prompt_id, locale)
    regex, seen = [], set()
    for i, (lit, field) in enumerate(parts):
        regex.append(re.escape(lit))
        if field in seen:
            regex.append(f"(?P={field})")
        elif field is not None:
            last = i == len(parts) - 1 and not any(text for text, _ in parts[i + 1:])
            regex.append(f"(?P<{field}>[^\\n]+{'' if last else '?'})")
            seen.add(field)
    return re.compile("".join(regex))


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture
def runner() -> CliRunner:
    """click's CliRunner, for `runner.invoke(main, [...])`."""
    return CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, db_url: str) -> str:
    """The demo people on SQLite (a copy) or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return db_url
    url = str(request.getfixturevalue("fresh_pg_url"))
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    engine.dispose()
    return url
