"""The simulator plays TwiML exactly as Twilio would, in-process and over real HTTP."""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from twiml_app import MENU, MORE, PizzaState, create_app, serve

from simulator import (
    Call,
    CallEnded,
    DirectTransport,
    HttpTransport,
    PendingGather,
    Simulator,
    Transport,
    Utterance,
    WsgiTransport,
)
from simulator import transcript as kind
from simulator.clock import SECONDS_PER_KEY, speech_seconds

WELCOME = "Welcome to Pizza Line."
STANDARD = {"CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus"}
STANDARD |= {"Direction", "ApiVersion"}
GEO = {f"{side}{field}" for side in ("From", "To", "Caller", "Called")
       for field in ("City", "State", "Zip", "Country")}
STANDARD |= GEO
TOKEN = "pizza-secret-token"


@dataclass
class Line:
    """The Pizza Line reached through one transport, with the app's memory and cleanup."""

    transport: Transport
    base: str
    state: PizzaState
    calls: list[Call] = field(default_factory=list)

    def simulator(self, path: str = "/voice", **options: Any) -> Simulator:
        return Simulator(self.transport, self.base + path, **options)

    def dial(self, path: str = "/voice", **options: Any) -> Call:
        call = self.simulator(path, **options).dial()
        self.calls.append(call)
        return call


@pytest.fixture(scope="module")
def pizza_app() -> Flask:
    return create_app()


@pytest.fixture(scope="module")
def http_base(pizza_app: Flask) -> Iterator[str]:
    with serve(pizza_app) as base:
        yield base


@pytest.fixture(params=["wsgi", "direct", "http"])
def line(request: pytest.FixtureRequest, pizza_app: Flask) -> Iterator[Line]:
    state: PizzaState = pizza_app.config["PIZZA"]
    state.reset()
    transport: Transport
    if request.param == "wsgi":
        transport, base = WsgiTransport(pizza_app), "http://pizza.test"
    elif request.param == "direct":
        transport, base = DirectTransport(pizza_app), "http://pizza.test"
    else:
        transport, base = HttpTransport(), request.getfixturevalue("http_base")
    with transport:
        result = Line(transport, base, state)
        yield result
        for call in result.calls:
            call.close()
    state.reset()


def kinds(call: Call) -> list[str]:
    return [event.kind for event in call.transcript]


# --- parameters and the first document ---------------------------------------------------------


def test_first_request_carries_twilio_standard_parameters(line: Line) -> None:
    call = line.dial(from_="+8613811112222", to="+867712333")
    [first] = line.state.requests
    assert (first.method, first.path) == ("POST", "/voice")
    assert set(first.params) == STANDARD
    assert re.fullmatch(r"CA[0-9a-f]{32}", first.params["CallSid"])
    assert re.fullmatch(r"AC[0-9a-f]{32}", first.params["AccountSid"])
    assert first.params["CallSid"] == call.call_sid
    assert {k: v for k, v in first.params.items() if k not in ("CallSid", "AccountSid")} == {
        "From": "+8613811112222",
        "To": "+867712333",
        "Caller": "+8613811112222",
        "Called": "+867712333",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        # where the numbers are: a mobile number is nowhere more precise than its country
        **{f"{side}{name}": "" for side in ("From", "Caller")
           for name in ("City", "State", "Zip")},
        "FromCountry": "CN", "CallerCountry": "CN",
        **{f"{side}{name}": value for side in ("To", "Called") for name, value in
           (("City", "NANNING"), ("State", "GUANGXI"), ("Zip", "530000"), ("Country", "CN"))},
    }


def test_dial_plays_until_a_gather_waits(line: Line) -> None:
    call = line.dial()
    assert call.heard == f"{WELCOME}\n{MENU}\n{MENU}"
    assert call.waiting == PendingGather(
        action=f"{line.base}/menu", method="POST", timeout=5.0, finish_on_key="#", num_digits=1
    )
    assert call.ended is False and call.ended_by is None and call.error is None
    welcome_time = speech_seconds(WELCOME)
    assert call.said == [
        Utterance(WELCOME, "alice", "en-US", 0.0),
        Utterance(MENU, None, None, welcome_time),
        Utterance(MENU, None, None, round(welcome_time + speech_seconds(MENU) + 2, 3)),
    ]
    assert call.clock.now == welcome_time  # the Gather's prompt plays when the caller acts


def test_gather_with_num_digits_posts_digits_with_empty_finished_on_key(line: Line) -> None:
    call = line.dial()
    collected = call.press("1")
    assert (collected.digits, collected.finished_on_key, collected.ignored) == ("1", "", "")
    first, second = line.state.requests
    assert (second.method, second.path) == ("POST", "/menu")
    assert second.params == {
        **first.params,
        "CallStatus": "in-progress",
        "Digits": "1",
        "FinishedOnKey": "",
    }
    assert call.heard == "How many pizzas? Press pound when done."
    assert call.waiting is not None and call.waiting.action == f"{line.base}/order/quantity"


def test_gather_with_finish_on_key_posts_digits_before_the_key(line: Line) -> None:
    call = line.dial()
    call.press("1")
    call.press("12#")
    assert line.state.requests[-1].path == "/order/quantity"
    assert line.state.requests[-1].params["Digits"] == "12"
    assert line.state.requests[-1].params["FinishedOnKey"] == "#"
    assert call.heard == "You ordered 12 pizzas.\nEnter your 4 digit PIN."
    assert call.waiting == PendingGather(
        action=f"{line.base}/order/pin", timeout=3.0, finish_on_key="", num_digits=4
    )


def test_keys_that_do_not_complete_a_gather_are_submitted_after_its_timeout(line: Line) -> None:
    call = line.dial()
    call.press("1")
    before = call.clock.now
    collected = call.press("12")
    assert collected.timed_out is True
    assert line.state.requests[-1].params["Digits"] == "12"
    assert line.state.requests[-1].params["FinishedOnKey"] == ""
    prompt = speech_seconds("How many pizzas? Press pound when done.")
    request_time = [e.at for e in call.transcript if e.kind == kind.REQUEST][-1]
    assert request_time == pytest.approx(before + prompt + 2 * SECONDS_PER_KEY + 5.0)
    assert kind.TIMEOUT in kinds(call)


def test_finish_on_key_disabled_only_num_digits_completes(line: Line) -> None:
    call = line.dial()
    call.press("1")
    call.press("2#")
    collected = call.press("12#4")  # '#' is an ordinary key here: the 4th key completes
    assert (collected.digits, collected.finished_on_key, collected.ignored) == ("12#4", "", "")
    session = line.state.requests[0]  # the cookie is set on the first response
    assert session.cookies == {}
    assert call.heard == "PIN 12#4 accepted. Session s1."
    assert call.ended_by == "application"


def test_silence_skips_the_action_and_the_document_end_ends_the_call(line: Line) -> None:
    call = line.dial(status_callback="/status")
    call.silence()
    assert call.heard == "We did not hear you. Goodbye."
    assert line.state.paths() == ["/voice", "/status"]
    assert (call.ended, call.ended_by, call.status, call.error) == (
        True,
        "application",
        "completed",
        None,
    )
    assert call.waiting is None
    prompt = speech_seconds(WELCOME) + 2 * speech_seconds(MENU) + 2
    assert call.clock.now == pytest.approx(prompt + 5 + speech_seconds(call.heard))


def test_a_lone_finish_on_key_counts_as_silence(line: Line) -> None:
    call = line.dial()
    call.press("1")
    collected = call.press("#")
    assert (collected.digits, collected.finished_on_key, collected.timed_out) == ("", "#", False)
    assert "/order/quantity" not in line.state.paths()
    assert call.heard == f"No quantity entered.\n{WELCOME}\n{MENU}\n{MENU}"
    assert line.state.requests[-1].method == "GET"


def test_action_on_empty_result_posts_empty_digits(line: Line) -> None:
    call = line.dial()
    call.press("4")
    assert call.heard == MORE
    call.silence()
    last = line.state.requests[-1]
    assert (last.path, last.params["Digits"], last.params["FinishedOnKey"]) == ("/more", "", "")
    assert call.heard == "You pressed nothing."
    assert call.ended_by == "application"


def test_keys_beyond_what_the_gather_takes_are_reported_as_ignored(line: Line) -> None:
    call = line.dial()
    collected = call.press("19")
    assert (collected.digits, collected.ignored) == ("1", "9")
    assert line.state.requests[-1].params["Digits"] == "1"
    [ignored] = [e for e in call.transcript if e.kind == kind.IGNORED]
    assert ignored.text == "9 (pressed after the <Gather> completed; lost)"


def test_barge_in_stops_the_nested_prompt(line: Line) -> None:
    call = line.dial()
    start = call.clock.now
    call.press("1", barge_in=True)
    [barge] = [e for e in call.transcript if e.kind == kind.BARGE_IN]
    assert barge.text == f"keys stop the prompt; not heard: {MENU} / {MENU}"
    assert [e.text for e in call.transcript if e.kind == kind.SAY] == [
        f"{WELCOME}  (voice=alice, language=en-US)"
    ]
    assert call.clock.now == pytest.approx(start + SECONDS_PER_KEY)
    assert call.said == [
        Utterance("How many pizzas? Press pound when done.", None, None, call.clock.now)
    ]


def test_without_barge_in_the_whole_prompt_plays_before_the_keys(line: Line) -> None:
    call = line.dial()
    start = call.clock.now
    call.press("1")
    [keys] = [e for e in call.transcript if e.kind == kind.KEYS]
    assert keys.at == pytest.approx(start + 2 * speech_seconds(MENU) + 2)
    assert [e.text for e in call.transcript if e.kind == kind.PAUSE] == ["2 s"]


def test_heard_holds_only_what_was_said_since_the_previous_action(line: Line) -> None:
    call = line.dial()
    call.press("7")
    assert call.heard == f"Sorry, 7 is not an option.\n{WELCOME}\n{MENU}\n{MENU}"
    assert line.state.paths() == ["/voice", "/menu", "/voice"]
    assert line.state.requests[-1].method == "POST"  # <Redirect> defaults to POST


# --- redirects, play, pause, relative URLs, cookies ---------------------------------------------


def test_redirect_get_play_and_pause_with_relative_urls(line: Line) -> None:
    call = line.dial()
    call.press("2")
    jingle = f"[play {line.base}/audio/jingle.mp3]"
    assert call.heard == "\n".join(
        ["We are open from 11 to 11.", jingle, jingle, "Welcome back.", MENU, MENU]
    )
    back = line.state.requests[-1]
    assert (back.method, back.path) == ("GET", "/voice")
    assert back.params["from"] == "hours"
    assert set(back.params) == STANDARD | {"from"}
    hours, first_jingle, second_jingle = call.said[:3]
    assert first_jingle.at == pytest.approx(hours.at + speech_seconds(hours.text) + 3)
    assert second_jingle.at == pytest.approx(first_jingle.at + 1.0)


def test_cookies_persist_within_a_call_and_never_leak_to_another(line: Line) -> None:
    first = line.dial()
    first.press("1")
    first.press("3#")
    first.press("4321")
    assert first.heard == "PIN 4321 accepted. Session s1."
    assert [seen.cookies for seen in line.state.requests] == [
        {},
        {"session": "s1"},
        {"session": "s1"},
        {"session": "s1"},
    ]
    line.state.requests.clear()
    second = line.dial()
    second.press("1")
    assert [seen.cookies for seen in line.state.requests] == [{}, {"session": "s2"}]


# --- dial, hangup, reject ------------------------------------------------------------------------


def test_dial_action_receives_the_chosen_dial_call_status(line: Line) -> None:
    call = line.dial()
    call.press("3")
    assert call.heard == "Connecting you.\nDial status completed, 30 seconds."
    last = line.state.requests[-1]
    assert last.path == "/dial-done"
    assert re.fullmatch(r"CA[0-9a-f]{32}", last.params.pop("DialCallSid"))
    assert set(last.params) == STANDARD | {"DialCallStatus", "DialCallDuration", "DialBridged"}
    [dial] = [e for e in call.transcript if e.kind == kind.DIAL]
    assert dial.text == "+15550001111: DialCallStatus=completed"
    assert call.ended_by == "application"


def test_dial_status_is_chosen_per_simulator_and_per_next_dial(line: Line) -> None:
    call = line.dial(dial_status="no-answer")
    call.press("3")
    assert call.heard == "Connecting you.\nDial status no-answer, 0 seconds."
    [dial] = [e for e in call.transcript if e.kind == kind.DIAL]
    assert call.clock.now >= dial.at + 20  # the Dial's timeout rang out
    other = line.dial()
    other.set_dial_status("busy")
    other.press("3")
    assert other.heard == "Connecting you.\nDial status busy, 0 seconds."
    with pytest.raises(ValueError, match="dial status 'engaged'"):
        other.set_dial_status("engaged")


def test_dial_without_action_continues_with_the_next_verb(line: Line) -> None:
    call = line.dial()
    call.press("4")
    call.press("5")
    assert call.heard == "The call with the kitchen is over."
    assert [e.text for e in call.transcript if e.kind == kind.DIAL] == [
        "+15550002222: DialCallStatus=completed"
    ]
    assert call.ended_by == "application" and call.status == "completed"


def test_hangup_verb_ends_the_call_and_later_verbs_never_play(line: Line) -> None:
    call = line.dial(status_callback="/status")
    call.press("*")
    assert call.heard == "Goodbye."
    assert (call.ended_by, call.status) == ("application", "completed")
    [callback] = line.state.status_callbacks
    assert callback["CallStatus"] == "completed"
    assert callback["CallDuration"] == str(math.ceil(call.clock.now))
    assert set(callback) == STANDARD | {"CallDuration", "Timestamp", "CallbackSource",
                                        "SequenceNumber"}


@pytest.mark.parametrize(("query", "status"), [("", "no-answer"), ("?reason=busy", "busy")])
def test_reject_as_first_verb_never_answers(line: Line, query: str, status: str) -> None:
    call = line.dial("/closed" + query, status_callback="/status")
    assert (call.ended, call.ended_by, call.status, call.rejected) == (
        True,
        "application",
        status,
        True,
    )
    assert call.heard == ""
    assert [cb["CallStatus"] for cb in line.state.status_callbacks] == [status]
    assert line.state.status_callbacks[0]["CallDuration"] == "0"


def test_reject_after_answering_is_a_hangup(line: Line) -> None:
    call = line.dial()
    call.press("4")
    call.press("6")
    assert call.heard == "Rejecting you now."
    assert (call.ended_by, call.status, call.rejected) == ("application", "completed", False)


# --- the caller ends the call; acting after the end ---------------------------------------------


def test_caller_hangup_posts_the_status_callback(line: Line) -> None:
    call = line.dial(status_callback=f"{line.base}/status")
    call.hangup()
    assert (call.ended_by, call.status, call.heard) == ("caller", "completed", "")
    [callback] = line.state.status_callbacks
    assert callback["CallStatus"] == "completed"
    assert callback["CallSid"] == call.call_sid
    assert kinds(call)[-3:] == [kind.HANGUP, kind.END, kind.STATUS_CALLBACK]


def test_acting_on_an_ended_call_raises_call_ended(line: Line) -> None:
    call = line.dial()
    call.press("*")
    for act in (lambda: call.press("1"), lambda: call.silence(), call.hangup):
        with pytest.raises(CallEnded, match=r"the call has ended \(hung up by the application"):
            act()


def test_silence_past_the_end_of_the_call_raises(line: Line) -> None:
    call = line.dial()
    with pytest.raises(CallEnded, match=r"stay silent \(1 of 2 silences done\)"):
        call.silence(2)
    assert call.heard == "We did not hear you. Goodbye."


def test_bad_keys_are_refused_before_anything_happens(line: Line) -> None:
    call = line.dial()
    with pytest.raises(ValueError, match="not phone keys: 'A'"):
        call.press("1A")
    with pytest.raises(ValueError, match="use silence"):
        call.press("")
    assert line.state.paths() == ["/voice"]
    assert call.waiting is not None


# --- unsupported verbs and application errors ----------------------------------------------------


def test_unsupported_verbs_are_reported_loudly_and_end_the_call(line: Line) -> None:
    call = line.dial("/connect", status_callback="/status")
    assert call.heard == "Streaming you."
    assert call.unsupported == ["<Connect>"]
    assert (call.ended_by, call.status) == ("error", "completed")
    assert call.error == "<Connect> is not simulated; the call cannot go on as Twilio's would"
    assert [e.text for e in call.transcript if e.kind == kind.NOT_SIMULATED] == [
        "<Connect> is not simulated"
    ]
    assert [cb["CallStatus"] for cb in line.state.status_callbacks] == ["completed"]


def test_a_recording_reaches_the_record_action(line: Line) -> None:
    call = line.dial()
    call.press("4")
    call.press("7")
    assert call.heard == "Leave a message.\n[beep]"
    assert call.recording is not None and call.waiting is None
    call.record(12, key="#")
    assert call.heard == "Thanks for your 12 second message."
    last = line.state.requests[-1]
    assert (last.path, last.params["RecordingDuration"], last.params["Digits"]) == (
        "/recorded", "12", "#")


def test_a_non_200_reply_is_an_application_error_with_the_body_excerpt(line: Line) -> None:
    call = line.dial()
    call.press("4")
    call.press("8")
    body = "Internal trouble: " + "x" * 500
    assert call.error == f"{line.base}/broken answered HTTP 500: {body[:200]}"
    assert call.ended_by == "error"
    assert call.outcome == f"application error: {call.error}"


def test_a_plain_text_reply_is_read_aloud_then_twilio_hangs_up(line: Line) -> None:
    call = line.dial("/not-xml")
    assert (call.ended_by, call.error) == ("application", None)
    assert call.heard == "Hello, I am plain text"


def test_a_reply_twilio_neither_parses_nor_plays_is_an_application_error(line: Line) -> None:
    call = line.dial("/json")
    assert call.ended_by == "error"
    assert call.error is not None
    assert call.error.startswith(f"{line.base}/json answered Content-Type 'application/json'")


def test_xml_whose_root_is_not_response_is_an_application_error(line: Line) -> None:
    call = line.dial("/wrong-root")
    assert call.error == (
        f"{line.base}/wrong-root answered XML whose root is <Document>, not <Response>: "
        "<Document><Say>Hi</Say></Document>"
    )
    assert call.heard == ""


def test_a_redirect_loop_ends_the_call_as_an_application_error(line: Line) -> None:
    call = line.dial("/loop")
    assert call.error == (
        "redirect loop: 200 requests without any caller input "
        f"(next would be POST {line.base}/loop)"
    )
    assert line.state.paths() == ["/loop"] * 200


def test_say_loop_zero_is_capped_and_noted(line: Line) -> None:
    call = line.dial("/tick")
    assert call.heard == "Tick.\nTick.\nTick."
    notes = [e.text for e in call.transcript if e.kind == kind.NOTE]
    assert '<Say loop="0"> repeats until the call moves on; simulated as 3 repetitions' in notes


def test_gather_without_action_posts_to_the_current_document(line: Line) -> None:
    call = line.dial("/patient")
    assert call.waiting is not None and call.waiting.action == f"{line.base}/patient"
    call.press("5")
    assert call.heard == "Finally, 5."
    assert line.state.requests[-1].params["Digits"] == "5"


def test_many_silences_take_virtual_time_not_wall_time(line: Line) -> None:
    call = line.dial("/patient")
    started = time.perf_counter()
    call.silence(30)
    wall = time.perf_counter() - started
    assert call.clock.now >= 30 * 10  # thirty 10-second Gather timeouts
    assert wall < 5.0  # generous; real waiting would take 300 s
    # one silence(30) is one caller action: heard holds all thirty prompts since it began
    assert call.heard == "\n".join(["Still there?"] * 30)
    assert [e.kind for e in call.transcript].count(kind.SILENCE) == 30
    assert line.state.paths() == ["/patient"] * 31


# --- signatures -------------------------------------------------------------------------------


def test_signed_requests_validate_on_the_app_side(line: Line) -> None:
    line.state.reset(auth_token=TOKEN)
    call = line.dial(auth_token=TOKEN, status_callback="/status")
    call.press("2")  # POST to /menu, then a GET with a query string back to /voice
    call.press("*")
    assert call.error is None and call.heard == "Goodbye."
    assert [(s.method, s.path) for s in line.state.requests] == [
        ("POST", "/voice"),
        ("POST", "/menu"),
        ("GET", "/voice"),
        ("POST", "/menu"),
        ("POST", "/status"),
    ]
    assert all(seen.signature for seen in line.state.requests)
    assert len(line.state.status_callbacks) == 1


def test_a_wrong_token_is_refused_by_the_app(line: Line) -> None:
    line.state.reset(auth_token=TOKEN)
    call = line.dial(auth_token="not-the-token")
    assert call.ended_by == "error"
    assert call.error is not None
    assert call.error.startswith(f"{line.base}/voice answered HTTP 403: ")


def test_requests_are_unsigned_without_a_token(line: Line) -> None:
    line.dial()
    assert [seen.signature for seen in line.state.requests] == [""]


# --- transcript ----------------------------------------------------------------------------------


def test_transcript_records_requests_verbs_keys_and_the_end(line: Line) -> None:
    call = line.dial(status_callback="/status")
    call.press("*")
    assert kinds(call) == [
        kind.NOTE,
        kind.REQUEST,
        kind.RESPONSE,
        kind.SAY,
        kind.GATHER,
        kind.SAY,
        kind.PAUSE,
        kind.SAY,
        kind.KEYS,
        kind.REQUEST,
        kind.RESPONSE,
        kind.SAY,
        kind.HANGUP,
        kind.END,
        kind.STATUS_CALLBACK,
    ]
    times = [event.at for event in call.transcript]
    assert times == sorted(times)
    text = call.transcript_text()
    assert f"POST {line.base}/menu" in text
    assert "Digits=*" in text
    assert "Goodbye.  (default voice)" in text
    assert f"{WELCOME}  (voice=alice, language=en-US)" in text
    assert "hangup          by the application (<Hangup>)" in text
    assert text.endswith(
        f"Ended: hung up by the application (CallStatus=completed) after {call.clock.now:g} s"
        " (virtual)\n"
    )


# --- transports on their own ---------------------------------------------------------------------


def test_a_connection_failure_is_an_application_error_not_a_traceback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpTransport(timeout=2) as transport:
        call = Simulator(transport, f"http://127.0.0.1:{port}/voice").dial()
    assert call.ended_by == "error"
    assert call.error is not None
    assert call.error.startswith(f"POST http://127.0.0.1:{port}/voice failed: ConnectError")


@pytest.mark.parametrize("in_process", [WsgiTransport, DirectTransport])
def test_an_in_process_app_that_raises_answers_500(in_process: Callable[[Any], Transport]) -> None:
    def exploding_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("the oven is on fire")

    call = Simulator(in_process(exploding_app), "http://pizza.test/voice").dial()
    assert call.error is not None
    assert call.error.startswith(
        "http://pizza.test/voice answered HTTP 500: RuntimeError: the oven is on fire"
    )


def test_simulator_refuses_a_relative_url_and_an_unknown_dial_status() -> None:
    transport = WsgiTransport(create_app())
    with pytest.raises(ValueError, match="absolute http"):
        Simulator(transport, "/voice")
    with pytest.raises(ValueError, match="dial status 'maybe'"):
        Simulator(transport, "http://pizza.test/voice", dial_status="maybe")
