"""Load a flow (state_machines/*.yaml), validate it, build its Machine once, step calls through it.

Everything that decides how a call moves lives here: the flow's own transitions, the
conventions the engine adds to every gathering state (`*` repeat, `9` main menu, `0` agent,
silence and invalid handling), the verification gate in front of states that `require:
verified`, the per-call counters and their limits. The YAML is `transitions.Machine` keyword
arguments plus the engine's fields (docs/schemas/flow.schema.json). For one trigger in one
state the first transition whose conditions hold wins; conventions come after a state's own.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from transitions import Machine, Transition

from ivr.engine.calldata import CallData
from ivr.engine.instructions import (
    Conference,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Instruction,
    Say,
)
from ivr.engine.prompts import Catalogue, SafeLoader
from ivr.engine.session import CallSession
from ivr.errors import FlowError
from schemacheck import Place, formats_of

# transitions logs every callback and state change at INFO: four or five lines a webhook once
# the server logs at INFO, each formatted and written. The engine logs one line a webhook;
# transitions stays at WARNING unless an operator set its level themselves.
if logging.getLogger("transitions").level == logging.NOTSET:
    logging.getLogger("transitions").setLevel(logging.WARNING)

ENGINE_FIELDS = ("prompt", "gather", "hangup", "dial", "enqueue", "conference", "invalid_prompt",
                 "conventions", "requires")
FLOW_KEYS = ("limits", "conventions", "verification", "entries")
CALLBACK_KEYS = ("on_enter", "on_exit", "before", "after", "prepare", "conditions", "unless")
MACHINE_CALLBACK_KEYS = (
    "prepare_event", "before_state_change", "after_state_change", "finalize_event", "on_exception",
)
KEY_TRIGGERS = {"*": "press_star", "#": "press_hash", **{d: f"press_{d}" for d in "0123456789"}}
# the engine fires these itself; a flow may use them without a key behind them
ENGINE_TRIGGERS = ("silence", "invalid", "entered", "next", "dialed", "left_queue")
#: the transition fields only the engine reads (the verification gate)
GATE_FIELDS = ("remember", "when_target")

EventKind = Literal["start", "digits", "silence", "dialed", "left_queue"]


@dataclass(frozen=True, slots=True)
class CallEvent:
    """What happened on the line since the last answer: the call started (`value`: the entry,
    "" for the flow's initial state), keys were entered (`value`), the caller was silent, a
    transfer ended (`value`: its status), or the caller is out of the queue (`value`: how)."""

    kind: EventKind
    value: str = ""


@dataclass(frozen=True)
class Limits:
    """Per call: silences and invalid entries in a row (in one state), wrong passwords; in the
    agent queue, seconds between announcements and the wait per caller ahead before any wait
    was measured."""

    silences: int = 3
    invalids: int = 3
    password_failures: int = 3
    queue_announce_every: int = 45
    queue_wait_per_caller: int = 120


@dataclass(frozen=True)
class StateSpec:
    name: str
    prompts: tuple[str, ...]
    gather: Literal["menu", "number"] | None
    hangup: bool
    dial: bool
    invalid_prompt: str | None
    conventions: bool = True
    requires_verified: bool = False
    enqueue: bool = False
    conference: bool = False

    @property
    def passes_through(self) -> bool:
        return (self.gather is None and not self.hangup and not self.dial and not self.enqueue
                and not self.conference)


class GateTransition(Transition):
    """A transition of the verification gate: into verification it remembers where the caller
    was going (`remember`); out of it, it goes only where the caller was going (`when_target`)."""

    def __init__(self, *args: Any, remember: str | None = None,
                 when_target: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remember, self.when_target = remember, when_target

    def _eval_conditions(self, event_data: Any) -> bool:
        if self.when_target is not None and event_data.model.data.target != self.when_target:
            return False
        return bool(super()._eval_conditions(event_data))

    def _change_state(self, event_data: Any) -> None:
        if self.remember is not None:
            event_data.model.data.target = self.remember
        super()._change_state(event_data)


class FlowMachine(Machine):
    """transitions' Machine with the verification gate's transitions."""

    transition_cls = GateTransition


class FlowModel:
    """What every call model gets from the engine: the call data, what is said, the counters'
    conditions and what is said at them. The flow's own callbacks are a subclass's methods."""

    state: str
    trigger: Callable[..., bool]

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.data = CallData()
        self.out: list[Instruction] = []
        #: this turn's transitions taken, (trigger, destination), for the call records
        self.path: list[tuple[str, str]] = []

    def begin(self, session: CallSession, event: CallEvent) -> None:
        """Take `session` for one turn (the model is long-lived; the call is not)."""
        self.data = session.data
        self.out = []
        self.path = []

    @property
    def dial_number(self) -> str:
        """Where a `dial: true` state transfers the call."""
        return ""

    @property
    def queue_name(self) -> str:
        """The queue an `enqueue: true` state puts the caller in."""
        return "hotline"

    @property
    def room_name(self) -> str:
        """The conference room a `conference: true` state joins."""
        return ""

    def say(self, prompt_id: str, **values: Any) -> None:
        merged = {**self.data.values, **values}
        text, locale = self.flow.catalogue.render(prompt_id, self.data.lang, merged)
        self.out.append(Say(text, locale))

    # conventions: silence and invalid entries
    def silence_under_limit(self) -> bool:
        return self.data.silences < self.flow.limits.silences

    def invalid_under_limit(self) -> bool:
        return self.data.invalids < self.flow.limits.invalids

    def say_no_input(self) -> None:
        self.say("no_input")

    def say_invalid(self) -> None:
        self.say(self.flow.states[self.state].invalid_prompt or "invalid_input")

    def say_too_many_invalid(self) -> None:
        self.say("too_many_invalid")


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _gather(value: Any) -> Literal["menu", "number"] | None:
    return "menu" if value == "menu" else "number" if value == "number" else None


def _read(path: Path) -> dict[str, Any]:
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"{path}: {exc}") from None
    found = formats_of("ivr.engine").problems("flow", spec)
    if found:
        raise FlowError("\n".join(f"{path}{_place(spec, p.place)}: {p.rule}" for p in found))
    assert isinstance(spec, dict)
    return spec


def _place(spec: Any, place: Place) -> str:
    """`, state welcome`, `, transitions[3] (press_1 from main)`, `, limits silences` …"""
    if len(place) >= 2 and place[0] == "states":
        raw = spec["states"][place[1]]
        name = raw.get("name") if isinstance(raw, dict) else raw
        rest = " ".join(str(p) for p in place[2:])
        return f", state {name}" + (f" {rest}" if rest else "")
    if len(place) >= 2 and place[0] == "transitions":
        t = spec["transitions"][place[1]]
        what = f" ({t.get('trigger')} from {t.get('source')})" if isinstance(t, dict) else ""
        rest = " ".join(str(p) for p in place[2:])
        return f", transitions[{place[1]}]{what}" + (f" {rest}" if rest else "")
    return ", " + " ".join(str(p) for p in place) if place else ""


class Flow:
    """A validated flow: its Machine (built once) and one long-lived model per thread."""

    def __init__(self, path: Path, model_class: type[FlowModel], catalogue: Catalogue,
                 *, model_factory: Callable[[Flow], FlowModel] | None = None) -> None:
        self.path, self.catalogue = path, catalogue
        spec = _read(path)
        self.name = str(spec.get("name", path.stem))
        try:
            self.limits = Limits(**(spec.get("limits") or {}))
        except TypeError as exc:
            raise FlowError(f"{path}: limits: {exc}") from None
        kwargs = {k: v for k, v in spec.items()
                  if not str(k).startswith("x-") and k != "name" and k not in FLOW_KEYS}
        kwargs["auto_transitions"] = False
        self.states: dict[str, StateSpec] = {}
        machine_states = []
        for raw in kwargs.get("states") or []:
            entry = {"name": raw} if isinstance(raw, str) else dict(raw)
            st = StateSpec(
                name=str(entry["name"]), prompts=tuple(_names(entry.get("prompt"))),
                gather=_gather(entry.get("gather")), hangup=bool(entry.get("hangup")),
                dial=bool(entry.get("dial")), invalid_prompt=entry.get("invalid_prompt"),
                conventions=entry.get("conventions", True) is not False,
                requires_verified=entry.get("requires") == "verified",
                enqueue=bool(entry.get("enqueue")), conference=bool(entry.get("conference")),
            )
            if st.name in self.states:
                raise FlowError(f"{path}: state {st.name!r} declared twice")
            self.states[st.name] = st
            machine_states.append({k: v for k, v in entry.items() if k not in ENGINE_FIELDS})
        kwargs["states"] = machine_states
        self.initial = str(kwargs.get("initial", ""))
        #: other ways into the flow than `initial` (a call to another URL: the agents' line)
        self.entries: dict[str, str] = {str(k): str(v)
                                        for k, v in (spec.get("entries") or {}).items()}
        for entry_name, entry_state in self.entries.items():
            if entry_state not in self.states:
                raise FlowError(f"{path}: entries.{entry_name}: unknown state {entry_state!r}")
        own = [dict(t) for t in kwargs.get("transitions") or []]
        self._check_names(own)
        #: every transition the Machine has, in the order tried: the flow's own, the
        #: verification gate expanded, then the conventions of each gathering state
        self.transitions = self._with_conventions(
            self._with_gate(own, spec.get("verification")), spec.get("conventions") or {})
        kwargs["transitions"] = self.transitions
        self.machine_kwargs = kwargs
        self.model_class = model_class
        self._validate(kwargs)
        try:
            self.machine = FlowMachine(model=None, **{**kwargs, "transitions": copy.deepcopy(
                self.transitions)})
        except Exception as exc:
            raise FlowError(f"{path}: transitions refused the flow: {exc}") from None
        self.triggers = {s: frozenset(self.machine.get_triggers(s)) for s in self.states}
        self._factory: Callable[[Flow], FlowModel] = model_factory or model_class
        self._local = threading.local()
        #: called with (source, trigger, destination) for every transition taken (coverage)
        self.observer: Callable[[str, str, str], None] | None = None

    # ---- expansion ----------------------------------------------------------------------------
    def _sources(self, t: dict[str, Any]) -> list[str]:
        src = t.get("source")
        return list(self.states) if src == "*" else _names(src)

    def _check_names(self, transitions: list[dict[str, Any]]) -> None:
        for i, t in enumerate(transitions):
            label = f"transitions[{i}] ({t.get('trigger')} from {t.get('source')})"
            dest = t.get("dest")
            if dest not in (None, "=") and dest not in self.states:
                raise FlowError(f"{self.path}: {label}: unknown destination state {dest!r}")
            for s in self._sources(t):
                if s not in self.states:
                    raise FlowError(f"{self.path}: {label}: unknown source state {s!r}")

    def _with_gate(self, transitions: list[dict[str, Any]],
                   gate: dict[str, str] | None) -> list[dict[str, Any]]:
        """A transition into a state that requires a verified caller becomes three: there when
        verified; to `refused` when no retry is left; else to `start`, remembering the state.
        `done` then leaves for the remembered state."""
        gated = [s for s, st in self.states.items() if st.requires_verified]
        if not gated:
            return transitions
        if not gate:
            raise FlowError(f"{self.path}: states {', '.join(gated)} require a verified caller, "
                            "but the flow has no `verification` section")
        for key in ("refused", "start", "done"):
            if gate[key] not in self.states:
                raise FlowError(f"{self.path}: verification.{key}: unknown state {gate[key]!r}")
        out: list[dict[str, Any]] = []
        for t in transitions:
            dest = t.get("dest")
            if dest not in gated or t.get("source") == gate["done"]:
                out.append(t)
                continue
            cond = _names(t.get("conditions"))
            out.append({**t, "conditions": [gate["verified"], *cond]})
            out.append({**t, "dest": gate["refused"], "unless": [gate["retry"],
                        *_names(t.get("unless"))], "before": None, "after": None})
            out.append({**t, "dest": gate["start"], "remember": dest, "before": None,
                        "after": None})
        out += [{"trigger": "next", "source": gate["done"], "dest": s, "when_target": s}
                for s in gated]
        return [{k: v for k, v in t.items() if v is not None} for t in out]

    def _with_conventions(self, transitions: list[dict[str, Any]],
                          conventions: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Each gathering state's own transitions, then the conventions it doesn't override: a
        menu key it handles itself, or silence/invalid it always handles, is left out."""
        added: list[dict[str, Any]] = []
        for st in self.states.values():
            if not st.gather or not st.conventions:
                continue
            own = [t for t in transitions if st.name in self._sources(t)]
            handled = {t["trigger"] for t in own if t["trigger"].startswith("press_")}
            always = {t["trigger"] for t in own
                      if not t.get("conditions") and not t.get("unless")}
            rules = [*(conventions.get("menu") or [] if st.gather == "menu" else []),
                     *(conventions.get("gathering") or [])]
            for rule in rules:
                trig = rule["trigger"]
                if trig in handled or trig in always:
                    continue
                dest = rule.get("dest")
                if dest == st.name:  # 9 in the main menu: the main menu again
                    dest = "="
                added.append({**rule, "source": st.name, "dest": dest})
        return transitions + added

    # ---- validation -------------------------------------------------------------------------
    def _validate(self, kwargs: dict[str, Any]) -> None:
        where = str(self.path)
        if self.initial not in self.states:
            raise FlowError(f"{where}: initial state {self.initial!r} is not a state")
        methods = {n for n in dir(self.model_class) if callable(getattr(self.model_class, n))}
        used: list[tuple[str, str]] = []
        for key in MACHINE_CALLBACK_KEYS:
            used += [(n, f"machine {key}") for n in _names(kwargs.get(key))]
        for raw in kwargs["states"]:
            for key in ("on_enter", "on_exit"):
                used += [(n, f"state {raw['name']} {key}") for n in _names(raw.get(key))]
        self._check_names(self.transitions)
        for t in self.transitions:
            label = f"transition ({t.get('trigger')} from {t.get('source')})"
            for key in CALLBACK_KEYS:
                used += [(n, f"{label} {key}") for n in _names(t.get(key))]
            trig = t.get("trigger")
            if not isinstance(trig, str) or not (
                trig in ENGINE_TRIGGERS or trig in KEY_TRIGGERS.values()
            ):
                raise FlowError(f"{where}: {label}: trigger must be one of "
                                f"{', '.join(ENGINE_TRIGGERS)} or press_0..press_9/star/hash")
        for name, label in used:
            if name not in methods:
                raise FlowError(f"{where}: {label}: unknown callback {name!r} "
                                f"(not a method of {self.model_class.__name__})")
        for st in self.states.values():
            for pid in (*st.prompts, *([st.invalid_prompt] if st.invalid_prompt else [])):
                if not self.catalogue.has(pid):
                    raise FlowError(f"{where}: state {st.name}: unknown prompt id {pid!r}")
            if st.passes_through and not any(
                t["trigger"] == "next" and st.name in self._sources(t) for t in self.transitions
            ):
                raise FlowError(f"{where}: state {st.name} neither gathers, dials nor hangs up, "
                                "and has no `next` transition")
            for trigger in ("silence", "invalid") if st.gather else ():
                if not self._handles(st.name, trigger):
                    raise FlowError(
                        f"{where}: state {st.name} gathers keys but can't handle {trigger}: "
                        f"give it a `{trigger}` transition without conditions, or keep the "
                        f"`conventions` for it")
        unreachable = set(self.states) - self.reachable()
        if unreachable:
            raise FlowError(f"{where}: unreachable states: {', '.join(sorted(unreachable))}")

    def _handles(self, state: str, trigger: str) -> bool:
        """A transition for `trigger` from `state` that always applies (no conditions)."""
        return any(t["trigger"] == trigger and state in self._sources(t)
                   and not any(t.get(k) for k in ("conditions", "unless", *GATE_FIELDS))
                   for t in self.transitions)

    def edges(self) -> Iterable[tuple[str, str, str]]:
        """(source, trigger, destination) for every transition, wildcards expanded."""
        for t in self.transitions:
            for s in self._sources(t):
                dest = t.get("dest")
                yield s, str(t["trigger"]), s if dest in (None, "=") else str(dest)

    def reachable(self) -> set[str]:
        roots = {self.initial, *self.entries.values()}
        seen, todo = set(roots), deque(roots)
        out: dict[str, set[str]] = {}
        for s, _, d in self.edges():
            out.setdefault(s, set()).add(d)
        while todo:
            for d in out.get(todo.popleft(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    # ---- stepping ---------------------------------------------------------------------------
    def model(self) -> FlowModel:
        """This thread's long-lived model (restoring state on it costs µs, add_model costs ms)."""
        m: FlowModel | None = getattr(self._local, "model", None)
        if m is None:
            m = self._factory(self)
            self.machine.add_model(m, initial=self.initial)
            self._local.model = m
        return m

    def trigger_for(self, state: str, event: CallEvent) -> str | None:
        spec = self.states[state]
        if event.kind == "silence":
            return "silence" if spec.gather else None
        if event.kind == "dialed":
            return "dialed" if spec.dial or spec.conference else None
        if event.kind == "left_queue":
            return "left_queue" if spec.enqueue else None
        if event.kind == "digits":
            if spec.gather == "number":
                return "entered"
            if spec.gather == "menu":
                trig = KEY_TRIGGERS.get(event.value) if len(event.value) == 1 else None
                return trig if trig in self.triggers[state] else "invalid"
        return None

    def run(self, model: FlowModel, event: CallEvent, max_hops: int = 20) -> None:
        """Fire the event's trigger on a model whose state is restored; follow pass-throughs.

        The counters: a silence counts one more silence in a row (anything else ends the row);
        an invalid entry one more invalid entry; any other transition taken clears it; both
        start again in a new state.
        """
        before = model.state
        data = model.data
        if event.kind == "start":
            first = self.entries.get(event.value, self.initial)
            self.machine.set_state(first, model=model)
            self._observe(model, "", "start", first)
            self._speak_state(model)
        else:
            trig = self.trigger_for(before, event)
            if trig is None:
                self._speak_state(model)  # nothing applies: say where the caller is again
            else:
                data.silences = data.silences + 1 if trig == "silence" else 0
                if trig == "invalid":
                    data.invalids += 1
                fired = trig in self.triggers[before] and model.trigger(trig)
                # keys whose every transition's conditions fail are an invalid entry (a menu
                # key offered only sometimes: `8` for another region)
                if not fired and (trig == "entered" or trig in KEY_TRIGGERS.values()):
                    trig = "invalid"
                    data.invalids += 1
                    fired = model.trigger("invalid")
                elif fired and trig not in ("invalid", "silence"):
                    data.invalids = 0
                if not fired:
                    raise FlowError(f"{self.name}: no transition for {trig} in state {before}")
                self._observe(model, before, trig, model.state)
                self._speak_state(model)
        hops = 0
        while self.states[model.state].passes_through:
            hops += 1
            source = model.state
            if hops > max_hops or not model.trigger("next"):
                raise FlowError(f"{self.name}: state {model.state} could not pass through")
            self._observe(model, source, "next", model.state)
            self._speak_state(model)
        if model.state != before:
            data.reset_counters()

    def _observe(self, model: FlowModel, source: str, trigger: str, dest: str) -> None:
        model.path.append((trigger, dest))
        if self.observer is not None:
            self.observer(source, trigger, dest)

    def _speak_state(self, model: FlowModel) -> None:
        for pid in self.states[model.state].prompts:
            model.say(pid)

    def instructions(self, model: FlowModel, timeouts: dict[str, int]) -> list[Instruction]:
        """Wrap what was said with the state's way of waiting: Gather, Dial or Hangup."""
        spec = self.states[model.state]
        said: list[Instruction] = list(model.out)
        prompts = tuple(i for i in said if isinstance(i, Say))
        if spec.gather == "menu":
            return [Gather(prompts, num_digits=1, timeout=timeouts["menu"])]
        if spec.gather == "number":
            return [Gather(prompts, num_digits=None, finish_on_key="#",
                           timeout=timeouts["number"])]
        if spec.dial:
            return [*said, Dial(model.dial_number)]
        if spec.enqueue:
            return [*said, Enqueue(model.queue_name)]
        if spec.conference:
            waiting = "agent" if model.data.line == "agent" else ""
            return [*said, Conference(model.room_name, waiting=waiting)]
        return [*said, Hangup()]
