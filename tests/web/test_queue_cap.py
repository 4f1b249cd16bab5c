"""One number cannot fill the agent queue: simultaneous calls from one number, each pressing 0
at once on two real `serve` workers (SQLite and PostgreSQL), get at most the cap of places;
withheld callers share one class with its own cap; the queue holds no number, only its keyed
hash."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from conftest import say
from servers import (  # noqa: F401  (fixtures)
    HotlineServer,
    fresh_pg_url,
    keyring_of_tests,
    postgres,
)
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import callers
from ivr.resources import demo_dataset
from ivr.store.schema import ensure_schema, make_engine, queue_entries, regions

pytestmark = pytest.mark.slow

TOKEN = "queue-cap-auth-token-0123456789abcdef"
SIGNATURE = "X-Twilio-Signature"
NUMBER, OTHER_NUMBER = "+8613912345678", "+8613987654321"
#: however a withheld number arrives, it is one class
WITHHELD = ["", "anonymous", "+266696687", "restricted", "unavailable", "Private", "blocked"]
REFUSED = say("queue_number_waiting")
MAIN_MENU = say("main_menu")


class Line:
    """One call as Twilio drives it: signed form posts to the server's webhooks."""

    def __init__(self, server: HotlineServer, from_: str, name: str) -> None:
        self.server, self.from_ = server, from_
        self.call_sid = "CA" + hashlib.md5(f"{name}-{time.time_ns()}".encode()).hexdigest()
        self.last = ""

    def request(self, url: str, **extra: str) -> tuple[str, dict[str, str], str]:
        params = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.from_,
                  "To": "+8612333", "CallStatus": "in-progress", "Direction": "inbound",
                  "ApiVersion": "2010-04-01", **extra}
        return url, params, str(RequestValidator(TOKEN).compute_signature(url, params))

    def send(self, client: httpx.Client, request: tuple[str, dict[str, str], str]) -> str:
        url, params, signature = request
        response = client.post(url, data=params, headers={SIGNATURE: signature})
        assert response.status_code == 200, (response.status_code, response.text)
        self.last = response.text
        return self.last

    def key(self, digits: str) -> tuple[str, dict[str, str], str]:
        gather = SafeET.fromstring(self.last).find("Gather")
        assert gather is not None, self.last
        return self.request(str(gather.get("action")), Digits=digits)

    def at_main_menu(self, client: httpx.Client) -> Line:
        self.send(client, self.request(self.server.voice_url))
        self.send(client, self.key("1"))  # Mandarin
        assert MAIN_MENU in spoken(self.last), self.last
        return self

    def hang_up(self, client: httpx.Client) -> None:
        url, params, signature = self.request(self.server.status_url, CallStatus="completed",
                                              CallDuration="42")
        assert client.post(url, data=params, headers={SIGNATURE: signature}).status_code == 204


def spoken(body: str) -> str:
    return "\n".join(e.text or "" for e in SafeET.fromstring(body).iter("Say"))


def enqueued(body: str) -> bool:
    return SafeET.fromstring(body).find("Enqueue") is not None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The demo people, their region staffed at every hour (the servers run on real time)."""
    if request.param == "sqlite":
        url = str(request.getfixturevalue("db_url"))
    else:
        url = str(request.getfixturevalue("fresh_pg_url"))
    engine = make_engine(url)
    ensure_schema(engine)
    if request.param != "sqlite":
        import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    with engine.begin() as conn:
        conn.execute(update(regions).values(agent_hours='[["daily", "00:00-24:00"]]',
                                            holidays="[]"))
    engine.dispose()
    return url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as c:
        yield c


def press_0_at_once(lines: list[Line]) -> list[str]:
    """Every line presses 0 at the same moment, each on its own connection."""
    requests = [line.key("0") for line in lines]
    barrier = threading.Barrier(len(lines), timeout=30)
    bodies = [""] * len(lines)

    def press(i: int) -> None:
        with httpx.Client(timeout=60.0) as own:
            barrier.wait()
            bodies[i] = lines[i].send(own, requests[i])

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(lines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(bodies), "a call got no answer"
    return bodies


def test_one_number_gets_at_most_its_places_in_the_queue(database: str, tmp_path: Path,
                                                         client: httpx.Client) -> None:
    env = {"IVR_QUEUE_PLACES_PER_NUMBER": "2", "IVR_WITHHELD_QUEUE_PLACES": "3"}
    with HotlineServer(database, tmp_path / "server", workers=2, auth_token=TOKEN,
                       env=env) as server:
        same = [Line(server, NUMBER, f"same{i}").at_main_menu(client) for i in range(6)]
        hidden = [Line(server, w, f"withheld{i}").at_main_menu(client)
                  for i, w in enumerate(WITHHELD)]
        other = Line(server, OTHER_NUMBER, "other").at_main_menu(client)
        bodies = press_0_at_once([*same, *hidden, other])
        same_in, hidden_in = bodies[:6], bodies[6:-1]

        assert sum(map(enqueued, same_in)) == 2
        assert sum(map(enqueued, hidden_in)) == 3
        assert enqueued(bodies[-1])  # another number is not held back
        for body in (*same_in, *hidden_in):
            if not enqueued(body):  # told why, then back at the main menu
                assert spoken(body) == f"{REFUSED}\n{MAIN_MENU}", body

        engine = make_engine(database)
        with engine.connect() as conn:
            keys = conn.execute(select(queue_entries.c.caller_key)).scalars().all()
        keyring = keyring_of_tests()
        assert sorted(keys) == sorted(
            [callers.caller_key(keyring, NUMBER, "queue").current] * 2
            + [callers.caller_key(keyring, "", "queue").current] * 3
            + [callers.caller_key(keyring, OTHER_NUMBER, "queue").current])
        assert not any(NUMBER[3:] in k or OTHER_NUMBER[3:] in k for k in keys)

        # a caller of the number who waited hangs up: the place is free for the next one
        waiting = next(line for line, body in zip(same, same_in, strict=True)
                       if enqueued(body))
        refused = next(line for line, body in zip(same, same_in, strict=True)
                       if not enqueued(body))
        waiting.hang_up(client)
        assert enqueued(refused.send(client, refused.key("0")))
        engine.dispose()
        assert "Traceback" not in server.error_log(), server.error_log()[-3000:]
