"""An interactive text phone: read what the application says, type keys, hear the answer."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from simulator.call import Call
from simulator.dialer import Simulator
from simulator.gather import KEYS

HANGUP_WORDS = ("h", "q", "hangup", "quit")
HELP = "keys 0-9 * # then Enter · Enter alone = silence · h = hang up"


def _show_said(call: Call, console: Console) -> None:
    for utterance in call.said:
        console.print(
            f"[dim]{utterance.at:7.2f}s[/dim]  {escape(utterance.text)}  "
            f"[dim]({escape(utterance.voice_label())})[/dim]"
        )


def _prompt(call: Call) -> str:
    gather = call.waiting
    limit = ""
    if gather is not None:
        parts = [f"{gather.num_digits} digits" if gather.num_digits else "keys"]
        if gather.finish_on_key:
            parts.append(f"end with {gather.finish_on_key}")
        parts.append(f"timeout {gather.timeout:g}s")
        limit = ", ".join(parts)
    return f"[{call.clock.now:.2f}s] keys ({limit}) > "


def run_phone(
    simulator: Simulator,
    console: Console | None = None,
    input_fn: Callable[[str], str] = input,
) -> Call:
    """Place a call and let a person drive it from the keyboard; returns the ended call."""
    console = console or Console()
    call = simulator.dial()
    console.print(f"[bold]Calling {escape(simulator.url)}[/bold]  [dim]{HELP}[/dim]")
    try:
        _show_said(call, console)
        while not call.ended:
            try:
                typed = input_fn(_prompt(call)).strip()
            except EOFError:
                typed = "h"
            if typed.lower() in HANGUP_WORDS:
                call.hangup()
            elif not typed:
                call.silence()
            elif set(typed) - KEYS:
                console.print(f"[red]not phone keys: {escape(typed)}[/red]  [dim]{HELP}[/dim]")
                continue
            else:
                ignored = call.press(typed).ignored
                if ignored:
                    console.print(
                        f"[dim]ignored (the Gather was already complete): {ignored}[/dim]"
                    )
            _show_said(call, console)
    finally:
        call.close()
    style = "red" if call.ended_by == "error" else "bold"
    console.print(
        f"[{style}]Call ended: {escape(call.outcome)}[/{style}] "
        f"[dim]after {call.clock.now:g} s (virtual)[/dim]"
    )
    return call
