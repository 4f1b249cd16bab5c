"""Several calls on one virtual clock: a cooperative scheduler, queues and conference rooms.

A lone call needs none of this: its clock just advances. A scenario (several callers, an
agent) runs each call's script on a thread of its own, but only one thread runs at a time:
whenever a call lets virtual time pass (`Clock.advance`), the scheduler hands the turn to the
call whose next moment comes first, and moves the shared clock to it. So the run is
deterministic, and queue positions, dequeues, bridges and conferences happen at the virtual
moments they would happen on Twilio.

A call that waits on hold (in a queue, a conference, a bridge) sleeps interruptibly: another
call's action (an agent dequeues it, the other side hangs up) wakes it at that moment.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.clock import Clock
from simulator.errors import Stalled

DEFAULT_MAX_QUEUE_SIZE = 1000  # Twilio's default maximum length of a queue
#: turns taken in a row with the clock standing still, after which a scenario is stalled (a
#: loop that lets no virtual time pass): the party asking for one more is told (Stalled)
MAX_TURNS_WITHOUT_TIME = 10_000
MAX_CONFERENCE_PARTICIPANTS = 250


def sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a call on hold when another call's action concerns it (see `World`)."""


class _Party:
    """One thread of a scenario: its turn, its wake-up time, whether it may be woken early."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self.target = target
        self.token = 0  # bumped at every sleep: older heap entries are stale
        self.interruptible = False
        self.interrupted = False
        self.done = False
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class Scheduler:
    """Runs parties (threads) one at a time in virtual-time order on one clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, int, _Party]] = []
        self._order = itertools.count()
        self._current: _Party | None = None
        self._parties: list[_Party] = []
        self._local = threading.local()
        self._running = False
        self._still = 0  # turns taken in a row at the same moment
        self._still_at = -1.0

    def spawn(self, name: str, at: float, target: Callable[[], None]) -> None:
        """Add a party that starts at clock second `at`: before `run`, or while the run goes on
        (a call placed over the REST API), from any thread; it takes its turn in time order."""
        party = _Party(name, target)
        with self._cv:
            self._parties.append(party)
            heapq.heappush(self._heap, (max(at, self.clock.now), next(self._order), party.token,
                                        party))
            if self._running:
                self._start(party)

    def _start(self, party: _Party) -> None:
        party.thread = threading.Thread(target=self._main, args=(party,), daemon=True,
                                        name=f"sim-{party.name}")
        party.thread.start()

    def party(self) -> _Party | None:
        """The party the calling thread runs, or None outside a scenario's threads."""
        party: _Party | None = getattr(self._local, "party", None)
        return party

    def run(self) -> None:
        """Run every party to its end; re-raise the first exception one of them raised."""
        with self._cv:
            self._running = True
            for party in self._parties:
                self._start(party)
            self._switch()
            while not all(party.done for party in self._parties):
                self._cv.wait()
            self._running = False
        for party in list(self._parties):
            assert party.thread is not None
            party.thread.join()
        for party in self._parties:
            if party.error is not None:
                raise party.error

    def _main(self, party: _Party) -> None:
        self._local.party = party
        with self._cv:
            while self._current is not party:
                self._cv.wait()
        try:
            party.target()
        except BaseException as exc:  # reported by run()
            party.error = exc
        finally:
            with self._cv:
                party.done = True
                self._current = None
                self._switch()
                self._cv.notify_all()

    def _switch(self) -> None:
        """Give the turn to the party whose moment comes first (the lock is held)."""
        while self._heap:
            at, _, token, party = heapq.heappop(self._heap)
            if token != party.token or party.done:
                continue  # stale: the party was woken early or slept again since
            if at > self.clock.now:
                self.clock.advance(at - self.clock.now, scheduled=True)
            self._current = party
            self._cv.notify_all()
            return
        self._current = None
        self._cv.notify_all()

    def sleep(self, seconds: float, interruptible: bool = False) -> bool:
        """Let `seconds` of virtual time pass for the calling party; True when woken early."""
        party = self.party()
        assert party is not None and self._current is party, "sleep outside the party's turn"
        with self._cv:
            self._count_turn(party)
            if interruptible and party.interrupted:
                party.interrupted = False
                return True
            party.token += 1
            party.interruptible = interruptible
            heapq.heappush(self._heap, (self.clock.after(seconds), next(self._order),
                                        party.token, party))
            self._switch()
            while self._current is not party:
                self._cv.wait()
            party.interruptible = False
            if interruptible and party.interrupted:
                party.interrupted = False
                return True
            return False

    def _count_turn(self, party: _Party) -> None:
        """A scenario whose clock stands still turn after turn is stalled: fail, never spin."""
        if self.clock.now != self._still_at:
            self._still_at, self._still = self.clock.now, 0
            return
        self._still += 1
        if self._still > MAX_TURNS_WITHOUT_TIME:
            raise Stalled(f"the scenario made no progress: {self._still} turns in a row at "
                          f"{self.clock.now:g} s of virtual time ({party.name} asked for one "
                          "more)")

    def interrupt(self, party: _Party) -> None:
        """Wake `party` now if it sleeps interruptibly; else at its next interruptible sleep."""
        with self._cv:
            party.interrupted = True
            if party.interruptible and not party.done:
                party.token += 1
                heapq.heappush(self._heap, (self.clock.now, next(self._order), party.token, party))


# --- what calls share: queues and conference rooms ----------------------------------------------


@dataclass
class Member:
    """A call waiting in a queue."""

    call: Any  # simulator.call.Call
    since: float  # clock seconds when it was enqueued


@dataclass
class Queue:
    """A named call queue, created on demand like Twilio's."""

    name: str
    sid: str
    max_size: int = DEFAULT_MAX_QUEUE_SIZE
    members: list[Member] = field(default_factory=list)
    agents: list[Any] = field(default_factory=list)  # calls dialling the queue while it is empty
    waited: list[float] = field(default_factory=list)  # seconds each dequeued caller waited
    created: float = 0.0  # clock seconds when it was first used or created over REST

    def position(self, call: Any) -> int:
        """1 for the head of the queue; 0 when `call` is not in it."""
        for index, member in enumerate(self.members, start=1):
            if member.call is call:
                return index
        return 0

    def average_wait(self) -> int:
        """AvgQueueTime: whole seconds, over the callers dequeued so far (0 before any)."""
        return round(sum(self.waited) / len(self.waited)) if self.waited else 0


@dataclass
class Participant:
    """A call in a conference room, with its <Conference> attributes."""

    call: Any
    start_on_enter: bool
    end_on_exit: bool
    beep_enter: bool
    beep_exit: bool
    muted: bool
    since: float
    hold: bool = False  # put on hold over the REST API (Participant update Hold=true)
    label: str | None = None  # the Label given when it was dialled in over the REST API


@dataclass
class Conference:
    """A named conference room: started once two participants are in it, one of them with
    startConferenceOnEnter; its status callback is the first participant's that gives one."""

    name: str
    sid: str
    participants: list[Participant] = field(default_factory=list)
    started: bool = False
    ended: bool = False
    created: float = 0.0
    ended_at: float | None = None
    callback: tuple[str, str, frozenset[str]] | None = None  # URL, method, events
    sequence: int = 0  # the status callback's SequenceNumber


class World:
    """What the calls of one run share: the clock, the scheduler (in a scenario), the queues and
    the conference rooms. A lone call gets a world of its own."""

    def __init__(self, clock: Clock, scheduler: Scheduler | None = None,
                 max_queue_sizes: dict[str, int] | None = None) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.queues: dict[str, Queue] = {}
        self.conferences: dict[str, Conference] = {}
        self.max_queue_sizes = dict(max_queue_sizes or {})
        self.calls: list[Any] = []  # every call placed in this world, in order
        self.rooms: list[Conference] = []  # every conference room, ended ones included
        #: the REST requests applications made during the run (simulator.rest), in order
        self.rest_requests: list[Any] = []
        #: places a call over the REST API (set by the scenario runner; None: not possible)
        self.outbound: Callable[..., Any] | None = None

    def queue(self, name: str) -> Queue:
        if name not in self.queues:
            size = self.max_queue_sizes.get(name, DEFAULT_MAX_QUEUE_SIZE)
            self.queues[name] = Queue(name, sid("QU"), size, created=self.clock.now)
        return self.queues[name]

    def conference(self, name: str) -> Conference:
        room = self.conferences.get(name)
        if room is None or room.ended:
            room = Conference(name, sid("CF"), created=self.clock.now)
            self.conferences[name] = room
            self.rooms.append(room)
        return room

    def sleep(self, seconds: float, interruptible: bool = False) -> bool:
        """Let time pass for the calling call; True when another call woke it (see Interrupted)."""
        if seconds <= 0:
            return False
        if self.scheduler is not None and self.scheduler.party() is not None:
            return self.scheduler.sleep(seconds, interruptible)
        self.clock.advance(seconds)
        return False

    def wake(self, call: Any) -> None:
        """Tell `call` that something concerns it (it has a new event waiting)."""
        party = getattr(call, "party", None)
        if self.scheduler is not None and party is not None:
            self.scheduler.interrupt(party)
