"""The scripted-call YAML format (contract v1): loading and validating, with precise complaints."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml

from simulator.call import DIAL_STATUSES
from simulator.errors import SimulatorError
from simulator.gather import KEYS

TOP_LEVEL_KEYS = ("name", "from", "to", "steps", "dial_status", "at", "dataset")
#: a folder's own settings: a file of this name beside its scripts (not a script itself)
FOLDER_FILE = "_folder.yaml"
FOLDER_KEYS = ("shared_database", "dataset", "at")
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
    at: datetime | None = None  # when the call starts (virtual time); None: now
    dataset: str | None = None  # "demo", or a dataset file (absolute, resolved from the script)


@dataclass(frozen=True)
class FolderSettings:
    """What a folder's _folder.yaml says about the scripts in it."""

    shared_database: bool = False  # its calls run in order on one database
    dataset: str | None = None
    at: datetime | None = None

    def apply(self, script: Script) -> Script:
        """The script with the folder's defaults where it sets nothing itself."""
        return replace(script, dataset=script.dataset or self.dataset, at=script.at or self.at)


def load_folder_settings(folder: Path) -> FolderSettings:
    """Read `folder/_folder.yaml` (absent: the defaults); ScriptError names what is wrong."""
    path = folder / FOLDER_FILE
    if not path.is_file():
        return FolderSettings()
    document = _read_yaml(path)
    if document is None:
        return FolderSettings()
    if not isinstance(document, dict):
        raise ScriptError(path, f"must be a mapping of {', '.join(FOLDER_KEYS)}")
    unknown = sorted(str(key) for key in document if key not in FOLDER_KEYS)
    if unknown:
        raise ScriptError(
            path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(FOLDER_KEYS)}"
        )
    shared = document.get("shared_database", False)
    if not isinstance(shared, bool):
        raise ScriptError(path, "`shared_database` must be true or false")
    return FolderSettings(shared, _dataset(path, document), _moment(path, document))


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(path, f"cannot read the file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(path, f"not valid YAML: {exc}") from exc


def _moment(path: Path, document: dict[object, object]) -> datetime | None:
    """`at:` as an aware datetime: ISO 8601 with a UTC offset, e.g. 2026-11-23T10:00:00+08:00."""
    value = document.get("at")
    if value is None:
        return None
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        raise ScriptError(
            path, f"`at` must be a date and time like 2026-11-23T10:00:00+08:00, not {value!r}"
        )
    if moment.tzinfo is None:
        raise ScriptError(
            path, f"`at` needs a UTC offset (+08:00 for Beijing time): {moment.isoformat()}"
        )
    return moment


def _dataset(path: Path, document: dict[object, object]) -> str | None:
    """`dataset:` as "demo" or an absolute path (a relative one is read from the file's folder)."""
    value = document.get("dataset")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ScriptError(path, "`dataset` must be `demo` or the path of a dataset file")
    if value == "demo":
        return value
    target = (path.parent / value).resolve()
    if not target.is_file():
        raise ScriptError(path, f"`dataset`: no such file {target}")
    return str(target)


def step_text(kind: str, value: object) -> str:
    """How a step reads in YAML, for messages: `press: "1"`, `silence: 2`, `hangup`."""
    if value is None:
        return kind
    return f"{kind}: {json.dumps(value, ensure_ascii=False)}"


def load_script(path: Path) -> Script:
    """Read and validate one script file; ScriptError says what is wrong and where."""
    document = _read_yaml(path)
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
        at=_moment(path, document),
        dataset=_dataset(path, document),
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
