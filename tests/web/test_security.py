"""Webhook security: Twilio signatures, replays, idempotent retries and brute-force limits.

Every request here is what Twilio (or someone pretending to be Twilio) would send: a form POST
with an X-Twilio-Signature over the URL and the parameters. State is checked in the database
itself (the sessions row, people.failed_attempts, verify_attempts), not through the app.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
from conftest import prompt_pattern, said_start, say
from servers import keyring_of_tests
from twilio.request_validator import RequestValidator

from ivr.domain import accounts, callers
from simulator import Call, Simulator, WsgiTransport

TOKEN = "test-auth-token-0123456789abcdef"
LOCAL = "http://localhost"
PUBLIC = "https://ivr.example.org"
SIGNATURE = "X-Twilio-Signature"

LI = ("450102197503150013", "135790")  # employee, balance 1234.56
CHEN = ("450102197806200022", "246802")  # employee, balance 1001.01
MING = ("450103200201010032", "111222")  # resident
SHAN = ("450103195208080056", "222333")  # resident
LI_BALANCE = "一千二百三十四元五角六分"

def sid(name: str) -> str:
    """A CallSid of Twilio's form (CA and 32 hex digits), the same for the same name."""
    return "CA" + hashlib.md5(name.encode()).hexdigest()


#: the call's third failure names a lock as a possibility (the verification_failed prompt)
LOCKED = say("verification_failed")
TOO_MANY = say("too_many_attempts")
GOODBYE = say("goodbye")
WRONG = said_start("password_wrong")  # any wrong password, any try left


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def db_path(db_url: str) -> str:
    return db_url.removeprefix("sqlite:///")


def session_row(db_url: str, call_sid: str) -> tuple[Any, ...] | None:
    with closing(sqlite3.connect(db_path(db_url))) as conn:
        row = conn.execute(
            "SELECT state, step, data, ended FROM sessions WHERE call_sid = ?",
            (call_sid,),
        ).fetchone()
    return tuple(row) if row else None


def person_row(db_url: str, id_number: str) -> tuple[int, int]:
    with closing(sqlite3.connect(db_path(db_url))) as conn:
        failed, locked = conn.execute(
            "SELECT failed_attempts, locked FROM people WHERE id_number = ?", (id_number,)
        ).fetchone()
    return int(failed), int(locked)


def attempts_of(db_url: str, caller: str) -> int:
    """The checks counted against `caller`'s number (under its keyed hash: never the number)."""
    hashed = callers.caller_key(keyring_of_tests(), caller, "verify").current
    with closing(sqlite3.connect(db_path(db_url))) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM verify_attempts WHERE caller = ?", (hashed,)
        ).fetchone()
    return int(n)


def gather_action(body: str) -> str:
    """The action URL of the document's <Gather>: where Twilio sends the next keys."""
    root = SafeET.fromstring(body)
    gather = root.find("Gather")
    assert gather is not None, body
    return str(gather.get("action"))


class Line:
    """One call as Twilio would drive it, signing every webhook with the auth token."""

    def __init__(self, client: Any, call_sid: str, from_: str = "+8613900000001", *,
                 token: str = TOKEN, public: str | None = None) -> None:
        self.client = client
        self.call_sid = call_sid
        self.from_ = from_
        self.token = token
        self.public = public
        self.last = ""

    def params(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.from_,
                "To": "+8612333", "CallStatus": "in-progress", "Direction": "inbound",
                "ApiVersion": "2010-04-01", **extra}

    def request(self, url: str, params: dict[str, str]) -> tuple[str, dict[str, str], str]:
        """A signed request (target URL on this server, params, signature), not yet sent."""
        signed_on = url if self.public is None else url.replace(LOCAL, self.public, 1)
        local = url.replace(self.public, LOCAL, 1) if self.public else url
        return local, params, sign(signed_on, params, self.token)

    def send(self, request: tuple[str, dict[str, str], str]) -> Any:
        url, params, signature = request
        response = self.client.post(url, data=params, headers={SIGNATURE: signature})
        if response.status_code == 200:
            self.last = response.get_data(as_text=True)
        return response

    def dial(self) -> Any:
        return self.send(self.request(f"{self.public or LOCAL}/voice", self.params()))

    def key(self, digits: str) -> tuple[str, dict[str, str], str]:
        """The signed request Twilio sends when the caller types `digits` at the current Gather."""
        return self.request(gather_action(self.last), self.params(Digits=digits))

    def press(self, digits: str) -> Any:
        response = self.send(self.key(digits))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    def status(self, status: str = "completed") -> Any:
        return self.send(self.request(f"{self.public or LOCAL}/status",
                                      self.params(CallStatus=status, CallDuration="42")))


@pytest.fixture
def make_app(app_factory: Callable[..., Any]) -> Callable[..., Any]:
    """Apps ("workers") on the test's database, all with the auth token set."""
    return lambda **overrides: app_factory(**{"auth_token": TOKEN, **overrides})


@pytest.fixture
def signed_app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def signed_client(signed_app: Any) -> Any:
    return signed_app.test_client()


# ---- Twilio's own algorithm ----------------------------------------------------------------

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(("number", "expected"), [
    # Twilio's "Validating requests" page (current wording: caller +12349013030)
    ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    # the same worked example as twilio's SDK tests and older docs (caller +14158675310)
    ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
])
def test_twilio_published_signature_example(number: str, expected: str) -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": number, "Digits": "1234",
              "From": number, "To": "+18005551212"}
    validator = RequestValidator("12345")
    assert validator.compute_signature(DOCS_URL, params) == expected
    assert validator.validate(DOCS_URL, params, expected)
    assert not validator.validate(DOCS_URL, {**params, "Digits": "1235"}, expected)
    assert not validator.validate(DOCS_URL.replace("bar=2", "bar=3"), params, expected)
    assert not RequestValidator("12346").validate(DOCS_URL, params, expected)


def test_app_accepts_a_request_signed_by_twilios_validator(signed_client: Any,
                                                          db_url: str) -> None:
    params = {"CallSid": sid("signed"), "From": "+8613900000001", "To": "+8612333"}
    signature = RequestValidator(TOKEN).compute_signature(f"{LOCAL}/voice", params)
    response = signed_client.post("/voice", data=params, headers={SIGNATURE: signature})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert say("welcome", line="医保服务热线") in body
    assert gather_action(body) == f"{LOCAL}/voice/step?s=1"
    row = session_row(db_url, sid("signed"))
    assert row is not None and row[1] == 1 and row[0] == "welcome"


# ---- refused requests change nothing -------------------------------------------------------

@pytest.mark.parametrize("path", ["/voice", "/voice/step?s=0", "/voice/step?s=1&e=silence",
                                  "/status"])
def test_request_without_signature_is_refused(signed_client: Any, db_url: str,
                                              path: str) -> None:
    params = {"CallSid": sid("nosig"), "From": "+8613900000001", "Digits": "1",
              "CallStatus": "completed"}
    response = signed_client.post(path, data=params)
    assert response.status_code == 403
    assert "Traceback" not in response.get_data(as_text=True)
    assert session_row(db_url, sid("nosig")) is None


def test_signature_by_another_token_is_refused(signed_client: Any, db_url: str) -> None:
    line = Line(signed_client, sid("othertoken"), token="not-the-token")
    assert line.dial().status_code == 403
    assert session_row(db_url, sid("othertoken")) is None


@pytest.fixture
def at_main_menu(signed_client: Any, db_url: str) -> Line:
    """A signed call waiting at the main menu (session step 2)."""
    line = Line(signed_client, sid("tamper"))
    assert line.dial().status_code == 200
    line.press("1")
    assert say("main_menu") in line.last
    assert gather_action(line.last) == f"{LOCAL}/voice/step?s=2"
    return line


def _tampered(line: Line, how: str) -> tuple[str, dict[str, str], str]:
    url, params, signature = line.key("1")
    if how == "query":  # signed for s=2, sent to s=3 (or e added)
        return url.replace("s=2", "s=3"), params, signature
    if how == "query_event":
        return url + "&e=silence", params, signature
    if how == "param":  # Digits changed after signing
        return url, {**params, "Digits": "4"}, signature
    if how == "param_added":
        return url, {**params, "DialCallStatus": "completed"}, signature
    if how == "param_removed":
        return url, {k: v for k, v in params.items() if k != "From"}, signature
    if how == "call_sid":  # a signed request replayed against another call
        return url, {**params, "CallSid": sid("someoneelse")}, signature
    if how == "header":  # one character of the signature changed
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return url, params, flipped
    if how == "header_empty":
        return url, params, ""
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["query", "query_event", "param", "param_added",
                                 "param_removed", "call_sid", "header", "header_empty"])
def test_tampered_request_is_refused_and_changes_nothing(at_main_menu: Line, db_url: str,
                                                         how: str) -> None:
    line = at_main_menu
    before = session_row(db_url, line.call_sid)
    attempts = attempts_of(db_url, line.from_)
    response = line.send(_tampered(line, how))
    assert response.status_code == 403
    assert session_row(db_url, line.call_sid) == before
    assert session_row(db_url, sid("someoneelse")) is None
    assert attempts_of(db_url, line.from_) == attempts
    # the genuine request still works afterwards: the refusal did not wedge the call
    line.press("1")
    after = session_row(db_url, line.call_sid)
    assert before is not None and after is not None
    assert (after[0], after[1]) == ("verify_method", before[1] + 1)


def test_signature_over_public_url_behind_a_proxy(make_app: Callable[..., Any],
                                                  db_url: str) -> None:
    app = make_app(public_url=PUBLIC + "/")  # a trailing slash is tolerated
    client = app.test_client()
    line = Line(client, sid("proxy"), public=PUBLIC)
    response = line.dial()  # signed on https://ivr.example.org/voice, arrives at localhost
    assert response.status_code == 200
    assert gather_action(line.last) == f"{PUBLIC}/voice/step?s=1"
    line.press("1")
    assert gather_action(line.last) == f"{PUBLIC}/voice/step?s=2"
    assert session_row(db_url, sid("proxy"))[:2] == ("main", 2)  # type: ignore[index]
    # signed on the URL the request arrived at: not what Twilio signs, so refused
    params = Line(client, sid("proxy")).params(Digits="4")
    wrong = sign(f"{LOCAL}/voice/step?s=2", params)
    refused = client.post("/voice/step?s=2", data=params, headers={SIGNATURE: wrong})
    assert refused.status_code == 403
    assert session_row(db_url, sid("proxy"))[:2] == ("main", 2)  # type: ignore[index]


def test_replay_for_an_ended_call_changes_nothing(signed_client: Any, db_url: str) -> None:
    line = Line(signed_client, sid("replay"))
    dial = line.request(f"{LOCAL}/voice", line.params())
    line.send(dial)
    first_key = line.key("1")
    line.send(first_key)
    line.press("1")  # balance: verify
    line.press("1")  # by ID number
    line.press(LI[0])
    line.press("1")
    line.press(LI[1])
    assert LI_BALANCE in line.last
    recorded = line.key("9")  # recorded by an attacker, sent after the call ended
    assert line.status("completed").status_code == 204
    ended = session_row(db_url, sid("replay"))
    assert ended is not None and ended[3] == 1
    assert ended[2] == "{}"  # the verified person is forgotten with the call
    for replay in (dial, first_key, recorded):
        response = line.send(replay)
        assert response.status_code == 200
        root = SafeET.fromstring(response.get_data(as_text=True))
        assert [child.tag for child in root] == ["Hangup"]
        assert LI_BALANCE not in response.get_data(as_text=True)
        assert session_row(db_url, sid("replay")) == ended
    # a second status callback for the same call changes nothing either
    assert line.status("completed").status_code == 204
    assert session_row(db_url, sid("replay")) == ended


# ---- idempotency: Twilio retries ------------------------------------------------------------

def test_duplicate_menu_key_gets_the_same_answer_once(at_main_menu: Line, db_url: str) -> None:
    line = at_main_menu
    request = line.key("1")
    first = line.send(request)
    second = line.send(request)
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert say("verify_method") in first.get_data(as_text=True)
    row = session_row(db_url, line.call_sid)
    assert row is not None and (row[0], row[1]) == ("verify_method", 3)
    # the call goes on from where the first delivery left it
    line.press("1")
    assert session_row(db_url, line.call_sid)[:2] == ("id_entry", 4)  # type: ignore[index]


def _to_password(line: Line, id_number: str) -> None:
    """From the main menu: balance, verify by ID number, confirm; waits for the password."""
    line.press("1")
    line.press("1")
    line.press(id_number)
    line.press("1")
    assert say("password_entry") in line.last


def test_duplicate_wrong_password_counts_once(at_main_menu: Line, db_url: str) -> None:
    line = at_main_menu
    _to_password(line, LI[0])
    step = session_row(db_url, line.call_sid)[1]  # type: ignore[index]
    request = line.key("000000")
    first = line.send(request)
    second = line.send(request)
    assert first.get_data() == second.get_data()
    assert WRONG in first.get_data(as_text=True)
    assert session_row(db_url, line.call_sid)[1] == step + 1  # type: ignore[index]
    assert person_row(db_url, LI[0]) == (1, 0)
    assert attempts_of(db_url, line.from_) == 1


def test_concurrent_duplicate_wrong_password_counts_once(
    make_app: Callable[..., Any], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio's retry can arrive at a second worker while the first is still hashing."""
    workers = [make_app().test_client(), make_app().test_client()]
    line = Line(workers[0], sid("concurrent"))
    line.dial()
    line.press("1")
    _to_password(line, LI[0])
    request = line.key("000000")
    step = session_row(db_url, line.call_sid)[1]  # type: ignore[index]

    # both deliveries have loaded the session before either checks the password
    barrier = threading.Barrier(2, timeout=10)
    real_check = accounts.check_password

    def check_after_both_loaded(*args: Any, **kwargs: Any) -> Any:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # the implementation serialised the two: fine
        return real_check(*args, **kwargs)

    monkeypatch.setattr(accounts, "check_password", check_after_both_loaded)
    bodies: list[bytes] = [b"", b""]

    def deliver(i: int) -> None:
        url, params, signature = request
        response = workers[i].post(url, data=params, headers={SIGNATURE: signature})
        bodies[i] = response.get_data()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert bodies[0] == bodies[1] and WRONG.encode() in bodies[0]
    assert session_row(db_url, line.call_sid)[1] == step + 1  # type: ignore[index]
    assert person_row(db_url, LI[0]) == (1, 0)
    assert attempts_of(db_url, line.from_) == 1


# ---- brute force ----------------------------------------------------------------------------

def _simulator(app: Any, from_: str) -> Simulator:
    return Simulator(WsgiTransport(app), f"{LOCAL}/voice", auth_token=TOKEN, from_=from_,
                     status_callback=f"{LOCAL}/status")


def _verify(call: Call, id_number: str, password: str) -> str:
    """From the main menu: 1 (balance), 1 (by ID), the number, 1 (confirm), the password."""
    call.press("1")
    call.press("1")
    call.press(id_number + "#")
    assert prompt_pattern("id_readback").search(call.heard), call.heard
    call.press("1")
    call.press(password + "#")
    return call.heard


def test_lockout_persists_across_a_restart(make_app: Callable[..., Any], db_url: str) -> None:
    first = make_app()
    call = _simulator(first, "+8613900000002").dial()
    try:
        call.press("1")
        heard = _verify(call, CHEN[0], "000000")
        for attempt in range(1, 3):
            assert WRONG in heard  # and the password again, for the same number
            assert person_row(db_url, CHEN[0]) == (attempt, 0)
            call.press("000000#")
            heard = call.heard
        assert LOCKED in heard  # the call's third failure: the lock named as a possibility
    finally:
        call.close()
    assert person_row(db_url, CHEN[0]) == (3, 1)
    first.extensions["ivr12333"].db.dispose()

    restarted = make_app()  # a new process on the same database
    call = _simulator(restarted, "+8613900000003").dial()
    try:
        call.press("1")
        heard = _verify(call, CHEN[0], CHEN[1])  # the right password, too late
        assert heard.startswith(WRONG)  # like any wrong password: nothing tells it apart
        assert "一千零一元零一分" not in heard
    finally:
        call.close()
    assert person_row(db_url, CHEN[0]) == (3, 1)


def test_caller_number_limit_holds_across_workers_and_calls(make_app: Callable[..., Any],
                                                            db_url: str) -> None:
    workers = [make_app(verify_attempts_per_hour=3), make_app(verify_attempts_per_hour=3)]
    walker = "+8613900000004"
    # three calls, alternating workers, each one wrong password for a different person
    for n, (worker, person) in enumerate(zip([0, 1, 0], [LI, MING, SHAN], strict=True), 1):
        call = _simulator(workers[worker], walker).dial()
        try:
            call.press("1")
            assert WRONG in _verify(call, person[0], "000000")
        finally:
            call.close()
        assert attempts_of(db_url, walker) == n
    # the fourth attempt, on the other worker, with the right password: refused unchecked
    call = _simulator(workers[1], walker).dial()
    try:
        call.press("1")
        heard = _verify(call, LI[0], LI[1])
        assert TOO_MANY in heard and GOODBYE in heard
        assert LI_BALANCE not in heard
        assert call.ended and call.ended_by == "application"
    finally:
        call.close()
    assert person_row(db_url, LI[0]) == (1, 0)  # the password was not even checked
    # another phone number is not affected, on either worker
    for worker in workers:
        call = _simulator(worker, "+8613900000005").dial()
        try:
            call.press("1")
            assert LI_BALANCE in _verify(call, LI[0], LI[1])
        finally:
            call.close()
    assert person_row(db_url, LI[0]) == (0, 0)


# ---- the password again after a wrong one; an entry of the wrong length is no password -------

UNKNOWN_ID = "450102198001010015"  # well formed, nobody's
ENTRY = say("password_entry")
MALFORMED = say("password_malformed")


def window_failures(db_url: str, id_number: str) -> int:
    with closing(sqlite3.connect(db_path(db_url))) as conn:
        (n,) = conn.execute("SELECT window_failures FROM people WHERE id_number = ?",
                            (id_number,)).fetchone()
    return int(n)


def call_data(db_url: str, call_sid: str) -> dict[str, Any]:
    row = session_row(db_url, call_sid)
    assert row is not None
    data: dict[str, Any] = json.loads(row[2])
    return data


def _at_password(client: Any, name: str, id_number: str) -> Line:
    """A signed call at the password prompt for `id_number` (verified by ID, confirmed)."""
    line = Line(client, sid(name), from_=f"+86139{int(sid(name)[2:], 16) % 10**8:08d}")
    line.dial()
    for keys in ("1", "1", "1", id_number):
        line.press(keys)
    line.press("1")
    assert ENTRY in line.last and WRONG not in line.last
    return line


#: from the password prompt on: wrong lengths, a * inside, and three wrong passwords keyed
#: again for the same number, the number never keyed again
PASSWORD_PATH = ("12345", "000000", "1234567", "12*456", "000001", "**", "000002")


def test_unknown_wrong_and_locked_numbers_hear_the_same_bytes_at_every_password_step(
    signed_client: Any, db_url: str
) -> None:
    """Issue 11 holds in the new flow: an unknown number is asked for the password again too,
    a wrong length is answered alike (from the keys alone), and the answers are byte-identical
    at every step for a nobody, a wrong password and a locked password."""
    with closing(sqlite3.connect(db_path(db_url))) as conn, conn:
        conn.execute("UPDATE people SET locked = 1, failed_attempts = 3 WHERE id_number = ?",
                     (CHEN[0],))
    kinds = {"unknown": UNKNOWN_ID, "wrong": LI[0], "locked": CHEN[0]}
    answers: dict[str, list[bytes]] = {}
    for kind, id_number in kinds.items():
        line = _at_password(signed_client, f"same-{kind}", id_number)
        answers[kind] = [line.press(keys).get_data() for keys in PASSWORD_PATH]
        assert attempts_of(db_url, line.from_) == 3  # three checks: the wrong lengths none
    for step, keys in enumerate(PASSWORD_PATH):
        assert answers["unknown"][step] == answers["wrong"][step] == answers["locked"][step], \
            f"the answer to {keys!r} tells the numbers apart"
    heard = [b.decode() for b in answers["unknown"]]
    assert [MALFORMED in h for h in heard] == [True, False, True, True, False, True, False]
    assert [WRONG in h for h in heard] == [False, True, False, False, True, False, False]
    assert all(ENTRY in h for h in heard[:-1])  # always the password again, never the method
    assert not any(say("verify_method") in h for h in heard)
    assert LOCKED in heard[-1]  # the call's third failure, as before
    # the lock comes at the same count as before: three wrong passwords, the lengths not counted
    assert person_row(db_url, LI[0]) == (3, 1)
    assert person_row(db_url, CHEN[0]) == (3, 1)


@pytest.mark.parametrize("keys", ["13579", "1357900", "135*90", "*1", "**", "1" * 30])
def test_a_password_of_the_wrong_length_is_not_a_check(signed_client: Any, db_url: str,
                                                      keys: str) -> None:
    line = _at_password(signed_client, f"length-{keys}", LI[0])
    before = (person_row(db_url, LI[0]), window_failures(db_url, LI[0]))
    line.press(keys)
    assert MALFORMED in line.last and ENTRY in line.last and WRONG not in line.last
    assert (person_row(db_url, LI[0]), window_failures(db_url, LI[0])) == before
    assert attempts_of(db_url, line.from_) == 0  # no check reserved for the caller number
    assert call_data(db_url, line.call_sid)["password_failures"] == 0
    assert call_data(db_url, line.call_sid)["pending"] == LI[0]  # still the same number
    line.press(LI[1])  # and then the right one, without the ID number again
    assert LI_BALANCE in line.last
    assert attempts_of(db_url, line.from_) == 1


def test_after_a_wrong_password_the_right_one_needs_no_id_number(signed_client: Any,
                                                                 db_url: str) -> None:
    line = _at_password(signed_client, "again", LI[0])
    line.press("000000")
    assert WRONG in line.last and ENTRY in line.last
    assert person_row(db_url, LI[0]) == (1, 0)
    line.press(LI[1])
    assert LI_BALANCE in line.last
    assert person_row(db_url, LI[0]) == (0, 0)
    assert attempts_of(db_url, line.from_) == 2


def test_a_lone_star_after_a_wrong_password_forgets_the_number(signed_client: Any,
                                                               db_url: str) -> None:
    line = _at_password(signed_client, "star", UNKNOWN_ID)
    line.press("000000")
    assert WRONG in line.last and ENTRY in line.last  # an unknown number is asked again too
    line.press("*")
    assert say("verify_method") in line.last
    data = call_data(db_url, line.call_sid)
    assert (data["pending"], data["password_failures"]) == (None, 1)
    assert attempts_of(db_url, line.from_) == 1
    for keys in ("1", LI[0], "1", LI[1]):
        line.press(keys)
    assert LI_BALANCE in line.last


def test_a_call_sid_with_a_line_break_is_refused_and_forges_no_log_line(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a token anyone can post; a CallSid goes into log lines, so it must be one."""
    forged = "CAfake\nERROR ivr.web: forged line"
    with caplog.at_level(logging.DEBUG):
        response = client.post("/voice", data={"CallSid": forged, "From": "+8613800000009"})
    assert response.status_code == 400
    assert not any("forged line" in r.getMessage() for r in caplog.records)
