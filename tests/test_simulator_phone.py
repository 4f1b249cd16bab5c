"""The interactive text phone, driven by canned input."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from flask import Flask
from rich.console import Console
from twiml_app import MENU, create_app

from simulator import Call, Simulator, WsgiTransport, run_phone


def canned(lines: Iterable[str]) -> tuple[Callable[[str], str], list[str]]:
    """An input function answering with `lines`, then EOF; it records the prompts shown."""
    queue = list(lines)
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise EOFError
        return queue.pop(0)

    return answer, prompts


def phone(app: Flask, lines: Iterable[str], path: str = "/voice") -> tuple[str, list[str], Call]:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    answer, prompts = canned(lines)
    call = run_phone(Simulator(WsgiTransport(app), "http://pizza.test" + path), console, answer)
    assert isinstance(console.file, io.StringIO)
    output = console.file.getvalue()
    return output, prompts, call


def test_typed_keys_reach_the_gather_and_the_call_ends_by_the_application() -> None:
    app = create_app()
    output, prompts, call = phone(app, ["1", "2#", "1234"])
    assert call.ended_by == "application"
    assert "Welcome to Pizza Line.  (voice=alice, language=en-US)" in output
    assert f"{MENU}  (default voice)" in output
    assert "You ordered 2 pizzas." in output
    assert "PIN 1234 accepted. Session s1." in output
    assert "Call ended: hung up by the application (CallStatus=completed)" in output
    assert prompts[0] == "[1.33s] keys (1 digits, end with #, timeout 5s) > "
    assert len(prompts) == 3


def test_enter_alone_is_silence() -> None:
    output, prompts, call = phone(create_app(), [""])
    assert "We did not hear you. Goodbye." in output
    assert call.ended_by == "application"
    assert len(prompts) == 1


def test_h_hangs_up_and_bad_keys_are_refused_without_acting() -> None:
    app = create_app()
    output, prompts, call = phone(app, ["x1", "h"])
    assert "not phone keys: x1" in output
    assert call.ended_by == "caller"
    assert "Call ended: hung up by the caller (CallStatus=completed)" in output
    assert [seen.path for seen in app.config["PIZZA"].requests] == ["/voice"]
    assert output.count("Welcome to Pizza Line.") == 1  # not repeated after a refused entry
    assert len(prompts) == 2


def test_end_of_input_hangs_up() -> None:
    output, prompts, call = phone(create_app(), [])
    assert call.ended_by == "caller"
    assert len(prompts) == 1


def test_ignored_keys_and_application_errors_are_shown() -> None:
    output, _, call = phone(create_app(), ["49", "8"])
    assert "ignored (the Gather was already complete): 9" in output
    assert call.ended_by == "error"
    assert "Call ended: application error: http://pizza.test/broken answered HTTP 500" in output
