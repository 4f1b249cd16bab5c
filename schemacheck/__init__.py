"""File formats as JSON Schemas (draft 2020-12): load one from a package's formats/ folder,
check a parsed YAML document against it, and say what is wrong in words: where (the keys and
list indexes that lead to it) and which rule.

Generic, and shared by the packages that ship formats (the simulator, the hotline engine),
which import nothing of each other: each has its own formats/ folder, reached with
`formats_of(package)`;
docs/schemas/ holds the published copies, for editors (docs/schemas/README.md).

The rules' words come from the schemas themselves: a node's `errorMessage` (which VS Code and
yaml-language-server show too), or `<keyword>ErrorMessage` for a single keyword of the node
(`patternErrorMessage`, `formatErrorMessage`). Unknown and missing keys are named here, and a
short offending value is quoted after the rule (`..., not 12`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

#: rules after which the offending value is quoted, when it is short
_QUOTE_VALUE = frozenset(
    {"type", "enum", "const", "pattern", "minimum", "maximum", "minLength", "maxLength"}
)
_SHORT = 40

Place = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One broken rule: where in the document (keys and list indexes from its root) and what."""

    place: Place
    rule: str


@dataclass(frozen=True)
class Formats:
    """The schemas in one folder: FOLDER/NAME.schema.json."""

    folder: Path

    def schema_file(self, name: str) -> Path:
        """The file of schema `name` (e.g. "script": formats/script.schema.json)."""
        return self.folder / f"{name}.schema.json"

    def load_schema(self, name: str) -> dict[str, Any]:
        """Schema `name`, parsed (cached: treat it as read-only)."""
        return _load(self.schema_file(name))

    def problems(self, name: str, document: object) -> list[Problem]:
        """Every rule of schema `name` that `document` breaks (see `problems`)."""
        return problems(_validator(self.schema_file(name)), document)


@cache
def formats_of(package: str) -> Formats:
    """The schemas a package ships in its formats/ folder (e.g. "simulator", "ivr.engine"):
    the one way the packages reach their formats."""
    return Formats(Path(str(resources.files(package) / "formats")))


@cache
def _load(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _validator(path: Path) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker  # imported when first needed

    schema = _load(path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def problems(validator: Any, document: object) -> list[Problem]:
    """Every rule of the validator's schema that `document` breaks, in the document's order (the
    document as a whole first; at one place, a missing key last: an unknown key before it may
    be its misspelling), each once. An empty list: the document has the format."""
    errors = sorted(
        validator.iter_errors(document),
        key=lambda error: (
            _position(document, tuple(error.absolute_path)), error.validator == "required"
        ),
    )
    found: list[Problem] = []
    for error in errors:
        problem = Problem(tuple(error.absolute_path), _rule(error))
        if problem not in found:
            found.append(problem)
    return found


def _position(document: object, place: Sequence[object]) -> tuple[int, ...]:
    """Where `place` is in the document, as numbers that sort in reading order."""
    position: list[int] = []
    node = document
    for step in place:
        if isinstance(node, dict):
            keys = list(node)
            position.append(keys.index(step) if step in node else len(keys))
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            position.append(step)
            node = node[step]
        else:
            position.append(0)
    return tuple(position)


def _shown(value: object) -> str | None:
    """A scalar as it reads in YAML/JSON, or None when it is a collection or too long."""
    if isinstance(value, dict | list):
        return None
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHORT else None


def _rule(error: Any) -> str:
    """The broken rule in words, from the schema node that holds the failing keyword."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword, instance = error.validator, error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = [key for key in error.validator_value if key not in instance]
        return "missing " + ", ".join(f"`{key}`" for key in missing)
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        unknown = [str(key) for key in instance if key not in allowed]
        return (f"unknown key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(allowed) if allowed else 'none'}")
    custom = schema.get(f"{keyword}ErrorMessage") or schema.get("errorMessage")
    if not custom:
        return str(error.message)
    if keyword == "format" and error.cause is not None:
        return f"{custom}: {error.cause}"
    shown = _shown(instance) if keyword in _QUOTE_VALUE else None
    return f"{custom}, not {shown}" if shown is not None else str(custom)
