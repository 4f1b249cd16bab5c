"""A small TwiML app for the conformance tests: one route per semantic, every request kept."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, Response, redirect, request


@dataclass
class Seen:
    """A request as the app received it."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class Log:
    requests: list[Seen] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]


def twiml(body: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    mimetype="text/xml")


def create_app() -> Flask:
    app = Flask(__name__)
    log = Log()
    app.config["LOG"] = log

    @app.before_request
    def keep() -> None:
        params = dict(request.form if request.method == "POST" else request.args)
        log.requests.append(Seen(request.method, request.path, params))

    @app.route("/ok", methods=["GET", "POST"])
    def ok() -> Response:
        return Response("", status=204)

    # --- Record ---------------------------------------------------------------------------------
    @app.post("/record")
    def record() -> Response:
        return twiml('<Say>Leave a message.</Say>'
                     '<Record maxLength="20" timeout="3" finishOnKey="#*" action="/recorded" '
                     'recordingStatusCallback="/ok" transcribeCallback="/ok"/>'
                     "<Say>No message.</Say>")

    @app.post("/recorded")
    def recorded() -> Response:
        return twiml(f"<Say>Got {request.form['RecordingDuration']} seconds.</Say>")

    # --- queues ---------------------------------------------------------------------------------
    @app.post("/caller")
    def caller() -> Response:
        return twiml('<Say>Please hold.</Say>'
                     '<Enqueue waitUrl="/wait" action="/left">support</Enqueue>'
                     "<Say>Never said.</Say>")

    @app.post("/wait")
    def wait() -> Response:
        position = request.form["QueuePosition"]
        return twiml(f"<Say>You are number {position}.</Say><Play>/music.mp3</Play>"
                     '<Pause length="8"/>')

    @app.post("/left")
    def left() -> Response:
        return twiml(f"<Say>Queue result {request.form['QueueResult']}.</Say><Hangup/>")

    @app.post("/agent")
    def agent() -> Response:
        return twiml('<Dial action="/agent-done" timeout="60">'
                     '<Queue url="/connecting">support</Queue></Dial>')

    @app.post("/connecting")
    def connecting() -> Response:
        return twiml("<Say>Connecting you to an agent.</Say>")

    @app.post("/agent-done")
    def agent_done() -> Response:
        return twiml(f"<Say>Call {request.form['DialCallStatus']}.</Say>"
                     '<Redirect>/agent</Redirect>')

    @app.post("/leaver")
    def leaver() -> Response:
        return twiml('<Enqueue waitUrl="/wait-leave" action="/left">support</Enqueue>')

    @app.post("/wait-leave")
    def wait_leave() -> Response:
        return twiml('<Gather numDigits="1" action="/wait-key" timeout="4">'
                     "<Say>Press 1 to leave.</Say></Gather>")

    @app.post("/wait-key")
    def wait_key() -> Response:
        return twiml("<Leave/>" if request.form["Digits"] == "1" else "<Say>Staying.</Say>")

    # --- conference -----------------------------------------------------------------------------
    @app.post("/guest")
    def guest() -> Response:
        return twiml('<Dial action="/conf-done"><Conference startConferenceOnEnter="false" '
                     'waitUrl="/conf-wait">room</Conference></Dial>')

    @app.post("/conf-wait")
    def conf_wait() -> Response:
        return twiml('<Say>Waiting for the host.</Say><Pause length="10"/>')

    @app.post("/host")
    def host() -> Response:
        return twiml('<Dial><Conference endConferenceOnExit="true">room</Conference></Dial>'
                     "<Say>The host has left.</Say>")

    @app.post("/moderator")
    def moderator() -> Response:
        return twiml('<Dial action="/conf-done"><Conference waitUrl="/conf-wait" '
                     'statusCallback="/ok" statusCallbackEvent="start end join leave" '
                     'endConferenceOnExit="true">team</Conference></Dial>')

    @app.post("/member")
    def member() -> Response:
        return twiml('<Dial action="/conf-done"><Conference waitUrl="/conf-wait" '
                     'statusCallback="/later">team</Conference></Dial>')

    @app.post("/conf-done")
    def conf_done() -> Response:
        return twiml(f"<Say>Conference over: {request.form['DialCallStatus']}.</Say>")

    # --- Dial nouns -----------------------------------------------------------------------------
    @app.post("/transfer")
    def transfer() -> Response:
        return twiml('<Dial action="/transfer-done" callerId="+14155550100">'
                     '<Number url="/screen" sendDigits="12w3" statusCallback="/ok" '
                     'statusCallbackEvent="initiated ringing answered completed">'
                     "+14155550199</Number></Dial>")

    @app.post("/recorded-dial")
    def recorded_dial() -> Response:
        return twiml('<Dial record="record-from-answer">+15550001111</Dial>')

    @app.post("/menu")
    def menu() -> Response:
        return twiml('<Gather numDigits="1" action="/transfer"><Say>Press 1.</Say></Gather>')

    @app.post("/long-menu")
    def long_menu() -> Response:
        return twiml('<Gather numDigits="1" action="/ok"><Say>For balances press one.</Say>'
                     '<Pause length="2"/><Say>For an agent press zero.</Say></Gather>')

    @app.post("/screen")
    def screen() -> Response:
        return twiml('<Gather numDigits="1" action="/screened">'
                     "<Say>Press 1 to accept.</Say></Gather><Hangup/>")

    @app.post("/screened")
    def screened() -> Response:
        return twiml("" if request.form["Digits"] == "1" else "<Hangup/>")

    @app.post("/transfer-done")
    def transfer_done() -> Response:
        form = request.form
        return twiml(f"<Say>{form['DialCallStatus']} bridged {form.get('DialBridged')}.</Say>")

    # --- HTTP -----------------------------------------------------------------------------------
    @app.route("/moved", methods=["GET", "POST"])
    def moved() -> Response:
        return redirect("/moved-here", code=int(request.args.get("code", "302")))

    @app.route("/moved-here", methods=["GET", "POST"])
    def moved_here() -> Response:
        return twiml(f"<Say>Moved, by {request.method}.</Say>")

    @app.route("/quickstart", methods=["GET", "POST"])
    def quickstart() -> Response:
        values = request.form if request.method == "POST" else request.args
        return twiml(f"<Say>Hello caller from {values['FromCity']}.</Say>")

    @app.post("/broken")
    def broken() -> Response:
        return Response("oops", status=500)

    @app.post("/fallback")
    def fallback() -> Response:
        return twiml(f"<Say>Fallback for error {request.form['ErrorCode']}.</Say>")

    @app.post("/audio")
    def audio() -> Response:
        return Response(b"ID3fake", mimetype="audio/mpeg")

    # --- speech and sounds ----------------------------------------------------------------------
    @app.post("/speech")
    def speech() -> Response:
        return twiml('<Gather input="speech dtmf" action="/heard" speechTimeout="auto" '
                     'language="en-GB" partialResultCallback="/ok">'
                     "<Say>Say or press your choice.</Say></Gather>")

    @app.post("/heard")
    def heard() -> Response:
        form = request.form
        said = form.get("SpeechResult", form.get("Digits"))
        return twiml(f"<Say>You said {said}.</Say>")

    @app.post("/ssml")
    def ssml() -> Response:
        return twiml('<Say>Your code is <say-as interpret-as="characters">AB12</say-as>'
                     '<break time="2s"/> <sub alias="World Wide Web">WWW</sub>.</Say>'
                     '<Play digits="1w2"/><Hangup/>')

    return app
