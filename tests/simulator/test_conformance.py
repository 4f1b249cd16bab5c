"""Conformance: each Twilio semantic the simulator plays, against a small TwiML app, asserting
the exact requests the simulator makes (parameters, methods, order, virtual times).

Most tests go through the direct transport (fast); a few over real HTTP."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apps.conformance_app import Log, create_app
from flask import Flask
from twiml_app import serve

from simulator import (
    Call,
    DirectTransport,
    HttpTransport,
    ScriptResult,
    Simulator,
    load_script,
    run_script,
)
from simulator import transcript as kind
from simulator.clock import Clock, speech_seconds

BASE = "http://conf.test"


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app()


@pytest.fixture
def log(app: Flask) -> Iterator[Log]:
    log: Log = app.config["LOG"]
    log.requests.clear()
    yield log
    log.requests.clear()


def dial(app: Flask, path: str, **options: object) -> Call:
    return Simulator(DirectTransport(app), BASE + path, **options).dial()  # type: ignore[arg-type]


def scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- <Record> ----------------------------------------------------------------------------------


def test_record_posts_the_recording_then_its_callbacks(app: Flask, log: Log) -> None:
    call = dial(app, "/record")
    assert call.heard == "Leave a message.\n[beep]"
    assert call.recording is not None
    start = call.clock.now
    call.record(7, text="call me back", key="#")
    assert call.heard == "Got 7 seconds."
    action, status, transcription = log.requests[1:4]
    assert (action.path, status.path, transcription.path) == ("/recorded", "/ok", "/ok")
    assert action.params["RecordingDuration"] == "7"
    assert action.params["Digits"] == "#"
    assert action.params["RecordingUrl"].endswith("/Recordings/" + action.params["RecordingSid"])
    assert status.params["RecordingStatus"] == "completed"
    assert status.params["RecordingSid"] == action.params["RecordingSid"]
    assert transcription.params["TranscriptionText"] == "call me back"
    assert transcription.params["TranscriptionStatus"] == "completed"
    [request] = [r for r in call.requests if r.url.endswith("/recorded")]
    assert request.at == pytest.approx(start + 7 + 0.2)  # speech, then the key


def test_record_ended_by_silence_is_trimmed_and_silence_alone_records_nothing(
        app: Flask, log: Log) -> None:
    call = dial(app, "/record")
    call.record(4)
    assert log.to("/recorded")[0].params["RecordingDuration"] == "4"
    assert "Digits" not in log.to("/recorded")[0].params
    log.requests.clear()
    call = dial(app, "/record")
    call.silence()
    assert call.heard == "No message."
    assert "/recorded" not in log.paths()


def test_hanging_up_during_a_recording_posts_digits_hangup(app: Flask, log: Log) -> None:
    call = dial(app, "/record")
    call.record(3, key="hangup")
    assert call.ended_by == "caller"
    assert log.to("/recorded")[0].params["Digits"] == "hangup"
    assert log.to("/recorded")[0].params["CallStatus"] == "completed"


# --- queues: two callers and an agent on one clock ----------------------------------------------

QUEUE_SCENARIO = """
    name: two callers and an agent
    calls:
      - name: first caller
        from: "+8613800000001"
        url: /caller
        steps:
          - wait: 60
          - expect: "Connecting you to an agent."
          - expect: "Queue result bridged."
          - expect_hangup
      - name: second caller
        from: "+8613800000002"
        url: /caller
        start: 1
        steps:
          - wait: 40
          - expect: "You are number 2."
          - expect: "You are number 1."
          - expect_request: {url: /wait, params: {QueuePosition: "1", CurrentQueueSize: "1"}}
          - hangup
      - name: agent
        from: "+8613800000009"
        url: /agent
        start: 20
        steps:
          - expect_dial: "queue:support"
          - wait: 30
          - hangup
"""


def test_two_callers_and_an_agent_positions_dequeue_and_bridge(
        tmp_path: Path, app: Flask, log: Log) -> None:
    result = run_script(scenario(tmp_path, QUEUE_SCENARIO),
                        lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    assert result.passed, result.report()
    first, second = log.to("/caller")[0].params["CallSid"], log.to("/caller")[1].params["CallSid"]
    positions = {first: [], second: []}  # type: dict[str, list[str]]
    for seen in log.to("/wait"):
        positions[seen.params["CallSid"]].append(seen.params["QueuePosition"])
    assert set(positions[first]) == {"1"}
    assert positions[second][0] == "2" and positions[second][-1] == "1"
    [connecting] = log.to("/connecting")
    agent = log.to("/agent")[0].params["CallSid"]
    assert connecting.params["CallSid"] == first
    assert connecting.params["DequeingCallSid"] == agent
    assert connecting.params["QueueTime"] == "19"  # enqueued at 0.77 s, dequeued at 20 s
    [left] = [seen for seen in log.to("/left") if seen.params["CallSid"] == first]
    assert (left.params["QueueResult"], left.params["QueueTime"]) == ("bridged", "19")
    [done] = log.to("/agent-done")
    assert done.params["DialCallStatus"] == "completed"
    assert done.params["DialCallSid"] == first
    assert int(done.params["DialCallDuration"]) == 29  # bridged at 21.61 s, agent gone at 50 s
    [second_left] = [seen for seen in log.to("/left") if seen.params["CallSid"] == second]
    assert second_left.params["QueueResult"] == "hangup"
    wait_params = log.to("/wait")[0].params
    assert {"QueueSid", "QueuePosition", "QueueTime", "AvgQueueTime", "CurrentQueueSize",
            "MaxQueueSize"} <= set(wait_params)
    assert wait_params["MaxQueueSize"] == "1000"


def test_a_lone_caller_hears_the_wait_document_again_and_again(app: Flask, log: Log) -> None:
    call = dial(app, "/caller")
    assert call.on_hold == "queue"
    call.wait(25)
    assert call.heard.count("You are number 1.") == 2  # the first was heard before the wait
    times = [r.at for r in call.requests if r.url.endswith("/wait")]
    loop = speech_seconds("You are number 1.") + 1 + 8
    assert times == pytest.approx([times[0], times[0] + loop, times[0] + 2 * loop])
    assert [r.params["QueueTime"] for r in call.requests if r.url.endswith("/wait")] == [
        "0", str(round(loop)), str(round(2 * loop))]
    call.hangup()
    assert log.to("/left")[0].params["QueueResult"] == "hangup"


def test_leave_in_a_wait_document_requests_the_action(app: Flask, log: Log) -> None:
    call = dial(app, "/leaver")
    call.wait(2)  # the Gather's prompt plays; the wait ends while it listens
    assert call.waiting is not None and call.on_hold == "queue"
    call.press("1")
    assert call.on_hold is None
    assert call.heard == "Queue result leave."
    assert log.to("/left")[0].params["QueueResult"] == "leave"


def test_a_full_queue_sends_queue_full(tmp_path: Path, app: Flask, log: Log) -> None:
    path = scenario(tmp_path, """
        queues: {support: {max_size: 1}}
        calls:
          - {name: one, url: /caller, steps: [{wait: 5}]}
          - {name: two, url: /caller, start: 1, steps: [expect: "Queue result queue-full."]}
    """)
    result = run_script(path, lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    assert result.passed, result.report()


def test_an_agent_on_an_empty_queue_waits_until_the_dial_timeout(app: Flask, log: Log) -> None:
    call = dial(app, "/agent")
    assert call.on_hold == "agent"
    call.wait(90)
    [done] = log.to("/agent-done")
    assert done.params["DialCallStatus"] == "no-answer"
    assert [r.at for r in call.requests if r.url.endswith("/agent-done")] == [60.0]


#: a call hangs up during the bridge when its `wait` ends: at a moment a float sum would put a
#: hair after every millisecond the clock shows (0.77 + 15.31, 5 + 11.06), where the old
#: simulator waited forever at full CPU
CALLER_HANGS_UP_IN_BRIDGE = """
    calls:
      - name: caller
        url: /caller
        steps:
          - wait: 15.31
          - expect: "Connecting you to an agent."
          - hangup
      - name: agent
        url: /agent
        start: 5
        steps:
          - wait: 60
          - expect: "Call completed."
          - hangup
"""
AGENT_HANGS_UP_IN_BRIDGE = """
    calls:
      - name: caller
        url: /caller
        steps:
          - wait: 60
          - expect: "Queue result bridged."
          - expect_hangup
      - name: agent
        url: /agent
        start: 5
        steps:
          - wait: 11.06
          - hangup
"""


def run_to_its_end(path: Path, app: Flask) -> ScriptResult:
    """Run a scenario, failing (not hanging) if it never ends: a spin is the bug under test."""
    results: list[ScriptResult] = []
    runner = threading.Thread(target=lambda: results.append(run_script(
        path, lambda: Simulator(DirectTransport(app), BASE + "/voice"))), daemon=True)
    runner.start()
    runner.join(60)
    if runner.is_alive():
        pytest.fail("the scenario never ended: the simulator spins")
    [result] = results
    return result


def test_the_queued_caller_hangs_up_during_the_bridge(
        tmp_path: Path, app: Flask, log: Log) -> None:
    result = run_to_its_end(scenario(tmp_path, CALLER_HANGS_UP_IN_BRIDGE), app)
    assert result.passed, result.report()
    caller = log.to("/caller")[0].params["CallSid"]
    [left] = log.to("/left")
    assert (left.params["CallSid"], left.params["QueueResult"]) == (caller, "bridged")
    assert left.params["CallStatus"] == "completed"
    [done] = log.to("/agent-done")
    assert (done.params["DialCallStatus"], done.params["DialCallSid"]) == ("completed", caller)
    assert done.params["DialCallDuration"] == "10"  # bridged at 6.61 s, hung up at 16.08 s
    hung_up = [event.at for event in result.transcript if event.kind == kind.HANGUP]
    assert hung_up[0] == 16.08


def test_the_agent_hangs_up_during_the_bridge(tmp_path: Path, app: Flask, log: Log) -> None:
    result = run_to_its_end(scenario(tmp_path, AGENT_HANGS_UP_IN_BRIDGE), app)
    assert result.passed, result.report()
    caller = log.to("/caller")[0].params["CallSid"]
    [done] = log.to("/agent-done")
    assert (done.params["DialCallStatus"], done.params["DialCallSid"]) == ("completed", caller)
    assert done.params["CallStatus"] == "completed"  # posted as the agent's call ends
    [left] = log.to("/left")
    assert (left.params["CallSid"], left.params["QueueResult"]) == (caller, "bridged")
    assert left.params["CallStatus"] == "in-progress"  # the caller's call goes on: its answer plays
    hung_up = [event.at for event in result.transcript if event.kind == kind.HANGUP]
    assert hung_up[0] == 16.06


def test_a_hold_that_lets_no_time_pass_is_reported_not_spun(
        tmp_path: Path, app: Flask, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: deadlines put between two milliseconds again (the old bug) stall the calls;
    the scenario fails with a report naming the stall, and ends."""
    monkeypatch.setattr(Clock, "after", lambda clock, seconds: clock.now + seconds)
    result = run_to_its_end(scenario(tmp_path, CALLER_HANGS_UP_IN_BRIDGE), app)
    assert not result.passed
    report = result.report()
    assert "expected the call to make progress in virtual time" in report
    assert "made no progress" in report and "at 16.08 s of virtual time" in report


# --- conferences -------------------------------------------------------------------------------

CONFERENCE_SCENARIO = """
    calls:
      - name: guest
        url: /guest
        steps:
          - wait: 100
          - expect: "Waiting for the host."
          - expect: "Conference over: answered."
      - name: host
        url: /host
        start: 30
        steps:
          - wait: 20
          - hangup
"""


def test_a_conference_waits_for_its_host_and_ends_with_it(
        tmp_path: Path, app: Flask, log: Log) -> None:
    result = run_script(scenario(tmp_path, CONFERENCE_SCENARIO),
                        lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    assert result.passed, result.report()
    waits = log.to("/conf-wait")
    assert len(waits) == 3  # 0 s, ~11 s, ~22 s; the host starts the conference at 30 s
    [done] = log.to("/conf-done")
    assert done.params["DialCallStatus"] == "answered"
    assert "DialCallSid" not in done.params and "DialCallDuration" not in done.params


TEAM_SCENARIO = """
    calls:
      - name: moderator
        url: /moderator
        steps:
          - wait: 30
          - expect: "Waiting for the host."
          - hangup
      - name: member
        url: /member
        start: 20
        steps:
          - wait: 60
          - expect: "Conference over: answered."
"""


def test_a_lone_moderator_waits_until_a_second_participant_joins(
        tmp_path: Path, app: Flask, log: Log) -> None:
    """Twilio: a conference does not start until at least two participants are in it, even
    when the one alone has startConferenceOnEnter."""
    result = run_script(scenario(tmp_path, TEAM_SCENARIO),
                        lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    assert result.passed, result.report()
    waits = log.to("/conf-wait")
    assert len(waits) == 2  # 0 s and ~11 s, alone; the member joins at 20 s
    starts = [event.at for event in result.transcript
              if event.kind == kind.CONFERENCE and event.text == "the conference starts"]
    assert starts and starts[0] == 20.0


def test_conference_status_callbacks_report_join_start_leave_end(
        tmp_path: Path, app: Flask, log: Log) -> None:
    run_script(scenario(tmp_path, TEAM_SCENARIO),
               lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    moderator = log.to("/moderator")[0].params["CallSid"]
    member = log.to("/member")[0].params["CallSid"]
    events = [(seen.params["StatusCallbackEvent"], seen.params.get("CallSid"))
              for seen in log.to("/ok")]
    assert events == [("participant-join", moderator), ("participant-join", member),
                      ("conference-start", None), ("participant-leave", moderator),
                      ("conference-end", None), ("participant-leave", member)]
    assert "/later" not in log.paths()  # a later participant's statusCallback is ignored
    seen = log.to("/ok")
    assert [s.params["SequenceNumber"] for s in seen] == ["0", "1", "2", "3", "4", "5"]
    assert len({s.params["ConferenceSid"] for s in seen}) == 1
    assert {s.params["FriendlyName"] for s in seen} == {"team"}
    join = seen[0].params
    assert (join["Muted"], join["Hold"], join["EndConferenceOnExit"],
            join["StartConferenceOnEnter"]) == ("false", "false", "true", "true")
    end = seen[4].params
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert end["CallSidEndingConference"] == moderator


# --- Dial nouns --------------------------------------------------------------------------------


def test_a_whisper_runs_on_the_called_leg_and_its_party_may_accept(app: Flask, log: Log) -> None:
    call = dial(app, "/transfer")
    # nobody scripted the called party: it presses nothing, the whisper hangs up
    assert call.heard == "completed bridged false."
    screen = log.to("/screen")[0].params
    assert (screen["From"], screen["To"], screen["Direction"]) == (
        "+14155550100", "+14155550199", "outbound-dial")
    assert screen["ParentCallSid"] == call.call_sid
    assert screen["ToCity"] == "SAN FRANCISCO"
    events = [seen.params["CallStatus"] for seen in log.to("/ok")]
    assert events == ["initiated", "ringing", "in-progress", "completed"]
    assert [seen.params["SequenceNumber"] for seen in log.to("/ok")] == ["0", "1", "2", "3"]


def test_a_called_party_that_presses_1_is_connected(tmp_path: Path, app: Flask,
                                                   log: Log) -> None:
    path = scenario(tmp_path, """
        url: /menu
        steps:
          - called_party: {press: ["1"]}
          - press: "1"
          - expect: "completed bridged true."
          - expect_dial: "+14155550199"
    """)
    assert run_script(path, lambda: Simulator(DirectTransport(app), BASE)).passed
    assert log.to("/screened")[0].params["Digits"] == "1"
    done = log.to("/transfer-done")[0].params
    assert done["DialCallDuration"] == "30"


def test_the_caller_hangs_up_in_the_middle_of_a_say(
        tmp_path: Path, app: Flask, log: Log) -> None:
    """Hanging up mid-prompt: only what was said before is heard, the <Gather>'s action is
    never requested, the call ends completed at that moment."""
    first = speech_seconds("For balances press one.")
    path = scenario(tmp_path, f"""
        name: hangs up mid-say
        url: /long-menu
        steps:
          - hangup: {{after: {first + 2 + 0.5}}}
          - expect: "For balances press one."
          - expect: "For an agent press zero."
          - expect_not: "[pause"
    """)
    result = run_script(path, lambda: Simulator(DirectTransport(app), BASE + "/voice"))
    assert result.passed, result.report()
    assert "/ok" not in log.paths()  # the <Gather>'s action: never requested
    [hangup] = [event for event in result.transcript if event.kind == kind.HANGUP]
    assert hangup.at == pytest.approx(first + 2 + 0.5)
    assert hangup.text.endswith("not heard: For an agent press zero.")
    assert "hung up by the caller (CallStatus=completed)" in result.transcript_text
    call = dial(app, "/long-menu")
    with pytest.raises(ValueError, match="the prompt lasts"):
        call.hangup(after=60)


# --- HTTP as Twilio does it --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "method"), [(301, "GET"), (302, "GET"), (303, "GET"),
                                              (307, "POST")])
def test_redirects_are_followed(app: Flask, log: Log, code: int, method: str) -> None:
    call = dial(app, f"/moved?code={code}")
    assert call.heard == f"Moved, by {method}."
    assert [(seen.method, seen.path) for seen in log.requests] == [
        ("POST", "/moved"), (method, "/moved-here")]


def test_the_voice_url_by_get_carries_the_geographic_parameters(app: Flask, log: Log) -> None:
    call = dial(app, "/quickstart", method="GET", from_="+14155550123")
    assert call.heard == "Hello caller from SAN FRANCISCO."
    assert log.requests[0].method == "GET"


def test_the_fallback_url_gets_the_error(app: Flask, log: Log) -> None:
    call = dial(app, "/broken", fallback_url="/fallback")
    assert call.heard == "Fallback for error 11200."
    fallback = log.to("/fallback")[0].params
    assert fallback["ErrorUrl"] == BASE + "/broken"


def test_an_audio_answer_is_played_then_twilio_hangs_up(app: Flask, log: Log) -> None:
    call = dial(app, "/audio")
    assert call.heard == f"[play {BASE}/audio]"
    assert call.ended_by == "application"


def test_a_request_over_15_virtual_seconds_is_an_application_error(log: Log) -> None:
    slow = create_app()

    @slow.post("/slow")
    def slow_route() -> str:
        clock.advance(16)  # the app takes 16 s of the call's time
        return "<Response/>"

    simulator = Simulator(DirectTransport(slow), BASE + "/slow")
    from simulator import Clock

    clock = Clock()
    simulator.clock = clock
    call = simulator.dial()
    assert call.error is not None and "Twilio gives up after 15 s" in call.error


# --- speech and sounds -------------------------------------------------------------------------


def test_speech_reaches_the_action_with_partial_results(app: Flask, log: Log) -> None:
    call = dial(app, "/speech")
    assert call.waiting is not None and call.waiting.input == ("speech", "dtmf")
    call.speak("billing please", confidence=0.8)
    assert call.heard == "You said billing please."
    heard = log.to("/heard")[0].params
    assert (heard["SpeechResult"], heard["Confidence"]) == ("billing please", "0.8")
    partial = [(seen.params["StableSpeechResult"], seen.params["UnstableSpeechResult"])
               for seen in log.to("/ok")]
    assert partial == [("", "billing"), ("billing", "please")]


def test_ssml_is_rendered_and_play_digits_takes_its_time(app: Flask) -> None:
    call = dial(app, "/ssml")
    assert call.heard == "Your code is A B 1 2 World Wide Web .\n[play digits 1w2]"
    [say] = [e for e in call.transcript if e.kind == kind.SAY]
    assert call.duration == pytest.approx(
        speech_seconds("Your code is") + speech_seconds("A B 1 2") + 2
        + speech_seconds("World Wide Web") + speech_seconds(".") + 0.2 + 0.5 + 0.2)
    assert say.at == 0.0


# --- over real HTTP -----------------------------------------------------------------------------


def test_over_http_a_queue_scenario_and_a_recording(tmp_path: Path) -> None:
    app = create_app()
    log: Log = app.config["LOG"]
    with serve(app) as base, HttpTransport() as transport:
        result = run_script(scenario(tmp_path, QUEUE_SCENARIO),
                            lambda: Simulator(transport, base + "/voice"))
        assert result.passed, result.report()
        assert [seen.params["QueuePosition"] for seen in log.to("/wait")][:2] == ["1", "2"]
        call = Simulator(transport, base + "/record").dial()
        call.record(5, key="*")
        assert call.heard == "Got 5 seconds."


def test_a_scenario_file_is_recognised_by_its_calls(tmp_path: Path) -> None:
    script = load_script(scenario(tmp_path, QUEUE_SCENARIO))
    assert script.scenario
    assert [call.name for call in script.calls] == ["first caller", "second caller", "agent"]
    assert [call.start for call in script.calls] == [0, 1, 20]


# --- scripts: strict, expected errors, reports -------------------------------------------------


def test_an_ignored_attribute_is_reported_and_strict_fails_on_it(tmp_path: Path, app: Flask,
                                                                 log: Log) -> None:
    text = "url: /recorded-dial\n{strict}steps:\n  - expect_dial: \"+15550001111\"\n"
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(text.format(strict=""), encoding="utf-8")
    result = run_script(lenient, lambda: Simulator(DirectTransport(app), BASE))
    assert result.passed
    assert any(e.kind == kind.NOT_SIMULATED and "<Dial record>" in e.text
               for e in result.transcript)
    strict = tmp_path / "strict.yaml"
    strict.write_text(text.format(strict="strict: true\n"), encoding="utf-8")
    [failure] = run_script(strict, lambda: Simulator(DirectTransport(app), BASE)).failures
    assert failure.expected.startswith("nothing reported as not simulated (strict): <Dial record>")


def test_an_expected_application_error_passes(tmp_path: Path, app: Flask, log: Log) -> None:
    path = scenario(tmp_path, """
        url: /broken
        steps:
          - expect_error: "answered HTTP 500"
    """)
    assert run_script(path, lambda: Simulator(DirectTransport(app), BASE)).passed


def test_the_caller_hangs_up_in_a_conference(app: Flask, log: Log) -> None:
    call = dial(app, "/guest")
    assert call.on_hold == "conference"
    call.wait(5)
    call.hangup()
    [done] = log.to("/conf-done")
    assert (done.params["DialCallStatus"], done.params["CallStatus"]) == ("answered", "completed")
