"""Programmatic parties (simulator.parties) and `wait(until="bridged")`: a caller's patience in a
queue ends the moment an agent bridges them, and their talk time counts from there; a caller
whose patience runs out first hangs up in the queue. A small Twilio app of its own: callers
<Enqueue>, agents <Dial><Queue> (a bridge) or meet callers in a conference room."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, request

from simulator import Call, Clock, DirectTransport, Simulator, run_script
from simulator.parties import Party, run_parties

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _app() -> Flask:
    app = Flask(__name__)
    queue_results: list[tuple[str, str]] = []
    app.config["queue_results"] = queue_results

    def twiml(body: str) -> Response:
        return Response(f'<?xml version="1.0"?><Response>{body}</Response>',
                        mimetype="text/xml")

    @app.post("/voice")
    def voice() -> Response:
        return twiml('<Enqueue action="/left">support</Enqueue>')

    @app.post("/left")
    def left() -> Response:
        queue_results.append((request.form["CallSid"], request.form["QueueResult"]))
        return twiml("<Hangup/>")

    @app.post("/agent")
    def agent() -> Response:
        return twiml("<Dial><Queue>support</Queue></Dial>")

    @app.post("/room")
    def room() -> Response:
        return twiml("<Dial><Conference endConferenceOnExit=\"true\">r</Conference></Dial>")

    return app


def _simulator(app: Flask) -> Simulator:
    return Simulator(DirectTransport(app), "http://app.test/voice", clock=Clock(AT))


def test_patience_ends_at_the_bridge_and_talk_counts_from_it() -> None:
    app = _app()
    simulator = _simulator(app)
    seen: dict[str, list[float]] = {}

    def caller(patience: float, talk: float) -> object:
        def act(call: Call) -> None:
            entered = call.clock.now
            call.wait(patience, until="bridged")
            waited, bridged = call.clock.now - entered, call.bridged
            if bridged:
                call.wait(talk)  # talks; the hang-up follows when act returns
            seen[call.name or ""] = [waited, call.clock.now - entered, float(bridged)]
        return act

    def agent(call: Call) -> None:
        call.wait(500)  # bridged to the head of the queue until that caller hangs up

    parties = [Party("patient", 0, caller(300, 40), "+15550000001"),
               Party("impatient", 1, caller(20, 40), "+15550000002"),
               Party("agent", 60, agent, "+15550000003", url="/agent")]
    run = run_parties(simulator, parties)
    assert run.errors == {}
    # the patient caller was bridged when the agent called at 60 s; talked 40 s; hung up
    assert seen["patient"] == [60.0, 100.0, 1.0]
    # the impatient one gave up 20 s after entering the queue, never bridged
    assert seen["impatient"] == [20.0, 20.0, 0.0]
    assert [c.name for c in run.calls] == ["patient", "impatient", "agent"]
    results = dict(app.config["queue_results"])
    by_name = {c.name: c.call_sid for c in run.calls}
    assert results[by_name["impatient"]] == "hangup"
    assert results[by_name["patient"]] == "bridged"
    # the agent's bridge ended when the caller hung up, 100 s in
    agent_call = run.calls[2]
    assert agent_call.ended and agent_call.clock.now >= 100.0


def test_a_conference_room_counts_as_bridged_once_it_starts() -> None:
    app = _app()
    simulator = _simulator(app)
    moments: list[tuple[str, float, bool]] = []

    def first(call: Call) -> None:  # alone in the room: not bridged until the second comes
        call.wait(100, until="bridged")
        moments.append(("first", call.clock.now, call.bridged))
        call.wait(10)

    def second(call: Call) -> None:
        moments.append(("second", call.clock.now, call.bridged))
        call.wait(30)

    run = run_parties(simulator, [Party("first", 0, first, "+15550000001", url="/room"),
                                  Party("second", 25, second, "+15550000002", url="/room")])
    assert run.errors == {}
    assert moments == [("second", 25.0, True), ("first", 25.0, True)]


def test_a_party_that_fails_is_reported_and_the_others_go_on() -> None:
    app = _app()
    done: list[str] = []

    def wrong(call: Call) -> None:
        call.press("1")  # nothing gathers keys in a queue

    def fine(call: Call) -> None:
        call.wait(5)

    run = run_parties(_simulator(app), [Party("wrong", 0, wrong, "+15550000001"),
                                        Party("fine", 3, fine, "+15550000002")],
                      done=lambda party, call: done.append(party.name))
    assert list(run.errors) == ["wrong"], run.errors
    assert sorted(done) == ["fine", "wrong"]
    try:
        Call.wait(run.calls[1], 5, until="answered")
    except ValueError as exc:
        assert "only 'bridged'" in str(exc)
    else:
        raise AssertionError("an unknown `until` was accepted")


def _scenario(tmp_path: Path, agent_at: int) -> Path:
    path = tmp_path / "bridged.yaml"
    path.write_text(f"""
name: bridged in time
calls:
  - name: caller
    steps:
      - wait: {{seconds: 60, until: bridged}}
      - wait: 10
  - name: agent
    url: /agent
    start: {agent_at}
    steps:
      - wait: 100
""", encoding="utf-8")
    return path


def test_a_script_waits_until_bridged_and_fails_when_it_is_not(tmp_path: Path) -> None:
    app = _app()
    passed = run_script(_scenario(tmp_path, 30), lambda: _simulator(app))
    assert passed.passed, passed.report()
    hangups = [e.at for e in passed.transcript if e.kind == "hangup"]
    assert min(hangups) == 40.0, passed.transcript_text  # bridged at 30, then 10 s of talk
    failed = run_script(_scenario(tmp_path, 90), lambda: _simulator(_app()))
    assert not failed.passed
    assert "the call to be bridged within 60 s" in failed.report()
