"""Twilio voice webhooks: POST /voice (the number's Voice URL), /voice/step, /status."""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator, compare

from ivr.engine.flow import Event
from ivr.engine.hotline import Engine
from ivr.engine.instructions import Hangup, Instruction
from ivr.engine.prompts import DEFAULT_LOCALE
from ivr.engine.session import CallSession
from ivr.web import twiml

log = logging.getLogger("ivr.web")

bp = Blueprint("voice", __name__)

ANSWER_WAIT_SECONDS = 12.0  # a duplicate waits for the first delivery (Twilio gives up at 15 s)
MAX_FIELD = 256  # longer form values are cut before they reach the engine or a log
_SID = re.compile(r"[\x21-\x7e]{1,64}")


def _engine() -> Engine:
    engine: Engine = current_app.extensions["ivr12333"]
    return engine


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


def _masked(digits: str) -> str:
    """Keys for logs: only how many. They may be a password; even its last four say too much."""
    return f"{len(digits)} keys"


class _Params(dict[str, str]):
    """Form values as the validator reads them (one per name), without its AttributeError
    fallbacks: probing a plain dict for getall and getlist cost two exceptions per field."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def _signed_url() -> str:
    public = _engine().settings.public_url
    if public:
        qs = request.query_string.decode("latin-1")
        return f"{public}{request.path}" + (f"?{qs}" if qs else "")
    return request.url


@bp.before_request
def check_signature() -> None:
    """With an auth token set, anything without a valid X-Twilio-Signature is refused (403)."""
    token = _engine().settings.auth_token
    if not token:
        return
    signature = request.headers.get("X-Twilio-Signature", "")
    params = _Params(request.form.to_dict(flat=True) if request.method == "POST" else {})
    validator = RequestValidator(token)
    url = _signed_url()
    # Twilio signs the URL it requested, which is the URL received: one HMAC over it settles
    # nearly every request. validate() tries that URL with and without the port (two HMACs)
    # and is the fallback, so what it accepts is still accepted.
    if compare(validator.compute_signature(url, params), signature):
        return
    if not validator.validate(url, params, signature):
        log.warning("rejected unsigned or badly signed request to %s", request.path)
        abort(403)


def _field(name: str) -> str:
    return (request.values.get(name) or "")[:MAX_FIELD]


def _call_sid() -> str:
    """The CallSid if it looks like one (printable ASCII, no spaces): it goes into log lines."""
    sid = _field("CallSid")
    return sid if _SID.fullmatch(sid) else ""


def _render(engine: Engine, instructions: list[Instruction], step: int) -> str:
    base = engine.settings.public_url or request.host_url.rstrip("/")
    return twiml.render(
        instructions,
        action_url=f"{base}/voice/step?s={step}",
        silence_url=f"{base}/voice/step?s={step}&e=silence",
        dial_url=f"{base}/voice/step?s={step}&e=dialed",
        voices=engine.settings.voices,
    )


def _stored_answer(engine: Engine, session: CallSession) -> str | None:
    """The answer already given for the session's last step, waiting while it is in progress."""
    deadline = time.monotonic() + ANSWER_WAIT_SECONDS
    current: CallSession | None = session
    while current is not None and not current.last_response and time.monotonic() < deadline:
        time.sleep(0.02)
        current = engine.store.load(session.call_sid)
    return current.last_response if current and current.last_response else None


def _answer(call_sid: str, seq: int, event: Event) -> str:
    """Load the call, replay or step it, save it; any failure becomes an apology, not a 500."""
    engine = _engine()
    if not call_sid:
        log.warning("webhook without CallSid on %s", request.path)
        return _render(engine, engine.apology_goodbye(), 0)
    try:
        session = engine.store.load(call_sid)
    except Exception:
        log.exception("call=%s session store unavailable", call_sid)
        return _render(engine, engine.apology_goodbye(), 0)
    if session is None:
        if event[0] != "start":
            log.warning("call=%s unknown call on %s", call_sid, request.path)
            return _render(engine, engine.apology_goodbye(), 0)
        session = engine.new_session(call_sid, _field("From") or "anonymous")
        is_new = True
    else:
        if event[0] == "start" or seq != session.step:
            # a retry or a stale request: the same answer, no change
            return _stored_answer(engine, session) or _render(engine, engine.apology_goodbye(), 0)
        if session.ended:
            return twiml.hangup_only()
        is_new = False
    expected = session.step
    locale = str(session.data.get("lang", DEFAULT_LOCALE))
    try:
        # claim this step before anything with an effect (a password check): a duplicate
        # delivered to another worker meanwhile waits for our answer instead of counting twice
        if not is_new and not engine.store.claim(call_sid, expected):
            other = engine.store.load(call_sid)
            stored = _stored_answer(engine, other) if other else None
            return stored or _render(engine, engine.apology_goodbye(locale), 0)
    except Exception:
        log.exception("call=%s session store unavailable", call_sid)
        return _render(engine, engine.apology_goodbye(locale), 0)
    try:
        instructions = engine.step(session, event)
    except Exception:
        log.exception("call=%s failed in state %s on %s", call_sid, session.state, event[0])
        instructions = engine.recover(session)
    session.step = expected + 1
    body = _render(engine, instructions, session.step)
    session.last_response = body
    session.ended = bool(instructions) and isinstance(instructions[-1], Hangup)
    try:
        saved = (engine.store.create(session) if is_new
                 else engine.store.save(session, session.step))
    except Exception:
        log.exception("call=%s could not save the session", call_sid)
        return _render(engine, engine.apology_goodbye(locale), 0)
    if not saved:  # another worker created this same call first: give its answer
        other = engine.store.load(call_sid)
        return (_stored_answer(engine, other) if other else None) or body
    log.info("call=%s %s -> %s (%s)", call_sid, event[0], session.state,
             _masked(event[1]) if event[0] == "digits" else event[1] or "-")
    return body


@bp.post("/voice")
def voice() -> Response:
    """A new call: the Voice URL of the Twilio number points here."""
    return _xml(_answer(_call_sid(), 0, ("start", "")))


@bp.post("/voice/step")
def step() -> Response:
    """Every later turn: digits from a Gather, the silence redirect, or a Dial's outcome."""
    try:
        seq = int(request.args.get("s", "-1"))
    except ValueError:
        seq = -1
    kind = request.args.get("e", "")
    event: Event
    if kind == "silence":
        event = ("silence", "")
    elif kind == "dialed":
        event = ("dialed", _field("DialCallStatus") or "failed")
    else:
        digits = _field("Digits")
        event = ("digits", digits) if digits else ("silence", "")
    return _xml(_answer(_call_sid(), seq, event))


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: a completed call's session is closed."""
    call_sid = _call_sid()
    if call_sid and _field("CallStatus") in ("completed", "busy", "failed", "no-answer",
                                            "canceled"):
        try:
            _engine().store.end(call_sid, twiml.hangup_only())
        except Exception:
            log.exception("call=%s could not close the session", call_sid)
    return Response("", status=204)


