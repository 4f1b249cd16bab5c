"""The agent queue's data: shared across workers in the database, nothing personal after a call;
agent PINs locked like callers' passwords; the region's new fields checked at import; the
`ivr12333 queue` command."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import STAFFED, FixedClock
from servers import keyring_of_tests
from sqlalchemy import Engine, select

from ivr.dataset.importer import DatasetInvalid, import_dataset, load_file
from ivr.domain import callers
from ivr.domain.agents import PinCheck, check_pin
from ivr.domain.agents import unlock as agents_unlock
from ivr.domain.policy import Region
from ivr.engine import speech
from ivr.engine.queue import CallQueue
from ivr.errors import DatasetError
from ivr.resources import demo_dataset
from ivr.store.schema import agents, ensure_schema, make_engine, queue_entries, queue_waits
from ivr.tools.cli import main as cli

KEYS = keyring_of_tests()
SID = "CA" + "1" * 32
OTHER = "CA" + "2" * 32
AGENT_CALL = "CA" + "3" * 32
#: one caller's number, its places not capped here (the cap: tests/web/test_queue_cap.py)
ANYONE: dict[str, Any] = {"caller": callers.caller_key(KEYS, "+8613800000001", "queue"),
                          "places_per_caller": 10}


@pytest.fixture
def engine(db_url: str) -> Any:
    engine = make_engine(db_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def _live(engine: Engine, *sids: str) -> None:
    """Calls in progress (an agent is only ever told of a caller whose call goes on)."""
    from ivr.store.schema import sessions
    with engine.begin() as conn:
        for sid in sids:
            conn.execute(sessions.insert().values(call_sid=sid, state="agent_queue", step=3,
                                                  data="{}", ended=False,
                                                  caller="+8613800000001",
                                                  updated_at=STAFFED.timestamp()))


def _rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)).all())


# --- the queue's table ------------------------------------------------------------------------

def test_positions_follow_the_order_of_entry_among_those_still_waiting(engine: Engine) -> None:
    clock = FixedClock(STAFFED)
    line = CallQueue(engine, clock)
    _live(engine, SID, OTHER)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN", **ANYONE)
    line.join(OTHER, verified=False, last4=None, last_menu="main", lang="en-US", **ANYONE)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN",
              **ANYONE)  # again
    assert (line.position(SID), line.position(OTHER)) == (1, 2)
    taken = line.take_next(AGENT_CALL)
    assert taken is not None and (taken.call_sid, taken.last4, taken.taken_by) == (
        SID, "0013", AGENT_CALL)
    assert line.take_next(AGENT_CALL + "x") is not None  # the next agent gets the next caller
    assert line.take_next("CA" + "4" * 32) is None  # nobody else waits
    assert line.position(OTHER) == 0  # taken: not waiting any more


def test_each_region_has_its_own_queue_positions_and_waits(engine: Engine) -> None:
    """One line, many regions: a caller of region B who came first is nobody's head in
    region A; positions count the caller's own region; measured waits are per region."""
    third = "CA" + "5" * 32
    line = CallQueue(engine, FixedClock(STAFFED))
    _live(engine, SID, OTHER, third)
    line.join(OTHER, verified=False, last4=None, last_menu="main", lang="zh-CN",
              region="450300", **ANYONE)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN",
              region="450100", **ANYONE)
    line.join(third, verified=False, last4=None, last_menu="main", lang="zh-CN",
              region="450100", **ANYONE)
    assert [line.position(c) for c in (OTHER, SID, third)] == [1, 1, 2]
    taken = line.take_next(AGENT_CALL, "450100")
    assert taken is not None and taken.call_sid == SID
    line.connected(SID)
    assert line.take_next(AGENT_CALL + "x", "450100").call_sid == third  # type: ignore[union-attr]
    assert line.take_next("CA" + "6" * 32, "450100") is None
    assert line.position(OTHER) == 1  # still region B's head: no agent of B came
    since = STAFFED.timestamp() - 60
    assert line.waits_since(since, "450100")[0] == 0.0
    assert line.waits_since(since, "450300") == (None, None)


def test_two_agents_at_once_never_take_one_caller(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(6)]
    ensure_schema(engines[0])
    first = CallQueue(engines[0], FixedClock(STAFFED))
    _live(engines[0], *(f"CA{n:032d}" for n in range(3)))
    for n in range(3):
        first.join(f"CA{n:032d}", verified=False, last4=None, last_menu="main", lang="zh-CN",
                   **ANYONE)
    got: list[str | None] = []
    start = threading.Barrier(6)

    def agent(k: int) -> None:
        start.wait()
        entry = CallQueue(engines[k], FixedClock(STAFFED)).take_next(f"CA{k + 10:032d}")
        got.append(entry.call_sid if entry else None)

    threads = [threading.Thread(target=agent, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    taken = [g for g in got if g]
    assert sorted(taken) == [f"CA{n:032d}" for n in range(3)]  # each caller once


def test_a_connected_caller_leaves_only_their_wait(engine: Engine) -> None:
    clock = FixedClock(STAFFED)
    line = CallQueue(engine, clock)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN", **ANYONE)
    clock.now = datetime(2026, 11, 23, 2, 3, tzinfo=UTC)  # three minutes later
    line.take_next(AGENT_CALL)
    line.connected(SID)
    assert _rows(engine, queue_entries) == []
    (row,) = _rows(engine, queue_waits)
    assert (row.waited, row.places) == (180.0, 1)  # no CallSid, no ID number
    assert line.waits_since(STAFFED.timestamp()) == (180.0, 180.0)


def test_the_end_of_a_call_removes_its_entry_and_frees_what_its_agent_took(
        app: Any, client: Any) -> None:
    hotline = app.extensions["ivr12333"]
    for sid in (SID, OTHER, AGENT_CALL):
        client.post("/voice" if sid != AGENT_CALL else "/agent",
                    data={"CallSid": sid, "From": "+8613800000001"})
    client.post("/voice/step?s=1", data={"CallSid": SID, "Digits": "1"})
    body = client.post("/voice/step?s=2", data={"CallSid": SID, "Digits": "0"}).text
    assert "<Enqueue" in body and "waitUrl=\"http://localhost/voice/hold\"" in body
    client.post("/voice/step?s=1", data={"CallSid": OTHER, "Digits": "1"})
    client.post("/voice/step?s=2", data={"CallSid": OTHER, "Digits": "0"})
    assert [e.call_sid for e in hotline.queue.waiting()] == [SID, OTHER]
    assert hotline.queue.take_next(AGENT_CALL, "450100").call_sid == SID
    client.post("/status", data={"CallSid": OTHER, "CallStatus": "completed"})
    assert [e.call_sid for e in hotline.queue.waiting()] == [SID]
    client.post("/status", data={"CallSid": AGENT_CALL, "CallStatus": "completed"})
    assert hotline.queue.waiting()[0].taken_by is None  # free for the next agent
    client.post("/status", data={"CallSid": SID, "CallStatus": "completed"})
    assert hotline.queue.waiting() == []
    # the hold of a call that is not (any more) in the queue: out of it
    assert "<Leave" in client.post("/voice/hold", data={"CallSid": SID}).text


def test_the_hold_says_the_position_and_a_natural_estimate(app: Any, client: Any) -> None:
    for n, sid in enumerate((SID, OTHER, AGENT_CALL)):
        client.post("/voice", data={"CallSid": sid, "From": f"+861380000000{n}"})
        client.post("/voice/step?s=1", data={"CallSid": sid, "Digits": "1"})
        client.post("/voice/step?s=2", data={"CallSid": sid, "Digits": "0"})
    third = client.post("/voice/hold", data={"CallSid": AGENT_CALL}).text
    assert "您前面还有两位,预计等待约三分钟。" in third  # 3 places x 60 s (nothing measured)
    # no 45 s of silence without music: a reassurance halfway, then the next announcement
    assert third.count("<Pause length=\"22\"") == 2 and "请不要挂机,正在为您排队。" in third
    assert "hold?k=1" in third
    second = client.post("/voice/hold", data={"CallSid": OTHER}).text
    assert "您前面还有一位,预计等待约两分钟。" in second
    first = client.post("/voice/hold", data={"CallSid": SID}).text
    assert "您是下一位" in first and "预计" not in first
    left = client.post("/voice/hold?k=1", data={"CallSid": SID, "Digits": "*"}).text
    assert "<Leave" in left
    after = client.post("/voice/step?s=3&e=queued",
                        data={"CallSid": SID, "QueueResult": "leave"}).text
    assert "账户余额查询请按1" in after  # * leads back to the main menu
    assert app.extensions["ivr12333"].queue.position(OTHER) == 1


def test_an_estimate_never_grows_the_position_alone_is_said_instead(app: Any,
                                                                     client: Any) -> None:
    """Bug: as today's measured waits came in, a caller moving up heard a longer wait
    ("两位,约四分钟" then "一位,约五分钟")."""
    queue = app.extensions["ivr12333"].queue
    for n, sid in enumerate((SID, OTHER, AGENT_CALL)):
        client.post("/voice", data={"CallSid": sid, "From": f"+861380000000{n}"})
        client.post("/voice/step?s=1", data={"CallSid": sid, "Digits": "1"})
        client.post("/voice/step?s=2", data={"CallSid": sid, "Digits": "0"})
    assert "预计等待约三分钟" in client.post("/voice/hold", data={"CallSid": AGENT_CALL}).text
    told = queue.entry(AGENT_CALL).told_until
    assert told is not None
    queue.told(AGENT_CALL, told - 150)  # as if told earlier that only 30 s were left
    again = client.post("/voice/hold", data={"CallSid": AGENT_CALL}).text
    assert "您前面还有两位。" in again and "预计" not in again
    assert queue.entry(AGENT_CALL).told_until == told - 150  # what they were told stands
    queue.told(AGENT_CALL, told + 600)  # a shorter estimate than promised is said
    assert "预计等待约三分钟" in client.post("/voice/hold", data={"CallSid": AGENT_CALL}).text


def test_hold_music_is_played_when_set(app_factory: Callable[..., Any]) -> None:
    client = app_factory(hold_music_url="https://cdn.example/hold.mp3").test_client()
    client.post("/voice", data={"CallSid": SID, "From": "+8613800000001"})
    client.post("/voice/step?s=1", data={"CallSid": SID, "Digits": "1"})
    client.post("/voice/step?s=2", data={"CallSid": SID, "Digits": "0"})
    body = client.post("/voice/hold", data={"CallSid": SID}).text
    assert "<Play>https://cdn.example/hold.mp3</Play>" in body and "<Pause" not in body


@pytest.mark.parametrize(("seconds", "zh", "en"), [
    (20, "不到一分钟", "less than a minute"), (59, "不到一分钟", "less than a minute"),
    (80, "约一分钟", "about one minute"), (120, "约两分钟", "about two minutes"),
    (610, "约十分钟", "about ten minutes"),
    # halves round up, as people round (not to the even number)
    (150, "约三分钟", "about three minutes"), (210, "约四分钟", "about four minutes"),
])
def test_waits_are_spoken_naturally(seconds: int, zh: str, en: str) -> None:
    from conftest import catalogue

    from ivr.engine.model import speech_wait
    assert speech_wait(catalogue(), "zh-CN", seconds) == zh
    assert speech_wait(catalogue(), "en-US", seconds) == en


def test_a_line_name_is_read_digit_by_digit() -> None:
    assert speech.line_name("12333医疗保障服务热线", "zh-CN") == "幺二三三三医疗保障服务热线"
    assert speech.line_name("the 12333 line", "en-US") == "the 1 2 3 3 3 line"


# --- agent PINs -------------------------------------------------------------------------------

def test_wrong_agent_pins_lock_under_concurrency(db_url: str) -> None:
    """Six wrong PINs at once on six connections: at most lockout_after (3) are checked, the
    PIN locks, and then even the right PIN is refused."""
    engines = [make_engine(db_url) for _ in range(6)]
    results: list[PinCheck] = []
    start = threading.Barrier(6)

    def guess(k: int) -> None:
        start.wait()
        results.append(check_pin(engines[k], "1001", f"00000{k}", "450100", 3, KEYS)[0])

    threads = [threading.Thread(target=guess, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engines[0].connect() as conn:
        failed, locked = conn.execute(select(agents.c.failed_attempts, agents.c.locked)
                                      .where(agents.c.agent_id == "1001")).one()
    assert failed == 3 and locked
    # locked: even the right PIN is refused, with the answer of a wrong one
    assert check_pin(engines[0], "1001", "246810", "450100", 3, KEYS) == (PinCheck.WRONG, None)
    for e in engines:
        e.dispose()


def test_unlock_agent_command_lets_a_locked_agent_in_again(db_url: str,
                                                          engine: Engine) -> None:
    for k in range(3):
        check_pin(engine, "1001", f"00000{k}", "450100", 3, KEYS)
    assert check_pin(engine, "1001", "246810", "450100", 3, KEYS) == (PinCheck.WRONG, None)
    result = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", "--agent", "1001"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "unlocked agent 1001"
    assert check_pin(engine, "1001", "246810", "450100", 3, KEYS)[0] is PinCheck.OK
    nobody = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", "--agent", "9999"])
    assert nobody.exit_code == 1 and "no agent 9999" in nobody.stderr
    both = CliRunner().invoke(cli, ["--database-url", db_url, "unlock", "--agent", "1001",
                                    "450102197503150013"])
    assert both.exit_code == 2 and "either" in both.stderr


def test_an_agent_pin_is_checked_for_its_region_only(engine: Engine) -> None:
    assert check_pin(engine, "1001", "246810", "999999", 3, KEYS) == (PinCheck.WRONG, None)
    result, agent = check_pin(engine, "1001", "246810", "450100", 3, KEYS)
    assert result is PinCheck.OK and agent is not None and agent.name == "张敏"
    with engine.connect() as conn:
        stored = conn.execute(select(agents.c.pin_hash)).scalars().all()
    assert stored and not [h for h in stored if "246810" in h]  # hashed like passwords


# --- the region's new fields and agents at import ---------------------------------------------

def _demo() -> dict[str, Any]:
    return load_file(demo_dataset())


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("holidays", ["2026-13-01"], "holidays: must be real dates: '2026-13-01' is not one"),
    ("holidays", ["2026/10/01"], "holidays: must be dates YYYY-MM-DD: '2026/10/01' is not one"),
    ("holidays", "2026-10-01", "holidays: must be a list of dates YYYY-MM-DD"),
    ("holidays", ["2026-10-01", "2026-10-01"], "holidays: must list each date once"),
    ("max_queue_wait", 10, "max_queue_wait: must be 60 to 3600 seconds"),
    ("max_queue_wait", "600", "max_queue_wait: must be a whole number"),
    ("line_name", "12333*热线", "line_name: may hold only letters and digits"),
    ("line_name", "", "line_name: must be text of 1 to 40 characters"),
    ("line_name_en", "医保热线", "line_name_en: must be English text"),
])
def test_region_fields_are_checked_at_import(engine: Engine, key: str, value: Any,
                                             rule: str) -> None:
    data = _demo()
    data["region"][key] = value
    with pytest.raises(DatasetError) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert info.value.record == "region"
    assert info.value.rule.startswith(rule), info.value.rule


def test_region_fields_absent_take_their_defaults(engine: Engine) -> None:
    data = _demo()
    for key in ("holidays", "max_queue_wait", "line_name", "name_en", "numbers", "area_codes"):
        data["region"].pop(key)
    import_dataset(engine, data, keyring=keyring_of_tests())
    from ivr.domain.accounts import region_for
    with engine.connect() as conn:
        region = region_for(conn)
    assert (region.holidays, region.max_queue_wait, region.line_name, region.line_name_en) == (
        (), 600, "医保服务热线", "Healthcare Security hotline")
    assert region == Region(code="450100", name="南宁市", agent_number="+867711234567")


@pytest.mark.parametrize(("agent", "rule"), [
    ({"id": 1001, "name": "张敏", "pin": "246810"}, "agents[0]: id: must be 3 to 8 digits"),
    ({"id": "1001", "name": " ", "pin": "246810"}, "agents[0] (1001): name: is required"),
    ({"id": "1001", "name": "张敏", "pin": "2468"}, "agents[0] (1001): pin: must be 6 digits"),
    ({"id": "1001", "name": "张敏", "pin_hash": "x"}, "agents[0] (1001): pin_hash: is not"),
])
def test_agents_are_checked_at_import(engine: Engine, agent: dict[str, Any], rule: str) -> None:
    data = _demo()
    data["agents"] = [agent]
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert str(info.value).startswith(rule), str(info.value)


def test_a_duplicate_agent_is_named(engine: Engine) -> None:
    data = _demo()
    data["agents"].append(dict(data["agents"][0]))
    with pytest.raises(DatasetInvalid) as info:
        import_dataset(engine, data, keyring=keyring_of_tests())
    assert "agents[2] (1001): id: duplicates agents[0]" in str(info.value)


# --- `ivr12333 queue` --------------------------------------------------------------------------

def test_queue_command_lists_who_waits_masked(runner: CliRunner, engine: Engine,
                                              db_url: str) -> None:
    now = datetime.now(UTC)
    line = CallQueue(engine, lambda: now)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN",
              region="450100", **ANYONE)
    line.join(OTHER, verified=False, last4=None, last_menu="main", lang="en-US",
              region="450100", **ANYONE)
    result = runner.invoke(cli, ["queue", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "every region: 2 waiting" in result.output
    assert "**************0013" in result.output and "450102197503150013" not in result.output
    assert "balance" in result.output and "en-US" in result.output
    assert "nobody was taken by an agent yet" in result.output
    line.take_next(AGENT_CALL, "450100")
    line.connected(SID)
    result = runner.invoke(cli, ["--database-url", db_url, "queue", "--region", "450100"])
    assert "region 450100: 1 waiting" in result.output
    assert "average wait today, region 450100: 0:00" in result.output
    result = runner.invoke(cli, ["--database-url", db_url, "queue", "--region", "450300"])
    assert result.exit_code == 2 and "no such region; the line has 450100" in result.output


def test_queue_command_on_an_empty_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["queue", "--database-url", f"sqlite:///{tmp_path / 'e.db'}"])
    assert result.exit_code == 0, result.output
    assert "0 waiting" in result.output



def test_the_hours_name_the_closed_days_only_where_there_are_some(
        client: Any, clock: FixedClock, db_url: str) -> None:
    """2026-10-01 10:00 (a Thursday, a demo holiday): closed, and the hours end with 法定节假日除外;
    a region without holidays does not claim them."""
    clock.now = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    client.post("/voice", data={"CallSid": SID, "From": "+8613800000001"})
    client.post("/voice/step?s=1", data={"CallSid": SID, "Digits": "1"})
    body = client.post("/voice/step?s=2", data={"CallSid": SID, "Digits": "0"}).text
    assert "人工服务时间为工作日上午9点至12点,下午1点至5点,法定节假日除外。" in body
    assert "<Enqueue" not in body
    from sqlalchemy import update

    from ivr.store.schema import regions
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(regions).values(holidays="[]"))
    engine.dispose()
    body = client.post("/voice/step?s=3", data={"CallSid": SID, "Digits": "0"}).text
    assert "<Enqueue" in body  # no holiday now: a Thursday morning on duty
    clock.now = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)  # a Saturday
    client.post("/voice/step?s=4&e=queued", data={"CallSid": SID, "QueueResult": "leave"})
    closed = client.post("/voice/step?s=5", data={"CallSid": SID, "Digits": "0"}).text
    assert "下午1点至5点。" in closed and "节假日" not in closed


# --- the queue against races (an outside security review's findings) --------------------------

def test_an_entry_whose_call_ended_is_never_summarised_and_is_cleared(engine: Engine) -> None:
    """Bug: a status callback landing between a step's claim and its joining the queue left an
    entry (verified, last four) that outlived the call and was summarised to every agent."""
    from ivr.engine.session import SessionStore

    clock = FixedClock(STAFFED)
    line = CallQueue(engine, clock)
    _live(engine, OTHER)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN",
              **ANYONE)  # no call
    line.join(OTHER, verified=False, last4=None, last_menu="main", lang="zh-CN", **ANYONE)
    taken = line.take_next(AGENT_CALL)
    assert taken is not None and taken.call_sid == OTHER  # never the ended call's entry
    with engine.begin() as conn:
        SessionStore._seal_stale(conn, STAFFED.timestamp())
    assert [r.call_sid for r in _rows(engine, queue_entries)] == [OTHER]
    # the agent's call is not in progress either: the caller it took is free again
    assert _rows(engine, queue_entries)[0].taken_by is None


def test_a_caller_on_the_way_out_is_not_summarised(engine: Engine) -> None:
    """Bug: a caller who had pressed * (sent <Leave>) was still summarised to an agent, who
    was then bridged to the next caller in Twilio's queue."""
    line = CallQueue(engine, FixedClock(STAFFED))
    _live(engine, SID, OTHER)
    line.join(SID, verified=True, last4="0013", last_menu="balance", lang="zh-CN", **ANYONE)
    line.join(OTHER, verified=False, last4=None, last_menu="main", lang="zh-CN", **ANYONE)
    line.mark_leaving(SID, "key")
    taken = line.take_next(AGENT_CALL)
    assert taken is not None and taken.call_sid == OTHER


def test_a_pin_under_a_key_this_server_lacks_is_not_counted(engine: Engine) -> None:
    """Bug: a PIN hashed under a key missing here counted as a wrong PIN (three right PINs
    locked the agent), where a caller's password check gives its reservation back."""
    from ivr.domain import passwords
    from ivr.domain.pinkeys import Keyring, new_key

    import_dataset(engine, load_file(demo_dataset()), keyring=KEYS)
    other = Keyring.of(new_key())
    with engine.begin() as conn:
        conn.execute(agents.update().where(agents.c.agent_id == "1001")
                     .values(pin_hash=passwords.hash_password("246810", other)))
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017 - whatever the keyring raises
            check_pin(engine, "1001", "246810", "450100", 3, KEYS)
    with engine.connect() as conn:
        row = conn.execute(select(agents.c.failed_attempts, agents.c.locked)
                           .where(agents.c.agent_id == "1001")).one()
    assert (row.failed_attempts, row.locked) == (0, False)


def test_the_agents_line_limits_pin_checks_per_number(app_factory: Callable[..., Any]) -> None:
    """Bug: one number could make any number of PIN checks (and so lock every agent): checks
    are now counted per calling number, apart from the callers' line."""
    from ivr.store.schema import verify_attempts

    app = app_factory(verify_attempts_per_hour=2, now=FixedClock(STAFFED))
    client = app.test_client()
    hotline = app.extensions["ivr12333"]
    for n in range(3):
        sid = f"CA{n + 50:032d}"
        client.post("/agent", data={"CallSid": sid, "From": "+867711239999"})
        client.post("/voice/step?s=1", data={"CallSid": sid, "Digits": "1001"})
        client.post("/voice/step?s=2", data={"CallSid": sid, "Digits": "000000"})
    with hotline.db.connect() as conn:
        failed = conn.execute(select(agents.c.failed_attempts)
                              .where(agents.c.agent_id == "1001")).scalar_one()
        counted = conn.execute(select(verify_attempts.c.caller)).scalars().all()
    assert failed == 2  # the third check was refused before the agent's PIN was looked at
    # counted under the number's keyed hash, never the number itself
    who = callers.caller_key(KEYS, "+867711239999", "agents")
    assert counted == [who.current] * 2
    assert who.current != callers.caller_key(KEYS, "+867711239999", "verify").current


def test_agent_pins_are_bounded_over_thirty_days_too(engine: Engine) -> None:
    """Bug: two wrong guesses between each of the agent's own logins never locked the PIN;
    as for callers' passwords, 10 failures in 30 days lock it."""
    from ivr.domain.failures import FAILURES_PER_WINDOW

    import_dataset(engine, load_file(demo_dataset()), keyring=KEYS)
    day = 24 * 3600.0
    results = []
    for n in range(FAILURES_PER_WINDOW // 2):
        t = STAFFED.timestamp() + n * day
        for k in range(2):
            results.append(check_pin(engine, "1001", f"00000{k}", "450100", 3, KEYS, t)[0])
        results.append(check_pin(engine, "1001", "246810", "450100", 3, KEYS, t + 60)[0])
    assert results[-2] is PinCheck.LOCKED  # the tenth wrong PIN in the window locked it
    assert results[-1] is PinCheck.WRONG  # even the right PIN now gets a wrong PIN's answer
    assert results[:-3].count(PinCheck.OK) == FAILURES_PER_WINDOW // 2 - 1
    # a month later, a new window: unlocking gives the agent their PIN back
    assert agents_unlock(engine, "1001")
    later = STAFFED.timestamp() + 40 * day
    assert check_pin(engine, "1001", "246810", "450100", 3, KEYS, later)[0] is PinCheck.OK
