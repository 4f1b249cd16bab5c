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
from typing import Any

import yaml

from schemacheck import Problem, formats_of
from simulator.errors import SimulatorError

#: what `dataset:` names: "demo" or a dataset file's absolute path, or several of them in order
Dataset = str | tuple[str, ...] | None

TOP_LEVEL_KEYS = ("name", "from", "to", "url", "voice_method", "fallback_url", "geo",
                  "dial_status", "strict", "at", "dataset", "queues", "calls", "steps")
#: a scenario's own keys, and those that are the defaults of its calls
SCENARIO_DEFAULTS = ("voice_method", "fallback_url", "geo", "dial_status", "strict")
#: a folder's own settings: a file of this name beside its scripts (not a script itself)
FOLDER_FILE = "_folder.yaml"
FOLDER_KEYS = ("shared_database", "dataset", "at")
TEXT_STEPS = ("expect", "expect_regex", "expect_not")
#: a prompt of the application, by id: the runner's prompt resolver supplies its wording
PROMPT_STEPS = ("expect_prompt", "expect_not_prompt")
KEY_STEPS = ("press", "barge_in")  # barge_in: an extension, keys that interrupt the prompt
BARE_STEPS = ("hangup", "expect_hangup")
#: caller actions beyond keys and silence, and expectations about the call's requests
MORE_STEPS = ("speak", "record", "wait", "called_party", "expect_error", "expect_dial",
              "expect_request", "expect_rest")
STEP_KINDS = (*TEXT_STEPS, *PROMPT_STEPS, *KEY_STEPS, "silence", "dial_status", *BARE_STEPS,
              *MORE_STEPS)
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
    value: Any
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
    #: "demo", or a dataset file (absolute, resolved from the script), or several in order
    dataset: Dataset = None
    url: str | None = None  # the voice URL, relative to the runner's
    voice_method: str | None = None
    fallback_url: str | None = None
    geo: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    strict: bool = False
    #: a scenario: its calls (each a Script without at/dataset), its queues' sizes
    calls: tuple[Script, ...] = ()
    queues: Mapping[str, int] = field(default_factory=dict)
    start: float = 0.0  # a scenario's call: seconds after the scenario starts
    #: a scenario's called party: the number it answers when an app calls it over REST, how
    #: (answered, busy, no-answer, failed), after how many seconds of ringing, AnsweredBy
    answers: str | None = None
    answer: str = "answered"
    ring: float = 5.0
    answered_by: str = "human"

    @property
    def scenario(self) -> bool:
        return bool(self.calls)

    def all_steps(self) -> list[Step]:
        """Every step, of every call of a scenario."""
        if self.calls:
            return [step for call in self.calls for step in call.steps]
        return list(self.steps)


@dataclass(frozen=True)
class FolderSettings:
    """What a folder's _folder.yaml says about the scripts in it."""

    shared_database: bool = False  # its calls run in order on one database
    dataset: Dataset = None
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
    found = formats_of("simulator").problems(schema, document)
    if found:
        first = found[0].place
        rules = "; ".join(problem.rule for problem in found if problem.place == first)
        raise _error(path, document, Problem(first, rules))


def _error(path: Path, document: object, problem: Problem) -> ScriptError:
    """The problem as a ScriptError: in a step, the step's number and text; else the file."""
    place = problem.place
    if (isinstance(document, dict) and len(place) >= 4 and place[0] == "calls"
            and place[2] == "steps" and isinstance(place[1], int)
            and isinstance(document.get("calls"), list) and place[1] < len(document["calls"])):
        call = document["calls"][place[1]]
        name = call.get("name", f"#{place[1] + 1}") if isinstance(call, dict) else place[1] + 1
        inner = Problem(place[2:], f"call {name}: {problem.rule}")
        return _error(path, call, inner)
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


def _dataset(path: Path, document: dict[str, object]) -> Dataset:
    """`dataset:` as "demo" or an absolute path (a relative one is read from the file's
    folder); a list of them (imported in order: one dataset file per region) as a tuple."""
    value = document.get("dataset")
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            raise ScriptError(path, "`dataset`: an empty list")
        return tuple(_one_dataset(path, item) for item in value)
    return _one_dataset(path, value)


def _one_dataset(path: Path, value: object) -> str:
    if value == "demo":
        return "demo"
    target = (path.parent / str(value)).resolve()
    if not target.is_file():
        raise ScriptError(path, f"`dataset`: no such file {target}")
    return str(target)


def dataset_files(dataset: Dataset) -> tuple[str, ...]:
    """The datasets a script names, in import order ("demo" or absolute paths)."""
    if dataset is None:
        return ()
    return (dataset,) if isinstance(dataset, str) else dataset


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
    if "calls" in document:
        return _scenario(path, document)
    return replace(_call(path, document, {}), at=_moment(path, document),
                   dataset=_dataset(path, document), name=document.get("name") or path.stem)


def _call(path: Path, document: Mapping[str, Any], defaults: Mapping[str, Any]) -> Script:
    """One call: a scripted call's file, or a call of a scenario (with its defaults)."""

    def get(key: str) -> Any:
        return document.get(key, defaults.get(key))

    return Script(
        name=document.get("name") or path.stem,
        path=path,
        from_=document.get("from"),
        to=document.get("to"),
        dial_status=get("dial_status"),
        steps=tuple(_step(raw) for raw in document.get("steps") or ()),
        url=document.get("url"),
        voice_method=get("voice_method"),
        fallback_url=get("fallback_url"),
        geo=get("geo") or {},
        strict=bool(get("strict")),
        start=float(document.get("start", 0)),
        answers=document.get("answers"),
        answer=document.get("answer", "answered"),
        ring=float(document.get("ring", 5)),
        answered_by=document.get("answered_by", "human"),
    )


def _scenario(path: Path, document: dict[str, Any]) -> Script:
    defaults = {key: document[key] for key in SCENARIO_DEFAULTS if key in document}
    calls = tuple(_call(path, raw, defaults) for raw in document["calls"])
    for raw, call in zip(document["calls"], calls, strict=True):
        given = [key for key in ("answer", "ring", "answered_by") if key in raw]
        if given and call.answers is None:
            raise ScriptError(path, f"call {call.name}: `{given[0]}` is for a party that "
                              "answers a REST call (`answers:`)")
    names = [call.name for call in calls]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ScriptError(path, f"two calls of the scenario are named {', '.join(twice)}")
    return Script(
        name=document.get("name") or path.stem, path=path, from_=None, to=None,
        dial_status=None, steps=(), at=_moment(path, document),
        dataset=_dataset(path, document), calls=calls,
        queues={name: spec["max_size"] for name, spec in (document.get("queues") or {}).items()},
        strict=bool(document.get("strict")),
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
