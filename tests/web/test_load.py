"""Many calls at once against a real multi-worker `ivr12333 serve` (granian) over HTTP.

One call's webhooks land on different workers and the call goes on as one; 200 callers
verified at the same time each hear their own balance, never another's.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from conftest import prompt_pattern
from servers import HotlineServer, keyring_of_tests

from ivr.dataset.importer import import_dataset
from ivr.domain.identity import synthetic_id_number
from ivr.engine.speech import money_zh
from ivr.store.schema import ensure_schema, make_engine
from simulator import HttpTransport, Simulator

pytestmark = pytest.mark.slow

TOKEN = "load-test-auth-token"
PEOPLE = 200
CALLS = 200
WALL_SECONDS = 60  # the whole 200-call run, calls placed and ended
#: the balance prompt with any values; its `balance` group is the amount as said
BALANCE = prompt_pattern("balance_employee_no_credit")  # their monthly credit is zero
#: the app's log line for each answered webhook, written by the worker that answered it
ANSWERED = re.compile(r"\[(\d+)\][^\n]*?\bcall=(CA[0-9a-f]{32}) (start|digits|silence|dialed) ")
REGION = {
    "code": "450100", "name": "南宁市", "pool_relations": "close_relatives", "max_members": 7,
    "multiple_funders": True, "commercial_insurance": True, "lockout_after": 3,
    "agent_hours": [["mon-fri", "09:00-12:00"]], "timezone": "Asia/Shanghai",
}


@dataclass(frozen=True)
class Person:
    id_number: str
    password: str
    balance: Decimal

    @property
    def balance_words(self) -> str:
        return money_zh(self.balance)


def make_people(n: int) -> list[Person]:
    """Valid, distinct ID numbers; distinct passwords and balances (so distinct words)."""
    people = []
    for i in range(n):
        birth = date(1950, 1, 1) + timedelta(days=71 * i)
        id_number = synthetic_id_number("450102", birth, i % 1000, "male" if i % 2 else "female")
        password = f"{(104729 + 7919 * i) % 1_000_000:06d}"
        balance = Decimal(1_00 + 12_345 * i + i % 97) / 100
        people.append(Person(id_number, password, balance))
    assert len({p.id_number for p in people}) == n
    assert len({p.password for p in people}) == n
    assert len({p.balance_words for p in people}) == n
    return people


def dataset(people: list[Person]) -> dict[str, Any]:
    """The people with their passwords in clear (the import hashes them)."""
    return {
        "region": REGION,
        "people": [{
            "id_number": p.id_number,
            "name": f"测试{i}号",
            "scheme": "employee",
            "status": "active",
            "password": p.password,
            "account": {"balance": str(p.balance), "monthly_credit": "0.00",
                        "as_of": "2026-11-21"},
        } for i, p in enumerate(people)],
    }


@dataclass
class Loaded:
    server: HotlineServer
    people: list[Person]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Two server workers over one SQLite file holding PEOPLE people; signed webhooks."""
    folder = tmp_path_factory.mktemp("load")
    url = f"sqlite:///{folder / 'load.sqlite3'}"
    people = make_people(PEOPLE)
    engine = make_engine(url)
    try:
        ensure_schema(engine)
        report = import_dataset(engine, dataset(people), keyring=keyring_of_tests())
        assert report.people == PEOPLE
    finally:
        engine.dispose()
    with HotlineServer(url, folder / "server", workers=2, auth_token=TOKEN) as server:
        yield Loaded(server, people)


@dataclass
class Outcome:
    person: Person
    call_sid: str = ""
    heard_balances: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0


def keypad(id_number: str) -> str:
    """How an ID number is typed: a final X as *, then #."""
    return id_number.replace("X", "*") + "#"


def check_balance(server: HotlineServer, person: Person, caller_number: str,
                  start: threading.Barrier | None = None) -> Outcome:
    """One caller: Mandarin, balance, by ID number, confirm, password; then hang up."""
    outcome = Outcome(person)
    simulator = Simulator(HttpTransport(), server.voice_url, auth_token=TOKEN,
                          from_=caller_number, status_callback=server.status_url)
    began = time.monotonic()
    try:
        if start is not None:
            start.wait(30)
        began = time.monotonic()
        with simulator.dial() as call:
            outcome.call_sid = call.call_sid
            heard = []
            for keys in ("1", "1", "1", keypad(person.id_number), "1", person.password + "#"):
                call.press(keys)
                heard.append(call.heard)
            call.hangup()
            outcome.heard_balances = tuple(m["balance"] for m in BALANCE.finditer("\n".join(heard)))
            problems = [e.text for e in call.transcript if e.kind in ("error", "warning")]
            if call.error or problems or call.ended_by != "caller":
                outcome.error = f"{call.outcome}: {problems}"
    except Exception as exc:  # reported by the test, not lost in a thread
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.monotonic() - began
    return outcome


def run_calls(server: HotlineServer, people: list[Person], concurrency: int,
              number_base: int) -> list[Outcome]:
    """Place one call per person, `concurrency` at a time (all at once behind a barrier)."""
    outcomes: list[Outcome | None] = [None] * len(people)
    start = threading.Barrier(min(concurrency, len(people)))
    lock = threading.Lock()
    queue = iter(enumerate(people))

    def worker() -> None:
        first = True
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            i, person = item
            number = f"+86139{number_base + i:08d}"  # one number each: the per-caller limit
            outcomes[i] = check_balance(server, person, number, start if first else None)
            first = False

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(concurrency, len(people)))]
    deadline = time.monotonic() + WALL_SECONDS
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.1))
    assert not any(t.is_alive() for t in threads), f"calls still running after {WALL_SECONDS} s"
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def worker_pids(server: HotlineServer) -> set[int]:
    return {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", server.error_log())}


def answered_by(server: HotlineServer) -> dict[str, list[int]]:
    """CallSid -> the pid of the worker that answered each of its webhooks, in order."""
    pids: dict[str, list[int]] = {}
    for pid, call_sid, _event in ANSWERED.findall(server.error_log()):
        pids.setdefault(call_sid, []).append(int(pid))
    return pids


def settled_access_log(server: HotlineServer) -> str:
    """The access log once earlier tests' last lines are written (a worker logs after replying)."""
    log, deadline = server.access_log(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.3)
        later = server.access_log()
        if later == log:
            break
        log = later
    return log


def test_unsigned_webhooks_are_refused(loaded: Loaded) -> None:
    response = httpx.post(loaded.server.voice_url, data={"CallSid": "CA" + "0" * 32},
                          timeout=10)
    assert response.status_code == 403


def test_consecutive_webhooks_of_a_call_land_on_different_workers(loaded: Loaded) -> None:
    people = loaded.people[:24]
    outcomes = run_calls(loaded.server, people, concurrency=8, number_base=0)
    assert [o.error for o in outcomes if o.error] == []
    assert [o.heard_balances for o in outcomes] == [(p.balance_words,) for p in people]

    workers = worker_pids(loaded.server)
    assert len(workers) == 2, loaded.server.error_log()[-3000:]
    by_call = answered_by(loaded.server)
    sequences = [by_call.get(o.call_sid, []) for o in outcomes]
    # dial + 6 key presses: 7 webhooks answered per call, each by one of the two workers
    assert all(len(seq) == 7 for seq in sequences), sequences
    assert set().union(*sequences) == workers
    switches = sum(a != b for seq in sequences for a, b in zip(seq, seq[1:], strict=False))
    mixed = sum(len(set(seq)) > 1 for seq in sequences)
    assert switches >= 5 and mixed >= 3, sequences


def test_200_simultaneous_callers_each_hear_their_own_balance(loaded: Loaded) -> None:
    assert len(loaded.people) >= CALLS
    people = loaded.people[:CALLS]
    errors_before = loaded.server.error_log().count("ERROR")
    access_before = len(settled_access_log(loaded.server))
    started = time.monotonic()
    outcomes = run_calls(loaded.server, people, concurrency=CALLS, number_base=10_000)
    wall = time.monotonic() - started

    assert [o.error for o in outcomes if o.error] == [], "calls failed"
    crossed = [(o.person.balance_words, o.heard_balances) for o in outcomes
               if o.heard_balances != (o.person.balance_words,)]
    assert crossed == [], "callers heard another person's balance, or none"
    assert Counter(b for o in outcomes for b in o.heard_balances) == Counter(
        p.balance_words for p in people)
    assert wall < WALL_SECONDS
    log = loaded.server.error_log()
    assert log.count("ERROR") == errors_before and "Traceback" not in log
    statuses = Counter(re.findall(r'"POST /(?:voice|voice/step|status)[^"]*" (\d{3}) ',
                                  settled_access_log(loaded.server)[access_before:]))
    assert set(statuses) == {"200", "204"}, statuses
    assert statuses["200"] == 7 * CALLS and statuses["204"] == CALLS, statuses
    by_call = answered_by(loaded.server)
    assert all(len(by_call.get(o.call_sid, [])) == 7 for o in outcomes)
    print(f"{CALLS} calls in {wall:.1f} s; slowest {max(o.seconds for o in outcomes):.1f} s")
