"""The floor: a bare Flask app answering every webhook with one constant TwiML document.

It does no work of its own (no signature check, no session, no database), so whatever it costs
under `serve`'s server is what the server, Flask and the client cost. The document is the size and
shape of a hotline answer (a Gather with a Say, then a Redirect), so the simulator can drive
the same full call (press 1, 1, 1, ID#, 1, password#, hang up) against it.

    python -m bench.serve_floor --port 5000 --workers 2
"""

from __future__ import annotations

from flask import Flask, Response, request

DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="/voice/step?s=1" method="POST" timeout="8" '
    'finishOnKey="#" actionOnEmptyResult="false">'
    '<Say language="cmn-CN" voice="Polly.Zhiyu">'
    "欢迎致电12333医疗保障服务热线。普通话请按1,For English, press 2.</Say></Gather>"
    '<Redirect method="POST">/voice/step?s=1&amp;e=silence</Redirect>'
    "</Response>"
)


def create_app() -> Flask:
    """The floor app: POST /voice and /voice/step answer DOCUMENT, /status answers 204."""
    application = Flask(__name__)

    @application.post("/voice")
    @application.post("/voice/step")
    def voice() -> Response:
        return Response(DOCUMENT, mimetype="text/xml")

    @application.post("/status")
    def status() -> Response:
        return Response("", status=204)

    return application


app = create_app()


def create_form_app() -> Flask:
    """The floor that reads its form, as every webhook does (the body is read and parsed)."""
    application = Flask(__name__)

    @application.post("/voice")
    @application.post("/voice/step")
    def voice() -> Response:
        request.form.get("CallSid")
        return Response(DOCUMENT, mimetype="text/xml")

    return application


form_app = create_form_app()
