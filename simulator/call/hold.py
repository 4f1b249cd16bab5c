"""On hold (a queue, a conference, a bridge, an agent dialling a queue): the loop that plays
the hold until the caller's deadline, other calls' events, leaving hold, hanging up on hold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from simulator import transcript as kind
from simulator.call.conference import Conferencing
from simulator.call.gather import Gathering
from simulator.call.queue import Queueing
from simulator.call.state import DEQUEUE_URL_VERBS, Cut, Hold, Sound
from simulator.errors import ApplicationError, CallEnded, NotWaiting, Stalled
from simulator.gather import Collected, PendingGather

DEFAULT_HOLD_MUSIC = "[hold music: Twilio's default classical playlist]"
#: steps of a hold in a row with the clock standing still, after which the call is stalled (a
#: loop that lets no time pass): the caller's action raises Stalled instead of never returning
MAX_HOLD_STEPS_WITHOUT_TIME = 1000


class Holding(Queueing, Conferencing, Gathering):
    """The call waits on others; other calls' actions reach it as events."""

    @property
    def bridged(self) -> bool:
        """True while the call talks to another: bridged by a <Dial> (a <Queue> dequeued), or
        in a conference room that has started (two participants, one that starts it)."""
        hold = self._hold
        return hold is not None and not self.ended and (
            hold.kind == "bridge"
            or (hold.kind == "conference" and hold.room is not None and hold.room.started
                and not hold.room.ended))

    def wait(self, seconds: float, until: str | None = None) -> None:
        """Let `seconds` pass while on hold (in a queue, a conference, a bridge): the hold plays
        and others act. Ends early when the call leaves hold and comes to wait for the caller
        (a Gather, a Record) or ends; with `until="bridged"`, also the moment the call is
        bridged to another (`bridged`): a caller's patience in a queue, counted from now."""
        if until not in (None, "bridged"):
            raise ValueError(f"wait until {until!r}: only 'bridged' is known")
        self._remote_first()
        if self.ended:
            raise CallEnded(f"cannot wait: the call has ended ({self.outcome})")
        if self._hold is None:
            raise NotWaiting(f"cannot wait: the call is not on hold ({self.state}); "
                             "at a <Gather> use silence")
        if seconds <= 0:
            raise ValueError("wait() needs a positive number of seconds")
        self._begin_action()
        self._event(kind.WAIT, f"the caller waits up to {seconds:g} s"
                    + (" or until bridged" if until else ""))
        self._deadline = self.clock.after(seconds)
        self._until_bridged = until == "bridged"
        try:
            self._run()
        finally:
            self._until_bridged = False

    def _hold_loop(self) -> None:
        """Play the hold until the caller's deadline, handling what other calls do; returns
        when the call is parked (deadline), leaves hold, or ends."""
        if self._holding:
            return
        self._holding = True
        still, at = 0, self.clock.now
        try:
            while not self.ended and self._hold is not None:
                if self._until_bridged and self.bridged:
                    self._deadline = self.clock.now  # parked: the caller acts next
                    return
                if self.clock.now != at:
                    still, at = 0, self.clock.now
                still += 1
                if still > MAX_HOLD_STEPS_WITHOUT_TIME:
                    self._stalled(still)
                if self._events:
                    self._on_event(self._events.pop(0))
                    continue
                try:
                    if not self._hold_step(self._hold):
                        return
                except Cut as cut:
                    if not cut.interrupted:
                        return  # parked at the caller's deadline, mid-sound
                except ApplicationError as exc:
                    self._fail(str(exc))
        finally:
            self._holding = False

    def _stalled(self, steps: int) -> None:
        """A hold that lets no time pass step after step is a loop: reported, never spun."""
        message = (f"the call made no progress: {steps} steps on hold ({self.state}) at "
                   f"{self.clock.now:g} s of virtual time")
        self._event(kind.ERROR, message)
        raise Stalled(message)

    def _hold_step(self, hold: Hold) -> bool:
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

    def _listen(self, hold: Hold, gather: PendingGather) -> bool:
        """A wait document's Gather: its prompt, then it listens; the waiting caller is silent."""
        if self._prompt:
            prompt, self._prompt = self._prompt, []

            def keep(rest: list[Sound]) -> None:
                self._prompt = rest

            self._play(prompt, keep)
            return True
        if hold.listen_left is None:
            hold.listen_left = gather.timeout
        try:
            self._pass(hold.listen_left)
        except Cut as cut:
            hold.listen_left = cut.left
            raise
        self._event(kind.SILENCE, f"the waiting caller presses nothing for {gather.timeout:g} s")
        self._finish_gather(gather, Collected("", "", "", timed_out=True))
        return True

    def _load_wait_document(self, hold: Hold) -> None:
        if hold.wait_url is None:
            hold.music = True
            self._play([Sound(kind.PLAY, DEFAULT_HOLD_MUSIC, None, None, 0.0)])
            return
        if self._fetch(hold.wait_url, hold.wait_method, self._hold_params()):
            hold.in_wait_doc = True

    def _on_event(self, event: tuple[Any, ...]) -> None:
        hold = self._hold
        name = event[0]
        if name == "beep":
            self._play([Sound(kind.PLAY, f"[beep: {event[1]}]", None, None, 0.0)])
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

    def _bridge_done(self, hold: Hold) -> None:
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

    def _stop_wait_document(self, hold: Hold) -> None:
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

    def _hang_up_on_hold(self, hold: Hold) -> None:
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
