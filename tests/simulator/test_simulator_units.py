"""Building blocks of the simulator on their own: key collection, clock, transport, TwiML."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from simulator import Event, PendingGather, Signed, WebhookClient, WebhookResponse, WsgiTransport
from simulator.clock import Clock, speech_seconds
from simulator.errors import ApplicationError, Stalled
from simulator.twiml import parse_document
from simulator.world import Scheduler

KEYS = "0123456789*#"

gathers = st.builds(
    PendingGather,
    action=st.just("http://x.test/a"),
    finish_on_key=st.sampled_from(["", *KEYS]),
    num_digits=st.none() | st.integers(min_value=1, max_value=6),
)


@given(gathers, st.text(alphabet=KEYS, max_size=12))
def test_collect_splits_keys_into_digits_finish_key_and_ignored(
    gather: PendingGather, keys: str
) -> None:
    got = gather.collect(keys)
    assert got.digits + got.finished_on_key + got.ignored == keys
    if gather.finish_on_key:
        assert gather.finish_on_key not in got.digits
    if gather.num_digits is not None:
        assert len(got.digits) <= gather.num_digits
    complete_by_count = gather.num_digits is not None and len(got.digits) == gather.num_digits
    assert got.timed_out == (not got.finished_on_key and not complete_by_count)
    if got.timed_out:
        assert got.ignored == ""


@pytest.mark.parametrize(
    ("finish", "num", "keys", "expected"),
    [
        ("#", None, "123#", ("123", "#", "", False)),
        ("#", None, "123", ("123", "", "", True)),
        ("#", None, "#", ("", "#", "", False)),
        ("#", 1, "19", ("1", "", "9", False)),
        ("#", 3, "1#9", ("1", "#", "9", False)),
        ("", 2, "#*", ("#*", "", "", False)),
        ("*", None, "1#*2", ("1#", "*", "2", False)),
    ],
)
def test_collect_examples(
    finish: str, num: int | None, keys: str, expected: tuple[str, str, str, bool]
) -> None:
    got = PendingGather("http://x.test/a", finish_on_key=finish, num_digits=num).collect(keys)
    assert (got.digits, got.finished_on_key, got.ignored, got.timed_out) == expected


def test_speech_estimate_and_clock() -> None:
    assert speech_seconds("欢迎致电") == 0.8
    assert speech_seconds("Hi there") == 0.49  # 7 characters, spaces are free
    assert speech_seconds("按1") == 0.27
    clock = Clock()
    assert clock.advance(1.25) == 1.25
    assert clock.now == 1.25
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def recording_app(seen: list[dict[str, Any]]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        seen.append(
            {
                "method": environ["REQUEST_METHOD"],
                "query": environ["QUERY_STRING"],
                "body": dict(parse_qsl(body.decode())),
                "signature": environ.get("HTTP_X_TWILIO_SIGNATURE"),
                "content_type": environ.get("CONTENT_TYPE", ""),
            }
        )
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<Response/>"]

    return app


def test_post_is_form_encoded_and_signed_over_url_and_params() -> None:
    seen: list[dict[str, Any]] = []
    params = {"From": "+8613800000000", "Digits": "1#"}
    client = WebhookClient(Signed(WsgiTransport(recording_app(seen)), "tok"))
    reply = client.request("POST", "http://x.test/voice", params)
    assert reply.url == "http://x.test/voice"
    assert (reply.status, reply.content_type, reply.text) == (200, "text/xml", "<Response/>")
    [request] = seen
    assert request["method"] == "POST"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["body"] == params
    expected = RequestValidator("tok").compute_signature("http://x.test/voice", params)
    assert request["signature"] == expected


def test_get_puts_params_in_the_query_and_signs_the_full_url_only() -> None:
    seen: list[dict[str, Any]] = []
    client = WebhookClient(Signed(WsgiTransport(recording_app(seen)), "tok"))
    reply = client.request("GET", "http://x.test/voice?a=1", {"From": "+86 1"})
    [request] = seen
    assert request["query"] == "a=1&From=%2B86+1"
    assert request["body"] == {}
    full = "http://x.test/voice?a=1&From=%2B86+1"
    assert reply.url == full
    assert request["signature"] == RequestValidator("tok").compute_signature(full, {})


def test_no_token_no_signature_header() -> None:
    seen: list[dict[str, Any]] = []
    WebhookClient(WsgiTransport(recording_app(seen))).request("POST", "http://x.test/voice", {})
    assert seen[0]["signature"] is None


def reply(content: bytes, status: int = 200) -> WebhookResponse:
    return WebhookResponse(status, (("Content-Type", "text/xml"),), content, "http://x.test/v")


def test_documents_are_parsed_from_bytes_honouring_the_declared_encoding() -> None:
    body = '<?xml version="1.0" encoding="GBK"?><Response><Say>欢迎</Say></Response>'
    [say] = parse_document(reply(body.encode("gbk")))
    assert (say.tag, say.text) == ("Say", "欢迎")
    [say] = parse_document(reply(body.replace("GBK", "UTF-8").encode("utf-8")))
    assert say.text == "欢迎"


def test_an_unknown_declared_encoding_is_an_application_error() -> None:
    body = b'<?xml version="1.0" encoding="x-nope"?><Response/>'
    with pytest.raises(ApplicationError, match="a body that is not XML"):
        parse_document(reply(body))


def test_entity_expansion_is_refused_as_an_application_error() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Response>&a;</Response>'
    with pytest.raises(ApplicationError, match="XML with forbidden constructs"):
        parse_document(reply(bomb))


def test_a_redirect_status_names_its_location() -> None:
    headers = (("Content-Type", "text/html"), ("Location", "http://x.test/v/"))
    moved = WebhookResponse(308, headers, b"", "http://x.test/v")
    with pytest.raises(ApplicationError, match=r"HTTP 308 \(Location: http://x.test/v/\)"):
        parse_document(moved)


def test_event_format_puts_params_on_their_own_lines() -> None:
    event = Event(1.5, "request", "POST http://x.test/v", {"Digits": "1"})
    assert event.format() == (
        "    1.50s  request         POST http://x.test/v\n" + " " * 27 + "Digits=1"
    )


def test_a_scenario_whose_clock_stands_still_is_stalled_not_spun() -> None:
    """Two parties that let only sub-millisecond time pass, turn after turn: the scheduler
    raises Stalled in the party that asks for one more turn, and the run ends."""
    clock = Clock()
    scheduler = Scheduler(clock)
    clock.scheduler = scheduler

    def spinner() -> None:
        while True:
            clock.advance(0.0001)  # rounds to the same millisecond: no progress

    scheduler.spawn("one", 0.0, spinner)
    scheduler.spawn("two", 0.0, spinner)
    with pytest.raises(Stalled, match=r"no progress: 100\d\d turns in a row at 0 s"):
        scheduler.run()
    assert clock.now == 0.0


def test_deadlines_are_moments_the_clock_can_show() -> None:
    clock = Clock()
    clock.advance(21.23)
    assert 21.23 + 18 != 39.23  # the float sum: a hair past every millisecond the clock shows
    assert clock.after(18) == 39.23
    clock.advance(18)
    assert clock.now == clock.after(0) == 39.23
