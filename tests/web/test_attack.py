"""Attacks on a real `ivr12333 serve` (granian) over HTTP, as someone with a phone, a script and
a captured request would make them: racing guesses, enumeration by answer and by time, replays
of an ended call, re-split signed requests, a status callback racing a step, and withheld
numbers. Every request is signed with the server's auth token, like Twilio's; state is read
from the database itself (SQLite or PostgreSQL), never through the app.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from conftest import prompt_pattern, said_start, say
from servers import (  # noqa: F401  (fixtures)
    HotlineServer,
    fresh_pg_url,
    keyring_of_tests,
    postgres,
)
from sqlalchemy import Engine, text
from twilio.request_validator import RequestValidator

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import callers
from ivr.domain.identity import check_character
from ivr.resources import demo_dataset
from ivr.store.schema import ensure_schema, make_engine

TOKEN = "attack-auth-token-0123456789abcdef"
SIGNATURE = "X-Twilio-Signature"
LI = ("450102197503150013", "135790")  # employee, balance 1234.56
CHEN = ("450102197806200022", "246802")
WU = ("450107198811110263", "555666")
UNKNOWN_ID = "45010219800101003" + check_character("45010219800101003")  # well formed, nobody's
WRONG = said_start("password_wrong")  # any wrong password, any try left
TOO_MANY = say("too_many_attempts")
BALANCE = prompt_pattern("balance_employee")
READBACK = prompt_pattern("id_readback")
#: any ID number (18 characters) where personal data must not be
ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")

_numbers = itertools.count(1)


def sid(name: str) -> str:
    """A CallSid of Twilio's form, unique per test run."""
    return "CA" + hashlib.md5(f"{name}-{time.time_ns()}".encode()).hexdigest()


def fresh_number() -> str:
    """A caller number no other call of this module uses (the per-number limit stays out of
    the way unless a test is about it)."""
    return f"+861390{next(_numbers):07d}"


def sign(url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, params))


def spoken(body: str) -> str:
    """What the caller hears of a TwiML document: its <Say> texts, one a line."""
    return "\n".join(e.text or "" for e in SafeET.fromstring(body).iter("Say"))


def normalised(body: str) -> str:
    """The document with its step numbers taken out (they differ with the path, not the data)."""
    return re.sub(r"s=\d+", "s=N", body)


def is_hangup_only(body: str) -> bool:
    root = SafeET.fromstring(body)
    return root.tag == "Response" and [c.tag for c in root] == ["Hangup"] \
        and not (root.text or "").strip() and not list(root[0])


class Line:
    """One call as Twilio drives it over HTTP: signed form posts to the server's webhooks."""

    def __init__(self, client: httpx.Client, server: HotlineServer, from_: str | None = None,
                 name: str = "call") -> None:
        self.client = client
        self.server = server
        self.call_sid = sid(name)
        self.from_ = fresh_number() if from_ is None else from_
        self.last = ""
        self.sent: list[tuple[str, dict[str, str], str]] = []  # every request, for replays

    def params(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.from_,
                "To": "+8612333", "CallStatus": "in-progress", "Direction": "inbound",
                "ApiVersion": "2010-04-01", **extra}

    def request(self, url: str, params: dict[str, str]) -> tuple[str, dict[str, str], str]:
        return url, params, sign(url, params)

    def post(self, request: tuple[str, dict[str, str], str]) -> httpx.Response:
        url, params, signature = request
        return self.client.post(url, data=params, headers={SIGNATURE: signature})

    def send(self, request: tuple[str, dict[str, str], str]) -> httpx.Response:
        self.sent.append(request)
        response = self.post(request)
        assert response.status_code == 200, (response.status_code, response.text)
        self.last = response.text
        return response

    def dial(self) -> Line:
        self.send(self.request(self.server.voice_url, self.params()))
        return self

    def gather(self) -> Any:
        gather = SafeET.fromstring(self.last).find("Gather")
        assert gather is not None, self.last
        return gather

    def key(self, digits: str) -> tuple[str, dict[str, str], str]:
        """The signed request Twilio sends when the caller types `digits` at this Gather."""
        return self.request(str(self.gather().get("action")), self.params(Digits=digits))

    def press(self, digits: str) -> Line:
        self.send(self.key(digits))
        return self

    def silence(self) -> Line:
        """No key before the Gather's timeout: Twilio follows the Redirect after it."""
        redirect = SafeET.fromstring(self.last).find("Redirect")
        assert redirect is not None, self.last
        self.send(self.request(str(redirect.text), self.params()))
        return self

    def to_password(self, id_number: str) -> Line:
        """From the start: Mandarin, balance, verify by ID number, the number, confirm."""
        self.dial().press("1").press("1").press("1").press(id_number)
        assert READBACK.search(spoken(self.last)), self.last
        self.press("1")
        assert say("password_entry") in spoken(self.last), self.last
        return self

    def at_password_again(self) -> Line:
        """After a wrong password: the password is asked again, for the same number."""
        heard = spoken(self.last)
        assert heard.startswith(WRONG), self.last
        assert heard.endswith(f"\n{say('password_entry')}"), self.last
        return self

    def status(self, status: str = "completed") -> httpx.Response:
        response = self.post(self.request(self.server.status_url,
                                          self.params(CallStatus=status, CallDuration="42")))
        assert response.status_code == 204, response.text
        return response


# ---- the database, read directly -----------------------------------------------------------

class Db:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).first()

    def all(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def write(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def person(self, id_number: str) -> tuple[int, int]:
        row = self.one("SELECT failed_attempts, locked FROM people WHERE id_number = :i",
                       i=id_number)
        return int(row[0]), int(row[1])

    def session(self, call_sid: str) -> tuple[str, int, str, bool] | None:
        row = self.one("SELECT state, step, data, ended FROM sessions WHERE call_sid = :s",
                       s=call_sid)
        return None if row is None else (row[0], int(row[1]), row[2], bool(row[3]))

    def personal_data_left(self) -> list[str]:
        """Every ID number anywhere in the sessions (data) and kept answers."""
        found = []
        for (value,) in self.all("SELECT data FROM sessions UNION ALL "
                                 "SELECT body FROM answers"):
            found += ID_NUMBER.findall(value or "")
        return found

    def answers_of(self, call_sid: str) -> int:
        return int(self.one("SELECT count(*) FROM answers WHERE call_sid = :s", s=call_sid)[0])

    def attempts(self, caller: str) -> int:
        """Checks counted against `caller` (a number or "withheld"), under its keyed hash."""
        hashed = callers.caller_key(keyring_of_tests(), caller, "verify").current
        return int(self.one("SELECT count(*) FROM verify_attempts WHERE caller = :c",
                            c=hashed)[0])


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_database(request: pytest.FixtureRequest) -> str:
    """The demo people on SQLite (a copy of the session's file) or on a new PostgreSQL
    database, with the real password hashing cost."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("db_url"))
    url = str(request.getfixturevalue("fresh_pg_url"))
    engine = make_engine(url)
    ensure_schema(engine)
    import_dataset(engine, load_file(demo_dataset()), keyring=keyring_of_tests())
    engine.dispose()
    return url


def _serve(url: str, tmp_path: Path, workers: int = 2, **env: str) -> HotlineServer:
    return HotlineServer(url, tmp_path / "server", workers=workers, auth_token=TOKEN,
                         env=env)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as c:
        yield c


def _no_tracebacks(server: HotlineServer) -> None:
    assert "Traceback" not in server.error_log(), server.error_log()[-3000:]


# ---- 1. sixteen guesses at once: three checks, then the lock ---------------------------------

GUESSES = 16


@pytest.mark.slow
def test_simultaneous_guesses_make_exactly_three_checks(demo_database: str, tmp_path: Path,
                                                        client: httpx.Client) -> None:
    db = Db(demo_database)
    with _serve(demo_database, tmp_path) as server:
        # sixteen calls (sixteen phones: the per-number limit is not what is tested here),
        # each waiting at the password prompt for the same person
        lines = [Line(client, server, name=f"race{i}").to_password(LI[0])
                 for i in range(GUESSES)]
        requests = [line.key("000000") for line in lines]
        barrier = threading.Barrier(GUESSES, timeout=30)
        bodies: list[str | None] = [None] * GUESSES

        def guess(i: int) -> None:
            with httpx.Client(timeout=60.0) as own:
                url, params, signature = requests[i]
                barrier.wait()
                response = own.post(url, data=params, headers={SIGNATURE: signature})
            assert response.status_code == 200
            bodies[i] = response.text

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(b is not None for b in bodies), "a guess got no answer"
        # exactly three password checks were made: the third locked the password
        assert db.person(LI[0]) == (3, 1)
        outcomes = re.findall(r"verification (\w+) call=", server.error_log())
        counts = {o: outcomes.count(o) for o in set(outcomes)}
        assert counts == {"wrong": 2, "now_locked": 1, "locked": GUESSES - 3}, counts
        # and every caller heard the same: nothing tells the three checked guesses apart
        heard = {normalised(b) for b in bodies if b is not None}
        assert len(heard) == 1, heard
        assert WRONG in spoken(bodies[0] or "")

        # the right password, after the lock: no balance, the same "wrong" as any guess
        late = Line(client, server, name="late").to_password(LI[0])
        late.press(LI[1])
        assert not BALANCE.search(spoken(late.last)), late.last
        assert normalised(late.last) in heard
        assert db.person(LI[0]) == (3, 1)
        _no_tracebacks(server)
    db.engine.dispose()


# ---- 2. no enumeration: the same answer and the same cost for unknown, wrong and locked ------

#: whose password is guessed: nobody's number, a person's (wrong password), a locked person's
KINDS = {"unknown": UNKNOWN_ID, "wrong": LI[0], "locked": CHEN[0]}
SAMPLES = 30  # per kind (a multiple of 3: one call per kind gives three)
TIMING_BOUND = 1.30  # the slowest median at most 30% above the fastest


def _guess_three_times(line: Line) -> list[str]:
    """Three wrong guesses in one call, the password keyed again for the same number each time;
    the answers with their step numbers taken out."""
    answers = []
    for guess in range(3):
        if guess:
            line.at_password_again()
        line.press("000000")
        answers.append(normalised(line.last))
    return answers


def _unlock_li(db: Db) -> None:
    db.write("UPDATE people SET failed_attempts = 0, window_failures = 0, locked = false "
             "WHERE id_number = :i", i=LI[0])


@pytest.mark.slow
def test_unknown_wrong_and_locked_are_told_apart_neither_by_answer_nor_by_time(
    db_url: str, tmp_path: Path, client: httpx.Client
) -> None:
    db = Db(db_url)
    with _serve(db_url, tmp_path, workers=1) as server:
        _guess_three_times(Line(client, server, name="locker").to_password(CHEN[0]))
        assert db.person(CHEN[0]) == (3, 1)

        answers = {kind: _guess_three_times(Line(client, server, name=kind).to_password(id_))
                   for kind, id_ in KINDS.items()}
        for guess in range(3):
            assert answers["unknown"][guess] == answers["wrong"][guess] == \
                answers["locked"][guess], f"guess {guess + 1} tells the cases apart"
        assert WRONG in spoken(answers["unknown"][0])
        assert say("verification_failed") in spoken(answers["unknown"][2])
        assert db.person(LI[0]) == (3, 1)  # the third wrong guess locked LI: the same answer

        # time the password webhook alone, client-side: one call per kind per round, their
        # guesses interleaved (the kinds' order rotating), so drift hits every kind alike;
        # the first round warms up and is not counted
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        order = list(KINDS)
        for rnd in range(SAMPLES // 3 + 1):
            lines = {kind: Line(client, server, name=f"t{kind}") for kind in KINDS}
            for guess in range(3):
                turn = rnd * 3 + guess
                for kind in order[turn % 3:] + order[:turn % 3]:
                    line = lines[kind]
                    if guess:
                        line.at_password_again()
                    else:
                        line.to_password(KINDS[kind])
                    if kind == "wrong":
                        _unlock_li(db)  # a real check each time, never a lock
                    request = line.key("000000")
                    started = time.perf_counter()
                    response = line.send(request)
                    elapsed = time.perf_counter() - started
                    assert (WRONG if guess < 2 else say("verification_failed")) \
                        in spoken(response.text)
                    if rnd:
                        times[kind].append(elapsed)
        assert db.person(LI[0]) == (1, 0)  # the last timed "wrong" was a real, failed check
        medians = {kind: statistics.median(t) for kind, t in times.items()}
        print("password webhook medians (ms):",
              {k: round(v * 1000, 1) for k, v in medians.items()})
        assert max(medians.values()) <= TIMING_BOUND * min(medians.values()), medians
        _no_tracebacks(server)
    db.engine.dispose()


# ---- 3. an ended call keeps no ID number, and its replays hear a hang-up ---------------------

@pytest.mark.slow
@pytest.mark.parametrize("ended_by", ["status_callback", "ivr_goodbye"])
def test_an_ended_call_keeps_no_id_number_and_every_replay_hangs_up(
    db_url: str, tmp_path: Path, client: httpx.Client, ended_by: str
) -> None:
    db = Db(db_url)
    with _serve(db_url, tmp_path) as server:
        line = Line(client, server, name=ended_by).to_password(LI[0])
        line.press(LI[1])
        assert BALANCE.search(spoken(line.last)), line.last
        # mid-call the session holds the verified person: the scan below can find it
        row = db.session(line.call_sid)
        assert row is not None and LI[0] in row[2]
        assert LI[0] in db.personal_data_left()

        if ended_by == "status_callback":
            line.status("completed")
        else:  # three silences at the menu after the balance: the IVR says goodbye, hangs up
            for _ in range(3):
                line.silence()
            assert say("goodbye") in spoken(line.last)
            assert [c.tag for c in SafeET.fromstring(line.last)][-1] == "Hangup"
        ended = db.session(line.call_sid)
        assert ended is not None and ended[3] is True and ended[2] == "{}", ended
        assert db.personal_data_left() == []
        assert db.answers_of(line.call_sid) == 0

        for request in line.sent:  # every step of the call, the dial first, replayed
            response = line.post(request)
            assert response.status_code == 200
            assert is_hangup_only(response.text), (request[0], response.text)
        assert db.session(line.call_sid) == ended
        assert db.personal_data_left() == []
        _no_tracebacks(server)
    db.engine.dispose()


# ---- 4. a signed request re-split at another boundary -----------------------------------------

@pytest.mark.slow
def test_a_signed_request_resplit_at_another_boundary_is_refused(
    db_url: str, tmp_path: Path, client: httpx.Client
) -> None:
    db = Db(db_url)
    with _serve(db_url, tmp_path, workers=1) as server:
        line = Line(client, server).to_password(LI[0])
        url, params, signature = line.key(LI[1])
        # names and values are signed concatenated: fold "Digits135790" into CallStatus
        forged = {k: v for k, v in params.items() if k != "Digits"}
        forged["CallStatus"] = params["CallStatus"] + "Digits" + params["Digits"]
        assert forged["CallStatus"] == "in-progressDigits135790"
        assert RequestValidator(TOKEN).validate(url, forged, signature)  # still "signed"
        before = (db.session(line.call_sid), db.person(LI[0]), db.attempts(line.from_))

        response = line.post((url, forged, signature))
        assert response.status_code == 400, response.text
        assert not BALANCE.search(response.text)
        assert (db.session(line.call_sid), db.person(LI[0]), db.attempts(line.from_)) == before

        line.send((url, params, signature))  # the genuine request still works
        assert BALANCE.search(spoken(line.last)), line.last
        _no_tracebacks(server)
    db.engine.dispose()


#: what else Twilio sends with a Gather's keys (its geographic fields): in name order,
#: CallerZip comes right before Digits (a finding of this file, now refused)
TWILIO_GEO = {"CalledCity": "", "CalledCountry": "CN", "CalledState": "", "CalledZip": "",
              "CallerCity": "NANNING", "CallerCountry": "CN", "CallerState": "GX",
              "CallerZip": ""}


@pytest.mark.slow
def test_a_real_twilio_request_resplit_into_callerzip_is_refused(
    db_url: str, tmp_path: Path, client: httpx.Client
) -> None:
    db = Db(db_url)
    with _serve(db_url, tmp_path, workers=1) as server:
        line = Line(client, server).to_password(LI[0])
        url, params, _ = line.key(LI[1])
        params = {**params, **TWILIO_GEO}  # the request as Twilio really sends it
        signature = sign(url, params)
        forged = {k: v for k, v in params.items() if k != "Digits"}
        forged["CallerZip"] = "Digits" + params["Digits"]
        assert RequestValidator(TOKEN).validate(url, forged, signature)  # still "signed"
        before = db.session(line.call_sid)
        try:
            response = line.post((url, forged, signature))
            changed = db.session(line.call_sid)
            genuine = line.post((url, params, signature))
        finally:
            db.engine.dispose()
        assert response.status_code == 400, (response.status_code, spoken(response.text))
        assert changed == before
        assert BALANCE.search(spoken(genuine.text)), spoken(genuine.text)


# ---- 5. a status callback racing the password step --------------------------------------------

#: when the status callback leaves after the password webhook (s): before the check, during
#: the hash, around the save, after the answer
STATUS_DELAYS = (0.0, 0.03, 0.06, 0.1, 0.15, 0.25)


def _send_at(barrier: threading.Barrier, request: tuple[str, dict[str, str], str],
             delay: float, into: dict[str, httpx.Response], what: str) -> None:
    with httpx.Client(timeout=60.0) as own:
        url, params, signature = request
        barrier.wait()
        time.sleep(delay)
        into[what] = own.post(url, data=params, headers={SIGNATURE: signature})


@pytest.mark.slow
def test_a_status_callback_during_the_password_step_cannot_reopen_the_call(
    demo_database: str, tmp_path: Path, client: httpx.Client
) -> None:
    db = Db(demo_database)
    with _serve(demo_database, tmp_path) as server:
        outcomes = []
        for attempt, delay in enumerate(STATUS_DELAYS):
            line = Line(client, server, name=f"race-status{attempt}").to_password(LI[0])
            password = line.key(LI[1])
            status = line.request(server.status_url,
                                  line.params(CallStatus="completed", CallDuration="42"))
            barrier = threading.Barrier(2, timeout=30)
            got: dict[str, httpx.Response] = {}
            threads = [threading.Thread(target=_send_at,
                                        args=(barrier, password, 0.0, got, "password")),
                       threading.Thread(target=_send_at,
                                        args=(barrier, status, delay, got, "status"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert got["password"].status_code == 200 and got["status"].status_code == 204
            answer = got["password"].text
            checked = f"verification ok call={line.call_sid}" in server.error_log()
            outcomes.append(("checked, " if checked else "unchecked, ")
                            + ("balance" if BALANCE.search(spoken(answer))
                               else "hangup" if is_hangup_only(answer) else "other"))
            row = db.session(line.call_sid)
            assert row is not None and row[3] is True and row[2] == "{}", (attempt, row)
            assert db.answers_of(line.call_sid) == 0, attempt
            assert db.personal_data_left() == [], attempt
            assert is_hangup_only(line.post(password).text)
            assert is_hangup_only(line.post(line.key("1")).text)  # the next key: nothing
        print("password step, status callback racing:", outcomes)
        _no_tracebacks(server)
    db.engine.dispose()


# ---- 6. withheld callers: one class, one limit -------------------------------------------------

@pytest.mark.slow
def test_withheld_callers_however_spelled_share_one_limit(
    db_url: str, tmp_path: Path, client: httpx.Client
) -> None:
    db = Db(db_url)
    with _serve(db_url, tmp_path, IVR_WITHHELD_ATTEMPTS_PER_HOUR="2") as server:
        for from_ in ("", "anonymous"):
            line = Line(client, server, from_=from_).to_password(LI[0])
            line.press("000000")
            heard = spoken(line.last)
            assert WRONG in heard and TOO_MANY not in heard, (from_, heard)
        assert db.person(LI[0]) == (2, 0)
        assert db.attempts("withheld") == 2
        # the withheld class has used its two checks: other spellings of "withheld" are in it
        for from_ in ("+266696687", "restricted"):
            line = Line(client, server, from_=from_).to_password(LI[0])
            line.press(LI[1])
            heard = spoken(line.last)
            assert TOO_MANY in heard and not BALANCE.search(heard), (from_, heard)
        assert db.person(LI[0]) == (2, 0)  # the right password was not even checked
        assert db.attempts("withheld") == 2
        # a caller with a number is not in that class
        line = Line(client, server).to_password(LI[0])
        line.press(LI[1])
        assert BALANCE.search(spoken(line.last))
        assert db.person(LI[0]) == (0, 0)
        _no_tracebacks(server)
    db.engine.dispose()
