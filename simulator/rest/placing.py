"""Calls placed over the REST API in a scenario, and the scenario's parties that answer them.

A scenario's call with `answers: "+15550001"` is not placed by the scenario: it is the party
reached by the first call an application places to that number (Calls create, Participants
create). The call is a party of the scenario's scheduler from the moment it is created, on the
same clock; the party's steps run once the call's TwiML waits for it. A number no party answers
rings out (no-answer), said in the call's transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from simulator.call import Call
from simulator.dialer import Simulator
from simulator.script_format import Script
from simulator.world import World

Drive = Callable[[Call, Script], None]


class Placer:
    """`World.outbound` for a scenario: places REST calls, hands each to its answering party."""

    def __init__(self, simulator: Simulator, world: World, parties: Sequence[Script],
                 drive: Drive) -> None:
        self.simulator = simulator
        self.world = world
        self.drive = drive
        self.waiting: dict[str, list[Script]] = {}
        for script in parties:
            assert script.answers is not None
            self.waiting.setdefault(script.answers, []).append(script)
        self.placed: list[tuple[Call, Script | None]] = []

    def __call__(self, *, to: str, from_: str, url: str | None, method: str,
                 twiml: str | None, fallback_url: str | None, fallback_method: str,
                 status_callback: str | None, status_callback_method: str,
                 status_callback_events: tuple[str, ...], timeout: float,
                 machine_detection: str | None, label: str | None = None) -> Any:
        scheduler = self.world.scheduler
        if scheduler is None:  # the resources check world.outbound first; a world without
            raise RuntimeError("REST calls need a scenario's scheduler")  # one has none
        queue = self.waiting.get(to) or []
        script = queue.pop(0) if queue else None
        name = script.name if script is not None else f"{to} (no party answers)"
        call = self.simulator.outbound(
            self.world, to=to, from_=from_, url=url, method=method, fallback_url=fallback_url,
            fallback_method=fallback_method, status_callback=status_callback,
            status_callback_method=status_callback_method,
            status_callback_events=status_callback_events, name=name)
        call.rest_label = label  # type: ignore[attr-defined]
        self.world.calls.append(call)
        self.placed.append((call, script))

        def run() -> None:
            call.party = scheduler.party()
            if script is None:
                call.remote_note(f"no party of the scenario answers {to}: it rings out")
            call.place(script.answer if script is not None else "no-answer", timeout=timeout,
                       twiml=twiml, machine_detection=machine_detection,
                       answered_by=script.answered_by if script is not None else "human",
                       ring=script.ring if script is not None else timeout)
            if script is not None:
                self.drive(call, script)
            else:
                call.close()

        scheduler.spawn(name, self.world.clock.now, run)
        return call

    def unused(self) -> list[Script]:
        """The parties no call reached."""
        return [script for scripts in self.waiting.values() for script in scripts]


def expect_rest(world: World, value: Any) -> str | None:
    """None when an application made the REST request `value` describes (resource, method,
    params among its own, status answered) so far in the run; else what was expected."""
    resource, method = str(value["resource"]), value.get("method")
    wanted = {str(k): _text(v) for k, v in (value.get("params") or {}).items()}
    status = value.get("status")
    for request in world.rest_requests:
        if request.resource != resource or (method and request.method != method):
            continue
        if status is not None and request.status != status:
            continue
        if all(request.params.get(name) == expected for name, expected in wanted.items()):
            return None
    made = "; ".join(f"{r.method} {r.path} -> {r.status}" for r in world.rest_requests) or "none"
    shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
    answer = f" answered {status}" if status is not None else ""
    return (f"a REST request {method or 'GET/POST'} {resource} {shown}{answer} "
            f"(REST requests made: {made})")


def _text(value: object) -> str:
    """A parameter as the twilio library sends it: booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
