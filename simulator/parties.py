"""Programmatic parties: calls whose every next action is decided by Python code reacting to
what happened (bridged, on hold, a prompt heard), on one virtual clock with the scheduler of a
scenario (simulator.world). What a scripted scenario cannot say, a party can: a caller who gives
up after an exponential patience in a queue but, once an agent answers, talks for a drawn handle
time; an agent who takes caller after caller until the end of a shift.

A party's `act(call)` gets the placed call (simulator.Call) and drives it with the caller's
actions (`press`, `silence`, `wait(seconds, until="bridged")`, `hangup`), reading `on_hold`,
`bridged`, `waiting`, `said`. A call it leaves up is hung up when `act` returns.

Parties are started when their moment comes (a thread each while its call lasts, one running at
a time), so a day of thousands of calls holds only the calls in progress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulator.call import Call
from simulator.clock import Clock
from simulator.dialer import Simulator
from simulator.world import Scheduler, World


@dataclass(frozen=True)
class Party:
    """One call of a run: placed `start` seconds after the run begins, from `from_` to the
    simulator's number (or `to`), at its voice URL (or `url`, relative to it)."""

    name: str
    start: float
    act: Callable[[Call], None]
    from_: str
    to: str | None = None
    url: str | None = None


@dataclass
class Run:
    """What a run of parties gave: every call placed (by a party, or by an application over
    the REST API), and what a party's `act` raised, by party name."""

    calls: list[Call] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)


def run_parties(simulator: Simulator, parties: Sequence[Party], *,
                clock: Clock | None = None, queues: dict[str, int] | None = None,
                done: Callable[[Party, Call | None], None] | None = None) -> Run:
    """Play `parties` on one virtual clock (the simulator's, else `clock`, else a new one):
    each is placed at its moment and acted by its `act`; `done(party, call)` is told as each
    ends (call None when it could not be placed). `queues`: maximum sizes by queue name."""
    clock = simulator.clock or clock or Clock()
    scheduler = Scheduler(clock)
    world = World(clock, scheduler, queues)
    begin = clock.now
    run = Run()
    pending = sorted(parties, key=lambda party: party.start)

    def play(party: Party) -> Callable[[], None]:
        def go() -> None:
            call: Call | None = None
            try:
                call = simulator.dial(from_=party.from_, to=party.to, url=party.url,
                                      world=world, name=party.name)
                party.act(call)
            except Exception as exc:  # noqa: BLE001 - reported in the run, the others go on
                run.errors[party.name] = exc
            finally:
                if call is not None:
                    call.close()
                if done is not None:
                    done(party, call)
        return go

    def launcher() -> None:
        """Spawns each party at its moment: only the calls in progress hold a thread."""
        for party in pending:
            wait = begin + party.start - clock.now
            if wait > 0:
                world.sleep(wait)
            scheduler.spawn(party.name, clock.now, play(party))

    if pending:
        scheduler.spawn("launcher", begin, launcher)
    clock.scheduler = scheduler
    rest = simulator.rest
    try:
        if rest is not None:
            with rest.attach(world):
                scheduler.run()
        else:
            scheduler.run()
    finally:
        clock.scheduler = None
    run.calls = list(world.calls)
    return run
