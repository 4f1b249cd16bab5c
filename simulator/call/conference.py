"""Conferences: <Dial><Conference>, its attributes, starting, joining, leaving and ending a room."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.dial import Dialling
from simulator.call.state import CONFERENCE_WAIT_VERBS, Hold
from simulator.errors import ApplicationError
from simulator.twiml import bool_attr, count_attr, method_attr, text_of
from simulator.world import MAX_CONFERENCE_PARTICIPANTS, Conference, Participant

#: the events a <Conference statusCallbackEvent> may ask for (mute and hold come from the REST
#: API, not from TwiML; speaker, modify and announcement are not simulated)
CONFERENCE_EVENTS = ("start", "end", "join", "leave", "mute", "hold", "modify", "speaker",
                     "announcement")


class Conferencing(Dialling):
    """A call joins a conference room and leaves it."""

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
        hold = Hold("conference", verb, (self._verbs, self._next, self._document_url), action,
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
            bool_attr(noun, "muted", False, self._warn), self.clock.now,
            label=getattr(self, "rest_label", None))
        hold.participant = participant
        self._hold = hold
        others = list(room.participants)
        room.participants.append(participant)
        self._event(kind.CONFERENCE, f"joins conference {name} ({room.sid}) with "
                                     f"{len(others)} other(s)" + (" (muted)" if participant.muted
                                                                  else ""))
        self._room_callback(room, noun)
        self._conference_event(room, "join", participant)
        if not room.started and others and any(
                one.start_on_enter for one in room.participants):
            room.started = True
            self._event(kind.CONFERENCE, "the conference starts")
            self._conference_event(room, "start")
            self._tell(others, ("conference-started",))
        elif room.started and participant.beep_enter:
            self._tell(others, ("beep", f"{self.name} joins"))
        if not room.started:
            self._note("the conference has not started: it starts once two participants are in "
                       "it, one of them with startConferenceOnEnter")

    def _room_callback(self, room: Conference, noun: Element) -> None:
        """The room's statusCallback: the first participant's that gives one (Twilio ignores
        later participants')."""
        url = noun.get("statusCallback")
        if not url:
            return
        if room.callback is not None:
            self._note("<Conference statusCallback> of a later participant: ignored, the room "
                       "keeps the first one's")
            return
        events = (noun.get("statusCallbackEvent") or "").replace(",", " ").split()
        for event in events:
            if event not in CONFERENCE_EVENTS:
                self._warn(f"<Conference statusCallbackEvent> {event!r} is not one of "
                           f"{', '.join(CONFERENCE_EVENTS)}")
        room.callback = (urljoin(self._document_url, url),
                         method_attr(noun, self._warn, "statusCallbackMethod"),
                         frozenset(events) or frozenset({"start", "end"}))

    def _conference_event(self, room: Conference, event: str,
                          participant: Participant | None = None,
                          extra: Mapping[str, str] | None = None,
                          name: str | None = None) -> None:
        """Post one conference event (start, end, join, leave, mute, hold) to the room's
        statusCallback, when it asked for it: Twilio's parameters, in Twilio's order."""
        if room.callback is None or event not in room.callback[2]:
            return
        url, method, _ = room.callback
        name = name or (f"participant-{event}" if participant is not None
                        else f"conference-{event}")
        params = {"ConferenceSid": room.sid, "FriendlyName": room.name,
                  "AccountSid": self.account_sid, "SequenceNumber": str(room.sequence),
                  "Timestamp": format_datetime(self.clock.moment),
                  "StatusCallbackEvent": name}
        room.sequence += 1
        if participant is not None:
            params.update({
                "CallSid": participant.call.call_sid,
                "Muted": str(participant.muted).lower(),
                "Hold": str(participant.hold).lower(), "Coaching": "false",
                "EndConferenceOnExit": str(participant.end_on_exit).lower(),
                "StartConferenceOnEnter": str(participant.start_on_enter).lower()})
        params.update(extra or {})
        self._post_exactly(f"conference status callback ({name})", url, method, params)

    def _tell(self, others: list[Any], event: tuple[str, ...]) -> None:
        """Give the other participants' calls an event and wake them to hear it."""
        for other in others:
            other.call._events.append(event)
            self.world.wake(other.call)

    def _leave_room(self, hold: Hold) -> None:
        room, participant = hold.room, hold.participant
        assert room is not None and participant is not None
        if participant in room.participants:
            room.participants.remove(participant)
            self._conference_event(room, "leave", participant)
        others = list(room.participants)
        if room.ended:
            return
        if participant.end_on_exit or not others:
            room.ended = True
            room.ended_at = self.clock.now
            self._event(kind.CONFERENCE, f"the conference {room.name} ends")
            if room.started:
                self._conference_event(room, "end", extra={
                    "ReasonConferenceEnded": ("participant-with-end-conference-on-exit-left"
                                              if participant.end_on_exit
                                              else "last-participant-left"),
                    "CallSidEndingConference": self.call_sid})
            self._tell(others, ("conference-ended",))
        elif room.started and participant.beep_exit:
            self._tell(others, ("beep", f"{self.name} leaves"))
