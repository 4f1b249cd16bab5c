"""What the engine asks the phone to do, as plain values; web/twiml.py turns them into TwiML."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    locale: str


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: int = 1


@dataclass(frozen=True, slots=True)
class Gather:
    """Wait for keys while the nested prompts play (barge-in); silence is handled after it."""

    prompts: tuple[Say | Pause, ...]
    num_digits: int | None = 1
    finish_on_key: str = ""
    timeout: int = 5


@dataclass(frozen=True, slots=True)
class Dial:
    """Transfer to a number; the outcome comes back as a `dialed` event."""

    number: str
    timeout: int = 30


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Instruction = Say | Pause | Gather | Dial | Hangup
