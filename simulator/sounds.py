"""What a <Say> with SSML sounds like, and how long <Play digits> takes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from xml.etree.ElementTree import Element

from simulator.clock import SECONDS_PER_DTMF_TONE, SECONDS_PER_DTMF_WAIT, speech_seconds

#: <break strength>: seconds of silence (the SSML defaults Amazon Polly uses)
BREAK_STRENGTH = {"none": 0.0, "x-weak": 0.1, "weak": 0.25, "medium": 0.5, "strong": 0.75,
                  "x-strong": 1.0}
#: <prosody rate>: how much longer (or shorter) speech takes
PROSODY_RATE = {"x-slow": 2.0, "slow": 1.5, "medium": 1.0, "fast": 0.75, "x-fast": 0.5}
#: SSML tags that only shape the voice: their text is said as it is
PLAIN_TAGS = frozenset({"emphasis", "lang", "phoneme", "w", "amazon:domain", "amazon:effect"})
BLOCK_TAGS = frozenset({"p", "s"})  # sentences and paragraphs: said with a pause between
SPELLED = frozenset({"characters", "spell-out", "digits", "telephone"})
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")

#: (text, voice, language) -> the seconds a plain <Say> really plays, or None if unknown
SayDurations = Callable[[str, "str | None", "str | None"], "float | None"]
_durations: list[SayDurations] = []


@contextmanager
def real_durations(lookup: SayDurations) -> Iterator[None]:
    """While in this block, a plain-text <Say> takes the time `lookup` gives (rendered audio)
    instead of the per-character estimate; SSML and unknown texts keep the estimate."""
    _durations.append(lookup)
    try:
        yield
    finally:
        _durations.remove(lookup)


class Rendered:
    """A <Say>'s words as heard, how long they take, and what could not be rendered."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.seconds = 0.0
        self.notes: list[str] = []

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.words).split())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _break_seconds(node: Element, rendered: Rendered) -> float:
    time = node.get("time")
    if time is not None:
        found = _TIME.match(time)
        if found:
            value = float(found.group(1))
            return value / 1000 if found.group(2) == "ms" else value
        rendered.notes.append(f"<break time={time!r}> is not a time like 500ms or 2s; 0.5 s")
        return 0.5
    return BREAK_STRENGTH.get(node.get("strength", "medium"), 0.5)


def _rate(node: Element, rendered: Rendered) -> float:
    rate = node.get("rate")
    if rate is None:
        return 1.0
    if rate in PROSODY_RATE:
        return PROSODY_RATE[rate]
    if rate.endswith("%"):
        try:
            percent = float(rate[:-1])
        except ValueError:
            percent = 0
        if percent > 0:
            return 100 / percent
    rendered.notes.append(f"<prosody rate={rate!r}> is not understood; said at normal rate")
    return 1.0


def _walk(node: Element, rendered: Rendered, rate: float) -> None:
    """Render `node`'s text and children (its own tag already handled by the caller)."""
    if node.text:
        _say(node.text, rendered, rate)
    for child in node:
        tag = _local(child.tag)
        if tag == "break":
            rendered.seconds += _break_seconds(child, rendered)
        elif tag == "sub":
            _say(child.get("alias") or "".join(child.itertext()), rendered, rate)
        elif tag == "say-as":
            text = "".join(child.itertext()).strip()
            how = child.get("interpret-as", "")
            if how in SPELLED:
                text = " ".join(ch for ch in text if not ch.isspace() and ch not in "-()")
            _say(text, rendered, rate)
        elif tag == "prosody":
            _walk(child, rendered, rate * _rate(child, rendered))
        elif tag in BLOCK_TAGS:
            _walk(child, rendered, rate)
            rendered.seconds += BREAK_STRENGTH["medium"] if tag == "p" else 0.0
        else:
            if tag not in PLAIN_TAGS:
                rendered.notes.append(f"SSML <{tag}> is not rendered: its text is said as is")
            _walk(child, rendered, rate)
        if child.tail:
            _say(child.tail, rendered, rate)


def _say(text: str, rendered: Rendered, rate: float) -> None:
    words = text.split()
    if words:
        rendered.words.append(" ".join(words))
        rendered.seconds += speech_seconds(text) * rate


def render_say(verb: Element) -> Rendered:
    """The words a <Say> (plain text or SSML) makes heard, and the seconds they take."""
    rendered = Rendered()
    _walk(verb, rendered, 1.0)
    if _durations and len(verb) == 0 and rendered.text:
        known = _durations[-1](rendered.text, verb.get("voice"), verb.get("language"))
        if known is not None:
            rendered.seconds = known
    rendered.seconds = round(rendered.seconds, 3)
    return rendered


def digits_seconds(digits: str) -> float:
    """How long <Play digits> (or sendDigits) takes: a tone per key, half a second per 'w'."""
    waits = digits.count("w") + digits.count("W")
    return round((len(digits) - waits) * SECONDS_PER_DTMF_TONE + waits * SECONDS_PER_DTMF_WAIT, 3)


def valid_digits(digits: str) -> bool:
    """Keys <Play digits> can play: 0-9 * # and w (a half-second pause)."""
    return bool(digits) and all(ch in "0123456789*#wW" for ch in digits)
