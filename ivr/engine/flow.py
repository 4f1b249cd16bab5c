"""Load a flow (state_machines/*.yaml), validate it, build its Machine once, step calls through it.

The YAML is `transitions.Machine` keyword arguments plus per-state fields the engine reads:
`prompt` (ids said on entering), `gather` (`menu`: one key; `number`: keys ended by #),
`hangup: true`, `dial: true`, `invalid_prompt` (said for an invalid entry instead of the
default). A state with none of gather/hangup/dial passes through by firing its `next` trigger.
Top-level keys starting with `x-` are YAML anchors for reuse and are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from transitions import Machine

from ivr.engine.instructions import Dial, Gather, Hangup, Instruction, Say
from ivr.engine.prompts import Catalogue, SafeLoader
from ivr.errors import FlowError

# transitions logs every callback and state change at INFO: four or five lines a webhook once
# the server logs at INFO, each formatted and written. The engine logs one line a webhook;
# transitions stays at WARNING unless an operator set its level themselves.
if logging.getLogger("transitions").level == logging.NOTSET:
    logging.getLogger("transitions").setLevel(logging.WARNING)

ENGINE_FIELDS = ("prompt", "gather", "hangup", "dial", "invalid_prompt")
CALLBACK_KEYS = ("on_enter", "on_exit", "before", "after", "prepare", "conditions", "unless")
MACHINE_CALLBACK_KEYS = (
    "prepare_event", "before_state_change", "after_state_change", "finalize_event", "on_exception",
)
KEY_TRIGGERS = {"*": "press_star", "#": "press_hash", **{d: f"press_{d}" for d in "0123456789"}}
# the engine fires these itself; a flow may use them without a key behind them
ENGINE_TRIGGERS = ("silence", "invalid", "entered", "next", "dialed")


@dataclass(frozen=True)
class StateSpec:
    name: str
    prompts: tuple[str, ...]
    gather: Literal["menu", "number"] | None
    hangup: bool
    dial: bool
    invalid_prompt: str | None

    @property
    def passes_through(self) -> bool:
        return self.gather is None and not self.hangup and not self.dial


Event = tuple[Literal["start", "digits", "silence", "dialed"], str]


class FlowModel(Protocol):
    """What the engine needs from a session model; the flow's callbacks are its other methods."""

    state: str
    out: list[Instruction]
    digits: str
    dial_status: str

    def say(self, prompt_id: str, **values: Any) -> None: ...
    def counters(self) -> dict[str, int]: ...


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


class Flow:
    """A validated flow: its Machine (built once) and one long-lived model per thread."""

    def __init__(self, path: Path, model_class: type, catalogue: Catalogue,
                 *, model_factory: Any = None) -> None:
        self.path, self.catalogue = path, catalogue
        try:
            spec = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise FlowError(f"{path}: {exc}") from None
        if not isinstance(spec, dict):
            raise FlowError(f"{path}: must be a mapping of Machine arguments")
        self.name = str(spec.get("name", path.stem))
        kwargs = {k: v for k, v in spec.items() if not str(k).startswith("x-") and k != "name"}
        kwargs["auto_transitions"] = False
        self.states: dict[str, StateSpec] = {}
        machine_states = []
        for raw in kwargs.get("states") or []:
            entry = {"name": raw} if isinstance(raw, str) else dict(raw)
            gather = entry.get("gather")
            if gather not in (None, "menu", "number"):
                raise FlowError(f"{path}: state {entry.get('name')!r}: gather must be menu|number")
            st = StateSpec(
                name=str(entry["name"]), prompts=tuple(_names(entry.get("prompt"))),
                gather="menu" if gather == "menu" else "number" if gather == "number" else None,
                hangup=bool(entry.get("hangup")), dial=bool(entry.get("dial")),
                invalid_prompt=entry.get("invalid_prompt"),
            )
            if st.name in self.states:
                raise FlowError(f"{path}: state {st.name!r} declared twice")
            self.states[st.name] = st
            machine_states.append({k: v for k, v in entry.items() if k not in ENGINE_FIELDS})
        kwargs["states"] = machine_states
        self.machine_kwargs = kwargs
        self.initial = str(kwargs.get("initial", ""))
        self.transitions: list[dict[str, Any]] = [dict(t) for t in kwargs.get("transitions") or []]
        self.model_class = model_class
        self._validate(kwargs)
        try:
            self.machine = Machine(model=None, **kwargs)
        except Exception as exc:
            raise FlowError(f"{path}: transitions refused the flow: {exc}") from None
        self.triggers = {s: frozenset(self.machine.get_triggers(s)) for s in self.states}
        self._factory = model_factory or model_class
        self._local = threading.local()
        #: called with (source, trigger, destination) for every transition taken (coverage)
        self.observer: Callable[[str, str, str], None] | None = None

    # ---- validation -------------------------------------------------------------------------
    def _sources(self, t: dict[str, Any]) -> list[str]:
        src = t.get("source")
        return list(self.states) if src == "*" else _names(src)

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
        for i, t in enumerate(self.transitions):
            label = f"transitions[{i}] ({t.get('trigger')} from {t.get('source')})"
            for key in CALLBACK_KEYS:
                used += [(n, f"{label} {key}") for n in _names(t.get(key))]
            dest = t.get("dest")
            if dest not in (None, "=") and dest not in self.states:
                raise FlowError(f"{where}: {label}: unknown destination state {dest!r}")
            for s in self._sources(t):
                if s not in self.states:
                    raise FlowError(f"{where}: {label}: unknown source state {s!r}")
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
                t.get("trigger") == "next" and st.name in self._sources(t)
                for t in self.transitions
            ):
                raise FlowError(f"{where}: state {st.name} neither gathers, dials nor hangs up, "
                                "and has no `next` transition")
        unreachable = set(self.states) - self.reachable()
        if unreachable:
            raise FlowError(f"{where}: unreachable states: {', '.join(sorted(unreachable))}")

    def edges(self) -> Iterable[tuple[str, str, str]]:
        """(source, trigger, destination) for every transition, wildcards expanded."""
        for t in self.transitions:
            for s in self._sources(t):
                dest = t.get("dest")
                yield s, str(t["trigger"]), s if dest in (None, "=") else str(dest)

    def reachable(self) -> set[str]:
        seen, todo = {self.initial}, deque([self.initial])
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
    def model(self) -> Any:
        """This thread's long-lived model (restoring state on it costs µs, add_model costs ms)."""
        m = getattr(self._local, "model", None)
        if m is None:
            m = self._factory()
            self.machine.add_model(m, initial=self.initial)
            self._local.model = m
        return m

    def trigger_for(self, state: str, event: Event) -> str | None:
        kind, value = event
        spec = self.states[state]
        if kind == "silence":
            return "silence" if spec.gather else None
        if kind == "dialed":
            return "dialed" if spec.dial else None
        if kind == "digits":
            if spec.gather == "number":
                return "entered"
            if spec.gather == "menu":
                trig = KEY_TRIGGERS.get(value) if len(value) == 1 else None
                return trig if trig in self.triggers[state] else "invalid"
        return None

    def run(self, model: Any, event: Event, max_hops: int = 20) -> None:
        """Fire the event's trigger on a model whose state is restored; follow pass-throughs."""
        before = model.state
        counters = model.counters()
        if event[0] == "start":
            self._enter(model, self.initial)
            if self.observer:
                self.observer("", "start", self.initial)
            self._speak_state(model)
        else:
            trig = self.trigger_for(before, event)
            if trig is None:
                self._speak_state(model)  # nothing applies: say where the caller is again
            else:
                counters["silences"] = counters["silences"] + 1 if trig == "silence" else 0
                if trig == "invalid":
                    counters["invalids"] += 1
                fired = trig in self.triggers[before] and model.trigger(trig)
                if not fired and trig == "entered":
                    trig = "invalid"
                    counters["invalids"] += 1
                    fired = model.trigger("invalid")
                elif fired and trig not in ("invalid", "silence"):
                    counters["invalids"] = 0
                if not fired:
                    raise FlowError(f"{self.name}: no transition for {trig} in state {before}")
                if self.observer:
                    self.observer(before, trig, model.state)
                self._speak_state(model)
        hops = 0
        while self.states[model.state].passes_through:
            hops += 1
            source = model.state
            if hops > max_hops or not model.trigger("next"):
                raise FlowError(f"{self.name}: state {model.state} could not pass through")
            if self.observer:
                self.observer(source, "next", model.state)
            self._speak_state(model)
        if model.state != before:
            counters["silences"] = counters["invalids"] = 0

    def _enter(self, model: Any, state: str) -> None:
        self.machine.set_state(state, model=model)

    def _speak_state(self, model: Any) -> None:
        for pid in self.states[model.state].prompts:
            model.say(pid)

    def instructions(self, model: Any, settings_timeouts: dict[str, int]) -> list[Instruction]:
        """Wrap what was said with the state's way of waiting: Gather, Dial or Hangup."""
        spec = self.states[model.state]
        said: list[Instruction] = list(model.out)
        if spec.gather == "menu":
            prompts = tuple(i for i in said if isinstance(i, Say))
            return [Gather(prompts, num_digits=1, timeout=settings_timeouts["menu"])]
        if spec.gather == "number":
            prompts = tuple(i for i in said if isinstance(i, Say))
            return [Gather(prompts, num_digits=None, finish_on_key="#",
                           timeout=settings_timeouts["number"])]
        if spec.dial:
            return [*said, Dial(model.dial_number)]
        return [*said, Hangup()]
