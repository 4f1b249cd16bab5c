"""One simulated phone call: plays TwiML as Twilio would until the caller must act."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Literal
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.client import WebhookClient
from simulator.clock import SECONDS_PER_KEY, SECONDS_PER_PLAY, Clock, speech_seconds
from simulator.errors import ApplicationError, CallEnded, ConnectionFailed, NotWaiting
from simulator.gather import KEYS, Collected, PendingGather
from simulator.transcript import Event, Utterance, format_events
from simulator.twiml import (
    bool_attr,
    count_attr,
    excerpt,
    method_attr,
    number_attr,
    parse_document,
    text_of,
)

API_VERSION = "2010-04-01"
MAX_REQUESTS_WITHOUT_INPUT = 200  # more than this between two caller actions is a redirect loop
MANY_LOOPS = 3  # how many repetitions loop="0" ("until the call moves on") is simulated as
DIAL_TALK_SECONDS = 30  # how long an answered <Dial> lasts
DIAL_TIMEOUT_SECONDS = 30.0  # Twilio's default <Dial timeout>
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
SOUND_VERBS = ("Say", "Play", "Pause")

EndedBy = Literal["caller", "application", "error"]


@dataclass(frozen=True)
class _Sound:
    """Something the caller hears (or a pause), not yet played."""

    kind: str
    text: str
    voice: str | None
    language: str | None
    seconds: float


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class Call:
    """Plays one call. Caller actions: press, silence, hangup; everything else is the app's."""

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
    ) -> None:
        self.clock = clock or Clock()
        self.started = self.clock.now  # a shared clock may have run before this call
        self.url = url
        self.from_ = from_
        self.to = to
        self.call_sid = new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self.status_callback = urljoin(url, status_callback) if status_callback else None
        self.dial_status = dial_status
        self.transcript: list[Event] = []
        self.ended_by: EndedBy | None = None
        self.error: str | None = None
        self.status = "ringing"  # Twilio's CallStatus: ringing, in-progress, then the final one
        self.unsupported: list[str] = []  # verbs met that the simulator cannot play
        self._client = client
        self._said: list[Utterance] = []
        self._prompt: list[_Sound] = []  # a waiting Gather's nested Say/Play/Pause, unplayed
        self._waiting: PendingGather | None = None
        self._verbs: list[Element] = []
        self._next = 0
        self._document_url = url
        self._requests_since_input = 0
        self._answered = False
        self._next_dial_status: str | None = None

    # --- what the caller can observe -------------------------------------------------------

    @property
    def said(self) -> list[Utterance]:
        """All said since the caller's previous action, a waiting Gather's prompt included."""
        heard = list(self._said)
        at = self.clock.now
        for sound in self._prompt:
            if sound.kind != kind.PAUSE:
                heard.append(Utterance(sound.text, sound.voice, sound.language, round(at, 3)))
            at += sound.seconds
        return heard

    @property
    def heard(self) -> str:
        """The texts of `said`, one per line: what scripts' expectations match."""
        return "\n".join(utterance.text for utterance in self.said)

    @property
    def waiting(self) -> PendingGather | None:
        """The <Gather> listening for keys, or None when the call has ended."""
        return self._waiting

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
    def listening_from(self) -> float:
        """When the waiting <Gather>'s prompt has played (the caller's turn), in clock seconds."""
        return round(self.clock.now + sum(sound.seconds for sound in self._prompt), 3)

    @property
    def duration(self) -> float:
        """Virtual seconds since this call was dialled."""
        return round(self.clock.now - self.started, 3)

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

    def press(self, keys: str, *, barge_in: bool = False) -> Collected:
        """Press keys at the waiting Gather after its prompt played (or barge in at its start)."""
        gather = self._require_waiting(f"press {keys!r}")
        if not keys:
            raise ValueError("press() needs at least one key; use silence() to stay silent")
        collected = gather.collect(keys)
        if barge_in and self._prompt:
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

    def silence(self, n: int = 1) -> None:
        """Stay silent through `n` Gathers (one caller action): each times out, time jumps ahead."""
        if n < 1:
            raise ValueError(f"silence needs a count of at least 1, not {n}")
        for done in range(n):
            gather = self._require_waiting(
                f"stay silent ({done} of {n} silences done)" if done else "stay silent"
            )
            self._play_prompt()
            if done == 0:
                self._begin_action()
            self._requests_since_input = 0  # each timeout is the caller's doing, not a loop
            self._event(kind.SILENCE, f"the caller presses nothing for {gather.timeout:g} s")
            self.clock.advance(gather.timeout)
            self._finish_gather(gather, Collected("", "", "", timed_out=True))

    def hangup(self) -> None:
        """The caller hangs up (after hearing the waiting prompt)."""
        self._require_waiting("hang up")
        self._play_prompt()
        self._begin_action()
        self._event(kind.HANGUP, "by the caller")
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
        self._event(kind.NOTE, f"call {self.call_sid} from {self.from_} to {self.to}")
        if self._fetch(self.url, "POST", {}):
            self._run()

    def _run(self) -> None:
        while not self.ended and self._waiting is None:
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

    def _execute(self, verb: Element) -> None:
        handler: Callable[[Element], None] | None = {
            "Say": self._say_play_pause,
            "Play": self._say_play_pause,
            "Pause": self._say_play_pause,
            "Gather": self._gather,
            "Redirect": self._redirect,
            "Hangup": self._hangup,
            "Reject": self._reject,
            "Dial": self._dial,
        }.get(verb.tag)
        if handler is None:
            self.unsupported.append(verb.tag)
            self._event(kind.NOT_SIMULATED, f"<{verb.tag}> is not simulated")
            self._fail(f"<{verb.tag}> is not simulated; the call cannot go on as Twilio's would")
            return
        if verb.tag not in ("Reject", "Redirect"):
            self._answered = True
        handler(verb)

    def _say_play_pause(self, verb: Element) -> None:
        self._play(self._sounds(verb))

    def _sounds(self, verb: Element) -> list[_Sound]:
        if verb.tag == "Pause":
            length = number_attr(verb, "length", 1.0, self._warn)
            return [_Sound(kind.PAUSE, "", None, None, length)]
        text = text_of(verb)
        if verb.tag == "Say":
            if not text:
                self._warn("<Say> has no text; nothing is said")
                return []
            sound = _Sound(
                kind.SAY, text, verb.get("voice"), verb.get("language"), speech_seconds(text)
            )
        else:
            digits = verb.get("digits")
            if text:
                heard = f"[play {urljoin(self._document_url, text)}]"
            elif digits:
                heard = f"[play digits {digits}]"
            else:
                self._warn("<Play> has neither a URL nor digits; nothing is played")
                return []
            sound = _Sound(kind.PLAY, heard, None, None, SECONDS_PER_PLAY)
        return [sound] * self._loops(verb)

    def _loops(self, verb: Element) -> int:
        loops = count_attr(verb, "loop", 1, self._warn)
        if loops == 0:
            self._event(
                kind.NOTE,
                f'<{verb.tag} loop="0"> repeats until the call moves on; '
                f"simulated as {MANY_LOOPS} repetitions",
            )
            return MANY_LOOPS
        return 1 if loops is None else loops

    def _play(self, sounds: list[_Sound]) -> None:
        for sound in sounds:
            if sound.kind == kind.PAUSE:
                self._event(kind.PAUSE, f"{sound.seconds:g} s")
            else:
                utterance = Utterance(sound.text, sound.voice, sound.language, self.clock.now)
                self._said.append(utterance)
                self._event(sound.kind, f"{sound.text}  ({utterance.voice_label()})")
            self.clock.advance(sound.seconds)

    def _play_prompt(self) -> None:
        prompt, self._prompt = self._prompt, []
        self._play(prompt)

    def _gather(self, verb: Element) -> None:
        modes = (verb.get("input") or "dtmf").split()
        if "dtmf" not in modes:
            self.unsupported.append("Gather input=speech")
            self._event(kind.NOT_SIMULATED, f"<Gather input={verb.get('input')!r}> (speech)")
            raise ApplicationError("<Gather> without dtmf input: speech is not simulated")
        if "speech" in modes:
            self._event(kind.NOTE, "<Gather> also listens for speech; only keys are simulated")
        finish_on_key = verb.get("finishOnKey", "#")
        if finish_on_key and (len(finish_on_key) != 1 or finish_on_key not in KEYS):
            self._warn(f"<Gather> finishOnKey={finish_on_key!r} is not one key; using '#'")
            finish_on_key = "#"
        num_digits = count_attr(verb, "numDigits", None, self._warn)
        if num_digits == 0:
            self._warn('<Gather> numDigits="0" is invalid; no digit limit')
            num_digits = None
        action = verb.get("action")
        gather = PendingGather(
            action=urljoin(self._document_url, action) if action else self._document_url,
            method=method_attr(verb, self._warn),
            timeout=number_attr(verb, "timeout", 5.0, self._warn),
            finish_on_key=finish_on_key,
            num_digits=num_digits,
            action_on_empty_result=bool_attr(verb, "actionOnEmptyResult", False, self._warn),
        )
        prompt: list[_Sound] = []
        for child in verb:
            if child.tag not in SOUND_VERBS:
                raise ApplicationError(f"<{child.tag}> cannot be nested in <Gather>")
            prompt.extend(self._sounds(child))
        self._event(kind.GATHER, gather.describe())
        self._prompt = prompt
        self._waiting = gather

    def _finish_gather(self, gather: PendingGather, collected: Collected) -> None:
        self._waiting = None
        if collected.empty and not gather.action_on_empty_result:
            self._event(kind.NOTE, "no digits: the action is not requested; the next verb runs")
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
        self._fetch(url, method, {})

    def _hangup(self, verb: Element) -> None:
        self._event(kind.HANGUP, "by the application (<Hangup>)")
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

    def _dial(self, verb: Element) -> None:
        targets = _dial_targets(verb)
        if not targets:
            raise ApplicationError("<Dial> has no number to dial")
        status = self._next_dial_status or self.dial_status
        self._next_dial_status = None
        self._event(kind.DIAL, f"{', '.join(targets)}: DialCallStatus={status}")
        duration = 0
        if status in ("completed", "answered"):
            duration = DIAL_TALK_SECONDS
            self.clock.advance(duration)
        elif status == "no-answer":
            self.clock.advance(number_attr(verb, "timeout", DIAL_TIMEOUT_SECONDS, self._warn))
        action = verb.get("action")
        if not action:
            self._event(kind.NOTE, "<Dial> has no action: the next verb runs")
            return
        params = {"DialCallStatus": status, "DialCallDuration": str(duration)}
        if duration:
            params["DialCallSid"] = new_sid("CA")
        self._fetch(urljoin(self._document_url, action), method_attr(verb, self._warn), params)

    # --- requests, events, the end --------------------------------------------------------------

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": self.status,
            "Direction": "inbound",
            "ApiVersion": API_VERSION,
        }
        params.update(extra)
        return params

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> bool:
        """Request the next document; on any failure the call ends with an application error."""
        if self._requests_since_input >= MAX_REQUESTS_WITHOUT_INPUT:
            self._fail(
                f"redirect loop: {MAX_REQUESTS_WITHOUT_INPUT} requests without any caller input "
                f"(next would be {method} {url})"
            )
            return False
        self._requests_since_input += 1
        params = self._params(extra)
        self.status = "in-progress"
        self._event(kind.REQUEST, f"{method} {url}", params)
        try:
            reply = self._client.request(method, url, params)
        except ConnectionFailed as exc:
            self._fail(f"{method} {url} failed: {exc}")
            return False
        self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or '(no content type)'}")
        try:
            verbs = parse_document(reply)
        except ApplicationError as exc:
            self._fail(str(exc))
            return False
        self._document_url = url
        self._verbs = verbs
        self._next = 0
        return True

    def _begin_action(self) -> None:
        self._said = []
        self._requests_since_input = 0

    def _require_waiting(self, action: str) -> PendingGather:
        if self.ended:
            raise CallEnded(f"cannot {action}: the call has ended ({self.outcome})")
        if self._waiting is None:
            raise NotWaiting(f"cannot {action}: no <Gather> is waiting")
        return self._waiting

    def _event(self, event_kind: str, text: str, params: Mapping[str, str] | None = None) -> None:
        self.transcript.append(Event(self.clock.now, event_kind, text, dict(params or {})))

    def _warn(self, message: str) -> None:
        self._event(kind.WARNING, message)

    def _fail(self, message: str) -> None:
        self.error = message
        self._event(kind.ERROR, message)
        self._end("error", "completed")

    def _end(self, by: EndedBy, status: str) -> None:
        self._waiting = None
        self._prompt = []
        self.ended_by = by
        self.status = status
        self._event(kind.END, f"{self.outcome} after {self.duration:g} s")
        try:
            self._post_status_callback()
        finally:
            self._client.close()

    def _post_status_callback(self) -> None:
        if not self.status_callback:
            return
        params = self._params({"CallDuration": str(math.ceil(self.duration))})
        self._event(kind.STATUS_CALLBACK, f"POST {self.status_callback}", params)
        try:
            reply = self._client.request("POST", self.status_callback, params)
        except ConnectionFailed as exc:
            self._warn(f"status callback failed: {exc}")
            return
        if not 200 <= reply.status < 300:
            self._warn(f"status callback answered HTTP {reply.status}: {excerpt(reply.text)}")


def _dial_targets(verb: Element) -> list[str]:
    """What a <Dial> calls: its text, or its nested <Number>, <Client>, <Sip>, … nouns."""
    nouns = list(verb)
    if not nouns:
        text = text_of(verb)
        return [text] if text else []
    targets = []
    for noun in nouns:
        text = text_of(noun)
        targets.append(text if noun.tag in ("Number", "Sip") else f"{noun.tag.lower()}:{text}")
    return targets
