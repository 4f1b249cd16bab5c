"""A warm-transfer app written against the twilio library, as any Twilio developer writes one:
the simulator's REST API is its Twilio (tests/simulator/test_rest_scenarios.py).

1. A customer calls: the app dials agent 1 over REST (Calls create, with status callbacks) and
   puts the customer in a conference room that waits for an agent (hold music meanwhile).
2. Agent 1 answers and hears who waits: 1 takes the call; 2 takes it with a specialist: the
   customer is put on hold (Participants update Hold, HoldUrl), the specialist is dialled into
   the room (Participants create), and agent 1 joins to brief them.
3. When the specialist answers (their status callback), the customer comes off hold and the
   room hears an announcement (Conferences update AnnounceUrl). Agent 1 leaves; the customer
   stays with the specialist.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request, url_for

LINE = "+15550100000"
AGENT_1 = "+15550100001"
SPECIALIST = "+15550100002"


def twiml(body: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    mimetype="text/xml")


def create_app(client: Any) -> Flask:
    """`client`: a twilio `Client` (pointed at the simulator by the test)."""
    app = Flask(__name__)
    rooms: dict[str, dict[str, str]] = {}  # room name -> customer call, conference SID

    @app.post("/voice")
    def voice() -> Response:
        customer = request.form["CallSid"]
        room = f"room-{customer}"
        rooms[room] = {"customer": customer}
        client.calls.create(
            to=AGENT_1, from_=LINE, url=url_for("agent", room=room, _external=True),
            status_callback=url_for("status", _external=True),
            status_callback_event=["initiated", "ringing", "answered", "completed"])
        return twiml("<Say>Please hold while we find an agent.</Say>"
                     '<Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true"'
                     f' waitUrl="{url_for("music")}">{room}</Conference></Dial>')

    @app.post("/agent")
    def agent() -> Response:
        room = request.args["room"]
        return twiml(f'<Gather numDigits="1" action="{url_for("choice", room=room)}">'
                     "<Say>A customer is waiting. Press 1 to take the call, 2 to take it with "
                     "a specialist.</Say></Gather><Say>Nobody pressed a key.</Say>")

    @app.post("/choice")
    def choice() -> Response:
        room = request.args["room"]
        join = ('<Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">'
                f"{room}</Conference></Dial>")
        if request.form.get("Digits") != "2":
            return twiml(f"<Say>Connecting you.</Say>{join}")
        (conference,) = client.conferences.list(friendly_name=room, status="init")
        rooms[room]["conference"] = conference.sid
        client.conferences(conference.sid).participants(rooms[room]["customer"]).update(
            hold=True, hold_url=url_for("hold", _external=True))
        client.conferences(conference.sid).participants.create(
            from_=LINE, to=SPECIALIST, label="specialist", end_conference_on_exit=False,
            status_callback=url_for("specialist", room=room, _external=True),
            status_callback_event=["answered"])
        return twiml(f"<Say>The customer is on hold; the specialist is being called.</Say>{join}")

    @app.post("/specialist")
    def specialist() -> Response:
        room = rooms[request.args["room"]]
        if request.form.get("CallStatus") == "in-progress":
            conference = client.conferences(room["conference"])
            conference.participants(room["customer"]).update(hold=False)
            conference.update(announce_url=url_for("announce", _external=True))
        return Response(status=204)

    @app.post("/status")
    def status() -> Response:
        return Response(status=204)

    @app.post("/music")
    def music() -> Response:
        return twiml("<Say>Thank you for waiting.</Say><Pause length=\"10\"/>")

    @app.post("/hold")
    def hold() -> Response:
        return twiml("<Say>You are on hold; a specialist will join shortly.</Say>")

    @app.post("/announce")
    def announce() -> Response:
        return twiml("<Say>A specialist has joined the call.</Say>")

    return app
