"""The hotline on PostgreSQL: schema, import, calls, lockout and unlock, session races, faults.

A throwaway cluster is started for the session (tests/servers.py); without PostgreSQL's
server binaries these tests fail, they are not skipped.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import STAFFED, Caller, FixedClock, prompt_pattern, said_start, say
from servers import (  # noqa: F401  (fixtures)
    HotlineServer,
    PostgresServer,
    fresh_pg_url,
    key_file_of_tests,
    keyring_of_tests,
    pg_url,
    postgres,
    run_cli,
)
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url

from ivr.dataset.importer import DatasetError, DatasetInvalid, import_dataset, load_file
from ivr.domain import accounts, callers
from ivr.engine.calldata import CallData
from ivr.engine.session import CallSession, SessionStore
from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.store.schema import (
    SCHEMA_VERSION,
    ensure_schema,
    make_engine,
    metadata,
    people,
    queue_entries,
    schema_version,
    sessions,
)
from ivr.web import create_app
from simulator import HttpTransport, Simulator, WsgiTransport

KEYS = keyring_of_tests()  # the tests' PIN keys

pytestmark = pytest.mark.postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "dataset-example.json"
LI_ID, LI_PASSWORD = "450102197503150013", "135790"
LI_BALANCE = say("balance_employee", as_of="2026年11月21日",
                 balance="一千二百三十四元五角六分", credit="一百五十元", month="2026年11月")
LI_POOL = say("pool_funder_count", count="四")
CHEN_ID = "450102197806200022"
WRONG = said_start("password_wrong")  # any wrong password, any try left
APOLOGY_GOODBYE = f"{say('system_busy')}\n{say('goodbye')}"


@pytest.fixture
def engines() -> Iterator[Callable[[str], Engine]]:
    """make_engine, disposed at the end."""
    made: list[Engine] = []

    def make(url: str) -> Engine:
        made.append(make_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(fresh_pg_url: str, engines: Callable[[str], Engine]) -> Engine:  # noqa: F811
    engine = engines(fresh_pg_url)
    ensure_schema(engine)
    return engine


@pytest.fixture
def demo_url(fresh_pg_url: str, engines: Callable[[str], Engine]) -> str:  # noqa: F811
    """A new database holding the demo people (with the real password hashing cost)."""
    engine = engines(fresh_pg_url)
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    engine.dispose()
    return fresh_pg_url


@pytest.fixture
def pg_app(demo_url: str) -> Iterator[Any]:
    app = create_app(Settings(database_url=demo_url, pin_key_file=key_file_of_tests()),
                     now=FixedClock(STAFFED))
    yield app
    app.extensions["ivr12333"].db.dispose()


@pytest.fixture
def pg_caller(pg_app: Any) -> Iterator[Caller]:
    person = Caller(Simulator(WsgiTransport(pg_app), "http://localhost/voice",
                              status_callback="http://localhost/status"))
    yield person
    person.close()


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with engine.connect() as conn:
        return {t.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(t)))
                for t in metadata.sorted_tables}


def verify(caller: Caller, id_number: str, password: str, menu: str = "1") -> None:
    """From the main menu: choose `menu`, verify by ID number with `password`."""
    caller.press(menu).press("1").press(id_number.replace("X", "*") + "#").press("1")
    caller.press(password + "#")


# --- schema and import ----------------------------------------------------------------------------


def test_ensure_schema_twice(pg_url: str, engines: Callable[[str], Engine]) -> None:  # noqa: F811
    engine = engines(pg_url)
    assert make_url(pg_url).get_backend_name() == "postgresql"
    assert ensure_schema(engine) == SCHEMA_VERSION
    assert ensure_schema(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
        assert set(inspect(conn).get_table_names()) == set(metadata.tables)
    assert ensure_schema(engines(pg_url)) == SCHEMA_VERSION  # another process, same database


def test_newer_schema_is_refused(engine: Engine) -> None:
    from ivr.errors import StorageError

    with engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StorageError, match="newer than this program"):
        ensure_schema(engine)


def test_import_demo_and_the_spec_example(engine: Engine) -> None:
    demo = import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    assert (demo.people, demo.bindings, demo.transactions) == (9, 5, 8)
    example = import_dataset(engine, load_file(EXAMPLE), keyring=keyring_of_tests())
    assert (example.people, example.bindings, example.transactions) == (8, 5, 6)
    with engine.connect() as conn:
        assert accounts.count_people(conn) == 9
        li = accounts.find_person(conn, LI_ID)
        assert li is not None and li.balance_fen == 123456 and li.name == "李建国"
        wang = accounts.find_person(conn, "11010519491231002X")
        assert wang is not None and wang.balance_fen == 1050
        assert len(accounts.members_of(conn, li)) == 4
        assert accounts.region_for(conn).code == "450100"


def test_cli_imports_into_postgres(fresh_pg_url: str, engines: Callable[[str], Engine]) -> None:  # noqa: F811
    cheap: dict[str, str] = {}
    done = run_cli("--database-url", fresh_pg_url, "demo", env=cheap)
    assert done.returncode == 0, done.stderr
    assert "imported 9 people, 5 bindings, 8 transactions" in done.stdout
    done = run_cli("--database-url", fresh_pg_url, "import", str(EXAMPLE), env=cheap)
    assert done.returncode == 0, done.stderr
    assert "imported 8 people, 5 bindings, 6 transactions" in done.stdout
    with engines(fresh_pg_url).connect() as conn:
        assert accounts.count_people(conn) == 9


def test_reimport_updates_in_place(engine: Engine) -> None:
    data = load_file(demo_dataset())
    import_dataset(engine, data, keyring=keyring_of_tests())
    for _ in range(2):
        assert accounts.check_password(engine, LI_ID, "000000", 3, KEYS) \
            is accounts.PasswordCheck.WRONG
    changed = copy.deepcopy(data)
    li = next(p for p in changed["people"] if p["id_number"] == LI_ID)
    li["account"]["balance"] = "2000.00"
    li["name"] = "李建华"
    changed["bindings"] = [b for b in changed["bindings"] if b["member"] != CHEN_ID]
    changed["transactions"] = [t for t in changed["transactions"] if t["id_number"] != CHEN_ID]
    report = import_dataset(engine, changed, keyring=keyring_of_tests())
    assert report.people == 9
    with engine.connect() as conn:
        assert accounts.count_people(conn) == 9
        person = accounts.find_person(conn, LI_ID)
        assert person is not None and person.balance_fen == 200000 and person.name == "李建华"
        failed = conn.execute(select(people.c.failed_attempts)
                              .where(people.c.id_number == LI_ID)).scalar_one()
        assert failed == 2  # the lockout count survives a re-import
        members = [m.name for m in accounts.members_of(conn, person)]
        assert len(members) == 3 and "陈丽" not in members, members
        assert accounts.recent_transactions(conn, CHEN_ID) == []
    before = snapshot(engine)
    import_dataset(engine, changed, keyring=keyring_of_tests())  # the same file again: same data
    after = snapshot(engine)
    # password hashes are salted afresh, transactions replaced (new ids); the rest is unchanged
    for snap in (before, after):
        snap["people"] = [r[:7] + r[8:] for r in snap["people"]]
        snap["agents"] = [r[:2] + r[3:] for r in snap["agents"]]  # PINs: salted afresh too
        snap["transactions"] = sorted(r[1:] for r in snap["transactions"])
    assert after == before


def _bad_check_digit(data: dict[str, Any]) -> None:
    data["people"][3]["id_number"] = data["people"][3]["id_number"][:-1] + "0"


def _binding_to_a_stranger(data: dict[str, Any]) -> None:
    data["bindings"].append({"funder": LI_ID, "member": "110105194912310037",
                             "relationship": "sibling", "since": "2024-01-01"})


def _over_the_member_limit(data: dict[str, Any]) -> None:
    data["region"]["max_members"] = 3  # Li funds four: found after the rows are written


def _bad_amount(data: dict[str, Any]) -> None:
    data["transactions"][-1]["amount"] = "12.345"
    data["people"][0]["account"]["balance"] = "9999.99"


INVALID = {
    "bad check digit": _bad_check_digit,
    "binding to a stranger": _binding_to_a_stranger,
    "over the member limit (checked after writing)": _over_the_member_limit,
    "three decimal places": _bad_amount,
}


@pytest.mark.parametrize("damage", INVALID.values(), ids=INVALID.keys())
def test_invalid_file_changes_nothing(damage: Callable[[dict[str, Any]], None],
                                      engine: Engine) -> None:
    data = load_file(demo_dataset())
    import_dataset(engine, data, keyring=keyring_of_tests())
    before = snapshot(engine)
    bad = copy.deepcopy(data)
    for person in bad["people"]:
        if person.get("account"):
            person["account"]["balance"] = "1.00"
    damage(bad)
    with pytest.raises(DatasetInvalid):
        import_dataset(engine, bad, keyring=keyring_of_tests())
    assert snapshot(engine) == before


def test_cli_invalid_file_changes_nothing(engine: Engine, fresh_pg_url: str,  # noqa: F811
                                          tmp_path: Path) -> None:
    data = load_file(demo_dataset())
    import_dataset(engine, data, keyring=keyring_of_tests())
    before = snapshot(engine)
    _over_the_member_limit(data)
    data["people"][0]["name"] = "改了名"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    done = run_cli("--database-url", fresh_pg_url, "import", str(bad))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not imported, nothing changed" in done.stderr
    assert snapshot(engine) == before


def test_region_error_changes_nothing(engine: Engine) -> None:
    data = load_file(demo_dataset())
    import_dataset(engine, data, keyring=keyring_of_tests())
    before = snapshot(engine)
    data["region"]["pool_relations"] = "everybody"
    with pytest.raises(DatasetError):
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert snapshot(engine) == before


# --- calls ---------------------------------------------------------------------------------------


def test_balance_by_id_number(pg_caller: Caller, pg_app: Any) -> None:
    pg_caller.dial().press("1")
    verify(pg_caller, LI_ID, LI_PASSWORD)
    assert LI_BALANCE in pg_caller.heard
    call = pg_caller.call
    assert call is not None
    store = pg_app.extensions["ivr12333"].store
    session = store.load(call.call_sid)
    assert session is not None and session.data.verified == LI_ID and not session.ended
    pg_caller.hangup()  # the status callback closes the call and forgets who was verified
    session = store.load(call.call_sid)
    assert session is not None and session.ended and session.data == CallData()


def test_database_created_after_the_app_started(
    postgres: PostgresServer, engines: Callable[[str], Engine]  # noqa: F811
) -> None:
    """Started before its database exists: apologises, then serves once the database is there."""
    url = postgres.url(f"created_later_{os.getpid()}")
    app = create_app(Settings(database_url=url, pin_key_file=key_file_of_tests()),
                     now=FixedClock(STAFFED))
    caller = Caller(Simulator(WsgiTransport(app), "http://localhost/voice",
                              status_callback="http://localhost/status"))
    try:
        caller.dial()
        assert caller.heard == APOLOGY_GOODBYE
        postgres.sql(f'CREATE DATABASE "{make_url(url).database}"')
        engine = engines(url)
        ensure_schema(engine)
        import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
        caller.dial().press("1")
        verify(caller, LI_ID, LI_PASSWORD)
        assert LI_BALANCE in caller.heard
    finally:
        caller.close()
        app.extensions["ivr12333"].db.dispose()


def test_pool_status(pg_caller: Caller) -> None:
    pg_caller.dial().press("1")
    verify(pg_caller, LI_ID, LI_PASSWORD, menu="2")
    heard = pg_caller.heard
    assert LI_POOL in heard
    assert say("pool_member", who="妻子陈女士", since="2023年1月10日") in heard
    assert say("pool_remaining", limit="七", remaining="三") in heard
    pg_caller.press("9").press("1")  # verified once per call: straight to the balance
    assert LI_BALANCE in pg_caller.heard


def test_lockout_across_calls_and_unlock_from_the_cli(
    pg_caller: Caller, demo_url: str, engines: Callable[[str], Engine]
) -> None:
    engine = engines(demo_url)

    def locked() -> bool:
        with engine.connect() as conn:
            person = accounts.find_person(conn, LI_ID)
        assert person is not None
        return person.locked

    for n in (1, 2):  # one wrong password per call, in two calls
        pg_caller.dial(from_=f"+861380000000{n}").press("1")
        verify(pg_caller, LI_ID, "000000")
        assert pg_caller.heard.startswith(WRONG)
        pg_caller.hangup()
        assert not locked()
    pg_caller.dial(from_="+8613800000003").press("1")
    verify(pg_caller, LI_ID, "000000")
    assert pg_caller.heard.startswith(WRONG)  # locked now; it sounds like any wrong password
    assert locked()
    pg_caller.hangup()
    pg_caller.dial(from_="+8613800000004").press("1")
    verify(pg_caller, LI_ID, LI_PASSWORD)  # the right password no longer helps
    assert pg_caller.heard.startswith(WRONG)
    assert not prompt_pattern("balance_employee").search(pg_caller.heard)
    pg_caller.hangup()

    done = run_cli("--database-url", demo_url, "unlock", LI_ID)
    assert done.returncode == 0, done.stderr
    assert "unlocked" in done.stdout and LI_ID not in done.stdout
    assert not locked()
    pg_caller.dial(from_="+8613800000005").press("1")
    verify(pg_caller, LI_ID, LI_PASSWORD)
    assert LI_BALANCE in pg_caller.heard


def test_connections_killed_mid_call_the_call_goes_on(
    pg_caller: Caller, demo_url: str, postgres: PostgresServer  # noqa: F811
) -> None:
    pg_caller.dial().press("1").press("1").press("1").press(LI_ID + "#")
    name = make_url(demo_url).database
    killed = postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    assert killed, "the app held no connection to kill"
    pg_caller.press("1").press(LI_PASSWORD + "#")
    assert LI_BALANCE in pg_caller.heard


def test_database_dropped_mid_call(
    pg_caller: Caller, demo_url: str, postgres: PostgresServer  # noqa: F811
) -> None:
    pg_caller.dial().press("1").press("1").press("1")
    postgres.sql(f'DROP DATABASE "{make_url(demo_url).database}" WITH (FORCE)')
    call = pg_caller.call
    assert call is not None
    pg_caller.press(LI_ID + "#")
    assert call.error is None, call.transcript_text()
    assert call.ended_by == "application"
    assert pg_caller.heard == APOLOGY_GOODBYE


@pytest.mark.slow
def test_two_workers_serve_a_call_over_http(demo_url: str, tmp_path: Path) -> None:
    with HotlineServer(demo_url, tmp_path / "server", workers=2, auth_token="pg-token") as server:
        simulator = Simulator(HttpTransport(), server.voice_url, auth_token="pg-token",
                              status_callback=server.status_url)
        with simulator.dial() as call:
            for keys in ("1", "1", "1", LI_ID + "#", "1", LI_PASSWORD + "#"):
                call.press(keys)
            assert LI_BALANCE in call.heard, call.transcript_text()
            call.press("9")
            call.press("2")
            assert LI_POOL in call.heard
            call.hangup()
            assert call.error is None
    assert "Traceback" not in server.error_log()


# --- sessions: claiming a step is the only guard between workers --------------------------------


def _session(call_sid: str) -> CallSession:
    return CallSession(call_sid, "+8613800000000", "welcome", 1, CallData())


def test_a_step_is_claimed_once_and_an_ended_call_stays_ended(
    pg_url: str, engines: Callable[[str], Engine]  # noqa: F811
) -> None:
    engine = engines(pg_url)
    ensure_schema(engine)
    store = SessionStore(engine, lambda: datetime.now(UTC))
    assert store.create(_session("CA-stale"), "<Response>1</Response>")
    assert store.claim("CA-stale", 1) is True
    assert store.claim("CA-stale", 1) is False  # the duplicate: step 1 is taken
    session = store.load("CA-stale")
    assert session is not None and session.step == 2
    session.state = "main"
    assert store.save(session, "<Response>2</Response>") is True
    assert store.answer("CA-stale", 1) == "<Response>1</Response>"
    assert store.answer("CA-stale", 2) == "<Response>2</Response>"
    store.end("CA-stale")
    session.data.verified = LI_ID
    assert store.save(session, "<Response>late</Response>") is False  # no late reopening
    assert store.claim("CA-stale", 2) is False
    stored = store.load("CA-stale")
    assert stored is not None and stored.ended and stored.data == CallData()
    assert store.answer("CA-stale", 2) is None  # answers are gone with the call
    assert store.create(_session("CA-stale"), "<Response/>") is False


def test_concurrent_claims_one_winner(pg_url: str, engines: Callable[[str], Engine]) -> None:  # noqa: F811
    engine = engines(pg_url)
    ensure_schema(engine)
    store = SessionStore(engine, lambda: datetime.now(UTC))
    threads_n = 8
    for round_ in range(5):
        sid = f"CA-race-{round_}"
        assert store.create(_session(sid), "<Response/>")
        start = threading.Barrier(threads_n)
        results: list[bool | BaseException] = [False] * threads_n

        def claim(i: int, sid: str = sid, start: threading.Barrier = start,
                  results: list[bool | BaseException] = results) -> None:
            try:
                start.wait(10)
                results[i] = store.claim(sid, 1)
            except BaseException as exc:  # reported below
                results[i] = exc

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results.count(True) == 1 and results.count(False) == threads_n - 1, results
        stored = store.load(sid)
        assert stored is not None and stored.step == 2


def test_concurrent_creates_one_winner(pg_url: str, engines: Callable[[str], Engine]) -> None:  # noqa: F811
    engine = engines(pg_url)
    ensure_schema(engine)
    store = SessionStore(engine, lambda: datetime.now(UTC))
    start = threading.Barrier(6)
    results: list[bool | BaseException] = [False] * 6

    def create(i: int) -> None:
        try:
            start.wait(10)
            results[i] = store.create(_session("CA-create-race"), "<Response/>")
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count(True) == 1 and results.count(False) == 5, results
    with engine.connect() as conn:
        from ivr.store.schema import sessions

        assert conn.execute(select(func.count()).select_from(sessions)
                            .where(sessions.c.call_sid == "CA-create-race")).scalar() == 1


# --- the agent queue on PostgreSQL --------------------------------------------------------------

def _play_on_postgres(demo_url: str, script: str | Path,
                     prepare: Callable[[Any], None] | None = None) -> tuple[Any, Any]:
    """A scenario of tests/calls on the PostgreSQL demo database, agents moving callers through
    the simulated REST API; (the result, the queue's rows after it)."""
    from conftest import STATUS_URL, VOICE_URL

    from ivr.tools.localrest import local_rest
    from ivr.tools.script_prompts import HotlinePrompts
    from simulator import Clock as VirtualClock
    from simulator.script import run_script

    path = Path(__file__).parent.parent / "calls" / script
    clock = VirtualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    app = create_app(Settings(database_url=demo_url, pin_key_file=key_file_of_tests(),
                              **local_rest().settings()), now=clock)
    try:
        if prepare is not None:
            prepare(app)
        simulator = Simulator(WsgiTransport(app), VOICE_URL, status_callback=STATUS_URL,
                              clock=clock, rest=local_rest().api)
        result = run_script(path, lambda: simulator, prompts=HotlinePrompts.load())
        with app.extensions["ivr12333"].db.connect() as conn:
            rows = conn.execute(select(queue_entries.c.call_sid)).all()
        return result, [r[0] for r in rows]
    finally:
        app.extensions["ivr12333"].db.dispose()


@pytest.mark.parametrize("script", ["queue_two_callers.yaml", "queue_failed_verification.yaml",
                                    "agent_bridge_two_agents.yaml",
                                    "agent_bridge_caller_left.yaml",
                                    "queue_caller_hangs_up_bridged.yaml",
                                    "queue_agent_hangs_up_bridged.yaml"])
def test_queue_scenarios_on_postgres(demo_url: str, script: str) -> None:
    """Two callers and an agent (a failed verification, two agents at once, a caller who left
    with *, hang-ups during the bridge) on one clock, the queue's table, its order and its
    takes on PostgreSQL."""
    result, left = _play_on_postgres(demo_url, script)
    assert result.passed, result.report() + result.transcript_text
    assert left == []


def test_a_caller_gone_from_twilios_queue_is_skipped_on_postgres(demo_url: str) -> None:
    """The queue's table heads with a caller Twilio's queue no longer holds (its hang-up never
    reached the hotline): the agent is told about, and talks to, the caller really waiting."""
    from ivr.engine.session import CallSession

    phantom = "CA" + "8" * 32

    def prepare(app: Any) -> None:
        hotline = app.extensions["ivr12333"]
        hotline.store.create(CallSession(phantom, "+8613800000298", "agent_queue"),
                             "<Response/>")
        hotline.queue.join(phantom, verified=True, last4="8888", last_menu="balance",
                           lang="zh-CN", places_per_caller=2, region="450100",
                           caller=callers.caller_key(hotline.keyring, "+8613800000298", "queue"))

    result, left = _play_on_postgres(demo_url, "agent_bridge_caller_left.yaml", prepare)
    assert result.passed, result.report() + result.transcript_text
    assert "8 8 8 8" not in result.transcript_text and left == [phantom]


def test_orphaned_queue_entries_are_cleared_on_postgres(engine: Engine) -> None:
    """Housekeeping's NOT IN (calls in progress) on PostgreSQL: an entry of an ended call goes,
    a caller taken by an ended agent call is freed, a live caller's entry stays."""
    from ivr.engine.queue import CallQueue

    now = STAFFED.timestamp()
    live, ended, agent = "CA" + "1" * 32, "CA" + "2" * 32, "CA" + "3" * 32
    with engine.begin() as conn:
        for sid, is_ended in ((live, False), (ended, True), (agent, True)):
            conn.execute(sessions.insert().values(call_sid=sid, state="agent_queue", step=3,
                                                  data="{}", ended=is_ended,
                                                  caller="+8613800000001", updated_at=now))
    line = CallQueue(engine, FixedClock(STAFFED))
    anyone = {"caller": callers.caller_key(KEYS, "+8613800000001", "queue"),
              "places_per_caller": 10}
    line.join(ended, verified=True, last4="0013", last_menu="balance", lang="zh-CN", **anyone)
    line.join(live, verified=False, last4=None, last_menu="main", lang="zh-CN", **anyone)
    taken = line.take_next(agent)
    assert taken is not None and taken.call_sid == live
    with engine.begin() as conn:
        SessionStore._seal_stale(conn, now)
    with engine.connect() as conn:
        rows = conn.execute(select(queue_entries.c.call_sid, queue_entries.c.taken_by)).all()
    assert [tuple(r) for r in rows] == [(live, None)]
