"""Floods refused before they cost (issue 20, point 5): what no Twilio request can be is
refused from its raw bytes, before the form is parsed and before the signature is computed;
the signature is computed once. Counted, not timed: how often twilio's validator computes a
signature and how often werkzeug parses a form (the CPU figures are in bench/floods.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.formparser import FormDataParser

from ivr.web import form

TOKEN = "test-auth-token-0123456789abcdef"
URL = "http://localhost/voice"
SID = "CA" + "0123456789abcdef" * 2

#: a first webhook as Twilio sends it (every field of a real inbound call, CallToken included)
TWILIO_FORM = {
    "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallSid": SID,
    "CallStatus": "ringing", "CallToken": "%7B%22parentCallInfoToken%22" + "A" * 1400,
    "Called": "+8612333", "CalledCity": "", "CalledCountry": "CN", "CalledState": "",
    "CalledZip": "", "Caller": "+8613900000001", "CallerCity": "", "CallerCountry": "CN",
    "CallerState": "", "CallerZip": "", "Direction": "inbound", "From": "+8613900000001",
    "FromCity": "", "FromCountry": "CN", "FromState": "", "FromZip": "", "StirVerstat":
    "TN-Validation-Passed-A", "To": "+8612333", "ToCity": "", "ToCountry": "CN", "ToState": "",
    "ToZip": "", "SipHeader_X-Carrier": "a.b-c",
}


class Counted:
    """How often twilio's validator computes a signature and werkzeug parses a form."""

    def __init__(self) -> None:
        self.signatures = 0
        self.parses = 0


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    counts = Counted()
    compute, parse = RequestValidator.compute_signature, FormDataParser.parse

    def counting_compute(self: RequestValidator, *args: Any, **kwargs: Any) -> Any:
        counts.signatures += 1
        return compute(self, *args, **kwargs)

    def counting_parse(self: FormDataParser, *args: Any, **kwargs: Any) -> Any:
        counts.parses += 1
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(RequestValidator, "compute_signature", counting_compute)
    monkeypatch.setattr(FormDataParser, "parse", counting_parse)
    yield counts


@pytest.fixture
def client(app_factory: Callable[..., Any]) -> Any:
    return app_factory(auth_token=TOKEN).test_client()


def _post(client: Any, body: bytes, signature: str = "bad") -> Any:
    return client.post("/voice", data=body, headers={"X-Twilio-Signature": signature},
                       content_type=form.FORM_TYPE)


def test_the_flood_is_refused_unparsed_and_unsigned(client: Any, counted: Counted) -> None:
    """~6,800 fields within the 64 KiB cap: parsed whole and signed three times before its
    403, 30-40x a normal request's CPU. Now refused by its count alone."""
    body = b"CallSid=" + SID.encode() + b"".join(b"&a%d=" % i for i in range(6800))
    assert len(body) < 64 * 1024
    response = _post(client, body)
    assert response.status_code == 400
    assert "more than 100 fields" in response.get_data(as_text=True)
    assert (counted.signatures, counted.parses) == (0, 0)


@pytest.mark.parametrize(("body", "why"), [
    (b"CallSid=" + SID.encode() + b"&Digits=" + b"1" * 5000, "a value over 4096 bytes"),
    (b"CallSid=" + SID.encode() + b"&%00evil=1", "a field name not of Twilio's form"),
    (b"CallSid=" + SID.encode() + b"&&Digits=1", "a field name not of Twilio's form"),
])
def test_what_twilio_never_sends_is_refused_before_the_signature(
        client: Any, counted: Counted, body: bytes, why: str) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    assert why in response.get_data(as_text=True)
    assert (counted.signatures, counted.parses) == (0, 0)


def test_a_query_string_flood_is_refused_too(client: Any, counted: Counted) -> None:
    query = "&".join(f"s{i}=1" for i in range(150))
    response = client.post(f"/voice/step?{query}", data={"CallSid": SID},
                           headers={"X-Twilio-Signature": "bad"})
    assert response.status_code == 400
    assert (counted.signatures, counted.parses) == (0, 0)


def test_a_multipart_body_is_refused_unparsed(client: Any, counted: Counted) -> None:
    response = client.post("/voice", data={"CallSid": SID, "f": (b"x" * 100, "a.bin")},
                           headers={"X-Twilio-Signature": "bad"},
                           content_type="multipart/form-data")
    assert response.status_code == 415
    assert (counted.signatures, counted.parses) == (0, 0)


def test_a_badly_signed_request_costs_one_signature(client: Any, counted: Counted) -> None:
    """Before: compute_signature, then validate() with and without the port: three."""
    response = _post(client, urlencode(TWILIO_FORM).encode())
    assert response.status_code == 403
    assert (counted.signatures, counted.parses) == (1, 1)


def test_twilios_own_request_is_answered_on_one_signature(client: Any, counted: Counted) -> None:
    """The limits refuse nothing Twilio sends: every field of a real first webhook."""
    body = urlencode(TWILIO_FORM).encode()
    assert form.problem(body) is None
    signature = RequestValidator(TOKEN).compute_signature(URL, TWILIO_FORM)
    counted.signatures = 0
    response = _post(client, body, signature)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "<Gather" in response.get_data(as_text=True)
    assert (counted.signatures, counted.parses) == (1, 1)
