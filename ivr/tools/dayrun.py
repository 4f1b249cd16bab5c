"""The third answer of `ivr12333 staffing`: a simulated day of the real hotline.

Callers and agents are programmatic parties (simulator.parties) on the simulator's virtual clock,
calling the real app in-process (a throwaway SQLite copy of the demo line, with as many agents
as the plan needs) and the simulated Twilio REST API (ivr.tools.localrest): callers arrive as a
Poisson process per half hour, go through the welcome and the main menu (1, then 0), wait in the
queue with the announcements, and give up after an exponential patience unless an agent is
bridged first; once bridged they talk for an exponential handle time. Agents log in on /agent
with id and PIN for the half hours the plan gives them, press 1 for caller after caller (again
and again while nobody waits), finish the call in hand and hang up when their time is over. The
service level is then read from the call records with the report's measures
(ivr.domain.measures), half hour by half hour, the queue carried over from one to the next.

`improve` starts from a plan (Erlang A's) and moves it a few passes: +1 agent where a half hour
missed the target, −1 where it met it and had not missed it before with one fewer; the answer
takes per half hour the fewest agents that met it in any plan tried, simulated once more.
Every day is drawn from the seed alone (the same callers for every plan: common random
numbers), so a seed gives one answer.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.settings import Settings

HALF_HOUR = 1800.0
#: a Monday; the simulated line is staffed all day, every day (the plan decides who is there)
DAY = "2026-11-23"
ZONE = ZoneInfo("Asia/Shanghai")  # the demo region's
LEAD = 120.0  # seconds of the run before the first half hour: the first agents log in
LOGIN_AHEAD = 60.0  # an agent calls in this long before their half hour starts
ROOM_HOLD = 4 * 3600.0  # an agent in the room waits at most this long (the caller ends it)
AGENT_PINS_FROM = 200000  # agent n's PIN: AGENT_PINS_FROM + n (a throwaway dataset)

ASSUMPTIONS = (
    "Simulation: the real hotline in-process on a virtual clock (demo line, staffed all day); "
    "Poisson arrivals per half hour; each caller presses 1 (Mandarin), checks their balance "
    "(ID number and password) or not (--verified share), then 0 (agent), waits in "
    "the queue with its announcements and gives up after an exponential patience of the mean "
    "unless bridged first, then talks an exponential handle time of mean AHT; agents log in "
    "with id and PIN for the half hours they are planned, press 1 for the next caller (at "
    "once when the queue holds one, else after each menu), finish the call in hand when their "
    "time is over. Service level as the "
    "report measures it (Genesys: short abandons left out).",
)

DISAGREEMENTS = (
    "Where the three disagree, and why:",
    "- Erlang C has no abandonment: every caller waits for ever, so it needs the most agents; "
    "where callers give up the queue empties itself and fewer agents meet the target.",
    "- Erlang A assumes an exponential patience and a steady state inside each half hour; "
    "the simulation carries the queue over from one half hour to the next, starts each day "
    "with nobody waiting, and draws whole callers (a half hour of 3 calls is far from steady); "
    "one drawn day is one sample, its calls and handle times may run well above the means "
    "(--days N draws more).",
    "- The real line adds what neither model sees: time in the menus before the queue, the "
    "agent hearing the ~8 s summary of the caller before the bridge and the agent menu after "
    "the call (agent time no talk time counts: a higher load than calls × AHT), agents "
    "polling with 1 while nobody waits, the line's maximum queue wait (callers "
    "are told the line is busy at max_queue_wait and counted as timed out), the announcements, "
    "the per-number cap on queue places.",
    "- The report's service level leaves short abandons out (Genesys); Erlang A's counts every "
    "arrival: with many short abandons the simulation's level reads higher.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    at: float  # seconds after the first half hour starts
    patience: float
    talk: float
    verified: bool = False  # checks their balance (ID number and password) before 0


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a simulated day is drawn from."""

    arrivals: dict[str, float]  # "HH:MM" -> mean calls for an agent in that half hour
    aht: float
    patience: float
    target_seconds: float
    target: float  # 0..1
    seed: int = 12333
    days: int = 1
    verified: float = 0.0  # the share of callers who verify (the balance) before asking

    @property
    def slots(self) -> list[str]:
        """Every half hour from the first to the last with calls (gaps staffed with 0)."""
        marks = sorted(_minutes(s) for s in self.arrivals)
        if not marks:
            return []
        return [f"{m // 60:02d}:{m % 60:02d}" for m in range(marks[0], marks[-1] + 30, 30)]


@dataclass(slots=True)
class SlotFigures:
    """One half hour over the simulated days, from the call records."""

    offered: int = 0  # calls that entered the queue
    answered: int = 0
    in_target: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    timed_out: int = 0

    @property
    def service_level(self) -> float | None:
        base = self.answered + self.abandoned - self.short_abandons + self.timed_out
        return self.in_target / base if base else None

    @property
    def abandon(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    def add(self, other: SlotFigures) -> None:
        """Another day's (or half hour's) figures added to these."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def of(cls, half: Any) -> SlotFigures:
        """A half hour of the report's measures (`measures.Figures`) as a simulation's."""
        return cls(half.queue_offered, half.answered, half.answered_in_target, half.abandoned,
                   half.short_abandons, half.timed_out)


_COUNTS = ("offered", "answered", "in_target", "abandoned", "short_abandons", "timed_out")


@dataclass(slots=True)
class DayResult:
    plan: dict[str, int]
    slots: dict[str, SlotFigures]
    calls: int  # callers placed (all days)
    drawn: dict[str, int] = field(default_factory=dict)  # callers drawn per half hour

    def meets(self, slot: str, target: float) -> bool:
        level = self.slots[slot].service_level
        return level is None or level >= target


def _minutes(slot: str) -> int:
    return int(slot[:2]) * 60 + int(slot[3:])


def draw(inputs: Inputs, day: int) -> dict[str, list[Caller]]:
    """The callers of simulated day `day`: a Poisson process per half hour (exponential gaps
    at the half hour's rate), each with its patience and handle time."""
    rng = random.Random(f"ivr12333-day-{inputs.seed}-{day}")
    first = _minutes(inputs.slots[0])
    drawn: dict[str, list[Caller]] = {}
    for slot in inputs.slots:
        mean = inputs.arrivals.get(slot, 0.0)
        begin = (_minutes(slot) - first) * 60.0
        callers: list[Caller] = []
        t = 0.0
        while mean > 0:
            t += rng.expovariate(mean / HALF_HOUR)
            if t >= HALF_HOUR:
                break
            callers.append(Caller(round(begin + t, 1), rng.expovariate(1 / inputs.patience),
                                  rng.expovariate(1 / inputs.aht),
                                  rng.random() < inputs.verified))
        drawn[slot] = callers
    return drawn


class Line:
    """The hotline in-process on a throwaway copy of the demo line with `agents` agents, staffed
    all day; `day()` runs one simulated day on a fresh copy."""

    def __init__(self, settings: Settings, agents: int, max_queue_wait: int) -> None:
        from ivr.dataset.importer import import_dataset, load_file
        from ivr.domain.pinkeys import Keyring, new_key
        from ivr.resources import demo_dataset
        from ivr.store.schema import ensure_schema, make_engine

        self.settings = settings
        self.keyring = Keyring.of(new_key(), source="a simulated day")
        self.folder = Path(tempfile.mkdtemp(prefix="ivr12333-day-"))
        self.agents = [(f"{9000 + n}", f"{AGENT_PINS_FROM + n}") for n in range(agents)]
        data = json.loads(demo_dataset().read_text(encoding="utf-8"))
        data["region"]["agent_hours"] = [["daily", "00:00-24:00"]]
        data["region"]["holidays"], data["region"]["workdays"] = [], []
        data["region"]["max_queue_wait"] = max_queue_wait
        data["agents"] = [{"id": a, "name": "座席", "pin": pin} for a, pin in self.agents]
        #: the demo people a verifying caller is (ID number, password), in turn
        self.people = [(p["id_number"], p["password"]) for p in data["people"]
                       if p.get("password") and p.get("status", "active") == "active"]
        source = self.folder / "day.json"
        source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        self.template = self.folder / "template.sqlite3"
        engine = make_engine(f"sqlite:///{self.template}")
        try:
            ensure_schema(engine)
            import_dataset(engine, load_file(source), keyring=self.keyring)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        self.runs = 0
        self.keep: Path | None = None  # set: each day's database is copied there
        self.token = secrets.token_urlsafe(24)  # every request signed, as Twilio's

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextmanager
    def _app(self, clock: Any) -> Iterator[tuple[Any, str]]:
        from ivr.tools.localrest import local_rest
        from ivr.web import create_app

        self.runs += 1
        db = self.folder / f"day-{self.runs}.sqlite3"
        shutil.copyfile(self.template, db)
        url = f"sqlite:///{db}"
        app = create_app(self.settings.model_copy(update={
            "database_url": url, "auth_token": self.token, "public_url": None,
            **local_rest().settings()}), now=clock, keyring=self.keyring)
        try:
            yield app, url
        finally:
            app.extensions["ivr12333"].db.dispose()
            if self.keep is not None:  # the day's database, records and all (tests, study)
                shutil.copyfile(db, self.keep)
            for leftover in self.folder.glob(f"day-{self.runs}.sqlite3*"):
                leftover.unlink()

    def day(self, inputs: Inputs, plan: dict[str, int], callers: dict[str, list[Caller]],
            on_call: Callable[[], None] | None = None) -> tuple[dict[str, SlotFigures], int]:
        """Play one day; the queue's figures per half hour from the records, and the number
        of callers placed."""
        from sqlalchemy import create_engine

        from ivr.domain.measures import Definitions, build
        from ivr.tools.localrest import local_rest
        from simulator import Clock, DirectTransport, Simulator
        from simulator.parties import Party, run_parties

        slots = inputs.slots
        first = datetime.fromisoformat(f"{DAY}T{slots[0]}:00").replace(tzinfo=ZONE)
        clock = Clock(first - timedelta(seconds=LEAD))
        parties = [Party(f"caller {slot} {i}", LEAD + c.at,
                         _caller(c, self.people[n % len(self.people)]), f"+86139{n:08d}")
                   for n, (slot, i, c) in enumerate(
                       (slot, i, c) for slot in slots for i, c in enumerate(callers[slot]))]
        for n, (shifts) in enumerate(_shifts(plan, slots)):
            agent_id, pin = self.agents[n]
            for begin, end in shifts:
                parties.append(Party(f"agent {agent_id} {slots[begin]}",
                                     LEAD + begin * HALF_HOUR - LOGIN_AHEAD,
                                     _agent(agent_id, pin, clock.now + LEAD + end * HALF_HOUR),
                                     f"+86771{n:08d}", url="/agent"))
        placed = sum(1 for p in parties if p.url is None)

        def done(party: Party, call: Any) -> None:
            if party.url is None and on_call is not None:
                on_call()

        with self._app(clock) as (app, url):
            simulator = Simulator(DirectTransport(app), "http://localhost/voice", clock=clock,
                                  status_callback="http://localhost/status",
                                  rest=local_rest().api, auth_token=self.token)
            run = run_parties(simulator, parties, done=done)
            if run.errors:
                name, exc = next(iter(run.errors.items()))
                raise RuntimeError(f"the simulated day failed: {name}: {exc}")
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    start = datetime.fromisoformat(DAY).replace(tzinfo=ZONE)
                    report = build(conn, start, start + timedelta(days=1), ZONE,
                                   Definitions(service_seconds=inputs.target_seconds,
                                               service_target=inputs.target))
            finally:
                engine.dispose()
        figures = {slot: SlotFigures() for slot in slots}
        for half in report.half_hours:
            key = f"{half.start:%H:%M}"
            if key in figures:
                figures[key].add(SlotFigures.of(half))
        return figures, placed


def _shifts(plan: dict[str, int], slots: list[str]) -> list[list[tuple[int, int]]]:
    """Agent n works the half hours where n < plan: runs of consecutive half hours (index of
    the first, index after the last), one login each."""
    most = max((plan.get(s, 0) for s in slots), default=0)
    shifts: list[list[tuple[int, int]]] = []
    for n in range(most):
        runs: list[tuple[int, int]] = []
        for i, slot in enumerate(slots):
            if plan.get(slot, 0) > n:
                if runs and runs[-1][1] == i:
                    runs[-1] = (runs[-1][0], i + 1)
                else:
                    runs.append((i, i + 1))
        shifts.append(runs)
    return shifts


def _caller(caller: Caller, person: tuple[str, str]) -> Callable[[Any], None]:
    def act(call: Any) -> None:
        call.press("1")  # Mandarin
        if caller.verified:  # the balance: by ID number, confirmed, the password; then 0
            for keys in ("1", "1", f"{person[0].replace('X', '*')}#", "1", f"{person[1]}#"):
                call.press(keys)
        call.press("0")  # an agent
        if call.on_hold is None or call.ended:
            return  # not queued (the queue full, a cap): hangs up
        call.wait(caller.patience, until="bridged")
        if call.bridged:
            call.wait(caller.talk)
    return act


def _agent(agent_id: str, pin: str, leave_at: float) -> Callable[[Any], None]:
    """Logs in; caller after caller until `leave_at`, pressing 1 at every agent menu. A diligent
    agent: when the queue holds a caller (as the wallboard shows it) they press 1 at once,
    without hearing the menu out (once per moment: never a loop that lets no time pass)."""
    def act(call: Any) -> None:
        call.press(f"{agent_id}#")
        call.press(f"{pin}#")
        last = -1.0
        while not call.ended:
            if call.on_hold is not None:
                call.wait(ROOM_HOLD)  # with a caller until the room ends, then the menu
            elif call.clock.now >= leave_at or call.waiting is None:
                return  # the half hours are over: hangs up at the menu
            else:
                hurry = call.clock.now > last and any(q.members
                                                      for q in call.world.queues.values())
                last = call.clock.now
                call.press("1", barge_in=hurry)  # the next caller (nobody: the menu again)
    return act


def simulate(line: Line, inputs: Inputs, plan: dict[str, int],
             on_call: Callable[[], None] | None = None) -> DayResult:
    """`inputs.days` simulated days under `plan`, their figures summed per half hour."""
    total = {slot: SlotFigures() for slot in inputs.slots}
    placed = 0
    drawn: dict[str, int] = {slot: 0 for slot in inputs.slots}
    for day in range(inputs.days):
        callers = draw(inputs, day)
        for slot, some in callers.items():
            drawn[slot] += len(some)
        figures, calls = line.day(inputs, plan, callers, on_call)
        placed += calls
        for slot, f in figures.items():
            total[slot].add(f)
    return DayResult(dict(plan), total, placed, drawn)


def expected_calls(inputs: Inputs, passes: int) -> int:
    """Callers the search places at most (for a progress bar): drawn days × simulations."""
    per_pass = sum(len(c) for day in range(inputs.days) for c in draw(inputs, day).values())
    return per_pass * (passes + 2)


def improve(line: Line, inputs: Inputs, start: dict[str, int], passes: int,
            on_call: Callable[[], None] | None = None) -> tuple[DayResult, list[DayResult]]:
    """Simulate `start`, then `passes` times move each half hour by one agent (+1 where it
    missed the target, −1 where it met it and one fewer has not missed); the answer (see the
    module's docstring), and every plan simulated."""
    plan = {slot: start.get(slot, 0) for slot in inputs.slots}
    floor = {slot: 0 for slot in inputs.slots}  # fewer than this has missed
    tried = [simulate(line, inputs, plan, on_call)]
    for _ in range(passes):
        last = tried[-1]
        moved = dict(plan)
        for slot in inputs.slots:
            if not last.meets(slot, inputs.target):
                floor[slot] = max(floor[slot], plan[slot] + 1)
                moved[slot] = plan[slot] + 1
            elif plan[slot] - 1 >= floor[slot] and plan[slot] > 0:
                moved[slot] = plan[slot] - 1
        if moved == plan:
            break
        plan = moved
        tried.append(simulate(line, inputs, plan, on_call))
    # per half hour the fewest agents that met it in any plan tried (one more than the most
    # tried where none did), simulated once more: the answer
    final = {}
    for slot in inputs.slots:
        met = [r.plan[slot] for r in tried if r.meets(slot, inputs.target)]
        final[slot] = min(met) if met else max(r.plan[slot] for r in tried) + 1
    best = next((r for r in tried if r.plan == final), None)
    if best is None:
        best = simulate(line, inputs, final, on_call)
        tried.append(best)
    return best, tried
