"""<Dial> and its nouns <Number>, <Client>, <Sip>: the outcome the script chose, the whisper
(<Number url>) to the called party, progress callbacks, the <Dial> action. <Queue> and
<Conference> are routed to simulator.call.queue and simulator.call.conference."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from email.utils import format_datetime
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.core import HONOURED
from simulator.call.say import SOUND_VERBS, Sounds
from simulator.call.state import WHISPER_VERBS, new_sid
from simulator.call.webhooks import MAX_REQUESTS_WITHOUT_INPUT
from simulator.clock import SECONDS_PER_KEY
from simulator.errors import ApplicationError
from simulator.sounds import digits_seconds, valid_digits
from simulator.twiml import method_attr, number_attr, text_of

DIAL_TALK_SECONDS = 30  # how long an answered <Dial> to a number lasts
DIAL_TIMEOUT_SECONDS = 30.0  # Twilio's default <Dial timeout>
DIAL_TIME_LIMIT = 14400.0  # Twilio's default <Dial timeLimit>: 4 hours
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
#: Dial nouns the simulator cannot play: reported, and the call ends with an error
NOT_SIMULATED_NOUNS = ("Sim", "Application", "WhatsApp")
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")


class Dialling(Sounds):
    """<Dial>: to numbers, clients and SIP here; to a queue or a conference in their modules."""

    def set_dial_status(self, status: str) -> None:
        """Choose the DialCallStatus the next <Dial> reports (later ones use the default)."""
        if status not in DIAL_STATUSES:
            raise ValueError(f"dial status {status!r} is not one of {', '.join(DIAL_STATUSES)}")
        self._next_dial_status = status

    def set_called_party(self, keys: list[str] | None = None, hangup: bool = False) -> None:
        """How the party the next <Dial> reaches answers a whisper (<Number url>): the keys it
        presses at each <Gather>, in order, and whether it hangs up (refuses the call)."""
        self._called_party = (list(keys or []), hangup)

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

    def _dial_done(self, action: str | None, method: str, params: Mapping[str, str]) -> None:
        if self._hold is not None:
            self._leave_hold()
        if not action:
            self._note("<Dial> has no action: the next verb runs")
            return
        self._fetch(action, method, params)

    def _dial_queue(self, verb: Element, noun: Element) -> None:
        """Provided by simulator.call.queue."""
        raise NotImplementedError

    def _dial_conference(self, verb: Element, noun: Element) -> None:
        """Provided by simulator.call.conference."""
        raise NotImplementedError


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
