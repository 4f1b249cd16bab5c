"""The formats as JSON Schemas (docs/schemas/README.md): the schemas the programs load are the
published ones, they accept every real file, and broken files are refused with messages that
name the file, the place and the rule."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

import schemacheck
from ivr.engine.prompts import FORMAT_SPECS, LOCALES, Catalogue
from ivr.errors import FlowError
from simulator import ScriptError, load_script
from simulator.call import DIAL_STATUSES
from simulator.gather import KEYS
from simulator.script import plan
from simulator.script_format import (
    FOLDER_FILE,
    FOLDER_KEYS,
    STEP_KINDS,
    TOP_LEVEL_KEYS,
    load_folder_settings,
)

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "schemas"
PROMPTS = REPO / "prompts"
CALLS = REPO / "tests" / "calls"
#: where the programs load each schema from (the helper's formats/ folder of each package); a
#: schema added to either folder is published and checked here as it is
ENGINE_FORMATS = schemacheck.formats_of("ivr.engine")
SIMULATOR_FORMATS = schemacheck.formats_of("simulator")
SHIPPED = {
    path.name.removesuffix(".schema.json"): folder
    for folder in (SIMULATOR_FORMATS.folder, ENGINE_FORMATS.folder)
    for path in sorted(folder.glob("*.schema.json"))
}
CALL_FILES = sorted(CALLS.rglob("*.yaml"))
SCRIPT_FILES = [p for p in CALL_FILES if p.name != FOLDER_FILE]
FOLDER_FILES = [p for p in CALL_FILES if p.name == FOLDER_FILE]


def schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (SHIPPED[name] / f"{name}.schema.json").read_text("utf-8"))
    return loaded


def step_properties() -> dict[str, dict[str, object]]:
    step = schema("script")["$defs"]["step"]  # type: ignore[index]
    found: dict[str, dict[str, object]] = step["else"]["properties"]
    return found


# --- one schema, one helper, published as they are loaded -----------------------------------


def test_the_published_schemas_are_the_ones_the_programs_load() -> None:
    assert {"script", "folder", "prompts"} <= set(SHIPPED)
    files = [p for folder in set(SHIPPED.values()) for p in folder.glob("*.schema.json")]
    assert len(files) == len(SHIPPED), "two packages ship a schema of the same name"
    published = sorted(p.name for p in PUBLISHED.glob("*.schema.json"))
    assert published == sorted(f"{name}.schema.json" for name in SHIPPED)
    for name, folder in SHIPPED.items():
        file = f"{name}.schema.json"
        assert (PUBLISHED / file).read_bytes() == (folder / file).read_bytes(), (
            f"docs/schemas/{file} differs from {folder.relative_to(REPO)}/{file}: "
            "copy it (docs/schemas/README.md)")


def test_the_checker_is_one_module_for_both_packages() -> None:
    """The simulator and the engine import nothing of each other; both reach their formats
    through the one shared checker, each its own folder."""
    assert schemacheck.formats_of("simulator").folder == REPO / "simulator" / "formats"
    assert schemacheck.formats_of("ivr.engine").folder == REPO / "ivr" / "engine" / "formats"
    assert type(schemacheck.formats_of("simulator")) is schemacheck.Formats


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_schema_is_a_draft_2020_12_schema(name: str) -> None:
    loaded = schema(name)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(loaded)
    assert loaded.get("title") and loaded.get("description")


def test_the_wheel_ships_the_schemas_the_code_loads() -> None:
    from hatchling.builders.wheel import WheelBuilder

    files = {f.distribution_path for f in WheelBuilder(str(REPO)).recurse_included_files()}
    for name, folder in SHIPPED.items():
        assert f"{folder.relative_to(REPO).as_posix()}/{name}.schema.json" in files


# --- the schemas say what the code says ------------------------------------------------------


def test_the_script_schema_has_the_runners_keys_and_step_kinds() -> None:
    assert sorted(schema("script")["properties"]) == sorted(TOP_LEVEL_KEYS)  # type: ignore[arg-type]
    kinds = step_properties()
    assert list(kinds) == list(STEP_KINDS)
    names = schema("script")["$defs"]["step"]["else"]["propertyNames"]  # type: ignore[index]
    assert names["enum"] == list(STEP_KINDS)
    assert all(kind in names["errorMessage"] for kind in STEP_KINDS)
    bare = schema("script")["$defs"]["step"]["then"]["enum"]  # type: ignore[index]
    assert bare == ["hangup", "expect_hangup"]
    dial = list(DIAL_STATUSES)
    assert schema("script")["properties"]["dial_status"]["enum"] == dial  # type: ignore[index]
    assert kinds["dial_status"]["enum"] == dial
    for kind in ("press", "barge_in"):
        keys = re.fullmatch(r"\^\[(.*)\]\+\$", str(kinds[kind]["pattern"]))
        assert keys is not None and set(keys.group(1).replace("0-9", "0123456789")) == KEYS


def test_the_folder_schema_has_the_runners_keys() -> None:
    assert sorted(schema("folder")["properties"]) == sorted(FOLDER_KEYS)  # type: ignore[arg-type]


def test_the_prompts_schema_has_the_catalogues_locales_and_formats() -> None:
    prompt = schema("prompts")["$defs"]["prompt"]  # type: ignore[index]
    assert prompt["else"]["properties"]["locale"]["enum"] == list(LOCALES)
    pattern = schema("prompts")["$defs"]["text"]["pattern"]  # type: ignore[index]
    assert f"(?:{'|'.join(FORMAT_SPECS)})" in pattern
    for spec in FORMAT_SPECS:
        assert not ENGINE_FORMATS.problems(
            "prompts", {"prompts": {"x": f"a {{value:{spec}}} b {{plain}} {{{{literal}}}}"}})


# --- every real file has the format ----------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PROMPTS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_prompt_catalogues_have_the_format(path: Path) -> None:
    assert ENGINE_FORMATS.problems("prompts", yaml.safe_load(path.read_text("utf-8"))) == []


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: str(p.relative_to(CALLS)))
def test_every_scripted_call_has_the_format(path: Path) -> None:
    assert SIMULATOR_FORMATS.problems("script", yaml.safe_load(path.read_text("utf-8"))) == []
    load_script(path)


@pytest.mark.parametrize("path", FOLDER_FILES, ids=lambda p: str(p.relative_to(CALLS)))
def test_every_folder_file_has_the_format(path: Path) -> None:
    assert SIMULATOR_FORMATS.problems("folder", yaml.safe_load(path.read_text("utf-8"))) == []
    load_folder_settings(path.parent)


@pytest.mark.parametrize("path", CALL_FILES, ids=lambda p: str(p.relative_to(CALLS)))
def test_every_call_file_names_its_schema_for_editors(path: Path) -> None:
    first = path.read_text("utf-8").splitlines()[0]
    found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert found, f"{path}: the first line should be the modeline"
    target = (path.parent / found.group(1)).resolve()
    name = "folder" if path.name == FOLDER_FILE else "script"
    assert target == PUBLISHED / f"{name}.schema.json"


def test_the_real_files_load() -> None:
    Catalogue.load(PROMPTS)
    assert len(plan([CALLS])) >= 20


# --- broken files: the file, the place, the rule ---------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps:\n  - hangup\n  - press: 1\n",
         "step 2 (press: 1): `press` takes a non-empty quoted string, not 1"),
        ("steps:\n  - press: '1'\n  - expect_promt: goodbye\n",
         'step 2 (expect_promt: "goodbye"): unknown step kind; allowed: expect, expect_regex, '),
        ("steps:\n  - expect_prompt: {id: goodbye, language: 1}\n",
         'step 1 (expect_prompt: {"id": "goodbye", "language": 1}): `language` takes the <Say> '
         "language the prompt must be heard in"),
        ("steps:\n  - expect_prompt: {id: goodbye, value: {}}\n",
         "unknown key(s) value; allowed: id, values, language"),
        ("stpes: [hangup]\nnmae: x\n",
         "unknown key(s) stpes, nmae; allowed: name, from, to, url, voice_method, fallback_url, "
         "geo, dial_status, strict, at, dataset, queues, calls, steps; missing `steps`"),
        ("dial_status: engaged\nsteps: [hangup]\n",
         'dial_status must be one of completed, answered, busy, no-answer, failed, canceled, '
         'not "engaged"'),
        ("to: 12333\nsteps: [hangup]\n", "`to` must be a quoted string"),
        ("at: '2026-11-23 10:00'\nsteps: [hangup]\n", "`at` must be a date and time with a UTC"),
    ],
)
def test_a_broken_script_is_refused_naming_file_place_and_rule(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(ScriptError) as raised:
        load_script(path)
    assert str(raised.value).startswith(f"{path}")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shared_databse: true\n", "unknown key(s) shared_databse; allowed: shared_database, "
                                   "dataset, at"),
        ("shared_database: yes please\n", '`shared_database` must be true or false, '
                                          'not "yes please"'),
        ("at: 2026-11-23T10:00:00\n", "`at` must be a date and time with a UTC offset"),
        ("- dataset: demo\n", "must be a mapping of shared_database, dataset, at"),
        ("dataset: nowhere.json\n", "`dataset`: no such file"),
    ],
)
def test_a_broken_folder_file_is_refused_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, FOLDER_FILE, text)
    with pytest.raises(ScriptError) as raised:
        load_folder_settings(tmp_path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_an_empty_folder_file_is_the_defaults(tmp_path: Path) -> None:
    write(tmp_path, FOLDER_FILE, "# nothing set\n")
    assert not load_folder_settings(tmp_path).shared_database


@pytest.fixture
def catalogues(tmp_path: Path) -> Path:
    for locale in LOCALES:
        shutil.copy(PROMPTS / f"{locale}.yaml", tmp_path)
    return tmp_path


def _edit(folder: Path, locale: str, old: str, new: str) -> Path:
    path = folder / f"{locale}.yaml"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "place", "rule"),
    [
        ("goodbye: 感谢您的来电,再见。", "goodbye: 感谢{amount:mony}", "prompt goodbye",
         "a placeholder is {name} or {name:FORMAT}, FORMAT one of money, date, digits, name, "
         "count"),
        ("goodbye: 感谢您的来电,再见。", "goodbye: 12333", "prompt goodbye",
         "a prompt is its wording, or a mapping {text, locale}, not 12333"),
        ("goodbye: 感谢您的来电,再见。", "goodbye: {text: 再见, locale: zh-TW}",
         "prompt goodbye", "`locale` (whose voice speaks the prompt) must be zh-CN or en-US"),
        ("goodbye: 感谢您的来电,再见。", "goodbye: {txt: 再见}", "prompt goodbye",
         "unknown key(s) txt; allowed: text, locale; missing `text`"),
        ("goodbye: 感谢您的来电,再见。", "Goodbye: 再见", "prompts",
         'a prompt id is lower-case letters, digits and _, starting with a letter, not "Goodbye"'),
        ("    husband: 丈夫", "    husband: [丈夫]", "word relation.husband",
         "a word is quoted text"),
        ("words:", "word:", "", "unknown key(s) word; allowed: prompts, words"),
    ],
)
def test_a_broken_catalogue_is_refused_naming_file_prompt_and_rule(
    catalogues: Path, old: str, new: str, place: str, rule: str
) -> None:
    path = _edit(catalogues, "zh-CN", old, new)
    with pytest.raises(FlowError) as raised:
        Catalogue.load(catalogues)
    where = f"{path}, {place}" if place else f"{path}"
    assert f"{where}: {rule}" in str(raised.value)


def test_a_catalogue_with_several_problems_names_each(catalogues: Path) -> None:
    _edit(catalogues, "en-US", "  goodbye: Thank", "  goodbye: '{x:mony}' # Thank")
    path = _edit(catalogues, "en-US", "  no_input: We", "  no_input: 5 # We")
    with pytest.raises(FlowError) as raised:
        Catalogue.load(catalogues)
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}, prompt no_input", f"{path}, prompt goodbye"]


def test_a_catalogue_text_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app loads the catalogues; an unchanged file is not checked again."""
    Catalogue.load(PROMPTS)
    monkeypatch.setattr(schemacheck.Formats, "problems", lambda *a: pytest.fail("again"))
    Catalogue.load(PROMPTS)
