"""The interactive text phone, driven by canned input."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from rich.console import Console
from twiml_app import MENU, create_app

from simulator import Call, Clock, Simulator, WsgiTransport, run_phone

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


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


def phone(app: Flask, lines: Iterable[str], path: str = "/voice",
          **kwargs: object) -> tuple[str, list[str], Call]:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    answer, prompts = canned(lines)
    simulator = Simulator(WsgiTransport(app), "http://pizza.test" + path, clock=Clock(START))
    call = run_phone(simulator, console, answer, **kwargs)  # type: ignore[arg-type]
    assert isinstance(console.file, io.StringIO)
    output = console.file.getvalue()
    return output, prompts, call


def test_typed_keys_reach_the_gather_and_the_call_ends_by_the_application() -> None:
    app = create_app()
    output, prompts, call = phone(app, ["1", "2#", "1234"])
    assert call.ended_by == "application"
    assert "Calling http://pizza.test/voice  2026-11-23 02:00+00:00 (virtual time)" in output
    assert "02:00:00  Welcome to Pizza Line.  (voice=alice, language=en-US)" in output
    assert f"{MENU}  (default voice)" in output
    assert "You ordered 2 pizzas." in output
    assert "PIN 1234 accepted. Session s1." in output
    assert "Call ended: the line hung up after" in output
    assert re.fullmatch(r"02:00:\d\d  one key > ", prompts[0]), prompts[0]
    assert len(prompts) == 3


def test_times_never_go_back_and_the_voice_is_shown_when_it_changes() -> None:
    output, prompts, _ = phone(create_app(), ["1", "2#", "1234"])
    lines = [line for line in output.splitlines() if re.match(r"\d\d:\d\d:\d\d  ", line)]
    times = [line[:8] for line in lines]
    assert len(times) >= 5 and times == sorted(times), output
    # the first prompt comes when the menu has been said: after the lines before it
    menu_at = next(line[:8] for line in lines if MENU in line)
    assert prompts[0][:8] > menu_at
    assert output.count("(default voice)") == 1
    verbose, _, _ = phone(create_app(), ["1", "2#", "1234"], verbose=True)
    assert verbose.count("(default voice)") > 1


def test_the_header_names_what_is_called() -> None:
    output, _, _ = phone(create_app(), [], where="the hotline, in-process")
    assert output.startswith("Calling the hotline, in-process  2026-11-23 02:00+00:00")


def test_enter_alone_is_silence_and_is_marked() -> None:
    output, prompts, call = phone(create_app(), [""])
    assert re.search(r"^\d\d:\d\d:\d\d  \(silence\)$", output, re.M), output
    assert "We did not hear you. Goodbye." in output
    assert call.ended_by == "application"
    assert len(prompts) == 1


def test_a_number_entry_that_times_out_is_marked() -> None:
    """Keys without the finishing # end the entry after the timeout: the phone says so."""
    output, _, _ = phone(create_app(), ["1", "2"])
    assert "(no more keys) no more keys for 5 s" in output


def test_h_hangs_up_and_bad_keys_are_refused_without_acting() -> None:
    app = create_app()
    output, prompts, call = phone(app, ["x1", "h"])
    assert "not phone keys: x1" in output
    assert call.ended_by == "caller"
    assert "Call ended: you hung up" in output
    assert [seen.path for seen in app.config["PIZZA"].requests] == ["/voice"]
    assert output.count("Welcome to Pizza Line.") == 1  # not repeated after a refused entry
    assert len(prompts) == 2


def test_end_of_input_hangs_up() -> None:
    output, prompts, call = phone(create_app(), [])
    assert call.ended_by == "caller"
    assert len(prompts) == 1


def test_ctrl_c_hangs_up_cleanly() -> None:
    def interrupt(prompt: str) -> str:
        raise KeyboardInterrupt

    console = Console(file=io.StringIO(), width=300, color_system=None)
    simulator = Simulator(WsgiTransport(create_app()), "http://pizza.test/voice")
    call = run_phone(simulator, console, interrupt)
    assert call.ended_by == "caller"
    assert "Call ended: you hung up" in console.file.getvalue()  # type: ignore[attr-defined]


def test_ignored_keys_and_application_errors_are_shown() -> None:
    output, _, call = phone(create_app(), ["49", "8"])
    assert "(not heard: 9 came after the entry was complete)" in output
    assert "Gather" not in output
    assert call.ended_by == "error"
    assert "Call ended: application error: http://pizza.test/broken answered HTTP 500" in output


def test_times_are_shown_in_the_zone_given() -> None:
    from zoneinfo import ZoneInfo

    output, prompts, _ = phone(create_app(), ["h"], zone=ZoneInfo("Asia/Shanghai"))
    assert "Calling http://pizza.test/voice  2026-11-23 10:00+08:00 (virtual time)" in output
    assert "10:00:00  Welcome to Pizza Line." in output
    assert prompts[0].startswith("10:00:")


def test_the_text_phone_shows_the_hotline_regions_time(tmp_path: Path) -> None:
    """`ivr12333 call` in-process: the clock on the wall of the line's region (Asia/Shanghai
    for the demo), whatever zone --at was given in or the machine is set to."""
    from servers import run_cli

    url = f"sqlite:///{tmp_path}/demo.sqlite3"
    assert run_cli("--database-url", url, "demo").returncode == 0
    done = run_cli("--database-url", url, "call", "--at", "2026-11-23T02:00:00+00:00",
                   env={"TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    assert "2026-11-23 10:00+08:00 (virtual time)" in done.stdout, done.stdout
    assert re.search(r"^10:00:00  欢迎致电", done.stdout, re.M), done.stdout
