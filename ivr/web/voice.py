"""Twilio voice webhooks: POST /voice (the number's Voice URL), /voice/step, /status; the
agent queue's /voice/hold (a waiting caller's wait document) and /voice/bridge (where the REST
API moves the caller an agent takes); POST /agent (the agents' line: its own number's Voice
URL) and /agent/wait (an agent's wait alone in their room)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import cast

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator, compare

from ivr.engine.flow import CallEvent
from ivr.engine.hotline import Hotline
from ivr.engine.instructions import Instruction
from ivr.web import form, twiml

log = logging.getLogger("ivr.web")

bp = Blueprint("voice", __name__)

MAX_FIELD = 256  # longer form values are cut before they reach the engine or a log
_PARTY = r"\+?[0-9]{0,20}|[A-Za-z]{1,32}|(?:client|sip):[\x21-\x7e]{1,200}"
#: Twilio's fields as Twilio sends them. A request whose field breaks its rule is refused (400)
#: before anything happens. Signatures concatenate names and values without separators, so a
#: captured request re-split at another boundary still validates: these rules refuse it (a
#: value that swallowed the next name and value is never of its field's form).
STRICT_FIELDS = {
    name: re.compile(rule) for name, rule in {
        "CallSid": r"CA[0-9a-f]{32}",
        "AccountSid": r"AC[0-9a-f]{32}",
        "ApiVersion": r"2010-04-01",
        "CallStatus": r"queued|ringing|in-progress|completed|busy|failed|no-answer|canceled",
        "Direction": r"inbound|outbound-api|outbound-dial|trunking-terminating"
                     r"|trunking-originating",
        "Digits": r"[0-9*#]{0,64}",
        "FinishedOnKey": r"[0-9*#]?",
        "DialCallStatus": r"completed|answered|busy|no-answer|failed|canceled",
        "QueueResult": r"bridged|bridging-in-process|queue-full|error|hangup|leave|redirected"
                       r"|redirected-from-bridged|system-error",
        "From": _PARTY, "To": _PARTY, "Caller": _PARTY, "Called": _PARTY,
        # the geography of both parties: no field Twilio fills can swallow "Digits..."
        **{f"{party}{field}": rule
           for party in ("From", "To", "Caller", "Called")
           for field, rule in (("City", r"[^0-9]{0,64}"), ("State", r"[^0-9]{0,64}"),
                               ("Zip", r"[0-9A-Za-z -]{0,10}"), ("Country", r"[A-Z]{0,3}"))},
    }.items()
}


def _hotline() -> Hotline:
    hotline: Hotline = current_app.extensions["ivr12333"]
    return hotline


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


class _Params(dict[str, str]):
    """Form values as the validator reads them (one per name), without its AttributeError
    fallbacks: probing a plain dict for getall and getlist cost two exceptions per field."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def _signed_url() -> str:
    public = _hotline().settings.public_url
    if public:
        qs = request.query_string.decode("latin-1")
        return f"{public}{request.path}" + (f"?{qs}" if qs else "")
    return request.url


@bp.before_request
def check_shape() -> None:
    """What no Twilio request can be is refused (400, 415) from the raw bytes, before the form
    is parsed and before its signature is computed (ivr/web/form.py)."""
    # the body is in memory already (RequestGuard, or the test client; over the cap: 413
    # here); cached, the form is then parsed from these very bytes
    body = request.get_data(cache=True) if request.method == "POST" else b""
    if body and request.mimetype != form.FORM_TYPE:
        abort(415, f"a webhook is a form ({form.FORM_TYPE})")
    why = form.problem(request.query_string) or form.problem(body)
    if why is not None:
        log.warning("refused a request to %s: %s", request.path, why)
        abort(400, f"not a Twilio request: {why}")


@bp.before_request
def check_signature() -> None:
    """With an auth token set, anything without a valid X-Twilio-Signature is refused (403).
    The signature is computed once, by twilio's RequestValidator, over the URL Twilio requested
    (IVR_PUBLIC_URL and the path, exactly as configured at Twilio: no port variants tried)."""
    token = _hotline().settings.auth_token
    if not token:
        return
    signature = request.headers.get("X-Twilio-Signature", "")
    params = _Params(request.form.to_dict(flat=True) if request.method == "POST" else {})
    if not compare(RequestValidator(token).compute_signature(_signed_url(), params), signature):
        log.warning("rejected unsigned or badly signed request to %s", request.path)
        abort(403)


@bp.before_request
def check_fields() -> None:
    """A webhook names its call (CallSid), and every Twilio field it carries has its form."""
    values = request.values
    if not values.get("CallSid"):
        abort(400, "a webhook without CallSid")
    # every (name, value) sent (query string and form) looked up among the ~40 rules, not each
    # rule looked up in the request; werkzeug's stubs type the values as lists
    for name, value in cast("Iterable[tuple[str, str]]", values.items(multi=True)):
        rule = STRICT_FIELDS.get(name)
        if rule is not None and not rule.fullmatch(value):
            log.warning("refused a request to %s: %s is not of its form", request.path, name)
            abort(400, f"{name} is not of Twilio's form")


def _field(name: str) -> str:
    return (request.values.get(name) or "")[:MAX_FIELD]


def _call_sid() -> str:
    """The CallSid (check_fields saw it has Twilio's form: it may go into log lines)."""
    return _field("CallSid")


def _render(instructions: Sequence[Instruction], step: int) -> str:
    """TwiML for step `step`: its action URLs carry the step number."""
    base = _hotline().settings.public_url or request.host_url.rstrip("/")
    return twiml.render(
        instructions,
        action_url=f"{base}/voice/step?s={step}",
        silence_url=f"{base}/voice/step?s={step}&e=silence",
        dial_url=f"{base}/voice/step?s={step}&e=dialed",
        voices=_hotline().settings.voices,
        queue_url=f"{base}/voice/step?s={step}&e=queued",
        wait_url=f"{base}/voice/hold",
        room_wait_url=f"{base}/agent/wait",
    )


def _turn(step: int, event: CallEvent) -> Response:
    body = _hotline().take_turn(_call_sid(), step, event, caller=_field("From") or "anonymous",
                                render=_render, called=_field("To") or _field("Called"))
    return _xml(body)


@bp.post("/voice")
def voice() -> Response:
    """A new call: the Voice URL of the Twilio number points here."""
    return _turn(0, CallEvent("start"))


@bp.post("/voice/step")
def step() -> Response:
    """Every later turn: digits from a Gather, the silence redirect, or a Dial's outcome."""
    try:
        seq = int(request.args.get("s", "-1"))
    except ValueError:
        seq = -1
    kind = request.args.get("e", "")
    if kind == "silence":
        event = CallEvent("silence")
    elif kind == "dialed":
        event = CallEvent("dialed", _field("DialCallStatus") or "failed")
    elif kind == "queued":
        event = CallEvent("left_queue", _field("QueueResult") or "error")
    else:  # a <Gather> posts its keys: Twilio always sends Digits here
        if "Digits" not in request.form:
            abort(400, "a Gather's answer without Digits")
        digits = _field("Digits")
        event = CallEvent("digits", digits) if digits else CallEvent("silence")
    return _turn(seq, event)


@bp.post("/agent")
def agent() -> Response:
    """A call to the agents' line: an agent keys their id and PIN, then takes callers."""
    return _turn(0, CallEvent("start", "agent"))


@bp.post("/voice/hold")
def hold() -> Response:
    """A waiting caller's wait document (Twilio requests it again when it ends); with `k`,
    the key the caller pressed at the previous one."""
    base = _hotline().settings.public_url or request.host_url.rstrip("/")
    key = _field("Digits") if request.args.get("k") else None
    instructions = _hotline().hold(_call_sid(), key)
    return _xml(twiml.render(instructions, action_url=f"{base}/voice/hold?k=1",
                             silence_url=f"{base}/voice/hold", dial_url="",
                             voices=_hotline().settings.voices))


_ROOM = re.compile(r"CA[0-9a-f]{32}")


@bp.post("/voice/bridge")
def bridge() -> Response:
    """A queued caller an agent took, moved here out of the queue by the REST API (a queue
    Member's Url): into the agent's room (named after the agent's call)."""
    room = request.args.get("room", "")
    if not _ROOM.fullmatch(room):
        abort(400, "a bridge without its room")
    return _xml(twiml.render(_hotline().joined_room(_call_sid(), room), action_url="",
                             silence_url="", dial_url="", voices=_hotline().settings.voices))


@bp.post("/agent/wait")
def agent_wait() -> Response:
    """An agent alone in their room (the conference's waitUrl)."""
    return _xml(twiml.render(_hotline().agent_waiting(_call_sid()), action_url="",
                             silence_url="", dial_url="", voices=_hotline().settings.voices))


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: a completed call's session is closed."""
    call_sid = _call_sid()
    if call_sid and _field("CallStatus") in ("completed", "busy", "failed", "no-answer",
                                            "canceled"):
        _hotline().end_call(call_sid)
    return Response("", status=204)
