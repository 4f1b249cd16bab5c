"""Scripted calls: the YAML contract, readable failures, transcripts and the summary line."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from twiml_app import MENU, PizzaState, create_app, serve

from simulator import (
    Failure,
    HttpTransport,
    ScriptResult,
    Simulator,
    Wording,
    WsgiTransport,
    run_script,
    run_scripts,
    summary,
    write_transcripts,
)

BASE = "http://pizza.test"
Factory = Callable[[], Simulator]


@pytest.fixture
def app() -> Flask:
    return create_app()


@pytest.fixture
def state(app: Flask) -> PizzaState:
    result: PizzaState = app.config["PIZZA"]
    return result


def factory(app: Flask, path: str = "/voice", **options: object) -> Factory:
    return lambda: Simulator(WsgiTransport(app), BASE + path, **options)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


ORDER = """
    name: order two pizzas
    from: "+8613800000001"
    to: "+867712333"
    steps:
      - expect: "Welcome to Pizza Line."
      - expect_regex: "Press 1 to order.*Press 1 to order"
      - expect_not: "Sorry"
      - press: "1"
      - expect: "How many pizzas?"
      - press: "2#"
      - expect: "You ordered 2 pizzas."
      - press: "1234"
      - expect_regex: 'PIN 1234 accepted\\. Session s[0-9]+\\.'
      - expect_hangup
    """


# --- passing scripts -----------------------------------------------------------------------------


def test_a_script_that_holds_passes(tmp_path: Path, app: Flask, state: PizzaState) -> None:
    result = run_script(write(tmp_path, "order.yaml", ORDER), factory(app))
    assert (result.name, result.passed, result.failures) == ("order two pizzas", True, [])
    assert result.path == tmp_path / "order.yaml"
    assert [seen.path for seen in state.requests] == [
        "/voice",
        "/menu",
        "/order/quantity",
        "/order/pin",
    ]
    assert state.requests[0].params["From"] == "+8613800000001"
    assert state.requests[0].params["To"] == "+867712333"
    assert state.requests[-1].cookies == {"session": "s1"}
    assert result.report() == f"PASS order two pizzas [{tmp_path / 'order.yaml'}]"


def test_the_name_defaults_to_the_file_name(tmp_path: Path, app: Flask) -> None:
    path = write(tmp_path, "just-hang-up.yml", "steps:\n  - hangup\n")
    result = run_script(path, factory(app))
    assert (result.name, result.passed) == ("just-hang-up", True)


def test_silence_steps_advance_virtual_time_only(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "patient.yaml",
        """
        steps:
          - expect: "Still there?"
          - silence: 20
          - silence: 5
          - press: "3"
          - expect: "Finally, 3."
          - expect_hangup
        """,
    )
    started = time.perf_counter()
    result = run_script(path, factory(app, "/patient"))
    wall = time.perf_counter() - started
    assert result.passed is True, [f.message for f in result.failures]
    assert result.transcript[-1].at >= 25 * 10  # twenty-five 10-second timeouts
    assert wall < 5.0  # real waiting would take more than four minutes
    assert [e.kind for e in result.transcript].count("silence") == 25


def test_silence_then_the_application_ends_the_call(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "silent.yaml",
        """
        steps:
          - silence: 1
          - expect: "We did not hear you. Goodbye."
          - expect_hangup
        """,
    )
    assert run_script(path, factory(app)).passed is True


def test_caller_hangup_step_posts_the_status_callback(
    tmp_path: Path, app: Flask, state: PizzaState
) -> None:
    path = write(
        tmp_path,
        "hours.yaml",
        """
        steps:
          - press: "2"
          - expect: "We are open from 11 to 11."
          - expect: "Welcome back."
          - hangup
        """,
    )
    result = run_script(path, factory(app, status_callback="/status"))
    assert result.passed is True
    assert [cb["CallStatus"] for cb in state.status_callbacks] == ["completed"]
    assert [e.text for e in result.transcript if e.kind == "hangup"] == ["by the caller"]


def test_dial_status_top_level_and_per_step(tmp_path: Path, app: Flask) -> None:
    top = write(
        tmp_path,
        "busy.yaml",
        """
        dial_status: busy
        steps:
          - press: "3"
          - expect: "Dial status busy, 0 seconds."
        """,
    )
    step = write(
        tmp_path,
        "no-answer.yaml",
        """
        steps:
          - dial_status: no-answer
          - press: "3"
          - expect: "Dial status no-answer, 0 seconds."
          - expect_hangup
        """,
    )
    assert [r.passed for r in run_scripts([top, step], factory(app))] == [True, True]


def test_barge_in_step_interrupts_the_prompt(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "barge.yaml",
        """
        steps:
          - barge_in: "1"
          - expect: "How many pizzas?"
        """,
    )
    result = run_script(path, factory(app))
    assert result.passed is True
    [barge] = [e for e in result.transcript if e.kind == "barge-in"]
    assert barge.text == f"keys stop the prompt; not heard: {MENU} / {MENU}"


def test_scripts_run_over_http_with_signatures(tmp_path: Path) -> None:
    app = create_app(auth_token="secret")
    state: PizzaState = app.config["PIZZA"]
    path = write(tmp_path, "order.yaml", ORDER)
    with serve(app) as base:
        result = run_script(
            path, lambda: Simulator(HttpTransport(), base + "/voice", auth_token="secret")
        )
    assert result.passed is True, [f.message for f in result.failures]
    assert len(state.requests) == 4
    assert all(seen.signature for seen in state.requests)


# --- failing scripts -----------------------------------------------------------------------------


def test_a_wrong_expectation_fails_with_a_readable_report(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "wrong.yaml",
        """
        name: wrong greeting
        steps:
          - expect: "Welcome to Pizza Line."
          - press: "*"
          - expect: "See you soon."
          - expect_hangup
        """,
    )
    result = run_script(path, factory(app))
    assert result.passed is False
    assert result.failures == [
        Failure(
            step_index=3,
            step='expect: "See you soon."',
            expected="to hear 'See you soon.'",
            heard="Goodbye.\n[the call has ended: hung up by the application "
            "(CallStatus=completed)]",
            script="wrong greeting",
            path=str(path),
        )
    ]
    message = result.failures[0].message
    assert "wrong greeting" in message
    assert 'step 3 (expect: "See you soon.")' in message
    assert "expected to hear 'See you soon.'" in message
    assert "Goodbye." in message
    assert result.report().startswith(
        f'FAIL wrong greeting [{path}] step 3 (expect: "See you soon."): expected to hear'
    )


def test_expect_regex_and_expect_not_can_fail(tmp_path: Path, app: Flask) -> None:
    regex = write(tmp_path, "regex.yaml", 'steps:\n  - expect_regex: "Press 9.*pizza"\n')
    absent = write(tmp_path, "absent.yaml", 'steps:\n  - expect_not: "2 for opening hours"\n')
    regex_result, absent_result = run_scripts([regex, absent], factory(app))
    assert regex_result.failures[0].expected == "to hear something matching /Press 9.*pizza/"
    assert absent_result.failures[0].expected == "not to hear '2 for opening hours'"
    assert absent_result.failures[0].heard.startswith(f"Welcome to Pizza Line.\n{MENU}")


def test_expect_hangup_fails_while_a_gather_waits(tmp_path: Path, app: Flask) -> None:
    path = write(tmp_path, "early.yaml", "steps:\n  - expect_hangup\n")
    [failure] = run_script(path, factory(app)).failures
    assert (failure.step_index, failure.step) == (1, "expect_hangup")
    assert failure.expected == "the application to end the call"
    assert failure.heard.endswith(
        "[a <Gather> waits for keys: timeout=5s numDigits=1 finishOnKey='#' "
        f"action=POST {BASE}/menu]"
    )


def test_pressing_after_the_application_hung_up_fails(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "late.yaml",
        """
        steps:
          - press: "*"
          - press: "1"
        """,
    )
    [failure] = run_script(path, factory(app)).failures
    assert (failure.step_index, failure.step) == (2, 'press: "1"')
    assert failure.expected == (
        "the call to wait for the caller (cannot press '1': the call has ended "
        "(hung up by the application (CallStatus=completed)))"
    )


def test_an_application_error_fails_the_script(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "broken.yaml",
        """
        steps:
          - press: "4"
          - press: "8"
        """,
    )
    [failure] = run_script(path, factory(app)).failures
    assert failure.step_index is None
    assert failure.expected == "no application error"
    assert f"application error: {BASE}/broken answered HTTP 500: Internal trouble:" in (
        failure.heard
    )


def test_an_unsupported_verb_fails_the_script(tmp_path: Path, app: Flask) -> None:
    path = write(
        tmp_path,
        "record.yaml",
        """
        steps:
          - press: "4"
          - press: "9"
        """,
    )
    [failure] = run_script(path, factory(app)).failures
    assert failure.expected == "no application error"
    assert "<Connect> is not simulated" in failure.heard


# --- malformed scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "step_index", "problem"),
    [
        ("steps: [\n", None, "not valid YAML"),
        ("- press: '1'\n", None, "the file must be a mapping"),
        ("stpes:\n  - hangup\n", None, "unknown key(s) stpes"),
        ("name: x\n", None, "missing `steps`"),
        ("steps: []\n", None, "`steps` must be a non-empty list"),
        ("stpes:\n  - hangup\n", None,
         "allowed: name, from, to, url, voice_method, fallback_url, geo, dial_status, strict, at, "
         "dataset, queues, calls, steps"),
        ("from: 8613800000000\nsteps: [hangup]\n", None, "`from` must be a quoted string"),
        ("dial_status: engaged\nsteps: [hangup]\n", None, "dial_status must be one of"),
        ("steps:\n  - hangup\n  - press: 1\n", 2, "`press` takes a non-empty quoted string"),
        ("steps:\n  - press: '12a'\n", 1, "takes phone keys only"),
        ("steps:\n  - presss: '1'\n", 1, "unknown step kind"),
        ("steps:\n  - press: '1'\n    expect: x\n", 1, "exactly one"),
        ("steps:\n  - silence: 0\n", 1, "silence takes a count"),
        ("steps:\n  - silence: '2'\n", 1, "silence takes a count"),
        ("steps:\n  - expect_regex: '(['\n", 1, "not a valid regular expression"),
        ("steps:\n  - hang up\n", 1, "a bare step must be one of hangup, expect_hangup"),
        ("steps:\n  - hangup: now\n", 1, "`hangup` takes no value"),
        ("steps:\n  - expect: ''\n", 1, "`expect` takes a non-empty quoted string"),
        ("steps:\n  - hangup\n  - silence: true\n", 2, "silence takes a count"),
        ("steps:\n  - expect_prompt: ''\n", 1, "a prompt step takes a prompt id"),
        ("steps:\n  - expect_prompt: {idd: x}\n", 1, "missing `id`"),
        ("steps:\n  - expect_prompt: {id: x, values: {n: 2}}\n", 1, "a value is quoted text"),
        ("at: 2026-11-23T10:00:00\nsteps: [hangup]\n", None, "`at` must be a date and time"),
        ("at: '2026-13-23T10:00:00+08:00'\nsteps: [hangup]\n", None, "not a real date"),
    ],
)
def test_a_malformed_script_is_a_failure_naming_file_and_step(
    tmp_path: Path, app: Flask, text: str, step_index: int | None, problem: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    result = run_script(path, factory(app))
    assert (result.passed, result.name, result.transcript) == (False, "bad", [])
    [failure] = result.failures
    assert failure.step_index == step_index
    assert failure.expected.startswith("a well-formed scripted call: ")
    assert problem in failure.expected
    assert str(path) in failure.message
    assert failure.heard == "(no call was placed)"
    if step_index is not None:
        assert f"step {step_index} (" in failure.message
    assert app.config["PIZZA"].requests == []  # nothing was dialled


def test_a_missing_file_is_a_failure(tmp_path: Path, app: Flask) -> None:
    result = run_script(tmp_path / "nope.yaml", factory(app))
    [failure] = result.failures
    assert "cannot read the file" in failure.expected
    assert summary([result]) == "0 passed, 1 failed"


# --- many scripts, summary, transcripts ----------------------------------------------------------


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "calls"
    folder.mkdir()
    write(folder, "b-order.yaml", ORDER)
    write(folder, "a-hangup.yml", "steps:\n  - press: '2'\n  - hangup\n")
    write(folder, "c-wrong.yaml", "steps:\n  - expect: 'Burger'\n")
    write(folder, "notes.txt", "not a script")
    yield folder


def test_run_scripts_expands_directories_sorted(suite: Path, app: Flask) -> None:
    results = run_scripts([suite], factory(app))
    assert [r.path.name for r in results] == ["a-hangup.yml", "b-order.yaml", "c-wrong.yaml"]
    assert [r.passed for r in results] == [True, True, False]
    assert summary(results) == "2 passed, 1 failed"
    assert summary([]) == "0 passed, 0 failed"


def test_write_transcripts_writes_one_readable_file_per_call(
    suite: Path, app: Flask, tmp_path: Path
) -> None:
    results: list[ScriptResult] = run_scripts(suite, factory(app))
    files = write_transcripts(results, tmp_path / "out")
    assert [f.name for f in files] == ["a-hangup.txt", "b-order.txt", "c-wrong.txt"]
    hangup = files[0].read_text(encoding="utf-8")
    assert hangup.startswith("Call CA")
    assert f"request         POST {BASE}/voice" in hangup
    assert "CallStatus=ringing" in hangup
    assert "say             Welcome to Pizza Line.  (voice=alice, language=en-US)" in hangup
    assert "keys            2" in hangup
    assert "pause           3 s" in hangup
    assert "hangup          by the caller" in hangup
    assert "Ended: hung up by the caller (CallStatus=completed)" in hangup
    assert hangup.rstrip().endswith(f"PASS a-hangup [{suite / 'a-hangup.yml'}]")
    wrong = files[2].read_text(encoding="utf-8")
    assert f'FAIL c-wrong [{suite / "c-wrong.yaml"}] step 1 (expect: "Burger")' in wrong
    assert "expected to hear 'Burger'" in wrong


def test_transcripts_of_same_named_scripts_do_not_overwrite(tmp_path: Path, app: Flask) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    first = write(tmp_path / "one", "same.yaml", "steps: [hangup]\n")
    second = write(tmp_path / "two", "same.yaml", "steps: [hangup]\n")
    files = write_transcripts(run_scripts([first, second], factory(app)), tmp_path / "out")
    assert [f.name for f in files] == ["same.txt", "same-2.txt"]


# --- prompts by id (expect_prompt), with a resolver the runner is given --------------------------

PIZZA_PROMPTS = {
    "welcome": "Welcome to Pizza Line.",
    "menu": MENU,
    "ordered": "You ordered {n} pizzas.",
    "goodbye": "Goodbye.",
}


def pizza_prompts(prompt_id: str, values: Mapping[str, str], language: str | None) -> list[Any]:
    """Pizza Line's prompts, the same in every language; {n} is a hole unless given."""
    if prompt_id not in PIZZA_PROMPTS:
        raise LookupError(f"Pizza Line has no prompt {prompt_id!r}")
    text = PIZZA_PROMPTS[prompt_id]
    if "{n}" not in text:
        return [text]
    if "n" in values:
        return [text.replace("{n}", values["n"])]
    return [Wording(tuple(text.split("{n}")))]


PROMPT_ORDER = """
    steps:
      - expect_prompt: welcome
      - expect_prompt: {id: welcome, language: en-US}
      - expect_prompt: menu
      - expect_not_prompt: goodbye
      - press: "1"
      - press: "2#"
      - expect_prompt: {id: ordered, values: {n: "2"}}
      - expect_prompt: ordered
      - expect_not_prompt: {id: ordered, values: {n: "3"}}
    """


def test_expect_prompt_matches_the_wording_the_resolver_gives(tmp_path: Path, app: Flask) -> None:
    path = write(tmp_path, "prompts.yaml", PROMPT_ORDER)
    result = run_script(path, factory(app), prompts=pizza_prompts)
    assert result.passed, result.report()
    [batch] = run_scripts([tmp_path], factory(app), prompts=pizza_prompts)
    assert batch.passed, batch.report()


def test_expect_prompt_counts_only_the_says_in_the_language_asked(
    tmp_path: Path, app: Flask
) -> None:
    """The menu's <Say> has no language attribute: asked in en-US, it was not heard."""
    path = write(tmp_path, "lang.yaml", "steps:\n  - expect_prompt: {id: menu, language: en-US}\n")
    [failure] = run_script(path, factory(app), prompts=pizza_prompts).failures
    assert failure.expected == f"to hear prompt menu: {MENU!r} in en-US"


def test_expect_prompt_and_expect_not_prompt_can_fail(tmp_path: Path, app: Flask) -> None:
    said = write(tmp_path, "said.yaml", "steps:\n  - expect_prompt: goodbye\n")
    unsaid = write(tmp_path, "unsaid.yaml", "steps:\n  - expect_not_prompt: menu\n")
    hole = write(tmp_path, "hole.yaml", "steps:\n  - press: '1'\n  - press: '2#'\n"
                 "  - expect_not_prompt: ordered\n")
    results = run_scripts([said, unsaid, hole], factory(app), prompts=pizza_prompts)
    assert [r.failures[0].expected for r in results] == [
        "to hear prompt goodbye: 'Goodbye.'",
        f"not to hear prompt menu: {MENU!r}",
        "not to hear prompt ordered: 'You ordered … pizzas.'",
    ]
    assert results[0].failures[0].step == 'expect_prompt: "goodbye"'


def test_prompt_steps_without_a_resolver_fail_before_dialling(tmp_path: Path, app: Flask) -> None:
    path = write(tmp_path, "prompts.yaml", PROMPT_ORDER)
    for result in (run_script(path, factory(app)), *run_scripts([path], factory(app))):
        [failure] = result.failures
        assert (failure.step_index, failure.heard) == (1, "(no call was placed)")
        assert failure.expected.startswith(
            "a well-formed scripted call: this run has no prompt catalogue")
    assert app.config["PIZZA"].requests == []


def test_a_prompt_the_resolver_does_not_know_fails_before_dialling(
    tmp_path: Path, app: Flask
) -> None:
    path = write(tmp_path, "unknown.yaml", "steps:\n  - press: '1'\n  - expect_prompt: pizza\n")
    [failure] = run_script(path, factory(app), prompts=pizza_prompts).failures
    assert failure.step_index == 2
    assert failure.expected == "a well-formed scripted call: Pizza Line has no prompt 'pizza'"
    assert app.config["PIZZA"].requests == []
