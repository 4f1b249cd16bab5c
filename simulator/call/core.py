"""The call core: its state, clock and transcript, what the caller can observe, and how a call
ends. Each verb family is a module of its own around this core (simulator/call/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.state import EndedBy, Hold, PendingRecord, Request, Sound, new_sid
from simulator.client import WebhookClient
from simulator.clock import Clock
from simulator.errors import CallEnded, NotWaiting
from simulator.gather import PendingGather
from simulator.geo import geo_params
from simulator.transcript import Event, Utterance, format_events
from simulator.world import World

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
                             "waitMethod", "beep", "muted", "maxParticipants", "statusCallback",
                             "statusCallbackEvent", "statusCallbackMethod"}),
}


class CallCore:
    """A call's state and transcript; the verb families (mixins over this core) play it."""

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
        self.direction = "inbound"  # outbound-api: a call placed over the REST API
        self.answered_at: float | None = None  # an outbound-api call: when it was answered
        self.answered_by: str | None = None  # AnsweredBy, with MachineDetection
        self.parent_call_sid: str | None = None
        self._geo = geo_params(from_, to, geo)
        self._client = client
        self._said: list[Utterance] = []
        self._prompt: list[Sound] = []  # a waiting Gather's nested Say/Play/Pause, unplayed
        self._waiting: PendingGather | None = None
        self._recording: PendingRecord | None = None
        self._hold: Hold | None = None
        self._holding = False  # the hold loop is running (it is not entered twice)
        self._deadline = 0.0  # on hold, time passes until here (a `wait`), then the call parks
        self._until_bridged = False  # a `wait(until="bridged")` runs: park once bridged
        self._events: list[tuple[Any, ...]] = []  # what other calls did that concerns this one
        self._verbs: list[Element] = []
        self._next = 0
        self._document_url = url
        self._requests_since_input = 0
        self._answered = False
        self._next_dial_status: str | None = None
        self._called_party: tuple[list[str], bool] | None = None  # keys, hangs up
        self._sequence = 0
        self._playing_verbs = False  # the run loop plays the document (a REST request may cut)

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

    def close(self) -> None:
        """Hang up if the call is still up, so the call's client is always released."""
        if not self.ended:
            self.hangup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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

    def _begin_action(self) -> None:
        self._said = []
        self._requests_since_input = 0

    def _require_waiting(self, action: str) -> PendingGather:
        self._remote_first()
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

    # --- provided by the families (simulator.call.Call puts them together) ------------------

    def _run(self) -> None:
        """Provided by simulator.call.Call: play until the caller must act."""
        raise NotImplementedError

    def _execute(self, verb: Element, allowed: frozenset[str] | None = None) -> None:
        """Provided by simulator.call.Call: the verb table."""
        raise NotImplementedError

    def hangup(self) -> None:
        """Provided by simulator.call.Call."""
        raise NotImplementedError

    def _remote_first(self) -> None:
        """Provided by simulator.call.remote: REST requests made meanwhile come first."""

    def _post_status_callback(self) -> None:
        """Provided by simulator.call.webhooks."""
        raise NotImplementedError

    def _leave_hold(self) -> None:
        """Provided by simulator.call.hold."""
        raise NotImplementedError

    def _hang_up_on_hold(self, hold: Hold) -> None:
        """Provided by simulator.call.hold."""
        raise NotImplementedError
