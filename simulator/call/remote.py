"""What Twilio's REST API does to a live call (simulator.rest), and a call placed over it.

A REST request reaches the call as an event, like another call's action: a call on hold (in a
queue, a conference, a bridge, dialling a queue) takes it at once; a call at a <Gather> or a
<Record> takes it before the caller's next action. Placing a call (`place`) plays Twilio's
outbound call: initiated, ringing, then answered (its Url or Twiml requested with
Direction=outbound-api), busy, no-answer or failed, with the status callbacks asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from email.utils import format_datetime
from typing import Any

from simulator import transcript as kind
from simulator.call.hold import Holding
from simulator.call.say import SOUND_VERBS
from simulator.call.state import Hold
from simulator.errors import ApplicationError, ConnectionFailed
from simulator.transcript import Utterance
from simulator.transport import WebhookResponse
from simulator.twiml import parse_document

RING_SECONDS = 5.0  # how long a called party's phone rings before it answers
OUTCOMES = ("answered", "busy", "no-answer", "failed")
REMOTE = "rest-"  # the prefix of the events the REST API gives a call


class Remote(Holding):
    """Live-call updates over REST (redirect, end, dequeue, hold, announce), and REST calls."""

    status_callback_method = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    _callback_sequence = 0

    # --- what the REST API asks (another thread, during another call's turn) ------------------

    def remote_redirect(self, url: str | None, method: str, twiml: str | None) -> None:
        self._remote(("rest-redirect", url, method, twiml, "redirected"))

    def remote_dequeue(self, url: str, method: str) -> None:
        self._remote(("rest-redirect", url, method, None, "redirected"))

    def remote_end(self, status: str) -> None:
        self._remote(("rest-end", status))

    def remote_hold(self, hold: bool, url: str | None, method: str) -> None:
        self._remote(("rest-hold", hold, url, method))

    def remote_mute(self, muted: bool) -> None:
        self._remote(("rest-mute", muted))

    def remote_announce(self, url: str, method: str, *, fetch: bool = True,
                        others: Sequence[Any] = ()) -> None:
        if fetch:
            self._remote(("rest-announce", url, method, [o for o in others if o is not self]))

    def remote_conference_ended(self) -> None:
        self._events.append(("conference-ended",))
        self.world.wake(self)

    def remote_note(self, text: str) -> None:
        self._note(text)

    def _remote(self, event: tuple[Any, ...]) -> None:
        self._events.append(event)
        self.world.wake(self)

    # --- taking them, in the call's own turn ----------------------------------------------------

    def _on_event(self, event: tuple[Any, ...]) -> None:
        if str(event[0]).startswith(REMOTE):
            self._on_remote(event)
        else:
            super()._on_event(event)

    def _take_remote(self) -> bool:
        """Apply the first REST event waiting for a call not on hold; False when none waits."""
        for index, event in enumerate(self._events):
            if str(event[0]).startswith(REMOTE):
                del self._events[index]
                self._on_remote(event)
                return True
        return False

    def _remote_first(self) -> None:
        """Before a caller's action: the REST requests made meanwhile come first."""
        if self._hold is None and not self.ended and any(
                str(event[0]).startswith(REMOTE) for event in self._events):
            self._run()

    def _on_remote(self, event: tuple[Any, ...]) -> None:
        name = event[0]
        if self.ended:
            return
        if name == "rest-redirect":
            _, url, method, twiml, result = event
            self._event(kind.REDIRECT, f"over the REST API: {method} {url}" if url
                        else "over the REST API: inline TwiML")
            self._leave_everything(result)
            if twiml is not None:
                self._inline(twiml)
            else:
                self._fetch(url, method, {})
        elif name == "rest-end":
            self._event(kind.HANGUP, f"by the REST API (Status={event[1]})")
            self._end("application", "completed" if event[1] == "completed" else "canceled")
        elif name == "rest-hold":
            self._remote_hold(bool(event[1]), event[2], event[3])
            self._room_event("hold", "hold" if event[1] else "unhold",
                             {"Hold": str(bool(event[1])).lower()})
        elif name == "rest-mute":
            self._note(f"{'muted' if event[1] else 'unmuted'} over the REST API")
            self._room_event("mute", "mute" if event[1] else "unmute",
                             {"Muted": str(bool(event[1])).lower()})
        elif name == "rest-announce":
            texts = self._fetch_sounds("announcement", event[1], event[2])
            self._hear(texts, "announcement")
            for other in event[3]:  # heard before an end the room may have been given since
                ends = [i for i, e in enumerate(other._events) if e[0] == "conference-ended"]
                other._events.insert(ends[0] if ends else len(other._events),
                                     ("rest-heard", texts))
                other.world.wake(other)
        elif name == "rest-heard":
            self._hear(event[1], "announcement")

    def _room_event(self, event: str, name: str, state: dict[str, str]) -> None:
        """A conference status callback event (participant-hold, -unhold, -mute, -unmute), with
        the state the request set (a later request may have changed it since)."""
        hold = self._hold
        if hold is not None and hold.room is not None and hold.participant is not None:
            self._conference_event(hold.room, event, hold.participant, state,
                                   name=f"participant-{name}")

    def _leave_everything(self, result: str) -> None:
        """Leave hold as a REST redirect does: a queue (its action told QueueResult), a
        bridge (the other side's <Dial> ends), a conference; drop a waiting Gather/Record."""
        hold = self._hold
        if hold is not None:
            self._leave_hold_for_redirect(hold, result)
        self._waiting = None
        self._recording = None
        self._prompt = []

    def _leave_hold_for_redirect(self, hold: Hold, result: str) -> None:
        self._stop_wait_document(hold)
        if hold.kind in ("bridge", "agent") and hold.peer is not None:
            hold.peer._events.append(("bridge-ended", self))
            self.world.wake(hold.peer)
        params: dict[str, str] = {}
        if hold.queue is not None and hold.member is not None:
            if hold.member in hold.queue.members:
                hold.queue.members.remove(hold.member)
            if hold.kind == "queue":
                hold.queue.waited.append(self.clock.now - hold.since)
            waited = (hold.dequeued_at or self.clock.now) - hold.since
            params = {"QueueResult": result if hold.kind == "queue"
                      else "redirected-from-bridged",
                      "QueueSid": hold.queue.sid, "QueueTime": str(round(waited))}
            self._event(kind.QUEUE, f"leaves queue {hold.queue.name}: QueueResult="
                                    f"{params['QueueResult']}")
        elif hold.kind == "conference":
            self._leave_room(hold)
        self._hold = None
        if hold.queue is not None and self in hold.queue.agents:
            hold.queue.agents.remove(self)
        if params and hold.action:
            self._post("action (left the queue over REST; its answer is not played)",
                       hold.action, hold.method, params)

    def _inline(self, twiml: str) -> None:
        reply = WebhookResponse(200, (("Content-Type", "text/xml"),), twiml.encode("utf-8"),
                                self._document_url)
        try:
            self._verbs = parse_document(reply)
        except ApplicationError as exc:
            self._fail(f"the Twiml given over the REST API: {exc}")
            return
        self._next = 0

    def _remote_hold(self, hold: bool, url: str | None, method: str) -> None:
        if not hold:
            self._event(kind.CONFERENCE, "taken off hold over the REST API: back in the "
                                         "conference")
            return
        self._event(kind.CONFERENCE, "put on hold over the REST API: the others no longer "
                                     "hear this participant")
        if url is None:
            self._hear(["[hold music: Twilio's default classical playlist]"], "hold")
            return
        self._hear(self._fetch_sounds("hold music", url, method), "hold")
        self._note("the hold document loops until the participant is taken off hold")

    def _fetch_sounds(self, what: str, url: str, method: str) -> list[str]:
        """A hold or announcement document (Say, Play, Pause, Redirect): what it says."""
        params = self._params({})
        self._record_request(kind.REQUEST, method, url, params, what)
        try:
            reply = self._request(method, url, params)
            self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or ''}".strip())
            verbs = parse_document(reply)
        except (ConnectionFailed, ApplicationError) as exc:
            self._warn(f"the {what} document failed: {exc}")
            return []
        texts: list[str] = []
        for verb in verbs:
            if verb.tag in SOUND_VERBS:
                texts += [sound.text for sound in self._sounds(verb) if sound.text]
            else:
                self._warn(f"<{verb.tag}> in a {what} document is not played")
        return texts

    def _hear(self, texts: Sequence[str], what: str) -> None:
        for text in texts:
            self._said.append(Utterance(text, None, None, self.clock.now))
            self._event(kind.PLAY, f"{text}  ({what})")

    # --- a call placed over the REST API ---------------------------------------------------------

    def place(self, outcome: str, *, timeout: float, twiml: str | None = None,
              machine_detection: str | None = None, answered_by: str = "human",
              ring: float = RING_SECONDS) -> None:
        """Play an outbound-api call to its end or until the called party must act."""
        if outcome not in OUTCOMES:
            raise ValueError(f"a called party's outcome is one of {', '.join(OUTCOMES)}")
        self.direction = "outbound-api"
        self._event(kind.NOTE, f"call {self.call_sid} placed over the REST API from "
                               f"{self.from_} to {self.to}")
        self._deadline = self.clock.now
        self.status = "queued"
        self._progress("initiated", "initiated")
        if outcome == "failed":
            self._event(kind.DIAL, f"{self.to}: the call fails")
            self._end("caller", "failed")
            return
        self.status = "ringing"
        self._progress("ringing", "ringing")
        if outcome == "busy":
            self._event(kind.DIAL, f"{self.to} is busy")
            self._end("caller", "busy")
            return
        if outcome == "no-answer" or ring >= timeout:
            self.clock.advance(timeout)
            self._event(kind.DIAL, f"{self.to} does not answer within {timeout:g} s")
            self._end("caller", "no-answer")
            return
        self.clock.advance(ring)
        self.status = "in-progress"
        self.answered_at = self.clock.now
        self._event(kind.DIAL, f"{self.to} answers after {ring:g} s")
        self._progress("answered", "in-progress")
        extra: dict[str, str] = {}
        if machine_detection:
            self.answered_by = answered_by
            extra["AnsweredBy"] = answered_by
            self._not_simulated(f"MachineDetection={machine_detection} (the scenario says "
                                f"AnsweredBy={answered_by}; no audio is analysed)", fatal=False)
        if twiml is not None:
            self._inline(twiml)
            self._run()
        elif self._fetch(self.url, self.method, extra):
            self._run()

    def _progress(self, event: str, status: str) -> None:
        if not self.status_callback or event not in self.status_callback_events:
            return
        self._post(f"status callback ({event})", self.status_callback,
                   self.status_callback_method,
                   {"CallStatus": status, "Timestamp": format_datetime(self.clock.moment),
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(self._next_sequence())})

    def _next_sequence(self) -> int:
        number = self._callback_sequence
        self._callback_sequence = number + 1
        return number

    def _post_status_callback(self) -> None:
        if self.direction != "outbound-api":
            super()._post_status_callback()
            return
        if not self.status_callback or "completed" not in self.status_callback_events:
            return
        duration = 0 if self.answered_at is None else math.ceil(
            (self.ended_at or self.clock.now) - self.answered_at)
        self._post("status callback (completed)", self.status_callback,
                   self.status_callback_method,
                   {"CallDuration": str(duration),
                    "Timestamp": format_datetime(self.clock.moment),
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(self._next_sequence())})
