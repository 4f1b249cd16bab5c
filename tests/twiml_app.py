"""Pizza Line: a small generic TwiML app (not the hotline) that exercises every simulated verb."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import WSGIRequestHandler, make_server

MENU = "Press 1 to order, 2 for opening hours, 3 to talk to a person, 4 for more options."
MORE = "Press 5 for the kitchen, 6 to be rejected, 7 to leave a message, 8 for a broken page."


@dataclass
class Seen:
    """One request as the app received it."""

    method: str
    path: str
    url: str
    params: dict[str, str]
    cookies: dict[str, str]
    signature: str


@dataclass
class PizzaState:
    """What the app remembers between requests, for tests to inspect."""

    auth_token: str | None = None
    requests: list[Seen] = field(default_factory=list)
    status_callbacks: list[dict[str, str]] = field(default_factory=list)
    sessions: int = 0

    def reset(self, auth_token: str | None = None) -> None:
        self.auth_token = auth_token
        self.requests.clear()
        self.status_callbacks.clear()
        self.sessions = 0

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


def twiml(body: str) -> Response:
    """A TwiML document with the given verbs."""
    xml = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
    return Response(xml, mimetype="text/xml")


def create_app(auth_token: str | None = None) -> Flask:
    """The Pizza Line app; `app.config["PIZZA"]` is its PizzaState."""
    app = Flask(__name__)
    state = PizzaState(auth_token=auth_token)
    app.config["PIZZA"] = state

    @app.before_request
    def record_and_check() -> None:
        params = dict(request.form if request.method == "POST" else request.args)
        signature = request.headers.get("X-Twilio-Signature", "")
        state.requests.append(
            Seen(
                request.method, request.path, request.url, params, dict(request.cookies), signature
            )
        )
        if state.auth_token:
            signed = request.form if request.method == "POST" else {}
            if not RequestValidator(state.auth_token).validate(request.url, signed, signature):
                abort(403)

    @app.route("/voice", methods=["GET", "POST"])
    def voice() -> Response:
        greeting = (
            "Welcome back." if request.args.get("from") == "hours" else "Welcome to Pizza Line."
        )
        response = twiml(
            f'<Say voice="alice" language="en-US">{greeting}</Say>'
            '<Gather numDigits="1" action="menu">'
            f'<Say>{MENU}</Say><Pause length="2"/><Say>{MENU}</Say>'
            "</Gather>"
            "<Say>We did not hear you. Goodbye.</Say>"
        )
        if "session" not in request.cookies:
            state.sessions += 1
            response.set_cookie("session", f"s{state.sessions}")
        return response

    @app.post("/menu")
    def menu() -> Response:
        digits = request.form.get("Digits", "")
        if digits == "1":
            return twiml(
                '<Gather action="/order/quantity" finishOnKey="#" timeout="5">'
                "<Say>How many pizzas? Press pound when done.</Say></Gather>"
                "<Say>No quantity entered.</Say>"
                '<Redirect method="GET">voice</Redirect>'
            )
        if digits == "2":
            return twiml(
                "<Say>We are open from 11 to 11.</Say>"
                '<Pause length="3"/>'
                '<Play loop="2">audio/jingle.mp3</Play>'
                '<Redirect method="GET">voice?from=hours</Redirect>'
            )
        if digits == "3":
            return twiml(
                "<Say>Connecting you.</Say>"
                '<Dial action="dial-done" timeout="20">+15550001111</Dial>'
                "<Say>Never said: the Dial action replaces this document.</Say>"
            )
        if digits == "4":
            return twiml(
                '<Gather numDigits="1" action="more" actionOnEmptyResult="true" timeout="3">'
                f"<Say>{MORE}</Say></Gather>"
            )
        if digits == "*":
            return twiml("<Say>Goodbye.</Say><Hangup/><Say>Never said after hangup.</Say>")
        return twiml(f"<Say>Sorry, {digits} is not an option.</Say><Redirect>/voice</Redirect>")

    @app.post("/order/quantity")
    def quantity() -> Response:
        digits = request.form["Digits"]
        return twiml(
            f"<Say>You ordered {digits} pizzas.</Say>"
            '<Gather numDigits="4" finishOnKey="" timeout="3" action="pin">'
            "<Say>Enter your 4 digit PIN.</Say></Gather>"
            "<Say>No PIN, no pizza.</Say>"
        )

    @app.post("/order/pin")
    def pin() -> Response:
        session = request.cookies.get("session", "none")
        return twiml(
            f"<Say>PIN {request.form['Digits']} accepted. Session {session}.</Say><Hangup/>"
        )

    @app.post("/dial-done")
    def dial_done() -> Response:
        status = request.form["DialCallStatus"]
        seconds = request.form["DialCallDuration"]
        return twiml(f"<Say>Dial status {status}, {seconds} seconds.</Say><Hangup/>")

    @app.post("/more")
    def more() -> Response:
        digits = request.form["Digits"]
        if digits == "":
            return twiml("<Say>You pressed nothing.</Say><Hangup/>")
        if digits == "5":
            return twiml(
                "<Dial><Number>+15550002222</Number></Dial>"
                "<Say>The call with the kitchen is over.</Say>"
            )
        if digits == "6":
            return twiml("<Say>Rejecting you now.</Say><Reject/>")
        if digits == "7":
            return twiml(
                '<Say>Leave a message.</Say><Record action="/recorded"/><Say>Never said.</Say>'
            )
        if digits == "8":
            return twiml("<Redirect>/broken</Redirect>")
        if digits == "9":
            return twiml("<Redirect>/connect</Redirect>")
        return twiml(f"<Say>{digits} is not an option.</Say>")

    @app.route("/broken", methods=["GET", "POST"])
    def broken() -> Response:
        return Response("Internal trouble: " + "x" * 500, status=500, mimetype="text/plain")

    @app.post("/not-xml")
    def not_xml() -> Response:
        return Response("Hello, I am plain text", mimetype="text/plain")

    @app.post("/recorded")
    def recorded() -> Response:
        seconds = request.form["RecordingDuration"]
        return twiml(f"<Say>Thanks for your {seconds} second message.</Say><Hangup/>")

    @app.post("/json")
    def json_reply() -> Response:
        return Response('{"say": "hello"}', mimetype="application/json")

    @app.post("/connect")
    def connect() -> Response:
        return twiml('<Say>Streaming you.</Say><Connect><Stream url="wss://pizza.test/s"/>'
                     "</Connect><Say>Never said.</Say>")

    @app.post("/wrong-root")
    def wrong_root() -> Response:
        return Response("<Document><Say>Hi</Say></Document>", mimetype="text/xml")

    @app.post("/loop")
    def loop() -> Response:
        return twiml("<Redirect>loop</Redirect>")

    @app.post("/closed")
    def closed() -> Response:
        reason = request.args.get("reason")
        return twiml(f'<Reject reason="{reason}"/>' if reason else "<Reject/>")

    @app.post("/tick")
    def tick() -> Response:
        return twiml('<Say loop="0">Tick.</Say><Hangup/>')

    @app.post("/crash")
    def crash() -> Response:
        raise RuntimeError("the oven is on fire")

    @app.post("/patient")
    def patient() -> Response:
        digits = request.form.get("Digits")
        if digits:
            return twiml(f"<Say>Finally, {digits}.</Say><Hangup/>")
        return twiml(
            '<Gather numDigits="1" timeout="10"><Say>Still there?</Say></Gather>'
            "<Redirect>patient</Redirect>"
        )

    @app.post("/status")
    def status() -> Response:
        state.status_callbacks.append(dict(request.form))
        return Response("", status=204)

    return app


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` over real HTTP on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
