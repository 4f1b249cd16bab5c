"""One simulated phone call: plays TwiML as Twilio would until the caller must act.

`Call` puts the families together around the call core (simulator/call/README.md): the verb
table, the run loop, and the caller's actions that concern several families (silence, hangup).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.core import HONOURED, CallCore
from simulator.call.dial import DIAL_STATUSES
from simulator.call.record import Recording
from simulator.call.remote import Remote
from simulator.call.state import PendingRecord, Redirected, Request
from simulator.errors import ApplicationError, CallEnded, NotWaiting
from simulator.gather import Collected
from simulator.twiml import method_attr, text_of

#: verbs the simulator cannot play: reported, and the call ends with an error
NOT_SIMULATED_VERBS = ("Connect", "Pay", "Prompt", "Refer", "Start", "Stop", "Echo", "Sms",
                       "Message")

__all__ = ["DIAL_STATUSES", "HONOURED", "Call", "CallCore", "PendingRecord", "Request"]


class Call(Remote, Recording):
    """Plays one call. Caller actions: press, speak, record, silence, wait, hangup; everything
    else is the application's (and, in a scenario, the other calls')."""

    def start(self) -> None:
        """Request the call's URL (CallStatus=ringing) and play until the caller must act."""
        self.world.calls.append(self)
        self._event(kind.NOTE, f"call {self.call_sid} from {self.from_} to {self.to}")
        self._deadline = self.clock.now
        if self._fetch(self.url, self.method, {}):
            self._run()

    def hangup(self, *, after: float | None = None) -> None:
        """The caller hangs up: at a Gather (after its prompt, or `after` seconds into it: the
        rest is not heard, and `said` is then what was), a Record, or on hold."""
        self._remote_first()
        if self.ended:
            raise CallEnded(f"cannot hang up: the call has ended ({self.outcome})")
        if self._waiting is None and self._recording is None and self._hold is None:
            raise NotWaiting("cannot hang up: nothing waits for the caller")
        if after is not None:
            self._hang_up_during_prompt(after)
            return
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

    def _hang_up_during_prompt(self, after: float) -> None:
        """Twilio requests no action when the caller hangs up while a <Gather> plays its
        prompt: the call just ends (CallStatus=completed)."""
        if self._waiting is None or self._hold is not None:
            raise NotWaiting(f"cannot hang up {after:g} s into a prompt: no <Gather> plays one "
                             f"({self.state})")
        length = sum(sound.seconds for sound in self._prompt)
        if not 0 <= after < length:
            raise ValueError(f"hang up after {after:g} s: the prompt lasts {length:g} s; "
                             "to hang up after it, hang up bare")
        self._begin_action()
        unheard = self._play_prompt_for(after)
        self._event(kind.HANGUP, f"by the caller, {after:g} s into the prompt; not heard: "
                                 + " / ".join(unheard))
        self._waiting = None
        self.status = "completed"
        self._end("caller", "completed")

    def _run(self) -> None:
        while not self.ended:
            if self._hold is None and self._take_remote():
                continue
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
            self._playing_verbs = True
            try:
                self._execute(verb)
            except ApplicationError as exc:
                self._fail(str(exc))
            except Redirected:
                continue  # the loop's top takes the REST request
            finally:
                self._playing_verbs = False

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
