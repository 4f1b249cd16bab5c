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
class Play:
    """Play an audio file (hold music)."""

    url: str


@dataclass(frozen=True, slots=True)
class Gather:
    """Wait for keys while the nested prompts play (barge-in); silence is handled after it."""

    prompts: tuple[Say | Pause | Play, ...]
    num_digits: int | None = 1
    finish_on_key: str = ""
    timeout: int = 5


@dataclass(frozen=True, slots=True)
class Dial:
    """Transfer to a number; the outcome comes back as a `dialed` event."""

    number: str
    timeout: int = 30


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Put the caller in the agent queue: the hold (its wait document) comes from the engine's
    `hold`; the way out comes back as a `left_queue` event (Twilio's QueueResult)."""

    queue: str


@dataclass(frozen=True, slots=True)
class Conference:
    """Join a conference room (an agent and the one caller moved into it). The room starts
    with its second participant and ends when either leaves; the end comes back as a `dialed`
    event. `waiting` names whose wait document plays while alone: the agent's asks the engine
    whether the caller is still there (`Hotline.agent_waiting`)."""

    room: str
    waiting: str = ""  # "agent": the agents' wait document; "": Twilio's default music


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the queue (in a hold answer): the call goes on with the `left_queue` event."""


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Instruction = Say | Pause | Play | Gather | Dial | Enqueue | Conference | Leave | Hangup
