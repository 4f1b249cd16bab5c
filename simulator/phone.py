"""An interactive text phone: read what the application says, type keys, hear the answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, tzinfo

from rich.console import Console
from rich.markup import escape

from simulator import transcript as kind
from simulator.call import Call
from simulator.dialer import Simulator
from simulator.errors import SimulatorError
from simulator.gather import KEYS

HANGUP_WORDS = ("h", "q", "hangup", "quit")
HOLD_STEP = 10.0  # on hold, Enter lets this many seconds pass
RECORD_STEP = 5.0  # at a <Record>, keys mean: speak this long, then press the last key
HELP = "type keys 0-9 * # and Enter · Enter alone: stay silent · h: hang up · Ctrl-C: hang up"
#: what the caller notices besides speech, as the phone shows it
MARKS = {
    kind.SILENCE: "(silence)",
    kind.TIMEOUT: "(no more keys)",
    kind.DIAL: "(transferring)",
}


class _Screen:
    """What the phone prints: times as a clock on the wall, the voice only when it changes."""

    def __init__(self, call: Call, console: Console, verbose: bool,
                 zone: tzinfo | None = None) -> None:
        self.call, self.console, self.verbose, self.zone = call, console, verbose, zone
        self.voice: str | None = None
        self.shown = 0  # transcript events already looked at

    def time(self, seconds: float) -> str:
        moment = self.call.clock.start + timedelta(seconds=seconds)
        return moment.astimezone(self.zone or moment.tzinfo).strftime("%H:%M:%S")

    def show(self) -> None:
        """Print what happened since the caller's last action, in time order."""
        events = self.call.transcript[self.shown:]
        self.shown = len(self.call.transcript)
        lines: list[tuple[float, str]] = []
        for event in events:
            if event.kind in MARKS:
                detail = "" if event.kind == kind.SILENCE else f" {event.text}"
                lines.append((event.at, f"[dim]{MARKS[event.kind]}{escape(detail)}[/dim]"))
            elif event.kind == kind.IGNORED:
                keys = escape(event.text.split(" ", 1)[0])
                lines.append((event.at, f"[dim](not heard: {keys} came after the entry was "
                                        "complete)[/dim]"))
            elif event.kind in (kind.ERROR, kind.NOT_SIMULATED, kind.WARNING):
                lines.append((event.at, f"[red]{escape(event.text)}[/red]"))
        for utterance in self.call.said:
            label = utterance.voice_label()
            voice = ""
            if self.verbose or label != self.voice:
                voice = f"  [dim]({escape(label)})[/dim]"
                self.voice = label
            lines.append((utterance.at, f"{escape(utterance.text)}{voice}"))
        for at, text in sorted(lines, key=lambda line: line[0]):
            self.console.print(f"[dim]{self.time(at)}[/dim]  {text}")

    def prompt(self) -> str:
        gather = self.call.waiting
        what = "keys"
        if gather is not None:
            if gather.num_digits == 1:
                what = "one key"
            elif gather.num_digits:
                what = f"{gather.num_digits} keys"
            if gather.finish_on_key and gather.num_digits != 1:
                what += f", end with {gather.finish_on_key}"
        return f"{self.time(self.call.listening_from)}  {what} > "


def run_phone(
    simulator: Simulator,
    console: Console | None = None,
    input_fn: Callable[[str], str] = input,
    *,
    where: str | None = None,
    verbose: bool = False,
    zone: tzinfo | None = None,
) -> Call:
    """Place a call and let a person drive it from the keyboard; returns the ended call.

    `where` names what is called (default: the voice URL); `verbose` shows the voice of every
    line instead of only when it changes; `zone`, the time zone times are shown in (the
    line's region; default: the clock's own). Ctrl-C or end of input hangs up.
    """
    console = console or Console()
    call = simulator.dial()
    start = call.clock.start + timedelta(seconds=call.started)
    if zone is not None:
        start = start.astimezone(zone)
    console.print(f"[bold]Calling {escape(where or simulator.url)}[/bold]  "
                  f"[dim]{start.isoformat(sep=' ', timespec='minutes')} (virtual time)[/dim]")
    console.print(f"[dim]{HELP}[/dim]")
    screen = _Screen(call, console, verbose, zone)
    try:
        screen.show()
        while not call.ended:
            try:
                typed = input_fn(screen.prompt()).strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                typed = "h"
            try:
                if typed.lower() in HANGUP_WORDS:
                    call.hangup()
                elif not typed and call.on_hold is not None and call.waiting is None:
                    call.wait(HOLD_STEP)  # on hold: Enter lets time pass
                elif not typed:
                    call.silence()
                elif set(typed) - KEYS:
                    console.print(f"[red]not phone keys: {escape(typed)}[/red]  "
                                  f"[dim]{HELP}[/dim]")
                    continue
                elif call.recording is not None:
                    call.record(RECORD_STEP, key=typed[-1])  # speak, then end with the key
                else:
                    call.press(typed)
            except SimulatorError as exc:
                console.print(f"[red]{escape(str(exc))}[/red]  [dim]{HELP}[/dim]")
                continue
            screen.show()
    finally:
        call.close()
    style = "red" if call.ended_by == "error" else "bold"
    who = {"caller": "you hung up", "application": "the line hung up"}.get(
        call.ended_by or "", call.outcome)
    console.print(f"[{style}]Call ended: {escape(who)}[/{style}] "
                  f"[dim]after {call.duration:g} s[/dim]")
    return call
