"""What happened during a call, in order and with virtual times, for people and for asserts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Utterance:
    """One thing the caller heard: a <Say> (or "[play URL]") with its voice and start time."""

    text: str
    voice: str | None
    language: str | None
    at: float

    def voice_label(self) -> str:
        """'voice=…, language=…' or 'default voice' for display."""
        parts = []
        if self.voice:
            parts.append(f"voice={self.voice}")
        if self.language:
            parts.append(f"language={self.language}")
        return ", ".join(parts) or "default voice"


@dataclass(frozen=True)
class Event:
    """One line of a transcript: a request, a verb, what was said, keys, a hang-up, an error."""

    at: float
    kind: str
    text: str
    params: Mapping[str, str] = field(default_factory=dict)

    def format(self) -> str:
        """Readable text: time, kind, text, then parameters one per line."""
        lines = [f"{self.at:8.2f}s  {self.kind:<15} {self.text}"]
        lines.extend(f"{'':27}{name}={value}" for name, value in self.params.items())
        return "\n".join(lines)


# Event kinds, so writers and readers agree on spelling.
REQUEST = "request"
RESPONSE = "response"
SAY = "say"
PLAY = "play"
PAUSE = "pause"
GATHER = "gather"
BARGE_IN = "barge-in"
KEYS = "keys"
IGNORED = "keys-ignored"
SILENCE = "silence"
TIMEOUT = "timeout"
REDIRECT = "redirect"
DIAL = "dial"
HANGUP = "hangup"
REJECT = "reject"
END = "end"
ERROR = "error"
NOT_SIMULATED = "not-simulated"
NOTE = "note"
WARNING = "warning"
STATUS_CALLBACK = "status-callback"
CALLBACK = "callback"  # a request whose answer is not played (recording, partial speech, …)
HTTP_REDIRECT = "http-redirect"  # a 3xx answer followed
SPEECH = "speech"
RECORD = "record"
WAIT = "wait"
QUEUE = "queue"
BRIDGE = "bridge"
CONFERENCE = "conference"
WHISPER = "whisper"  # the <Number url> document, played to the called party


def format_events(events: Iterable[Event]) -> str:
    """The transcript as text, one event per line (parameters indented below requests)."""
    return "\n".join(event.format() for event in events)
