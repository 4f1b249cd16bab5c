"""What a call holds between two steps: sounds not yet played, a waiting <Record>, a hold, the
requests made; the one signal (`Cut`) by which time on hold stops short."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from xml.etree.ElementTree import Element

from simulator.world import Conference, Member, Participant, Queue, sid

if TYPE_CHECKING:
    from simulator.call import Call

EndedBy = Literal["caller", "application", "error"]

RECORD_MAX_LENGTH = 3600.0

#: verbs a hold document may hold: an <Enqueue>'s waitUrl, a <Conference>'s waitUrl, the
#: <Queue url> played to a dequeued caller, a <Number url> whisper
QUEUE_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"})
CONFERENCE_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
DEQUEUE_URL_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
WHISPER_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup"})


@dataclass(frozen=True)
class Sound:
    """Something the caller hears (or a pause), not yet played."""

    kind: str
    text: str
    voice: str | None
    language: str | None
    seconds: float
    resumed: bool = False  # the rest of a sound cut short: not heard again when it goes on


@dataclass(frozen=True)
class PendingRecord:
    """A <Record> waiting for the caller: its attributes with Twilio's defaults applied."""

    action: str
    method: str = "POST"
    timeout: float = 5.0
    finish_on_key: str = "1234567890*#"
    max_length: float = RECORD_MAX_LENGTH
    trim: bool = True
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    transcribe: bool = False
    transcribe_callback: str | None = None

    def describe(self) -> str:
        """One line for transcripts and failure messages."""
        finish = f"finishOnKey={self.finish_on_key!r}" if self.finish_on_key else "no finishOnKey"
        return (f"timeout={self.timeout:g}s maxLength={self.max_length:g}s {finish} "
                f"trim={'trim-silence' if self.trim else 'do-not-trim'} "
                f"action={self.method} {self.action}")


@dataclass
class Hold:
    """The call waits on others: in a queue, a conference, a bridge, or dialling a queue."""

    kind: str  # queue, conference, bridge, agent (a <Dial><Queue> waiting for a caller)
    verb: Element  # the <Enqueue> or <Dial>
    saved: tuple[list[Element], int, str]  # the document to go back to: verbs, next, URL
    action: str | None
    method: str
    wait_url: str | None = None
    wait_method: str = "POST"
    allowed: frozenset[str] = QUEUE_WAIT_VERBS
    queue: Queue | None = None
    member: Member | None = None
    room: Conference | None = None
    participant: Participant | None = None
    peer: Call | None = None
    since: float = 0.0  # when the call entered the queue / the conference / began dialling
    dequeued_at: float | None = None
    bridged_at: float | None = None
    until: float = math.inf  # a <Dial><Queue>'s timeout
    in_wait_doc: bool = False  # the wait document is the call's current document
    music: bool = False  # Twilio's default hold music plays (no waitUrl)
    pending: list[Sound] = field(default_factory=list)
    listen_left: float | None = None


class Cut(Exception):  # noqa: N818 - control flow
    """Time on hold stopped before a sound ended: the caller's deadline, or another call."""

    def __init__(self, left: float, interrupted: bool) -> None:
        super().__init__(left)
        self.left = left
        self.interrupted = interrupted


class Redirected(Exception):  # noqa: N818 - control flow
    """A REST request (simulator.call.remote) stopped what the call was playing."""


@dataclass(frozen=True)
class Request:
    """A request the call made: when, how, where, with what (`what`: a callback's kind)."""

    at: float
    method: str
    url: str
    params: Mapping[str, str]
    what: str = ""


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return sid(prefix)
