"""The web phone's line: calls placed through the simulator, as the text phone places them.

One interpreter, a third face: the page sends keys, silence and hang-ups; this module turns
them into the simulator's caller actions (`Call.press`, `silence`, `hangup`), renders what the
line says to audio on the server, and answers with what to play and show. Keys are held here
until the waiting <Gather> is complete (numDigits or finishOnKey) or the page reports its
timeout, which is when Twilio would post them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ivr.tools.synth import Synthesiser

if TYPE_CHECKING:  # the simulator (and twilio, for its signatures) loads with the first call
    from simulator import Call, Clock, Simulator

HOLD_STEP = 10.0  # on hold with nothing to press, the page lets this much time pass
RECORD_STEP = 5.0  # at a <Record>, a key means: speak this long, then press it


@functools.cache
def marks() -> dict[str, str]:
    """Transcript events the pane shows besides what is said, as the text phone marks them."""
    from simulator import transcript as kind

    return {kind.SILENCE: "silence", kind.TIMEOUT: "no more keys", kind.KEYS: "keys",
            kind.BARGE_IN: "barge-in", kind.IGNORED: "not heard", kind.DIAL: "transferring",
            kind.ERROR: "error", kind.NOT_SIMULATED: "not simulated", kind.WARNING: "warning",
            kind.HANGUP: "hang-up", kind.QUEUE: "queue"}


@dataclass
class _Keys:
    """Keys pressed at the waiting Gather that do not complete it yet."""

    keys: str = ""
    barge_in: bool = False


@dataclass
class Turn:
    """What the page plays and shows after one caller action."""

    items: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, str]] = field(default_factory=list)

    def line(self, clock: str, what: str, text: str) -> None:
        self.lines.append({"clock": clock, "kind": what, "text": text})


class WebLine:
    """Places calls one after another on one simulator line; one action at a time."""

    def __init__(self, simulator: Callable[[Clock], Simulator], synth: Synthesiser, *,
                 zone: tzinfo, at: datetime | None, audio_url: Callable[[str], str],
                 fetch_play: Callable[[str], str | None] | None = None) -> None:
        self._simulator, self.synth, self.zone = simulator, synth, zone
        self._at, self._audio_url, self._fetch_play = at, audio_url, fetch_play
        self.lock = threading.Lock()
        self.call: Call | None = None
        self.path: list[tuple[str, str, str]] = []  # (source, trigger, dest) of the flow
        self.documents: list[tuple[str, str]] = []  # (label, url) in the order requested
        self._keys = _Keys()
        self._shown = 0
        self._calls = 0

    # --- the flow, as the engine reports it ----------------------------------------------
    def observe(self, source: str, trigger: str, dest: str) -> None:
        self.path.append((source, trigger, dest))

    # --- caller actions --------------------------------------------------------------------
    def dial(self) -> dict[str, Any]:
        from simulator import Clock

        if self.call is not None and not self.call.ended:
            self.call.hangup()
            self.call.close()
        start = self._at
        if self.call is not None and self._at is not None:
            start = self.call.clock.moment + timedelta(minutes=1)  # the next call, a bit later
        clock = Clock(start if start is not None else datetime.now(self.zone))
        self.path, self.documents, self._keys, self._shown = [], [], _Keys(), 0
        self._calls += 1
        self.call = self._simulator(clock).dial()
        return self._turn()

    def press(self, key: str, phase: str, at: float | None = None) -> dict[str, Any]:
        """One key. `phase`: what the page was doing (before: playing what comes before the
        Gather; prompt: playing the Gather's own prompt; listening: the prompt has ended);
        `at`: where in the line's time the page was when it was pressed."""
        from simulator.gather import KEYS

        call = self._require()
        if len(key) != 1 or key not in KEYS:
            raise ValueError(f"not a phone key: {key!r}")
        if call.recording is not None:
            call.record(RECORD_STEP, key=key)
            return self._turn()
        gather = call.waiting
        if gather is None or phase == "before" or not gather.keys:
            turn = Turn()
            turn.line(self._clock(call.clock.now), "not heard",
                      f"{key}: nothing listens for keys now")
            return self._answer(turn, pending="", new=False)
        if not self._keys.keys:
            self._keys.barge_in = phase == "prompt"
            if self._keys.barge_in and at is not None:  # the prompt played until the key
                heard = min(at, call.listening_from) - call.clock.now
                if heard > 0:
                    call.clock.advance(round(heard, 3))
        self._keys.keys += key
        if gather.collect(self._keys.keys).timed_out:
            return self._answer(Turn(), pending=self._keys.keys, new=False)
        keys, barge_in = self._keys.keys, self._keys.barge_in
        self._keys = _Keys()
        call.press(keys, barge_in=barge_in)
        return self._turn()

    def timeout(self) -> dict[str, Any]:
        """The Gather's timeout passed since the prompt (or the last key): Twilio goes on."""
        call = self._require()
        keys, barge_in = self._keys.keys, self._keys.barge_in
        self._keys = _Keys()
        if call.waiting is not None and keys:
            call.press(keys, barge_in=barge_in)
        elif call.waiting is not None or call.recording is not None:
            call.silence()
        elif call.on_hold is not None:
            call.wait(HOLD_STEP)
        return self._turn()

    def hangup(self) -> dict[str, Any]:
        call = self._require()
        call.hangup()
        return self._turn()

    def _require(self) -> Call:
        from simulator import SimulatorError

        if self.call is None or self.call.ended:
            raise SimulatorError("no call is up: press the call button")
        return self.call

    # --- what the page gets ----------------------------------------------------------------
    def _clock(self, seconds: float) -> str:
        assert self.call is not None
        moment = self.call.clock.start + timedelta(seconds=seconds)
        return moment.astimezone(self.zone).strftime("%H:%M:%S")

    def _turn(self) -> dict[str, Any]:
        from simulator import transcript as kind

        call = self.call
        assert call is not None
        turn = Turn()
        shown = marks()
        events = call.transcript[self._shown:]
        self._shown = len(call.transcript)
        gather_at: float | None = None
        lines: list[tuple[float, str, str]] = []
        for event in events:
            if event.kind == kind.GATHER:
                gather_at = event.at
            elif event.kind == kind.REQUEST and not event.text.startswith("fallback"):
                method, _, url = event.text.partition(" ")
                self.documents.append((event.params.get("Digits", ""), url))
            if event.kind == kind.BARGE_IN:  # the page heard the prompt up to the key
                lines.append((event.at, shown[event.kind], "keys stop the prompt"))
            elif event.kind in shown:
                lines.append((event.at, shown[event.kind], event.text))
        for utterance in call.said:
            barge = (call.waiting is not None and gather_at is not None
                     and utterance.at >= gather_at)
            turn.items.append(self._item(utterance.text, utterance.language, utterance.at,
                                         barge))
            lines.append((utterance.at, "said", utterance.text))
        for at, what, text in sorted(lines, key=lambda line: line[0]):
            turn.line(self._clock(at), what, text)
        if call.ended:
            turn.line(self._clock(call.clock.now), "end",
                      f"call ended: {call.outcome} after {call.duration:g} s")
        return self._answer(turn, pending="")

    def _item(self, text: str, language: str | None, at: float, barge: bool) -> dict[str, Any]:
        from simulator.clock import speech_seconds

        item: dict[str, Any] = {"text": text, "language": language, "at": at, "barge": barge,
                                "clock": self._clock(at), "audio": None, "kind": "say",
                                "seconds": speech_seconds(text)}
        if text.startswith("[play digits "):
            item.update(kind="digits", digits=text[len("[play digits "):-1])
        elif text.startswith("[play "):
            url = text[len("[play "):-1]
            item.update(kind="play", url=url, seconds=1.0)
            name = self._fetch_play(url) if self._fetch_play is not None else None
            if name is not None:
                item["audio"] = self._audio_url(name)
        else:
            audio = self.synth.render(text, language)
            if audio is not None:
                item.update(audio=self._audio_url(audio.path.name), seconds=audio.seconds)
        return item

    def _answer(self, turn: Turn, *, pending: str, new: bool = True) -> dict[str, Any]:
        """`new`: the line moved on (play the items, the old ones are done with)."""
        call = self.call
        assert call is not None
        gather = call.waiting
        state = self.path[-1][2] if self.path else None
        return {
            "new": new, "items": turn.items, "lines": turn.lines, "pending": pending,
            "ended": call.ended, "outcome": call.outcome,
            "gather": None if gather is None else {
                "timeout": gather.timeout, "num_digits": gather.num_digits,
                "finish_on_key": gather.finish_on_key, "keys": gather.keys,
                "listen_at": call.listening_from},
            "hold": call.on_hold is not None and gather is None,
            "recording": call.recording is not None,
            "state": state,
            "path": [[s, t, d] for s, t, d in self.path],
            "documents": [[label, _short(url)] for label, url in self.documents],
            "call": self._calls,
        }


def _short(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"
