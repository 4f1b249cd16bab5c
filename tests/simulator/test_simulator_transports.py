"""The simulator's seam: three transports, the same answers; signing and timing around any."""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from flask import Flask
from twilio.request_validator import RequestValidator
from twiml_app import PizzaState, create_app, serve

from simulator import (
    Call,
    Clock,
    ConnectionFailed,
    DirectTransport,
    HttpTransport,
    Signed,
    Simulator,
    Timed,
    Transport,
    WebhookClient,
    WebhookRequest,
    WebhookResponse,
    WsgiTransport,
)
from simulator.direct import wsgi_environ

TOKEN = "seam-token"
LOCAL = "http://pizza.test"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KINDS = ["wsgi", "direct", "http"]


@contextmanager
def reach(kind: str, app: Flask) -> Iterator[tuple[Transport, str]]:
    """`app` through the transport `kind`, with the base URL it answers at."""
    if kind == "http":
        with serve(app) as base, HttpTransport(timeout=10) as transport:
            yield transport, base
    elif kind == "wsgi":
        yield WsgiTransport(app), LOCAL
    else:
        yield DirectTransport(app), LOCAL


# --- one app, three transports, the same answers -------------------------------------------------

REQUESTS = [
    ("POST", "/voice", {"CallSid": "CA1", "From": "+8613800000000"}),
    ("POST", "/menu", {"CallSid": "CA1", "Digits": "2"}),
    ("GET", "/voice?from=hours", {"CallSid": "CA1", "From": "+86 138"}),
    ("POST", "/order/quantity", {"Digits": "中文 & =+%"}),
    ("POST", "/order/pin", {"Digits": "1234"}),  # answers with the session cookie sent
    ("POST", "/broken", {}),
    ("POST", "/not-xml", {"CallSid": "CA1"}),
    ("POST", "/crash", {"CallSid": "CA1"}),  # Flask turns the exception into its 500 page
    ("POST", "/nowhere", {"CallSid": "CA1"}),
    ("GET", "/menu", {}),
]


def answers(kind: str) -> list[tuple[object, ...]]:
    """What a fresh Pizza Line (signatures checked) answers to REQUESTS, one call's client."""
    app = create_app(auth_token=TOKEN)
    app.logger.disabled = True  # the /crash traceback is expected
    with reach(kind, app) as (transport, base):
        client = WebhookClient(Signed(transport, TOKEN))
        seen = []
        for method, path, params in REQUESTS:
            response = client.request(method, base + path, params)
            assert response.url.startswith(base + path.split("?")[0])
            seen.append((method, path, response.status, response.content_type,
                         response.content, response.location,
                         response.header_values("set-cookie")))
    return seen


def test_every_transport_gets_the_same_answers() -> None:
    wsgi, direct, http = (answers(kind) for kind in KINDS)
    assert direct == wsgi
    assert http == wsgi
    statuses = [status for _, _, status, *_ in wsgi]
    assert statuses == [200, 200, 200, 200, 200, 500, 200, 500, 404, 405]
    assert wsgi[0][-1] == ["session=s1; Path=/"]
    assert b"Session s1." in wsgi[4][4]  # the call's cookie came back


# --- the direct transport's environ --------------------------------------------------------------


def environ_app(seen: list[dict[str, Any]]) -> Any:
    """Records each environ (its body read out) and sets a cookie on the first request."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        kept = {k: v for k, v in environ.items() if k not in ("wsgi.input", "wsgi.errors")}
        seen.append({**kept, "body": body})
        headers = [("Content-Type", "text/xml")]
        if len(seen) == 1:
            headers.append(("Set-Cookie", "session=abc; Path=/"))
        start_response("200 OK", headers)
        return [b"<Response/>"]

    return app


def environs(transport_for: Callable[[Any], Transport]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    client = WebhookClient(Signed(transport_for(environ_app(seen)), TOKEN))
    client.request("POST", "https://U%40ser:p%3Ass@X.test:8443/a%20b/voice?x=1&y=", {
        "From": "+86 138", "Digits": "1#"})
    client.request("GET", "https://x.test:8443/a%20b/voice?x=1", {"Digits": "*"})
    client.request("POST", "http://y.test/status", {})
    return seen


def test_the_direct_environ_is_a_servers() -> None:
    post, get, empty = environs(DirectTransport)
    signature = post.pop("HTTP_X_TWILIO_SIGNATURE")
    assert post == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a b/voice",
        "QUERY_STRING": "x=1&y=",
        "SERVER_NAME": "x.test",
        "SERVER_PORT": "8443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "x.test:8443",
        "HTTP_AUTHORIZATION": "Basic VUBzZXI6cDpzcw==",  # U@ser:p:ss
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(b"From=%2B86+138&Digits=1%23")),
        "body": b"From=%2B86+138&Digits=1%23",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    url = "https://U%40ser:p%3Ass@x.test:8443/a%20b/voice?x=1&y="
    assert RequestValidator(TOKEN).validate(url, {"From": "+86 138", "Digits": "1#"}, signature)
    assert (get["REQUEST_METHOD"], get["QUERY_STRING"], get["body"]) == ("GET", "x=1&Digits=%2A",
                                                                        b"")
    assert "CONTENT_TYPE" not in get and "CONTENT_LENGTH" not in get
    assert get["HTTP_COOKIE"] == "session=abc"  # the call's cookie, set by the first answer
    assert "HTTP_COOKIE" not in empty  # another host: not sent
    assert (empty["CONTENT_LENGTH"], empty["body"], empty["SERVER_PORT"]) == ("0", b"", "80")
    assert "CONTENT_TYPE" not in empty


def test_the_direct_environ_is_what_httpx_wsgi_builds() -> None:
    direct = environs(DirectTransport)
    through_httpx = environs(WsgiTransport)
    assert direct == through_httpx


def test_wsgi_environ_decodes_the_path_as_a_server_does() -> None:
    environ = wsgi_environ(WebhookRequest("GET", "http://x.test/%E4%B8%AD?q=%E4%B8%AD"))
    assert environ["PATH_INFO"] == "/\u00e4\u00b8\u00ad"  # PEP 3333: the bytes, as latin-1
    assert environ["QUERY_STRING"] == "q=%E4%B8%AD"


def test_a_legacy_write_and_a_generator_app_are_read_in_order() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"first ")
        yield b"then "
        yield b"more"

    response = DirectTransport(app).handle(WebhookRequest("POST", "http://x.test/"))
    assert (response.status, response.text) == (201, "first then more")


# --- signing and timing, around any transport ----------------------------------------------------


def recorder(seen: list[WebhookRequest]) -> Transport:
    class Recorder(Transport):  # noqa: B903 - a transport that only remembers
        def handle(self, request: WebhookRequest) -> WebhookResponse:
            seen.append(request)
            return WebhookResponse(204, (), b"", request.url)

    return Recorder()


@pytest.mark.parametrize(
    ("method", "url", "form"),
    [
        ("POST", "http://x.test/voice", {"From": "+8613800000000", "Digits": "1#"}),
        ("POST", "https://x.test:8443/voice?lang=zh", {"Digits": "中文 &=", "Empty": ""}),
        ("GET", "http://x.test/voice?From=%2B86+1&Digits=2", {}),
        ("POST", "http://x.test/status", {}),
    ],
)
def test_signed_computes_the_signature_twilio_validates(
    method: str, url: str, form: dict[str, str]
) -> None:
    seen: list[WebhookRequest] = []
    Signed(recorder(seen), TOKEN).handle(WebhookRequest(method, url, form))
    [sent] = seen
    signature = sent.headers["X-Twilio-Signature"]
    assert (sent.method, sent.url, sent.form) == (method, url, form)
    assert RequestValidator(TOKEN).validate(url, form, signature)
    assert not RequestValidator("not-the-token").validate(url, form, signature)
    assert not RequestValidator(TOKEN).validate(url + "&x=1", form, signature)
    assert not RequestValidator(TOKEN).validate(url, {**form, "Digits": "9"}, signature)


def test_timed_records_every_request_failed_ones_too() -> None:
    timed: list[tuple[str, float]] = []

    def record(request: WebhookRequest, seconds: float) -> None:
        timed.append((request.url, seconds))

    class Down(Transport):
        def handle(self, request: WebhookRequest) -> WebhookResponse:
            raise ConnectionFailed("ConnectError: refused")

    seen: list[WebhookRequest] = []
    client = WebhookClient(Signed(Timed(recorder(seen), record), TOKEN))
    client.request("POST", "http://x.test/a", {"Digits": "1"})
    client.request("GET", "http://x.test/b", {"Digits": "2"})
    with pytest.raises(ConnectionFailed):
        WebhookClient(Timed(Down(), record)).request("POST", "http://x.test/c", {})
    assert [url for url, _ in timed] == ["http://x.test/a", "http://x.test/b?Digits=2",
                                         "http://x.test/c"]
    assert all(seconds >= 0 for _, seconds in timed)
    assert all("X-Twilio-Signature" in request.headers for request in seen)


def test_closing_a_wrapper_closes_the_transport() -> None:
    transport = HttpTransport()
    with Timed(Signed(transport, TOKEN), lambda request, seconds: None):
        pass
    with pytest.raises(RuntimeError):  # httpx: a closed client sends nothing
        transport.handle(WebhookRequest("POST", "http://127.0.0.1:9/voice", {"a": "1"}))


# --- per-call state: cookies belong to one call --------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_interleaved_calls_on_one_transport_keep_their_own_cookies(kind: str) -> None:
    app = create_app()
    state: PizzaState = app.config["PIZZA"]
    with reach(kind, app) as (transport, base):
        simulator = Simulator(transport, base + "/voice")
        first, second = simulator.dial(), simulator.dial()
        for call in (first, second, second, first):
            call.press("1" if call.heard.startswith("Welcome") else "5#")
        first.press("1111")
        second.press("2222")
    assert first.heard == "PIN 1111 accepted. Session s1."
    assert second.heard == "PIN 2222 accepted. Session s2."
    by_call: dict[str, set[str]] = {}
    for seen in state.requests:
        by_call.setdefault(seen.params["CallSid"], set()).add(seen.cookies.get("session", ""))
    assert by_call == {first.call_sid: {"", "s1"}, second.call_sid: {"", "s2"}}


def test_concurrent_calls_over_one_http_transport_never_share_cookies() -> None:
    app = create_app()
    state: PizzaState = app.config["PIZZA"]
    calls: list[Call] = []
    lock = threading.Lock()
    with serve(app) as base, HttpTransport(timeout=10) as transport:
        simulator = Simulator(transport, base + "/voice")

        def caller() -> None:
            for _ in range(3):
                call = simulator.dial()
                call.press("1")
                call.press("3#")
                call.press("4321")
                with lock:
                    calls.append(call)

        threads = [threading.Thread(target=caller) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    sessions = set()
    for call in calls:
        session = re.fullmatch(r"PIN 4321 accepted\. Session (s\d+)\.", call.heard)
        assert session is not None, call.heard
        sent = {seen.cookies.get("session") for seen in state.requests
                if seen.params["CallSid"] == call.call_sid}
        assert sent == {None, session[1]}
        sessions.add(session[1])
    assert len(sessions) == len(calls) == 18


# --- the HTTP transport reuses its connections ---------------------------------------------------


@contextmanager
def keep_alive_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server that keeps connections open; yields its URL and each request's
    client port."""
    ports: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ports.append(self.client_address[1])
            body = b"<Response><Hangup/></Response>"
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ports
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_calls_through_one_http_transport_reuse_its_connection() -> None:
    with keep_alive_server() as (base, ports), HttpTransport(timeout=10) as transport:
        simulator = Simulator(transport, base + "/voice", status_callback="/status",
                              auth_token=TOKEN)
        calls = [simulator.dial() for _ in range(3)]
    assert all(call.ended_by == "application" and call.error is None for call in calls)
    assert len(ports) == 6  # each call: its voice URL and its status callback
    assert len(set(ports)) == 1


def test_an_http_transport_left_open_closes_its_connections_when_collected() -> None:
    with keep_alive_server() as (base, _):
        transport = HttpTransport(timeout=10)
        Simulator(transport, base + "/voice").dial()
        del transport  # filterwarnings=error: an unclosed socket would fail this test
        gc.collect()


# --- conformance: the same calls over HTTP and direct, the same transcripts ----------------------

Actions = list[str]
SCRIPTS: list[tuple[str, Actions]] = [
    ("/voice", ["1", "12#", "4321"]),  # Gathers, finishOnKey, numDigits, cookies
    ("/voice", ["2", "*"]),  # Play, Pause, a GET Redirect with a query string, Hangup
    ("/voice", ["3"]),  # Dial with an action
    ("/voice", ["4", "silence"]),  # actionOnEmptyResult
    ("/voice", ["4", "5"]),  # Dial without an action
    ("/voice", ["4", "6"]),  # Reject after answering
    ("/voice", ["4", "7"]),  # an unsupported verb
    ("/voice", ["4", "8"]),  # an HTTP 500
    ("/voice", ["19", "hangup"]),  # ignored keys, the caller hangs up
    ("/voice", ["barge:1", "hangup"]),
    ("/patient", ["silence", "silence", "7"]),
    ("/closed?reason=busy", []),
    ("/not-xml", []),
    ("/wrong-root", []),
    ("/tick", []),
    ("/crash", []),
    ("/loop", []),
]


def play(simulator: Simulator, actions: Actions) -> Call:
    call = simulator.dial()
    for action in actions:
        if action == "silence":
            call.silence()
        elif action == "hangup":
            call.hangup()
        elif action.startswith("barge:"):
            call.press(action.removeprefix("barge:"), barge_in=True)
        else:
            call.press(action)
    call.close()
    return call


def transcript(call: Call, base: str) -> str:
    """The call's transcript with what differs by nature between two runs made the same."""
    text = call.transcript_text().replace(base, "{base}")
    text = text.replace(call.call_sid, "{call}").replace(call.account_sid, "{account}")
    return re.sub(r"DialCallSid=CA[0-9a-f]{32}", "DialCallSid={dialled}", text)


def transcripts(kind: str) -> list[str]:
    app = create_app(auth_token=TOKEN)
    app.logger.disabled = True  # /crash raises on purpose
    with reach(kind, app) as (transport, base):
        out = []
        for path, actions in SCRIPTS:
            simulator = Simulator(transport, base + path, auth_token=TOKEN,
                                  status_callback="/status", clock=Clock(START))
            out.append(transcript(play(simulator, actions), base))
    return out


def test_calls_over_http_and_direct_wsgi_have_the_same_transcripts() -> None:
    over_http, direct = transcripts("http"), transcripts("direct")
    for (path, actions), remote, local in zip(SCRIPTS, over_http, direct, strict=True):
        assert local == remote, (path, actions)
    assert "Session s1." in direct[0]
    assert "answered HTTP 500" in direct[7]
    assert "{base}/crash answered HTTP 500" in direct[15]


def test_the_http_transport_answers_what_httpx_answers() -> None:
    app = create_app()
    with serve(app) as base, HttpTransport(timeout=10) as transport:
        ours = transport.handle(WebhookRequest("POST", base + "/voice", {"CallSid": "CA1"}))
        theirs = httpx.post(base + "/voice", data={"CallSid": "CA1"})
    assert (ours.status, ours.content_type, ours.content) == (
        theirs.status_code, theirs.headers["content-type"], theirs.content)
