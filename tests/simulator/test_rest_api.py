"""Conformance of the simulated REST API: every operation over real HTTP with the twilio
library, Twilio's checks (auth, account SID, required parameters) and error JSON."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from simulator import DirectTransport, Simulator, run_script
from simulator.clock import Clock
from simulator.rest import LocalHttpClient, RestApi, RestServer, local_client
from simulator.script import ScriptResult
from simulator.world import World
from tests.apps.rest_hooks import Hook, create_app

BASE = "http://app.test"
ACCOUNT = "AC" + "b2" * 16
TOKEN = "conformance-token"
KEY, SECRET = "SK" + "c3" * 16, "key-secret"


@pytest.fixture(scope="module")
def server() -> Iterator[RestServer]:
    with RestServer(RestApi(ACCOUNT, TOKEN, {KEY: SECRET})) as served:
        yield served


@pytest.fixture
def world(server: RestServer) -> Iterator[World]:
    with server.api.attach(World(Clock())) as attached:
        yield attached


def play(server: RestServer, tmp_path: Path, hooks: dict[str, Hook], text: str
         ) -> tuple[ScriptResult, list[tuple[str, dict[str, str]]]]:
    app = create_app(server.client(), hooks)
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_script(path, lambda: Simulator(DirectTransport(app), BASE + "/voice",
                                                rest=server.api))
    return result, app.config["SEEN"]


# --- checks and errors ------------------------------------------------------------------------


def raw(server: RestServer, path: str, user: str = ACCOUNT, secret: str = TOKEN,
        data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(server.base_url + path, data=data)
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_auth_account_and_unknown_resources_answer_twilio_errors(
        server: RestServer, world: World) -> None:
    queues = f"/2010-04-01/Accounts/{ACCOUNT}/Queues.json"
    assert raw(server, queues)[0] == 200
    assert raw(server, queues, KEY, SECRET)[0] == 200  # an API key and its secret
    status, body = raw(server, queues, secret="wrong")
    assert (status, body["code"], set(body)) == (401, 20003, {"code", "message", "more_info",
                                                              "status"})
    assert raw(server, queues, KEY, TOKEN)[1]["code"] == 20003
    other = "AC" + "d4" * 16
    assert raw(server, f"/2010-04-01/Accounts/{other}/Queues.json")[1]["code"] == 20003
    status, body = raw(server, f"/2010-04-01/Accounts/{ACCOUNT}/Nonsense.json")
    assert (status, body["code"], body["status"]) == (404, 20404, 404)
    status, body = raw(server, f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                       data=b"To=%2B1&From=%2B2&Body=hi")
    assert status == 501 and "not simulated" in body["message"]
    status, body = raw(server, f"/2010-04-01/Accounts/{ACCOUNT}/Queues/QU{'0' * 32}.json",
                       data=b"")
    assert status == 404 and body["code"] == 20404
    assert [r.status for r in world.rest_requests] == [200, 200, 401, 401, 403, 404, 501, 404]


def test_queues_create_list_fetch_update_with_the_twilio_client(
        server: RestServer, world: World) -> None:
    client = server.client()
    queue = client.queues.create(friendly_name="support", max_size=10)
    assert (queue.friendly_name, queue.max_size, queue.current_size) == ("support", 10, 0)
    assert queue.sid.startswith("QU") and queue.date_created is not None
    assert [q.sid for q in client.queues.list()] == [queue.sid]
    assert client.queues(queue.sid).fetch().average_wait_time == 0
    assert client.queues(queue.sid).update(max_size=20).max_size == 20
    with pytest.raises(TwilioRestException) as duplicate:
        client.queues.create(friendly_name="support")
    assert duplicate.value.status == 400
    with pytest.raises(TwilioRestException) as too_big:
        client.queues.create(friendly_name="big", max_size=5001)
    assert too_big.value.status == 400
    assert client.queues(queue.sid).members.list() == []
    with pytest.raises(TwilioRestException) as empty:
        client.queues(queue.sid).members("Front").fetch()
    assert empty.value.code == 20404


def test_calls_create_checks_its_parameters(server: RestServer, world: World) -> None:
    client = server.client()
    cases = [({"to": "", "from_": "+2", "url": "http://a.test/"}, 21201),
             ({"to": "+1", "from_": "", "url": "http://a.test/"}, 21213),
             ({"to": "+1", "from_": "+2"}, 21205),
             ({"to": "+1", "from_": "+2", "url": "not a url"}, 21205),
             ({"to": "+1", "from_": "+2", "url": "http://a.test/", "record": True}, 20403)]
    for arguments, code in cases:
        with pytest.raises(TwilioRestException) as refused:
            client.calls.create(**arguments)
        assert refused.value.code == code, arguments
    with pytest.raises(TwilioRestException) as outside:  # no scenario: nobody to answer
        client.calls.create(to="+1", from_="+2", url="http://a.test/")
    assert outside.value.status == 501


def test_region_and_edge_are_refused(server: RestServer, monkeypatch: pytest.MonkeyPatch,
                                     world: World) -> None:
    client = Client(ACCOUNT, TOKEN, region="ie1", edge="dublin",
                    http_client=LocalHttpClient(server.base_url))
    with pytest.raises(ValueError, match="region or edge"):
        client.queues.list()
    monkeypatch.setenv("TWILIO_REGION", "au1")
    with pytest.raises(ValueError, match="TWILIO_REGION"):
        local_client(server.base_url, ACCOUNT, TOKEN)
    assert world.rest_requests == []


# --- calls in a scenario ----------------------------------------------------------------------


def test_calls_create_fetch_list_and_update_a_live_call(server: RestServer,
                                                        tmp_path: Path) -> None:
    got: dict[str, Any] = {}

    def voice(client: Any, form: Any) -> str:
        call = client.calls.create(
            to="+15550001", from_="+15550000", url=f"{BASE}/callee",
            status_callback=f"{BASE}/status", machine_detection="Enable",
            status_callback_event=["initiated", "ringing", "answered", "completed"])
        got["created"] = (call.status, call.direction)
        got["sid"] = call.sid
        return '<Gather numDigits="1" action="/pressed"><Say>Press a key.</Say></Gather>'

    def pressed(client: Any, form: Any) -> str:
        callee = client.calls(got["sid"]).fetch()
        got["fetched"] = (callee.status, callee.answered_by, callee.to)
        got["listed"] = [c.sid for c in client.calls.list(to="+15550001",
                                                          status="in-progress")]
        client.calls(got["sid"]).update(twiml="<Response><Say>Redirected inline.</Say>"
                                              "<Pause length=\"5\"/></Response>")
        return '<Gather numDigits="1" action="/end"><Say>Again.</Say></Gather>'

    def end(client: Any, form: Any) -> str:
        got["moved"] = client.calls(got["sid"]).update(url=f"{BASE}/again", method="GET").sid
        got["ended"] = client.calls(got["sid"]).update(status="completed").status
        return "<Say>Bye.</Say>"

    result, seen = play(server, tmp_path, {"voice": voice, "pressed": pressed, "end": end,
                                           "again": lambda c, f: '<Pause length="9"/>',
                                           "callee": lambda c, f: "<Say>Hello callee.</Say>"
                                                                  "<Pause length=\"60\"/>"
                                           }, """
calls:
  - name: caller
    steps:
      - press: "1"
      - press: "2"
      - expect: "Bye."
  - name: callee
    answers: "+15550001"
    ring: 0
    steps:
      - expect: "Hello callee."
""")
    assert result.passed, result.report() + result.transcript_text
    assert got["created"] == ("queued", "outbound-api")
    assert got["fetched"] == ("in-progress", "human", "+15550001")
    assert got["listed"] == [got["sid"]]
    assert got["ended"] == "completed" and got["moved"] == got["sid"]
    callee_requests = [(name, p.get("CallStatus"), p.get("Direction"), p.get("AnsweredBy"))
                       for name, p in seen if name in ("callee", "status")]
    assert callee_requests == [
        ("status", "initiated", "outbound-api", None), ("status", "ringing", "outbound-api", None),
        ("status", "in-progress", "outbound-api", None),
        ("callee", "in-progress", "outbound-api", "human"),
        ("status", "completed", "outbound-api", None)]
    again = [(p["CallSid"], p["Direction"]) for name, p in seen if name == "again"]
    assert again == [(got["sid"], "outbound-api")]
    assert "Redirected inline." in result.transcript_text
    assert "MachineDetection=Enable" in result.transcript_text


@pytest.mark.parametrize(("answer", "status"), [("busy", "busy"), ("no-answer", "no-answer"),
                                                ("failed", "failed")])
def test_a_called_party_is_busy_does_not_answer_or_fails(
        server: RestServer, tmp_path: Path, answer: str, status: str) -> None:
    def voice(client: Any, form: Any) -> str:
        client.calls.create(to="+15550009", from_="+15550000", url=f"{BASE}/callee",
                            status_callback=f"{BASE}/status", timeout=20)
        return '<Pause length="30"/><Gather><Say>Still there?</Say></Gather>'

    result, seen = play(server, tmp_path, {"voice": voice}, f"""
calls:
  - name: caller
    steps:
      - expect: "Still there?"
  - name: callee
    answers: "+15550009"
    answer: {answer}
""")
    assert result.passed, result.report()
    assert [(name, p["CallStatus"]) for name, p in seen if name != "voice"] == [
        ("status", status)]


# --- queues and members -----------------------------------------------------------------------


def test_a_member_is_dequeued_to_a_url_by_call_sid_and_by_front(server: RestServer,
                                                                tmp_path: Path) -> None:
    got: dict[str, Any] = {}

    def agent(client: Any, form: Any) -> str:
        (queue,) = client.queues.list()
        members = client.queues(queue.sid).members.list()
        got["positions"] = [m.position for m in members]
        second = members[1].call_sid
        got["fetched"] = client.queues(queue.sid).members(second).fetch().call_sid == second
        client.queues(queue.sid).members(second).update(url=f"{BASE}/picked", method="POST")
        client.queues(queue.sid).members("Front").update(url=f"{BASE}/front")
        return "<Say>Both moved.</Say>"

    enqueue = '<Enqueue action="/left">help</Enqueue>'
    result, seen = play(server, tmp_path, {
        "voice": lambda c, f: enqueue,
        "agent": agent,
        "picked": lambda c, f: "<Say>You were picked.</Say><Gather><Say>ok?</Say></Gather>",
        "front": lambda c, f: "<Say>You were at the front.</Say><Gather><Say>ok?</Say>"
                              "</Gather>"}, """
calls:
  - name: first
    steps:
      - wait: 60
      - expect: "You were at the front."
  - name: second
    start: 1
    steps:
      - wait: 60
      - expect: "You were picked."
  - name: agent
    start: 5
    url: /agent
    steps:
      - expect: "Both moved."
""")
    assert result.passed, result.report() + result.transcript_text
    assert got == {"positions": [1, 2], "fetched": True}
    left = [p["QueueResult"] for name, p in seen if name == "left"]
    assert left == ["redirected", "redirected"]


# --- conferences and participants -------------------------------------------------------------


def test_conference_and_participants_list_fetch_mute_hold_announce_end(
        server: RestServer, tmp_path: Path) -> None:
    got: dict[str, Any] = {}
    join = ('<Dial><Conference beep="false" statusCallback="/confcb" '
            'statusCallbackEvent="mute hold">room</Conference></Dial>')

    def boss(client: Any, form: Any) -> str:  # one participant: the room has not started
        (room,) = client.conferences.list(friendly_name="room", status="init")
        conference = client.conferences(room.sid)
        got["fetched"] = conference.fetch().status
        parts = conference.participants.list()
        got["count"] = len(parts)
        first = parts[-1].call_sid if parts[-1].call_sid != form["CallSid"] else parts[0].call_sid
        got["muted"] = conference.participants(first).update(muted=True).muted
        got["listed_muted"] = [p.call_sid for p in conference.participants.list(muted=True)]
        conference.participants(first).update(hold=True, hold_url=f"{BASE}/holdmusic")
        conference.participants(first).update(hold=False, announce_url=f"{BASE}/private")
        created = conference.participants.create(from_="+15550000", to="+15550003",
                                                 label="guest", beep="false")
        got["created"] = (created.status, created.label)
        return ('<Gather action="/finish"><Pause length="10"/><Say>Press to finish.</Say>'
                "</Gather>")

    def finish(client: Any, form: Any) -> str:
        (room,) = client.conferences.list(friendly_name="room", status="in-progress")
        conference = client.conferences(room.sid)
        got["guest"] = conference.participants("guest").fetch().label
        conference.update(announce_url=f"{BASE}/all")
        got["ended"] = conference.update(status="completed").status
        return "<Say>Finished.</Say>"

    result, seen = play(server, tmp_path, {
        "voice": lambda c, f: join, "boss": boss, "finish": finish,
        "holdmusic": lambda c, f: "<Say>Held here.</Say>",
        "private": lambda c, f: "<Say>Just for you.</Say>",
        "all": lambda c, f: "<Say>For everyone.</Say>"}, """
calls:
  - name: member
    steps:
      - wait: 100
      - expect: "Held here."
      - expect: "Just for you."
      - expect: "For everyone."
  - name: boss
    start: 2
    url: /boss
    steps:
      - press: "1"
      - expect: "Finished."
  - name: guest
    answers: "+15550003"
    steps:
      - wait: 100
      - expect: "For everyone."
""")
    assert result.passed, result.report() + result.transcript_text
    assert got == {"fetched": "init", "count": 1, "muted": True,
                   "listed_muted": got["listed_muted"], "created": ("queued", "guest"),
                   "guest": "guest", "ended": "completed"}
    assert len(got["listed_muted"]) == 1
    events = [(p["StatusCallbackEvent"], p["Muted"], p["Hold"]) for name, p in seen
              if name == "confcb"]
    assert events == [("participant-mute", "true", "false"),
                      ("participant-hold", "true", "true"),
                      ("participant-unhold", "true", "false")]
    assert result.transcript_text.count("the conference ends") >= 2


def test_a_lone_call_its_app_reads_it_over_rest(server: RestServer) -> None:
    """The phones place one call: the REST API serves it; placing calls needs a scenario."""
    def voice(client: Any, form: Any) -> str:
        me = client.calls(form["CallSid"]).fetch()
        try:
            client.calls.create(to="+1555", from_="+1556", url=f"{BASE}/x")
        except TwilioRestException as exc:
            refused = exc.status
        return f"<Say>{me.status} {me.direction} {me.account_sid} {refused}</Say>"

    app = create_app(server.client(), {"voice": voice})
    call = Simulator(DirectTransport(app), BASE + "/voice", rest=server.api).dial()
    assert call.heard == f"in-progress inbound {ACCOUNT} 501"
    assert call.account_sid == ACCOUNT
