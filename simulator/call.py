"""One simulated phone call: plays TwiML as Twilio would until the caller must act."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.client import WebhookClient
from simulator.clock import (
    SECONDS_PER_BEEP,
    SECONDS_PER_KEY,
    SECONDS_PER_PLAY,
    Clock,
    speech_seconds,
)
from simulator.errors import ApplicationError, CallEnded, ConnectionFailed, NotWaiting
from simulator.gather import KEYS, Collected, PendingGather
from simulator.geo import geo_params
from simulator.sounds import digits_seconds, render_say, valid_digits
from simulator.transcript import Event, Utterance, format_events
from simulator.transport import WEBHOOK_TIMEOUT_SECONDS, WebhookResponse
from simulator.twiml import (
    bool_attr,
    count_attr,
    excerpt,
    method_attr,
    number_attr,
    parse_document,
    text_of,
)
from simulator.world import (
    MAX_CONFERENCE_PARTICIPANTS,
    Conference,
    Member,
    Participant,
    Queue,
    World,
    sid,
)

API_VERSION = "2010-04-01"
MAX_REQUESTS_WITHOUT_INPUT = 200  # more than this between two caller actions is a redirect loop
MAX_HTTP_REDIRECTS = 10  # 3xx answers followed in a row before Twilio gives up (11215)
FOLLOWED_REDIRECTS = (301, 302, 303, 307)
MANY_LOOPS = 3  # how many repetitions loop="0" ("until the call moves on") is simulated as
DIAL_TALK_SECONDS = 30  # how long an answered <Dial> to a number lasts
DIAL_TIMEOUT_SECONDS = 30.0  # Twilio's default <Dial timeout>
DIAL_TIME_LIMIT = 14400.0  # Twilio's default <Dial timeLimit>: 4 hours
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
SOUND_VERBS = ("Say", "Play", "Pause")
RECORD_MAX_LENGTH = 3600.0
TRANSCRIBE_MAX_SECONDS = 120  # Twilio transcribes recordings of up to 2 minutes
DEFAULT_HOLD_MUSIC = "[hold music: Twilio's default classical playlist]"
RECORDINGS = "https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}"
TRANSCRIPTIONS = "https://api.twilio.com/2010-04-01/Accounts/{account}/Transcriptions/{sid}"

#: verbs a hold document may hold: an <Enqueue>'s waitUrl, a <Conference>'s waitUrl, the
#: <Queue url> played to a dequeued caller, a <Number url> whisper
QUEUE_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"})
CONFERENCE_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
DEQUEUE_URL_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
WHISPER_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Hangup"})

#: attributes simulated per verb and noun (docs/simulator.md §3); any other attribute of
#: Twilio's is reported as not simulated, never silently dropped
HONOURED: dict[str, frozenset[str]] = {
    "Say": frozenset({"voice", "language", "loop"}),
    "Play": frozenset({"loop", "digits"}),
    "Pause": frozenset({"length"}),
    "Gather": frozenset({"action", "method", "timeout", "finishOnKey", "numDigits",
                         "actionOnEmptyResult", "input", "speechTimeout", "language", "hints",
                         "partialResultCallback", "partialResultCallbackMethod"}),
    "Redirect": frozenset({"method"}),
    "Hangup": frozenset(),
    "Leave": frozenset(),
    "Reject": frozenset({"reason"}),
    "Record": frozenset({"action", "method", "timeout", "finishOnKey", "maxLength", "playBeep",
                         "trim", "recordingStatusCallback", "recordingStatusCallbackMethod",
                         "recordingStatusCallbackEvent", "transcribe", "transcribeCallback"}),
    "Enqueue": frozenset({"action", "method", "waitUrl", "waitUrlMethod"}),
    "Dial": frozenset({"action", "method", "timeout", "callerId", "timeLimit"}),
    "Number": frozenset({"url", "method", "sendDigits", "statusCallback", "statusCallbackEvent",
                         "statusCallbackMethod"}),
    "Client": frozenset({"url", "method", "statusCallback", "statusCallbackEvent",
                         "statusCallbackMethod"}),
    "Sip": frozenset({"url", "method", "statusCallback", "statusCallbackEvent",
                      "statusCallbackMethod", "username", "password"}),
    "Queue": frozenset({"url", "method"}),
    "Conference": frozenset({"startConferenceOnEnter", "endConferenceOnExit", "waitUrl",
                             "waitMethod", "beep", "muted", "maxParticipants"}),
}
#: verbs and Dial nouns the simulator cannot play: reported, and the call ends with an error
NOT_SIMULATED_VERBS = ("Connect", "Pay", "Prompt", "Refer", "Start", "Stop", "Echo", "Sms",
                       "Message")
NOT_SIMULATED_NOUNS = ("Sim", "Application", "WhatsApp")
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")

EndedBy = Literal["caller", "application", "error"]


@dataclass(frozen=True)
class _Sound:
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
class _Hold:
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
    pending: list[_Sound] = field(default_factory=list)
    listen_left: float | None = None


class _Cut(Exception):  # noqa: N818 - control flow
    """Time on hold stopped before a sound ended: the caller's deadline, or another call."""

    def __init__(self, left: float, interrupted: bool) -> None:
        super().__init__(left)
        self.left = left
        self.interrupted = interrupted


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


class Call:
    """Plays one call. Caller actions: press, speak, record, silence, wait, hangup; everything
    else is the application's (and, in a scenario, the other calls')."""

    def __init__(
        self,
        client: WebhookClient,
        url: str,
        *,
        from_: str,
        to: str,
        status_callback: str | None = None,
        dial_status: str = "completed",
        account_sid: str | None = None,
        clock: Clock | None = None,
        world: World | None = None,
        method: str = "POST",
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        geo: Mapping[str, Mapping[str, str]] | None = None,
        name: str | None = None,
    ) -> None:
        self.world = world or World(clock or Clock())
        self.clock = self.world.clock
        self.started = self.clock.now  # a shared clock may have run before this call
        self.url = url
        self.method = method
        self.from_ = from_
        self.to = to
        self.name = name or from_
        self.call_sid = new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self.status_callback = urljoin(url, status_callback) if status_callback else None
        self.fallback_url = urljoin(url, fallback_url) if fallback_url else None
        self.fallback_method = fallback_method
        self.dial_status = dial_status
        self.transcript: list[Event] = []
        self.ended_by: EndedBy | None = None
        self.error: str | None = None
        self.status = "ringing"  # Twilio's CallStatus: ringing, in-progress, then the final one
        self.unsupported: list[str] = []  # what was met that the simulator does not play
        self.dialled: list[str] = []  # every target of every <Dial>, in order
        self.requests: list[Request] = []  # every request made, callbacks included
        #: the scenario thread this call runs on (simulator.world), None outside a scenario
        self.party: Any = (self.world.scheduler.party()
                           if self.world.scheduler is not None else None)
        self.ended_at: float | None = None
        self._geo = geo_params(from_, to, geo)
        self._client = client
        self._said: list[Utterance] = []
        self._prompt: list[_Sound] = []  # a waiting Gather's nested Say/Play/Pause, unplayed
        self._waiting: PendingGather | None = None
        self._recording: PendingRecord | None = None
        self._hold: _Hold | None = None
        self._holding = False  # the hold loop is running (it is not entered twice)
        self._deadline = 0.0  # on hold, time passes until here (a `wait`), then the call parks
        self._events: list[tuple[Any, ...]] = []  # what other calls did that concerns this one
        self._verbs: list[Element] = []
        self._next = 0
        self._document_url = url
        self._requests_since_input = 0
        self._answered = False
        self._next_dial_status: str | None = None
        self._called_party: tuple[list[str], bool] | None = None  # keys, hangs up
        self._sequence = 0

    # --- what the caller can observe -------------------------------------------------------

    @property
    def said(self) -> list[Utterance]:
        """All said since the caller's previous action, a waiting Gather's prompt included."""
        heard = list(self._said)
        at = self.clock.now
        for sound in self._prompt:
            if sound.kind != kind.PAUSE and not sound.resumed:
                heard.append(Utterance(sound.text, sound.voice, sound.language, round(at, 3)))
            at += sound.seconds
        return heard

    @property
    def heard(self) -> str:
        """The texts of `said`, one per line: what scripts' expectations match."""
        return "\n".join(utterance.text for utterance in self.said)

    @property
    def waiting(self) -> PendingGather | None:
        """The <Gather> listening for the caller, or None."""
        return self._waiting

    @property
    def recording(self) -> PendingRecord | None:
        """The <Record> waiting for the caller to speak, or None."""
        return self._recording

    @property
    def on_hold(self) -> str | None:
        """What the call waits in (queue, conference, bridge, agent), or None."""
        return self._hold.kind if self._hold is not None else None

    @property
    def ended(self) -> bool:
        """True once the caller, the application or an error has ended the call."""
        return self.ended_by is not None

    @property
    def rejected(self) -> bool:
        """True when the application refused the call with <Reject> before answering it."""
        return self.ended_by == "application" and self.status in ("busy", "no-answer")

    @property
    def outcome(self) -> str:
        """How the call ended (or that it is still up), in words."""
        if self.ended_by is None:
            return "in progress"
        if self.ended_by == "error":
            return f"application error: {self.error}"
        if self.rejected:
            return f"rejected by the application (CallStatus={self.status})"
        return f"hung up by the {self.ended_by} (CallStatus={self.status})"

    @property
    def state(self) -> str:
        """Where the call is now, for failure messages."""
        if self.ended:
            return f"the call has ended: {self.outcome}"
        if self._hold is not None:
            hold = self._hold
            where = {"queue": f"waits in queue {hold.queue.name if hold.queue else ''}",
                     "conference": f"is in conference {hold.room.name if hold.room else ''}",
                     "bridge": f"is connected to {hold.peer.name if hold.peer else 'a call'}",
                     "agent": "dials a queue"}[hold.kind]
            extra = f"; a <Gather> waits: {self._waiting.describe()}" if self._waiting else ""
            return f"the caller {where} (on hold){extra}"
        if self._waiting is not None:
            return f"a <Gather> waits for the caller: {self._waiting.describe()}"
        if self._recording is not None:
            return f"a <Record> waits for the caller: {self._recording.describe()}"
        return "the call is up"

    @property
    def listening_from(self) -> float:
        """When the waiting <Gather>'s prompt has played (the caller's turn), in clock seconds."""
        return round(self.clock.now + sum(sound.seconds for sound in self._prompt), 3)

    @property
    def duration(self) -> float:
        """Virtual seconds since this call was dialled (until it ended)."""
        end = self.ended_at if self.ended_at is not None else self.clock.now
        return round(end - self.started, 3)

    def transcript_text(self) -> str:
        """The whole call as readable text: header, every event, how it ended."""
        start = self.clock.start + timedelta(seconds=self.started)
        header = (f"Call {self.call_sid} from {self.from_} to {self.to}: {self.url}\n"
                  f"Started {start.isoformat(sep=' ', timespec='seconds')} (virtual time)")
        footer = f"Ended: {self.outcome} after {self.duration:g} s (virtual)"
        return "\n".join([header, format_events(self.transcript), footer]) + "\n"

    # --- what the caller can do --------------------------------------------------------------

    def set_dial_status(self, status: str) -> None:
        """Choose the DialCallStatus the next <Dial> reports (later ones use the default)."""
        if status not in DIAL_STATUSES:
            raise ValueError(f"dial status {status!r} is not one of {', '.join(DIAL_STATUSES)}")
        self._next_dial_status = status

    def set_called_party(self, keys: list[str] | None = None, hangup: bool = False) -> None:
        """How the party the next <Dial> reaches answers a whisper (<Number url>): the keys it
        presses at each <Gather>, in order, and whether it hangs up (refuses the call)."""
        self._called_party = (list(keys or []), hangup)

    def press(self, keys: str, *, barge_in: bool = False) -> Collected:
        """Press keys at the waiting Gather after its prompt played (or barge in at its start)."""
        gather = self._require_waiting(f"press {keys!r}")
        if not keys:
            raise ValueError("press() needs at least one key; use silence() to stay silent")
        if not gather.keys:
            raise NotWaiting(f"cannot press {keys!r}: the <Gather> listens for speech only "
                             f"(input={' '.join(gather.input)}); use speak")
        collected = gather.collect(keys)
        self._deadline = self.clock.now
        if (barge_in or self._hold is not None) and self._prompt:
            unplayed = [sound.text for sound in self._prompt if sound.kind != kind.PAUSE]
            self._event(kind.BARGE_IN, "keys stop the prompt; not heard: " + " / ".join(unplayed))
            self._prompt = []
        else:
            self._play_prompt()
        self._begin_action()
        used = keys[: len(keys) - len(collected.ignored)]
        self._event(kind.KEYS, used)
        self.clock.advance(SECONDS_PER_KEY * len(used))
        if collected.ignored:
            self._event(
                kind.IGNORED, f"{collected.ignored} (pressed after the <Gather> completed; lost)"
            )
        if collected.timed_out:
            self.clock.advance(gather.timeout)
            self._event(
                kind.TIMEOUT,
                f"no more keys for {gather.timeout:g} s: the <Gather> ends with "
                f"Digits={collected.digits!r}",
            )
        self._finish_gather(gather, collected)
        return collected

    def speak(self, text: str, *, confidence: float = 0.9, language: str | None = None) -> None:
        """Say `text` at the waiting speech <Gather>: its action gets SpeechResult, Confidence."""
        gather = self._require_waiting(f"say {text!r}")
        if not gather.speech:
            raise NotWaiting(f"cannot say {text!r}: the <Gather> listens for keys only "
                             f"(input={' '.join(gather.input)})")
        if not text.strip():
            raise ValueError("speak() needs words; use silence() to stay silent")
        self._deadline = self.clock.now
        if self._hold is not None:
            self._prompt = []
        self._play_prompt()
        self._begin_action()
        spoken = language or gather.language
        if spoken != gather.language:
            self._note(f"the caller speaks {spoken} to a <Gather> that recognises "
                       f"{gather.language}: recognised as said")
        self._event(kind.SPEECH, f"{text!r} (confidence {confidence:g}, {spoken})")
        words = text.split()
        each = speech_seconds(text) / max(len(words), 1)
        for number, word in enumerate(words, start=1):
            self.clock.advance(each)
            if gather.partial_result_callback:
                self._post("partial result", gather.partial_result_callback,
                           gather.partial_result_method,
                           {"SequenceNumber": str(number),
                            "StableSpeechResult": " ".join(words[: number - 1]),
                            "UnstableSpeechResult": word,
                            "LanguageCode": gather.language})
        self.clock.advance(gather.end_of_speech())
        params = {"SpeechResult": text, "Confidence": f"{confidence:g}",
                  "Language": gather.language}
        self._waiting = None
        if self._fetch(gather.action, gather.method, params):
            self._run()

    def silence(self, n: int = 1) -> None:
        """Stay silent through `n` Gathers (one caller action): each times out, time jumps ahead.
        At a <Record>, say nothing: it ends after its timeout with nothing recorded."""
        if n < 1:
            raise ValueError(f"silence needs a count of at least 1, not {n}")
        if self._recording is not None and not self.ended:
            record = self._recording
            self._begin_action()
            self._event(kind.SILENCE, f"the caller says nothing for {record.timeout:g} s")
            self.clock.advance(record.timeout)
            self._finish_record(record, 0.0, None, None)
            return
        for done in range(n):
            gather = self._require_waiting(
                f"stay silent ({done} of {n} silences done)" if done else "stay silent"
            )
            self._deadline = self.clock.now
            if self._hold is not None:
                self._prompt = []
            self._play_prompt()
            if done == 0:
                self._begin_action()
            self._requests_since_input = 0  # each timeout is the caller's doing, not a loop
            self._event(kind.SILENCE, f"the caller presses nothing for {gather.timeout:g} s")
            self.clock.advance(gather.timeout)
            self._finish_gather(gather, Collected("", "", "", timed_out=True))

    def record(self, seconds: float, *, text: str | None = None, key: str | None = None) -> None:
        """Speak into the waiting <Record> for `seconds`, then press `key` (one of its
        finishOnKey keys), or hang up (key "hangup"), or fall silent until its timeout.
        `text` is what a transcription reads."""
        record = self._recording
        if self.ended:
            raise CallEnded(f"cannot record: the call has ended ({self.outcome})")
        if record is None:
            raise NotWaiting(f"cannot record: no <Record> is waiting ({self.state})")
        if seconds <= 0:
            raise ValueError("record() needs a positive number of seconds; use silence()")
        self._begin_action()
        spoken = min(seconds, record.max_length)
        self._event(kind.RECORD, f"the caller speaks for {spoken:g} s" +
                    (f": {text!r}" if text else ""))
        self.clock.advance(spoken)
        if seconds >= record.max_length:
            self._note(f"maxLength {record.max_length:g} s reached: the recording stops")
            self._finish_record(record, spoken, None, text)
        elif key == "hangup":
            self._event(kind.HANGUP, "by the caller, during the recording")
            self._finish_record(record, spoken, "hangup", text)
        elif key and key in record.finish_on_key:
            self._event(kind.KEYS, key)
            self.clock.advance(SECONDS_PER_KEY)
            self._finish_record(record, spoken, key, text)
        else:
            if key:
                self._note(f"key {key!r} is not a finishOnKey of this <Record>: it is recorded")
            self._event(kind.SILENCE, f"then silence for {record.timeout:g} s ends the recording")
            self.clock.advance(record.timeout)
            trailing = 0.0 if record.trim else record.timeout
            self._finish_record(record, spoken + trailing, None, text)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass while on hold (in a queue, a conference, a bridge): the hold plays
        and others act. Ends early when the call leaves hold and comes to wait for the caller
        (a Gather, a Record) or ends."""
        if self.ended:
            raise CallEnded(f"cannot wait: the call has ended ({self.outcome})")
        if self._hold is None:
            raise NotWaiting(f"cannot wait: the call is not on hold ({self.state}); "
                             "at a <Gather> use silence")
        if seconds <= 0:
            raise ValueError("wait() needs a positive number of seconds")
        self._begin_action()
        self._event(kind.WAIT, f"the caller waits up to {seconds:g} s")
        self._deadline = self.clock.now + seconds
        self._run()

    def hangup(self) -> None:
        """The caller hangs up: at a Gather (after its prompt), a Record, or on hold."""
        if self.ended:
            raise CallEnded(f"cannot hang up: the call has ended ({self.outcome})")
        if self._waiting is None and self._recording is None and self._hold is None:
            raise NotWaiting("cannot hang up: nothing waits for the caller")
        if self._hold is None:
            self._play_prompt()
        self._begin_action()
        self._event(kind.HANGUP, "by the caller")
        self.status = "completed"
        if self._hold is not None:
            self._hang_up_on_hold(self._hold)
        elif self._recording is not None:
            record, self._recording = self._recording, None
            self._note("the <Record> has recorded nothing: no recording, no action")
            self._recording_callbacks(record, None, 0, None)
        self._end("caller", "completed")

    def close(self) -> None:
        """Hang up if the call is still up, so the call's client is always released."""
        if not self.ended:
            self.hangup()

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- playing the application's TwiML -----------------------------------------------------

    def start(self) -> None:
        """Request the call's URL (CallStatus=ringing) and play until the caller must act."""
        self.world.calls.append(self)
        self._event(kind.NOTE, f"call {self.call_sid} from {self.from_} to {self.to}")
        self._deadline = self.clock.now
        if self._fetch(self.url, self.method, {}):
            self._run()

    def _run(self) -> None:
        while not self.ended:
            if self._hold is not None:
                self._hold_loop()
                if self._hold is not None or self._holding:
                    return  # parked on hold (or the running hold loop carries on)
                continue
            if self._waiting is not None or self._recording is not None:
                return
            if self._next >= len(self._verbs):
                self._event(kind.HANGUP, "by the application: the document has no more verbs")
                self._end("application", "completed")
                return
            verb = self._verbs[self._next]
            self._next += 1
            try:
                self._execute(verb)
            except ApplicationError as exc:
                self._fail(str(exc))

    def _execute(self, verb: Element, allowed: frozenset[str] | None = None) -> None:
        handler: Callable[[Element], None] | None = {
            "Say": self._say_play_pause,
            "Play": self._say_play_pause,
            "Pause": self._say_play_pause,
            "Gather": self._gather,
            "Redirect": self._redirect,
            "Hangup": self._hangup,
            "Reject": self._reject,
            "Dial": self._dial,
            "Record": self._record,
            "Enqueue": self._enqueue,
            "Leave": self._leave,
        }.get(verb.tag)
        if handler is None:
            self._not_simulated(f"<{verb.tag}>")
            raise ApplicationError(
                f"<{verb.tag}> is not simulated; the call cannot go on as Twilio's would")
        if allowed is not None and verb.tag not in allowed:
            raise ApplicationError(f"<{verb.tag}> is not allowed here (allowed: "
                                   f"{', '.join(sorted(allowed))})")
        if verb.tag == "Leave" and (self._hold is None or self._hold.kind != "queue"):
            self._note("<Leave> outside a queue's wait document does nothing")
            return
        self._check_attributes(verb)
        if verb.tag not in ("Reject", "Redirect"):
            self._answered = True
        handler(verb)

    def _check_attributes(self, element: Element) -> None:
        honoured = HONOURED.get(element.tag)
        if honoured is None:
            return
        for name in element.attrib:
            if name not in honoured:
                self._not_simulated(f"<{element.tag} {name}> (ignored)", fatal=False)

    def _not_simulated(self, what: str, fatal: bool = True) -> None:
        self.unsupported.append(what)
        self._event(kind.NOT_SIMULATED, f"{what} is not simulated")

    def _say_play_pause(self, verb: Element) -> None:
        self._play(self._sounds(verb))

    def _sounds(self, verb: Element) -> list[_Sound]:
        if verb.tag == "Pause":
            length = number_attr(verb, "length", 1.0, self._warn)
            return [_Sound(kind.PAUSE, "", None, None, length)]
        if verb.tag == "Say":
            rendered = render_say(verb)
            for note in rendered.notes:
                self._note(note)
            if not rendered.text:
                self._warn("<Say> has no text; nothing is said")
                return []
            sound = _Sound(kind.SAY, rendered.text, verb.get("voice"), verb.get("language"),
                           rendered.seconds)
        else:
            text = text_of(verb)
            digits = verb.get("digits")
            if text:
                sound = _Sound(kind.PLAY, f"[play {urljoin(self._document_url, text)}]", None,
                               None, SECONDS_PER_PLAY)
            elif digits and valid_digits(digits):
                sound = _Sound(kind.PLAY, f"[play digits {digits}]", None, None,
                               digits_seconds(digits))
            elif digits:
                self._warn(f"<Play digits={digits!r}> has keys other than 0-9 * # w; "
                           "nothing is played")
                return []
            else:
                self._warn("<Play> has neither a URL nor digits; nothing is played")
                return []
        return [sound] * self._loops(verb)

    def _loops(self, verb: Element) -> int:
        loops = count_attr(verb, "loop", 1, self._warn)
        if loops == 0:
            self._note(f'<{verb.tag} loop="0"> repeats until the call moves on; '
                       f"simulated as {MANY_LOOPS} repetitions")
            return MANY_LOOPS
        return 1 if loops is None else loops

    def _play(self, sounds: list[_Sound],
              keep: Callable[[list[_Sound]], None] | None = None) -> None:
        """Play sounds in order. On hold, time may stop before they end (the caller's deadline,
        another call's action): what is left goes to `keep` (default: the hold's pending)."""
        for index, sound in enumerate(sounds):
            if sound.kind == kind.PAUSE:
                if not sound.resumed:
                    self._event(kind.PAUSE, f"{sound.seconds:g} s")
            elif not sound.resumed:
                utterance = Utterance(sound.text, sound.voice, sound.language, self.clock.now)
                self._said.append(utterance)
                self._event(sound.kind, f"{sound.text}  ({utterance.voice_label()})")
            try:
                self._pass(sound.seconds)
            except _Cut as cut:
                rest = [replace(sound, seconds=round(cut.left, 3), resumed=True),
                        *sounds[index + 1:]]
                if keep is not None:
                    keep(rest)
                elif self._hold is not None:
                    self._hold.pending = rest
                raise

    def _pass(self, seconds: float) -> None:
        """Let a sound's time pass; on hold, only up to the caller's deadline, and another
        call may cut it short (_Cut)."""
        if seconds <= 0:
            return
        if self._hold is None:
            self.clock.advance(seconds)
            return
        start = self.clock.now
        end = min(start + seconds, self._deadline)
        woke = False
        if end > start:
            self._requests_since_input = 0
            woke = self.world.sleep(end - start, interruptible=True)
        elapsed = self.clock.now - start
        if woke or elapsed < seconds - 0.0005:  # the clock keeps milliseconds
            raise _Cut(seconds - elapsed, woke)

    def _play_prompt(self) -> None:
        prompt, self._prompt = self._prompt, []
        self._play(prompt)

    def _gather(self, verb: Element) -> None:
        modes = tuple(dict.fromkeys((verb.get("input") or "dtmf").split()))
        unknown = [mode for mode in modes if mode not in ("dtmf", "speech")]
        if unknown or not modes:
            self._warn(f"<Gather> input={verb.get('input')!r} is not dtmf, speech or both; "
                       "using dtmf")
            modes = ("dtmf",)
        finish_on_key = verb.get("finishOnKey", "#")
        if finish_on_key and (len(finish_on_key) != 1 or finish_on_key not in KEYS):
            self._warn(f"<Gather> finishOnKey={finish_on_key!r} is not one key; using '#'")
            finish_on_key = "#"
        num_digits = count_attr(verb, "numDigits", None, self._warn)
        if num_digits == 0:
            self._warn('<Gather> numDigits="0" is invalid; no digit limit')
            num_digits = None
        speech_timeout = verb.get("speechTimeout")
        if speech_timeout is not None and speech_timeout != "auto":
            try:
                if float(speech_timeout) < 0:
                    raise ValueError
            except ValueError:
                self._warn(f"<Gather> speechTimeout={speech_timeout!r} is not seconds or auto; "
                           "using the timeout")
                speech_timeout = None
        action = verb.get("action")
        partial = verb.get("partialResultCallback")
        gather = PendingGather(
            action=urljoin(self._document_url, action) if action else self._document_url,
            method=method_attr(verb, self._warn),
            timeout=number_attr(verb, "timeout", 5.0, self._warn),
            finish_on_key=finish_on_key,
            num_digits=num_digits,
            action_on_empty_result=bool_attr(verb, "actionOnEmptyResult", False, self._warn),
            input=modes,
            speech_timeout=speech_timeout,
            language=verb.get("language", "en-US"),
            hints=verb.get("hints", ""),
            partial_result_callback=urljoin(self._document_url, partial) if partial else None,
            partial_result_method=method_attr(verb, self._warn, "partialResultCallbackMethod"),
        )
        if gather.hints:
            self._note(f"<Gather hints={gather.hints!r}>: speech is recognised as the caller "
                       "says it; hints change nothing")
        prompt: list[_Sound] = []
        for child in verb:
            if child.tag not in SOUND_VERBS:
                raise ApplicationError(f"<{child.tag}> cannot be nested in <Gather>")
            self._check_attributes(child)
            prompt.extend(self._sounds(child))
        self._event(kind.GATHER, gather.describe())
        self._prompt = prompt
        self._waiting = gather

    def _finish_gather(self, gather: PendingGather, collected: Collected) -> None:
        self._waiting = None
        if self._hold is not None:
            self._hold.listen_left = None
        if collected.empty and not gather.action_on_empty_result:
            self._note("no digits: the action is not requested; the next verb runs")
            self._run()
            return
        params = {"Digits": collected.digits, "FinishedOnKey": collected.finished_on_key}
        if self._fetch(gather.action, gather.method, params):
            self._run()

    def _redirect(self, verb: Element) -> None:
        target = text_of(verb)
        if not target:
            raise ApplicationError("<Redirect> has no URL")
        url = urljoin(self._document_url, target)
        method = method_attr(verb, self._warn)
        self._event(kind.REDIRECT, f"{method} {url}")
        self._fetch(url, method, self._hold_params() if self._hold else {})

    def _hangup(self, verb: Element) -> None:
        self._event(kind.HANGUP, "by the application (<Hangup>)")
        if self._hold is not None:
            self.status = "completed"
            self._hang_up_on_hold(self._hold)
        self._end("application", "completed")

    def _reject(self, verb: Element) -> None:
        reason = verb.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            self._warn(f"<Reject> reason={reason!r} is not rejected or busy; using rejected")
            reason = "rejected"
        if self._answered:
            self._event(kind.REJECT, "after the call was answered: Twilio just hangs up")
            self._end("application", "completed")
            return
        self._event(kind.REJECT, f"reason={reason}: the call is never answered")
        self._end("application", "busy" if reason == "busy" else "no-answer")

    # --- <Record> ------------------------------------------------------------------------------

    def _record(self, verb: Element) -> None:
        action = verb.get("action")
        finish = verb.get("finishOnKey", "1234567890*#")
        if any(key not in KEYS for key in finish):
            self._warn(f"<Record> finishOnKey={finish!r} has keys other than 0-9 * #; "
                       "using any key")
            finish = "1234567890*#"
        max_length = number_attr(verb, "maxLength", RECORD_MAX_LENGTH, self._warn)
        trim = verb.get("trim", "trim-silence")
        if trim not in ("trim-silence", "do-not-trim"):
            self._warn(f"<Record> trim={trim!r} is not trim-silence or do-not-trim; trimming")
            trim = "trim-silence"
        callback = verb.get("recordingStatusCallback")
        transcribe_callback = verb.get("transcribeCallback")
        events = tuple((verb.get("recordingStatusCallbackEvent") or "completed").split())
        record = PendingRecord(
            action=urljoin(self._document_url, action) if action else self._document_url,
            method=method_attr(verb, self._warn),
            timeout=number_attr(verb, "timeout", 5.0, self._warn),
            finish_on_key=finish,
            max_length=max_length or RECORD_MAX_LENGTH,  # 0: Twilio's maximum
            trim=trim == "trim-silence",
            status_callback=urljoin(self._document_url, callback) if callback else None,
            status_callback_method=method_attr(verb, self._warn,
                                               "recordingStatusCallbackMethod"),
            status_callback_events=events,
            transcribe=bool_attr(verb, "transcribe", False, self._warn) or bool(
                transcribe_callback),
            transcribe_callback=(urljoin(self._document_url, transcribe_callback)
                                 if transcribe_callback else None),
        )
        if bool_attr(verb, "playBeep", True, self._warn):
            self._play([_Sound(kind.PLAY, "[beep]", None, None, SECONDS_PER_BEEP)])
        self._event(kind.RECORD, f"a <Record> waits: {record.describe()}")
        self._recording = record

    def _finish_record(self, record: PendingRecord, seconds: float, digits: str | None,
                       text: str | None) -> None:
        self._recording = None
        duration = round(seconds)
        if duration <= 0:
            self._note("nothing was recorded: the action is not requested; the next verb runs")
            self._recording_callbacks(record, None, 0, None)
            self._run()
            return
        recording = new_sid("RE")
        url = RECORDINGS.format(account=self.account_sid, sid=recording)
        params = {"RecordingUrl": url, "RecordingDuration": str(duration),
                  "RecordingSid": recording}
        if digits is not None:
            params["Digits"] = digits
        hung_up = digits == "hangup"
        if hung_up:
            self.status = "completed"
            self._post("record action (the call has ended; its answer is not played)",
                       record.action, record.method, params)
            self._recording_callbacks(record, recording, duration, text)
            self._end("caller", "completed")
            return
        fetched = self._fetch(record.action, record.method, params)
        self._recording_callbacks(record, recording, duration, text)
        if fetched:
            self._run()

    def _recording_callbacks(self, record: PendingRecord, recording: str | None,
                             duration: int, text: str | None) -> None:
        """recordingStatusCallback and transcribeCallback, as the recording is complete."""
        url = RECORDINGS.format(account=self.account_sid, sid=recording) if recording else ""
        status = "completed" if recording else "absent"
        if record.status_callback and status in record.status_callback_events:
            started = self.clock.moment - timedelta(seconds=duration)
            self._post("recording status callback", record.status_callback,
                       record.status_callback_method,
                       {"RecordingSid": recording or "", "RecordingUrl": url,
                        "RecordingStatus": status, "RecordingDuration": str(duration),
                        "RecordingChannels": "1", "RecordingSource": "RecordVerb",
                        "RecordingStartTime": format_datetime(started)}, standard=False)
        if record.transcribe and recording:
            failed = not text or duration > TRANSCRIBE_MAX_SECONDS
            if not record.transcribe_callback:
                self._note("transcribe without transcribeCallback: nothing is posted")
                return
            transcription = new_sid("TR")
            self._post("transcribe callback", record.transcribe_callback, "POST",
                       {"TranscriptionSid": transcription,
                        "TranscriptionText": "" if failed else str(text),
                        "TranscriptionStatus": "failed" if failed else "completed",
                        "TranscriptionUrl": TRANSCRIPTIONS.format(account=self.account_sid,
                                                                  sid=transcription),
                        "RecordingSid": recording, "RecordingUrl": url})

    # --- <Dial> ----------------------------------------------------------------------------------

    def _dial(self, verb: Element) -> None:
        nouns = list(verb)
        text = text_of(verb) if not nouns else ""
        if not nouns and not text:
            raise ApplicationError("<Dial> has no number to dial")
        for noun in nouns:
            if noun.tag in NOT_SIMULATED_NOUNS or noun.tag not in HONOURED:
                self._not_simulated(f"<Dial><{noun.tag}>")
                raise ApplicationError(f"<Dial><{noun.tag}> is not simulated; the call cannot "
                                       "go on as Twilio's would")
            self._check_attributes(noun)
        rooms = [noun for noun in nouns if noun.tag in ("Queue", "Conference")]
        if rooms and len(nouns) > 1:
            raise ApplicationError(f"<Dial><{rooms[0].tag}> must be the only noun of its <Dial>")
        if rooms and rooms[0].tag == "Queue":
            self._dial_queue(verb, rooms[0])
        elif rooms:
            self._dial_conference(verb, rooms[0])
        else:
            self._dial_parties(verb, nouns or [_number(text)])

    def _dial_action(self, verb: Element) -> tuple[str | None, str]:
        action = verb.get("action")
        return (urljoin(self._document_url, action) if action else None,
                method_attr(verb, self._warn))

    def _dial_parties(self, verb: Element, nouns: list[Element]) -> None:
        """<Number>, <Client>, <Sip> (or a bare number): nobody is really called; the script
        chooses the outcome (dial_status) and what the called party does at a whisper."""
        caller_id = verb.get("callerId") or self.from_
        targets = [_target(noun) for noun in nouns]
        self.dialled.extend(targets)
        status = self._next_dial_status or self.dial_status
        self._next_dial_status = None
        called, self._called_party = self._called_party, None
        shown = ", ".join(targets)
        self._event(kind.DIAL, f"{shown}: DialCallStatus={status}")
        if verb.get("callerId"):
            self._note(f"callerId {caller_id}: the number {shown} sees calling")
        answered = status in ("completed", "answered")
        noun = nouns[0]
        child = new_sid("CA")
        child_params = {**self._base_params(child, caller_id, targets[0], "outbound-dial"),
                        "ParentCallSid": self.call_sid}
        progress = _progress(noun, self._document_url, self._warn)
        sequence = 0

        def progress_event(event: str, call_status: str,
                           extra: Mapping[str, str] | None = None) -> None:
            nonlocal sequence
            if progress is None or event not in progress[2]:
                return
            self._post(f"status callback ({event}) of {targets[0]}", progress[0], progress[1],
                       {**child_params, "CallStatus": call_status,
                        "Timestamp": format_datetime(self.clock.moment),
                        "SequenceNumber": str(sequence), "CallbackSource": "call-progress-events",
                        **(extra or {})}, standard=False)
            sequence += 1

        progress_event("initiated", "initiated")
        progress_event("ringing", "ringing")
        timeout = number_attr(verb, "timeout", DIAL_TIMEOUT_SECONDS, self._warn)
        talk = 0.0
        bridged = False
        if answered:
            progress_event("answered", "in-progress")
            send_digits = noun.get("sendDigits")
            if send_digits:
                if valid_digits(send_digits):
                    self._event(kind.NOTE, f"sendDigits {send_digits} to {targets[0]}")
                    self.clock.advance(digits_seconds(send_digits))
                else:
                    self._warn(f"<Number sendDigits={send_digits!r}> has keys other than "
                               "0-9 * # w; none sent")
            bridged = True
            url = noun.get("url")
            if url:
                bridged = self._whisper(urljoin(self._document_url, url),
                                        method_attr(noun, self._warn), child_params, called)
            if bridged:
                limit = number_attr(verb, "timeLimit", DIAL_TIME_LIMIT, self._warn)
                talk = min(float(DIAL_TALK_SECONDS), limit)
                self.clock.advance(talk)
        elif status == "no-answer":
            self.clock.advance(timeout)
        final = "completed" if answered else status
        progress_event("completed", final, {"CallDuration": str(math.ceil(talk))})
        action, method = self._dial_action(verb)
        params = {"DialCallStatus": status, "DialCallSid": child,
                  "DialCallDuration": str(math.ceil(talk))}
        if answered:
            params["DialBridged"] = "true" if bridged else "false"
        self._dial_done(action, method, params)

    def _whisper(self, url: str, method: str, params: dict[str, str],
                 called: tuple[list[str], bool] | None) -> bool:
        """The <Number url> document, played to the called party before it is connected (the
        caller hears ringing). False when the called party refuses (hangs up)."""
        keys, refuses = called or ([], False)
        self._event(kind.WHISPER, f"{method} {url} (to the called party)")
        verbs = self._side_document(url, method, params)
        count = 0
        while verbs:
            verb = verbs.pop(0)
            if verb.tag not in WHISPER_VERBS:
                raise ApplicationError(f"<{verb.tag}> is not allowed in a whisper (<Number url>)")
            if verb.tag in SOUND_VERBS:
                for sound in self._sounds(verb):
                    if sound.kind != kind.PAUSE:
                        self._event(kind.WHISPER, f"the called party hears: {sound.text}")
                    self.clock.advance(sound.seconds)
            elif verb.tag == "Hangup":
                self._event(kind.WHISPER, "the whisper hangs up: the called party is not "
                                          "connected")
                return False
            elif verb.tag == "Redirect":
                count += 1
                if count > MAX_REQUESTS_WITHOUT_INPUT:
                    raise ApplicationError("redirect loop in a whisper")
                verbs = self._side_document(urljoin(url, text_of(verb)),
                                            method_attr(verb, self._warn), params)
            else:  # Gather
                for child in verb:
                    for sound in self._sounds(child) if child.tag in SOUND_VERBS else []:
                        if sound.kind != kind.PAUSE:
                            self._event(kind.WHISPER, f"the called party hears: {sound.text}")
                        self.clock.advance(sound.seconds)
                if refuses and not keys:
                    self._event(kind.WHISPER, "the called party hangs up")
                    return False
                action = verb.get("action")
                target = urljoin(url, action) if action else url
                timeout = number_attr(verb, "timeout", 5.0, self._warn)
                if keys:
                    pressed = keys.pop(0)
                    self._event(kind.WHISPER, f"the called party presses {pressed}")
                    self.clock.advance(SECONDS_PER_KEY * len(pressed))
                    finish = verb.get("finishOnKey", "#")
                    digits = pressed[:-1] if finish and pressed.endswith(finish) else pressed
                    verbs = self._side_document(
                        target, method_attr(verb, self._warn),
                        {**params, "Digits": digits,
                         "FinishedOnKey": finish if pressed != digits else ""})
                else:
                    self._event(kind.WHISPER, f"the called party presses nothing for "
                                              f"{timeout:g} s")
                    self.clock.advance(timeout)
        if refuses:
            self._event(kind.WHISPER, "the called party hangs up")
            return False
        self._event(kind.WHISPER, "the whisper ends: the parties are connected")
        return True

    def _side_document(self, url: str, method: str, params: Mapping[str, str]) -> list[Element]:
        """A document requested for another leg (a whisper): its verbs, or ApplicationError."""
        self._record_request(kind.REQUEST, method, url, dict(params), "whisper")
        try:
            reply = self._request(method, url, dict(params))
        except ConnectionFailed as exc:
            raise ApplicationError(f"{method} {url} failed: {exc}", "11205") from exc
        self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or '(no content type)'}")
        return parse_document(reply)

    def _dial_done(self, action: str | None, method: str, params: Mapping[str, str]) -> None:
        if self._hold is not None:
            self._leave_hold()
        if not action:
            self._note("<Dial> has no action: the next verb runs")
            return
        self._fetch(action, method, params)

    # --- queues ----------------------------------------------------------------------------------

    def _enqueue(self, verb: Element) -> None:
        name = text_of(verb)
        if verb.get("workflowSid") or any(child.tag == "Task" for child in verb):
            self._not_simulated("<Enqueue workflowSid>/<Task> (TaskRouter)")
            raise ApplicationError("<Enqueue> to a TaskRouter workflow is not simulated")
        if not name:
            raise ApplicationError("<Enqueue> has no queue name")
        if len(name) > 64:
            raise ApplicationError(f"<Enqueue> queue name longer than 64 characters: {name!r}")
        queue = self.world.queue(name)
        action = verb.get("action")
        wait_url = verb.get("waitUrl")
        hold = _Hold("queue", verb, (self._verbs, self._next, self._document_url),
                     urljoin(self._document_url, action) if action else None,
                     method_attr(verb, self._warn),
                     urljoin(self._document_url, wait_url) if wait_url else None,
                     method_attr(verb, self._warn, "waitUrlMethod"),
                     queue=queue, since=self.clock.now)
        if len(queue.members) >= queue.max_size:
            self._event(kind.QUEUE, f"{name} is full ({queue.max_size}): QueueResult=queue-full")
            self._hold = hold
            self._queue_done("queue-full", 0)
            return
        hold.member = Member(self, self.clock.now)
        queue.members.append(hold.member)
        self._hold = hold
        self._event(kind.QUEUE, f"enters queue {name} ({queue.sid}) at position "
                                f"{len(queue.members)} of {len(queue.members)}")
        for agent in list(queue.agents):
            agent._events.append(("caller-waiting", queue))
            self.world.wake(agent)

    def _leave(self, verb: Element) -> None:
        hold = self._hold
        assert hold is not None and hold.queue is not None
        self._event(kind.QUEUE, f"<Leave>: the caller leaves queue {hold.queue.name}")
        self._queue_done("leave", self.clock.now - hold.since)

    def _queue_done(self, result: str, waited: float) -> None:
        """The caller is out of the queue (left, full, bridged and done): its action or the
        verb after the <Enqueue>."""
        hold = self._hold
        assert hold is not None and hold.queue is not None
        if hold.member is not None and hold.member in hold.queue.members:
            hold.queue.members.remove(hold.member)
        self._leave_hold()
        params = {"QueueResult": result, "QueueSid": hold.queue.sid,
                  "QueueTime": str(round(waited))}
        if hold.action:
            self._fetch(hold.action, hold.method, params)
        else:
            self._note(f"<Enqueue> has no action (QueueResult={result}): the next verb runs")

    def _hold_params(self) -> dict[str, str]:
        """The extra parameters of a wait document's requests (and its Redirects)."""
        hold = self._hold
        if hold is None or hold.kind != "queue" or hold.queue is None:
            return {}
        queue = hold.queue
        return {"QueueSid": queue.sid, "QueuePosition": str(queue.position(self)),
                "QueueTime": str(round(self.clock.now - hold.since)),
                "AvgQueueTime": str(queue.average_wait()),
                "CurrentQueueSize": str(len(queue.members)),
                "MaxQueueSize": str(queue.max_size)}

    def _dial_queue(self, verb: Element, noun: Element) -> None:
        name = text_of(noun)
        if not name:
            raise ApplicationError("<Queue> has no queue name")
        for task in ("reservationSid", "postWorkActivitySid"):
            if noun.get(task):
                self._not_simulated(f"<Queue {task}> (TaskRouter)")
                raise ApplicationError(f"<Queue {task}> (TaskRouter) is not simulated")
        queue = self.world.queue(name)
        self.dialled.append(f"queue:{name}")
        action, method = self._dial_action(verb)
        hold = _Hold("agent", verb, (self._verbs, self._next, self._document_url), action,
                     method, queue=queue, since=self.clock.now)
        timeout = number_attr(verb, "timeout", DIAL_TIMEOUT_SECONDS, self._warn)
        hold.until = self.clock.now + timeout
        url = noun.get("url")
        hold.wait_url = urljoin(self._document_url, url) if url else None
        hold.wait_method = method_attr(noun, self._warn)
        self._hold = hold
        self._event(kind.DIAL, f"queue {name} ({len(queue.members)} waiting)")
        queue.agents.append(self)

    def _dequeue(self, hold: _Hold) -> None:
        """This agent takes the caller at the head of its queue."""
        queue = hold.queue
        assert queue is not None
        member = queue.members.pop(0)
        if self in queue.agents:
            queue.agents.remove(self)
        waited = self.clock.now - member.since
        queue.waited.append(waited)
        hold.peer = member.call
        self._event(kind.QUEUE, f"dequeues {member.call.name} ({member.call.call_sid}) from "
                                f"{queue.name} after {waited:g} s")
        member.call._events.append(("dequeued", self, hold.wait_url, hold.wait_method))
        self.world.wake(member.call)

    def _bridge(self, peer: Call) -> None:
        hold = self._hold
        assert hold is not None
        hold.kind = "bridge"
        hold.peer = peer
        hold.bridged_at = self.clock.now
        self._event(kind.BRIDGE, f"connected to {peer.name} ({peer.call_sid})")

    # --- conferences ---------------------------------------------------------------------------

    def _dial_conference(self, verb: Element, noun: Element) -> None:
        name = text_of(noun)
        if not name:
            raise ApplicationError("<Conference> has no room name")
        room = self.world.conference(name)
        self.dialled.append(f"conference:{name}")
        limit = count_attr(noun, "maxParticipants", MAX_CONFERENCE_PARTICIPANTS, self._warn)
        beep = noun.get("beep", "true")
        if beep not in ("true", "false", "onEnter", "onExit"):
            self._warn(f"<Conference beep={beep!r}> is not true, false, onEnter or onExit; true")
            beep = "true"
        action, method = self._dial_action(verb)
        wait_url = noun.get("waitUrl")
        hold = _Hold("conference", verb, (self._verbs, self._next, self._document_url), action,
                     method, urljoin(self._document_url, wait_url) if wait_url else None,
                     method_attr(noun, self._warn, "waitMethod"), CONFERENCE_WAIT_VERBS,
                     room=room, since=self.clock.now)
        if wait_url == "":
            hold.wait_url = None
        if len(room.participants) >= (limit or MAX_CONFERENCE_PARTICIPANTS):
            self._event(kind.CONFERENCE, f"{name} is full ({limit}): the <Dial> fails")
            self._dial_done(action, method, {"DialCallStatus": "failed"})
            return
        participant = Participant(
            self, bool_attr(noun, "startConferenceOnEnter", True, self._warn),
            bool_attr(noun, "endConferenceOnExit", False, self._warn),
            beep in ("true", "onEnter"), beep in ("true", "onExit"),
            bool_attr(noun, "muted", False, self._warn), self.clock.now)
        hold.participant = participant
        self._hold = hold
        others = list(room.participants)
        room.participants.append(participant)
        self._event(kind.CONFERENCE, f"joins conference {name} ({room.sid}) with "
                                     f"{len(others)} other(s)" + (" (muted)" if participant.muted
                                                                  else ""))
        if participant.start_on_enter and not room.started:
            room.started = True
            self._event(kind.CONFERENCE, "the conference starts")
            self._tell(others, ("conference-started",))
        elif room.started and participant.beep_enter:
            self._tell(others, ("beep", f"{self.name} joins"))
        if not room.started:
            self._note("the conference has not started: waiting for a participant with "
                       "startConferenceOnEnter")

    def _tell(self, others: list[Any], event: tuple[str, ...]) -> None:
        """Give the other participants' calls an event and wake them to hear it."""
        for other in others:
            other.call._events.append(event)
            self.world.wake(other.call)

    def _leave_room(self, hold: _Hold) -> None:
        room, participant = hold.room, hold.participant
        assert room is not None and participant is not None
        if participant in room.participants:
            room.participants.remove(participant)
        others = list(room.participants)
        if room.ended:
            return
        if participant.end_on_exit or not others:
            room.ended = True
            self._event(kind.CONFERENCE, f"the conference {room.name} ends")
            self._tell(others, ("conference-ended",))
        elif room.started and participant.beep_exit:
            self._tell(others, ("beep", f"{self.name} leaves"))

    # --- on hold: the loop, other calls' events, leaving -----------------------------------------

    def _hold_loop(self) -> None:
        """Play the hold until the caller's deadline, handling what other calls do; returns
        when the call is parked (deadline), leaves hold, or ends."""
        if self._holding:
            return
        self._holding = True
        try:
            while not self.ended and self._hold is not None:
                if self._events:
                    self._on_event(self._events.pop(0))
                    continue
                try:
                    if not self._hold_step(self._hold):
                        return
                except _Cut as cut:
                    if not cut.interrupted:
                        return  # parked at the caller's deadline, mid-sound
                except ApplicationError as exc:
                    self._fail(str(exc))
        finally:
            self._holding = False

    def _hold_step(self, hold: _Hold) -> bool:
        """One step of the hold; False when parked at the caller's deadline."""
        if hold.kind == "agent":
            queue = hold.queue
            assert queue is not None
            if hold.peer is None and queue.members:
                self._dequeue(hold)
                return True
            if hold.peer is None and self.clock.now >= hold.until:
                if self in queue.agents:
                    queue.agents.remove(self)
                self._event(kind.QUEUE, f"nobody came to queue {queue.name} within the "
                                        "<Dial> timeout")
                action, method = hold.action, hold.method
                self._dial_done(action, method,
                                {"DialCallStatus": "no-answer", "DialCallDuration": "0"})
                return True
            return self._idle(hold.until if hold.peer is None else math.inf)
        if hold.kind == "bridge" or (hold.kind == "conference" and hold.room is not None
                                     and hold.room.started):
            return self._idle(math.inf)
        if hold.pending:
            sounds, hold.pending = hold.pending, []
            self._play(sounds)
            return True
        if self._waiting is not None:
            return self._listen(hold, self._waiting)
        if hold.music:
            return self._idle(math.inf)
        if not hold.in_wait_doc or self._next >= len(self._verbs):
            self._load_wait_document(hold)
            return True
        verb = self._verbs[self._next]
        self._next += 1
        self._execute(verb, hold.allowed)
        return True

    def _idle(self, limit: float) -> bool:
        """Nothing to play: sleep until `limit`, the deadline or another call's action."""
        end = min(limit, self._deadline)
        if self.clock.now >= end:
            return self.clock.now < self._deadline
        self._requests_since_input = 0
        self.world.sleep(end - self.clock.now, interruptible=True)
        return True

    def _listen(self, hold: _Hold, gather: PendingGather) -> bool:
        """A wait document's Gather: its prompt, then it listens; the waiting caller is silent."""
        if self._prompt:
            prompt, self._prompt = self._prompt, []

            def keep(rest: list[_Sound]) -> None:
                self._prompt = rest

            self._play(prompt, keep)
            return True
        if hold.listen_left is None:
            hold.listen_left = gather.timeout
        try:
            self._pass(hold.listen_left)
        except _Cut as cut:
            hold.listen_left = cut.left
            raise
        self._event(kind.SILENCE, f"the waiting caller presses nothing for {gather.timeout:g} s")
        self._finish_gather(gather, Collected("", "", "", timed_out=True))
        return True

    def _load_wait_document(self, hold: _Hold) -> None:
        if hold.wait_url is None:
            hold.music = True
            self._play([_Sound(kind.PLAY, DEFAULT_HOLD_MUSIC, None, None, 0.0)])
            return
        if self._fetch(hold.wait_url, hold.wait_method, self._hold_params()):
            hold.in_wait_doc = True

    def _on_event(self, event: tuple[Any, ...]) -> None:
        hold = self._hold
        name = event[0]
        if name == "beep":
            self._play([_Sound(kind.PLAY, f"[beep: {event[1]}]", None, None, 0.0)])
            return
        if hold is None:
            return
        if name == "caller-waiting":
            return  # the hold step sees the caller in the queue
        self._stop_wait_document(hold)
        if name == "dequeued" and hold.kind == "queue":
            agent, url, method = event[1], event[2], event[3]
            hold.dequeued_at = self.clock.now
            waited = self.clock.now - hold.since
            self._event(kind.QUEUE, f"dequeued by {agent.name} ({agent.call_sid}) after "
                                    f"{waited:g} s in {hold.queue.name if hold.queue else ''}")
            if url:
                self._play_dequeue_document(url, method, {
                    "QueueSid": hold.queue.sid if hold.queue else "",
                    "QueueTime": str(round(waited)), "DequeingCallSid": agent.call_sid})
            if self.ended:
                agent._events.append(("bridge-ended", self))
                self.world.wake(agent)
                return
            self._bridge(agent)
            agent._events.append(("connected", self))
            self.world.wake(agent)
        elif name == "connected" and hold.kind == "agent":
            self._bridge(event[1])
        elif name == "bridge-ended" and hold.kind in ("bridge", "agent"):
            peer = event[1]
            self._event(kind.BRIDGE, f"{peer.name} hung up: the bridge ends")
            self._bridge_done(hold)
        elif name == "conference-started" and hold.kind == "conference":
            self._event(kind.CONFERENCE, "the conference starts")
        elif name == "conference-ended" and hold.kind == "conference":
            self._event(kind.CONFERENCE, "the conference ends")
            self._leave_room(hold)
            self._dial_done(hold.action, hold.method, {"DialCallStatus": "answered"})

    def _bridge_done(self, hold: _Hold) -> None:
        talked = self.clock.now - (hold.bridged_at or self.clock.now)
        if hold.queue is not None and hold.member is not None:  # the queued caller's side
            waited = (hold.dequeued_at or self.clock.now) - hold.since
            self._queue_done("bridged", waited)
        else:  # the agent's side
            peer = hold.peer
            self._dial_done(hold.action, hold.method,
                            {"DialCallStatus": "completed",
                             "DialCallSid": peer.call_sid if peer else "",
                             "DialCallDuration": str(math.ceil(talked))})

    def _stop_wait_document(self, hold: _Hold) -> None:
        hold.pending = []
        hold.listen_left = None
        if hold.in_wait_doc or hold.music:
            self._waiting = None
            self._prompt = []
            self._verbs, self._next, self._document_url = hold.saved
            hold.in_wait_doc = False
            hold.music = False

    def _play_dequeue_document(self, url: str, method: str, extra: Mapping[str, str]) -> None:
        """<Queue url>: played to the dequeued caller before the bridge (Say, Play, Pause,
        Redirect); its time is the caller's, nothing interrupts it."""
        saved = (self._verbs, self._next, self._document_url)
        hold, self._hold = self._hold, None
        try:
            if not self._fetch(url, method, extra):
                return
            while self._next < len(self._verbs) and not self.ended:
                verb = self._verbs[self._next]
                self._next += 1
                try:
                    self._execute(verb, DEQUEUE_URL_VERBS)
                except ApplicationError as exc:
                    self._fail(str(exc))
        finally:
            self._hold = hold
            self._verbs, self._next, self._document_url = saved

    def _leave_hold(self) -> None:
        hold = self._hold
        if hold is None:
            return
        self._stop_wait_document(hold)
        self._verbs, self._next, self._document_url = hold.saved
        self._hold = None
        if hold.queue is not None and self in hold.queue.agents:
            hold.queue.agents.remove(self)

    def _hang_up_on_hold(self, hold: _Hold) -> None:
        """The call ends while on hold: the others are told, the verb's action is requested
        (its answer is not played)."""
        self._stop_wait_document(hold)
        params: dict[str, str] = {}
        action = hold.action
        if hold.kind in ("bridge", "agent") and hold.peer is not None:
            hold.peer._events.append(("bridge-ended", self))
            self.world.wake(hold.peer)
        if hold.kind == "queue" or (hold.kind == "bridge" and hold.member is not None):
            queue = hold.queue
            assert queue is not None
            if hold.member is not None and hold.member in queue.members:
                queue.members.remove(hold.member)
            bridged = hold.kind == "bridge"
            waited = (hold.dequeued_at or self.clock.now) - hold.since
            params = {"QueueResult": "bridged" if bridged else "hangup",
                      "QueueSid": queue.sid, "QueueTime": str(round(waited))}
        elif hold.kind == "bridge":
            talked = self.clock.now - (hold.bridged_at or self.clock.now)
            params = {"DialCallStatus": "completed",
                      "DialCallSid": hold.peer.call_sid if hold.peer else "",
                      "DialCallDuration": str(math.ceil(talked))}
        elif hold.kind == "conference":
            self._leave_room(hold)
            params = {"DialCallStatus": "answered"}
        else:  # an agent whose <Dial><Queue> was still waiting
            action = None
        self._hold = None
        if hold.queue is not None and self in hold.queue.agents:
            hold.queue.agents.remove(self)
        if action:
            self._post("action (the call has ended; its answer is not played)", action,
                       hold.method, params)

    # --- requests, events, the end --------------------------------------------------------------

    def _base_params(self, call_sid: str, from_: str, to: str, direction: str) -> dict[str, str]:
        params = {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Caller": from_,
            "Called": to,
            "CallStatus": "in-progress",
            "Direction": direction,
            "ApiVersion": API_VERSION,
        }
        params.update(self._geo if (from_, to) == (self.from_, self.to) else geo_params(from_, to))
        return params

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = self._base_params(self.call_sid, self.from_, self.to, "inbound")
        params["CallStatus"] = self.status
        params.update(extra)
        return params

    def _request(self, method: str, url: str, params: dict[str, str]) -> WebhookResponse:
        """One webhook request as Twilio makes it: 301/302/303/307 followed (303, and 301/302
        after a POST, as GET without the parameters; 307 as it was), 15 s at most."""
        for _hop in range(MAX_HTTP_REDIRECTS + 1):
            before = self.clock.now
            reply = self._client.request(method, url, params)
            if self.clock.now - before > WEBHOOK_TIMEOUT_SECONDS:
                raise ApplicationError(
                    f"{method} {url} took {self.clock.now - before:g} s (virtual); Twilio gives "
                    f"up after {WEBHOOK_TIMEOUT_SECONDS:g} s", "11205")
            if reply.status not in FOLLOWED_REDIRECTS or not reply.location:
                return reply
            target = urljoin(url, reply.location)
            if reply.status != 307 and method == "POST":
                method, params = "GET", {}
            elif reply.status == 303:
                method, params = "GET", {}
            self._event(kind.HTTP_REDIRECT, f"{reply.status} -> {method} {target}")
            url = target
        raise ApplicationError(f"more than {MAX_HTTP_REDIRECTS} HTTP redirects in a row, the "
                               f"last to {url}", "11215")

    def _record_request(self, event_kind: str, method: str, url: str, params: dict[str, str],
                        what: str = "") -> None:
        self._event(event_kind, f"{what}: {method} {url}" if what else f"{method} {url}", params)
        self.requests.append(Request(self.clock.now, method, url, dict(params), what))

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> bool:
        """Request the next document; on any failure (after the fallback URL, if any) the call
        ends with an application error."""
        if self._requests_since_input >= MAX_REQUESTS_WITHOUT_INPUT:
            self._fail(
                f"redirect loop: {MAX_REQUESTS_WITHOUT_INPUT} requests without any caller input "
                f"(next would be {method} {url})"
            )
            return False
        self._requests_since_input += 1
        params = self._params(extra)
        self._record_request(kind.REQUEST, method, url, params)
        if self.status == "ringing":
            self.status = "in-progress"
        try:
            verbs = self._document(method, url, params)
        except ApplicationError as exc:
            if self.fallback_url and url != self.fallback_url:
                self._warn(f"{exc}; Twilio requests the fallback URL")
                fallback = {**params, "ErrorCode": exc.code, "ErrorUrl": url}
                self._record_request(kind.REQUEST, self.fallback_method, self.fallback_url,
                                     fallback, "fallback")
                try:
                    verbs = self._document(self.fallback_method, self.fallback_url, fallback)
                except ApplicationError as again:
                    self._fail(f"{exc}; the fallback URL too: {again}")
                    return False
            else:
                self._fail(str(exc))
                return False
        self._document_url = url
        self._verbs = verbs
        self._next = 0
        return True

    def _document(self, method: str, url: str, params: dict[str, str]) -> list[Element]:
        try:
            reply = self._request(method, url, params)
        except ConnectionFailed as exc:
            raise ApplicationError(f"{method} {url} failed: {exc}", "11205") from exc
        self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or '(no content type)'}")
        return parse_document(reply)

    def _post(self, what: str, url: str, method: str, extra: Mapping[str, str],
              standard: bool = True) -> None:
        """A request whose answer is not played (callbacks): failures are warnings."""
        params = self._params(extra) if standard else {
            "AccountSid": self.account_sid, "CallSid": self.call_sid, **extra}
        self._record_request(kind.CALLBACK, method, url, params, what)
        try:
            reply = self._request(method, url, params)
        except (ConnectionFailed, ApplicationError) as exc:
            self._warn(f"{what} failed: {exc}")
            return
        if not 200 <= reply.status < 300:
            self._warn(f"{what} answered HTTP {reply.status}: {excerpt(reply.text)}")

    def _begin_action(self) -> None:
        self._said = []
        self._requests_since_input = 0

    def _require_waiting(self, action: str) -> PendingGather:
        if self.ended:
            raise CallEnded(f"cannot {action}: the call has ended ({self.outcome})")
        if self._waiting is None:
            raise NotWaiting(f"cannot {action}: no <Gather> is waiting ({self.state})")
        return self._waiting

    def _event(self, event_kind: str, text: str, params: Mapping[str, str] | None = None) -> None:
        self.transcript.append(Event(self.clock.now, event_kind, text, dict(params or {})))

    def _note(self, message: str) -> None:
        self._event(kind.NOTE, message)

    def _warn(self, message: str) -> None:
        self._event(kind.WARNING, message)

    def _fail(self, message: str) -> None:
        self.error = message
        self._event(kind.ERROR, message)
        if self._hold is not None:
            self.status = "completed"
            self._hang_up_on_hold(self._hold)
        self._end("error", "completed")

    def _end(self, by: EndedBy, status: str) -> None:
        if self.ended:
            return
        if self._hold is not None:
            self.status = status
            self._hang_up_on_hold(self._hold)
        self._waiting = None
        self._recording = None
        self._prompt = []
        self.ended_by = by
        self.status = status
        self.ended_at = self.clock.now
        self._event(kind.END, f"{self.outcome} after {self.duration:g} s")
        try:
            self._post_status_callback()
        finally:
            self._client.close()

    def _post_status_callback(self) -> None:
        if not self.status_callback:
            return
        params = self._params({"CallDuration": str(math.ceil(self.duration)),
                               "Timestamp": format_datetime(self.clock.moment),
                               "CallbackSource": "call-progress-events",
                               "SequenceNumber": "0"})
        self._record_request(kind.STATUS_CALLBACK, "POST", self.status_callback, params)
        try:
            reply = self._request("POST", self.status_callback, params)
        except (ConnectionFailed, ApplicationError) as exc:
            self._warn(f"status callback failed: {exc}")
            return
        if not 200 <= reply.status < 300:
            self._warn(f"status callback answered HTTP {reply.status}: {excerpt(reply.text)}")


def _number(text: str) -> Element:
    noun = Element("Number")
    noun.text = text
    return noun


def _target(noun: Element) -> str:
    """How a dialled noun is shown: a number as it is, others as kind:name."""
    text = text_of(noun)
    return text if noun.tag in ("Number", "Sip") else f"{noun.tag.lower()}:{text}"


def _progress(noun: Element, base: str, warn: Callable[[str], None]
              ) -> tuple[str, str, tuple[str, ...]] | None:
    """A noun's statusCallback, its method and the events it asks for (default: completed)."""
    url = noun.get("statusCallback")
    if not url:
        return None
    events = tuple((noun.get("statusCallbackEvent") or "completed").replace(",", " ").split())
    for event in events:
        if event not in CALL_PROGRESS_EVENTS:
            warn(f"<{noun.tag} statusCallbackEvent> {event!r} is not one of "
                 f"{', '.join(CALL_PROGRESS_EVENTS)}")
    return urljoin(base, url), method_attr(noun, warn, "statusCallbackMethod"), events
