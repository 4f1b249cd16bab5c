"""The scripted-call YAML format (contract v1): loading and validating, with precise complaints."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from simulator.call import DIAL_STATUSES
from simulator.errors import SimulatorError
from simulator.gather import KEYS

TOP_LEVEL_KEYS = ("name", "from", "to", "steps", "dial_status")
TEXT_STEPS = ("expect", "expect_regex", "expect_not")
KEY_STEPS = ("press", "barge_in")  # barge_in: an extension, keys that interrupt the prompt
BARE_STEPS = ("hangup", "expect_hangup")
STEP_KINDS = (*TEXT_STEPS, *KEY_STEPS, "silence", "dial_status", *BARE_STEPS)


class ScriptError(SimulatorError):
    """A script file breaks the format; names the file and, when it applies, the step."""

    def __init__(self, path: Path, problem: str, step_index: int | None = None, step: str = ""):
        where = f"{path}" if step_index is None else f"{path}, step {step_index} ({step})"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.problem = problem
        self.step_index = step_index
        self.step = step


@dataclass(frozen=True)
class Step:
    """One step: its kind (expect, press, silence, …), its value, and how it was written."""

    kind: str
    value: str | int | None
    text: str


@dataclass(frozen=True)
class Script:
    """A validated scripted call."""

    name: str
    path: Path
    from_: str | None
    to: str | None
    dial_status: str | None
    steps: tuple[Step, ...]


def step_text(kind: str, value: object) -> str:
    """How a step reads in YAML, for messages: `press: "1"`, `silence: 2`, `hangup`."""
    if value is None:
        return kind
    return f"{kind}: {json.dumps(value, ensure_ascii=False)}"


def load_script(path: Path) -> Script:
    """Read and validate one script file; ScriptError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(path, f"cannot read the file: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(path, f"not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ScriptError(path, "the file must be a mapping with `steps:` (and optional name)")
    unknown = sorted(str(key) for key in document if key not in TOP_LEVEL_KEYS)
    if unknown:
        raise ScriptError(
            path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL_KEYS)}"
        )
    name = _optional_text(path, document, "name") or path.stem
    dial_status = _optional_text(path, document, "dial_status")
    if dial_status is not None and dial_status not in DIAL_STATUSES:
        raise ScriptError(path, f"dial_status must be one of {', '.join(DIAL_STATUSES)}")
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError(path, "`steps` must be a non-empty list")
    steps = tuple(_step(path, index, raw) for index, raw in enumerate(raw_steps, start=1))
    return Script(
        name=name,
        path=path,
        from_=_optional_text(path, document, "from"),
        to=_optional_text(path, document, "to"),
        dial_status=dial_status,
        steps=steps,
    )


def _optional_text(path: Path, document: dict[object, object], key: str) -> str | None:
    value = document.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ScriptError(path, f"`{key}` must be a quoted string, not {value!r}")


def _step(path: Path, index: int, raw: object) -> Step:
    if isinstance(raw, str):
        if raw in BARE_STEPS:
            return Step(raw, None, raw)
        raise ScriptError(
            path, f"a bare step must be one of {', '.join(BARE_STEPS)}", index, repr(raw)
        )
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScriptError(
            path, "a step is `kind: value` (exactly one) or a bare hangup", index, repr(raw)
        )
    ((kind, value),) = raw.items()
    text = step_text(str(kind), value)
    if kind not in STEP_KINDS:
        raise ScriptError(path, f"unknown step kind; allowed: {', '.join(STEP_KINDS)}", index, text)
    problem = _value_problem(str(kind), value)
    if problem:
        raise ScriptError(path, problem, index, text)
    return Step(str(kind), value if isinstance(value, str | int) else None, text)


def _value_problem(kind: str, value: object) -> str | None:
    """Why `value` is not acceptable for a step of `kind`, or None."""
    if kind in BARE_STEPS:
        return None if value is None else f"`{kind}` takes no value"
    if kind == "silence":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return "silence takes a count of Gathers, a whole number of at least 1"
        return None
    if not isinstance(value, str) or not value:
        return f"`{kind}` takes a non-empty quoted string"
    if kind in KEY_STEPS and set(value) - KEYS:
        return f"`{kind}` takes phone keys only (0-9 * #), in quotes"
    if kind == "dial_status" and value not in DIAL_STATUSES:
        return f"dial_status must be one of {', '.join(DIAL_STATUSES)}"
    if kind == "expect_regex":
        try:
            re.compile(value)
        except re.error as exc:
            return f"not a valid regular expression: {exc}"
    return None
