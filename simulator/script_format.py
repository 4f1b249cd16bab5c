"""The scripted-call YAML format (contract v1): loading and validating, with precise complaints.

The format is a JSON Schema, formats/script.schema.json (and formats/folder.schema.json for a
folder's _folder.yaml), published as docs/schemas/*.json. A file is checked against it when it
is loaded; what a schema cannot say (that `at:` is a real moment, that a dataset file exists)
is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import yaml

from simulator.errors import SimulatorError
from simulator.schemas import Problem, problems

TOP_LEVEL_KEYS = ("name", "from", "to", "steps", "dial_status", "at", "dataset")
#: a folder's own settings: a file of this name beside its scripts (not a script itself)
FOLDER_FILE = "_folder.yaml"
FOLDER_KEYS = ("shared_database", "dataset", "at")
TEXT_STEPS = ("expect", "expect_regex", "expect_not")
#: a prompt of the application, by id: the runner's prompt resolver supplies its wording
PROMPT_STEPS = ("expect_prompt", "expect_not_prompt")
KEY_STEPS = ("press", "barge_in")  # barge_in: an extension, keys that interrupt the prompt
BARE_STEPS = ("hangup", "expect_hangup")
STEP_KINDS = (*TEXT_STEPS, *PROMPT_STEPS, *KEY_STEPS, "silence", "dial_status", *BARE_STEPS)
SCRIPT_SCHEMA = "script"
FOLDER_SCHEMA = "folder"


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
class PromptRef:
    """An `expect_prompt` / `expect_not_prompt` value: a prompt id, the words heard for its
    placeholders, and optionally the one <Say> language that counts."""

    id: str
    values: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None


@dataclass(frozen=True)
class Step:
    """One step: its kind (expect, press, silence, …), its value, and how it was written.

    For a prompt step, `value` is the prompt id and `prompt` the whole reference."""

    kind: str
    value: str | int | None
    text: str
    prompt: PromptRef | None = None


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
    document = _timestamp_as_text(_read_yaml(path))
    _check(path, FOLDER_SCHEMA, document)
    if not isinstance(document, dict):  # an empty file
        return FolderSettings()
    return FolderSettings(
        document.get("shared_database", False), _dataset(path, document), _moment(path, document)
    )


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(path, f"cannot read the file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(path, f"not valid YAML: {exc}") from exc


def _timestamp_as_text(document: object) -> object:
    """An unquoted `at:` is a timestamp to YAML: check it as the text it was written as."""
    if isinstance(document, dict) and isinstance(document.get("at"), datetime):
        return {**document, "at": document["at"].isoformat()}
    return document


def _check(path: Path, schema: str, document: object) -> None:
    """Raise ScriptError for the first place where the document breaks the schema: every rule
    broken there."""
    found = problems(schema, document)
    if found:
        first = found[0].place
        rules = "; ".join(problem.rule for problem in found if problem.place == first)
        raise _error(path, document, Problem(first, rules))


def _error(path: Path, document: object, problem: Problem) -> ScriptError:
    """The problem as a ScriptError: in a step, the step's number and text; else the file."""
    place = problem.place
    if isinstance(document, dict) and len(place) >= 2 and place[0] == "steps":
        index = place[1]
        steps = document.get("steps")
        if isinstance(index, int) and isinstance(steps, list) and index < len(steps):
            return ScriptError(path, problem.rule, index + 1, _written(steps[index]))
    return ScriptError(path, problem.rule)


def _written(raw: object) -> str:
    """How a step reads in YAML, for messages."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, value),) = raw.items()
        return step_text(str(kind), value)
    return repr(raw)


def _moment(path: Path, document: dict[str, object]) -> datetime | None:
    """`at:` (the schema checked its shape) as an aware datetime."""
    value = document.get("at")
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ScriptError(path, f"`at` is not a real date and time: {value}") from None


def _dataset(path: Path, document: dict[str, object]) -> str | None:
    """`dataset:` as "demo" or an absolute path (a relative one is read from the file's folder)."""
    value = document.get("dataset")
    if value is None or value == "demo":
        return None if value is None else "demo"
    target = (path.parent / str(value)).resolve()
    if not target.is_file():
        raise ScriptError(path, f"`dataset`: no such file {target}")
    return str(target)


def step_text(kind: str, value: object) -> str:
    """How a step reads in YAML, for messages: `press: "1"`, `silence: 2`, `hangup`."""
    if value is None:
        return kind
    return f"{kind}: {json.dumps(value, ensure_ascii=False, default=str)}"


def load_script(path: Path) -> Script:
    """Read and validate one script file; ScriptError says what is wrong and where."""
    document = _timestamp_as_text(_read_yaml(path))
    _check(path, SCRIPT_SCHEMA, document)
    assert isinstance(document, dict)  # the schema says so
    return Script(
        name=document.get("name") or path.stem,
        path=path,
        from_=document.get("from"),
        to=document.get("to"),
        dial_status=document.get("dial_status"),
        steps=tuple(_step(raw) for raw in document["steps"]),
        at=_moment(path, document),
        dataset=_dataset(path, document),
    )


def _step(raw: object) -> Step:
    """A step the schema has accepted."""
    if isinstance(raw, str):
        return Step(raw, None, raw)
    assert isinstance(raw, dict)
    ((kind, value),) = raw.items()
    text = step_text(kind, value)
    if kind in PROMPT_STEPS:
        prompt = _prompt(value)
        return Step(kind, prompt.id, text, prompt)
    if kind == "silence":
        return Step(kind, int(value), text)
    return Step(kind, value, text)


def _prompt(value: object) -> PromptRef:
    if isinstance(value, str):
        return PromptRef(value)
    assert isinstance(value, dict)
    return PromptRef(value["id"], dict(value.get("values") or {}), value.get("language"))
