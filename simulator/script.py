"""Running scripted calls: each step checked against what the caller heard, scenarios on one
clock, folders in batches (their results: simulator.results)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.call import Call
from simulator.clock import Clock
from simulator.dialer import Simulator
from simulator.errors import CallEnded, NotWaiting, Stalled
from simulator.rest.placing import Placer, expect_rest
from simulator.results import Failure, ScriptResult
from simulator.script_format import (
    FOLDER_FILE,
    PROMPT_STEPS,
    FolderSettings,
    PromptRef,
    Script,
    ScriptError,
    Step,
    load_folder_settings,
    load_script,
)
from simulator.transcript import Utterance
from simulator.world import Scheduler, World

SimulatorFactory = Callable[[], Simulator]
#: opens the line a batch of calls runs on (e.g. a fresh database for the app), given the
#: batch's first script (its dataset and start time); yields the simulator for each call
LineOpener = Callable[[Script], AbstractContextManager[SimulatorFactory]]
SCRIPT_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Wording:
    """A prompt's words as the caller hears them: `parts` are literal words, and between two
    parts any words may be heard (a placeholder the script gave no value for)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return "…".join(self.parts)

    def said_in(self, text: str) -> bool:
        """Whether `text` (one <Say>) contains these words; white space is not wording."""
        spoken = _spoken(text)
        if len(self.parts) == 1:
            return _spoken(self.parts[0]) in spoken
        pattern = ".+?".join(re.escape(_spoken(part)) for part in self.parts)
        return re.search(pattern, spoken, re.DOTALL) is not None


#: what `expect_prompt: ID` means: the wording(s) of the application's prompt ID, with its
#: placeholders filled with the script's `values` (the words as heard; a Wording with holes for
#: those not given), as spoken in the <Say> `language` (e.g. "cmn-CN"; None: in any language).
#: An empty list: no wording in that language. Raises LookupError, with a message for people,
#: for an unknown id or a value the prompt has no placeholder for.
PromptResolver = Callable[[str, Mapping[str, str], str | None], Sequence[str | Wording]]
NO_PROMPTS = (
    "this run has no prompt catalogue to look prompt ids up in (the runner's `prompts=`): "
    "`ivr12333 call --script` gives it the hotline's"
)


def _heard(call: Call) -> str:
    """What the caller heard since the previous action, plus where the call is now."""
    lines = [call.heard] if call.heard else []
    if call.ended:
        lines.append(f"[the call has ended: {call.outcome}]")
    elif call.waiting is not None and call.on_hold is None:
        lines.append(f"[a <Gather> waits for keys: {call.waiting.describe()}]")
    else:
        lines.append(f"[{call.state}]")
    return "\n".join(lines)


def _spoken(text: str) -> str:
    """Text with every run of white space as one space."""
    return " ".join(text.split())


def _prompt_heard(
    said: list[Utterance], ref: PromptRef, prompts: PromptResolver
) -> tuple[bool, str]:
    """Whether the prompt was said: a <Say> in some language the caller heard (or in
    `ref.language` only) holds its wording in that language. Also its wording(s), for messages."""
    heard_in = list(dict.fromkeys(utterance.language for utterance in said))
    languages = [ref.language] if ref.language else heard_in or [None]
    heard = False
    wordings: dict[str, list[str]] = {}  # each wording looked for -> the languages it is in
    for language in languages:
        options = [w if isinstance(w, Wording) else Wording((w,))
                   for w in prompts(ref.id, ref.values, language)]
        texts = [utterance.text for utterance in said if utterance.language == language]
        heard = heard or any(w.said_in(text) for w in options for text in texts)
        for option in options:
            wordings.setdefault(str(option), []).extend([language] if language else [])
    if not wordings:
        return heard, "(no wording" + (f" in {ref.language})" if ref.language else ")")
    named = ref.language is not None or len(wordings) > 1
    shown = [f"{text!r}" + (f" in {', '.join(langs)}" if named and langs else "")
             for text, langs in wordings.items()]
    return heard, " or ".join(shown)


def _check(call: Call, step: Step, prompts: PromptResolver | None = None) -> str | None:
    """Run one step; return what was expected when it does not hold, else None."""
    value = step.value
    try:
        if step.kind == "expect":
            return None if str(value) in call.heard else f"to hear {value!r}"
        if step.kind == "expect_regex":
            found = re.search(str(value), call.heard, re.DOTALL)
            return None if found else f"to hear something matching /{value}/"
        if step.kind == "expect_not":
            return None if str(value) not in call.heard else f"not to hear {value!r}"
        if step.kind in PROMPT_STEPS:
            if prompts is None or step.prompt is None:
                return f"a prompt catalogue: {NO_PROMPTS}"
            heard, wording = _prompt_heard(call.said, step.prompt, prompts)
            if step.kind == "expect_prompt":
                return None if heard else f"to hear prompt {value}: {wording}"
            return None if not heard else f"not to hear prompt {value}: {wording}"
        if step.kind == "expect_error":
            if call.error is not None and str(value) in call.error:
                return None
            return f"an application error saying {value!r}"
        if step.kind == "expect_dial":
            return None if any(str(value) in target for target in call.dialled) else (
                f"a <Dial> to {value!r} (dialled: {', '.join(call.dialled) or 'nothing'})")
        if step.kind == "expect_request":
            return _expect_request(call, value)
        if step.kind == "expect_rest":
            return expect_rest(call.world, value)
        if step.kind == "press":
            call.press(str(value))
        elif step.kind == "barge_in":
            call.press(str(value), barge_in=True)
        elif step.kind == "silence":
            call.silence(int(value or 1))
        elif step.kind == "hangup":
            call.hangup(after=None if value is None else float(value["after"]))
        elif step.kind == "dial_status":
            call.set_dial_status(str(value))
        elif step.kind == "speak":
            spoken = value if isinstance(value, dict) else {"text": value}
            call.speak(spoken["text"], confidence=float(spoken.get("confidence", 0.9)),
                       language=spoken.get("language"))
        elif step.kind == "record":
            said = value if isinstance(value, dict) else {"seconds": value}
            call.record(float(said["seconds"]), text=said.get("text"), key=said.get("key"))
        elif step.kind == "wait":
            if isinstance(value, dict):
                call.wait(float(value["seconds"]), until="bridged")
                if not call.bridged:
                    return f"the call to be bridged within {float(value['seconds']):g} s"
            else:
                call.wait(float(value))
        elif step.kind == "called_party":
            if value == "hangup":
                call.set_called_party([], hangup=True)
            else:
                call.set_called_party(list(value.get("press", [])), bool(value.get("hangup")))
        elif step.kind == "expect_hangup":
            if call.ended_by != "application":
                return "the application to end the call"
    except (CallEnded, NotWaiting) as exc:
        return f"the call to wait for the caller ({exc})"
    except Stalled as exc:
        return f"the call to make progress in virtual time ({exc})"
    except LookupError as exc:
        return f"prompt {value} to be known: {_lookup_message(exc)}"
    return None


def _expect_request(call: Call, value: Mapping[str, Any]) -> str | None:
    """None when the call made a request to `url` (full, or its path and query) with `method`
    and `params` among its parameters; else what was expected, with the requests made."""
    url, method = str(value["url"]), value.get("method")
    wanted = {str(k): str(v) for k, v in (value.get("params") or {}).items()}
    for request in call.requests:
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if url not in (request.url, path, parts.path):
            continue
        if method and request.method != method:
            continue
        query = dict(parse_qsl(parts.query)) if request.method == "GET" else {}
        given = {**query, **request.params}
        if all(given.get(name) == expected for name, expected in wanted.items()):
            return None
    made = "; ".join(f"{r.method} {r.url}" for r in call.requests) or "none"
    shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
    return f"a request {method or 'GET/POST'} {url} {shown} (requests made: {made})"


def _lookup_message(exc: LookupError) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _prompt_problem(script: Script, prompts: PromptResolver | None) -> ScriptError | None:
    """Why the script's prompt steps cannot be checked (no resolver, an unknown id, values
    that do not fit), before any call is placed; None when they can."""
    for index, step in enumerate(script.all_steps(), start=1):
        if step.kind not in PROMPT_STEPS or step.prompt is None:
            continue
        if prompts is None:
            return ScriptError(script.path, NO_PROMPTS, index, step.text)
        language = step.prompt.language
        try:
            texts = prompts(step.prompt.id, step.prompt.values, language)
        except LookupError as exc:
            return ScriptError(script.path, _lookup_message(exc), index, step.text)
        if not texts:
            problem = f"prompt {step.prompt.id} has no wording in the <Say> language {language}"
            return ScriptError(script.path, problem, index, step.text)
    return None


def _malformed(path: Path, error: ScriptError) -> ScriptResult:
    failure = Failure(
        error.step_index,
        error.step,
        f"a well-formed scripted call: {error.problem}",
        "(no call was placed)",
        script=path.stem,
        path=str(path),
    )
    return ScriptResult(path.stem, path, False, [failure])


def _dial(script: Script, simulator: Simulator, world: World | None = None) -> Call:
    return simulator.dial(
        from_=script.from_, to=script.to, dial_status=script.dial_status,
        at=None if world is not None else script.at, world=world, url=script.url,
        method=script.voice_method, fallback_url=script.fallback_url, geo=script.geo,
        name=script.name,
    )


def _drive(call: Call, script: Script, prompts: PromptResolver | None,
           label: str) -> list[Failure]:
    """Play a script's steps on a placed call; the failures (the first failing step, or an
    application error no step expected, or, strict, anything not simulated)."""
    failures: list[Failure] = []

    def fail(index: int | None, step: str, expected: str) -> None:
        failures.append(
            Failure(index, step, expected, _heard(call), script=label, path=str(script.path))
        )

    try:
        for index, step in enumerate(script.steps, start=1):
            expected = _check(call, step, prompts)
            if expected is not None:
                fail(index, step.text, expected)
                break
        error_expected = any(step.kind == "expect_error" for step in script.steps)
        if not failures and call.error is not None and not error_expected:
            fail(None, "", "no application error")
        if not failures and script.strict and call.unsupported:
            fail(None, "", "nothing reported as not simulated (strict): "
                 + "; ".join(dict.fromkeys(call.unsupported)))
    finally:
        call.close()  # a script that ends with the call still up: the caller hangs up
    return failures


def _play(
    script: Script, simulator: Simulator, prompts: PromptResolver | None = None
) -> ScriptResult:
    if script.scenario:
        return _play_scenario(script, simulator, prompts)
    world = None if simulator.rest is None else World(simulator.clock or Clock(script.at))
    with _serving(simulator, world):
        call = _dial(script, simulator, world)
        failures = _drive(call, script, prompts, script.name)
    return ScriptResult(
        script.name,
        script.path,
        passed=not failures,
        failures=failures,
        transcript=list(call.transcript),
        transcript_text=call.transcript_text(),
    )


def _play_scenario(
    scenario: Script, simulator: Simulator, prompts: PromptResolver | None
) -> ScriptResult:
    """Every call of a scenario on one virtual clock, each on its own thread, taking turns
    (simulator.world.Scheduler): one result, failing when any call fails."""
    clock = simulator.clock or Clock(scenario.at)
    if scenario.at is not None and scenario.at > clock.moment:
        clock.advance((scenario.at - clock.moment).total_seconds())
    scheduler = Scheduler(clock)
    world = World(clock, scheduler, dict(scenario.queues))
    begin = clock.now
    calls: dict[str, Call] = {}
    failures: dict[str, list[Failure]] = {}

    def drive(call: Call, script: Script) -> None:
        calls[script.name] = call
        failures[script.name] = _drive(call, script, prompts, f"{scenario.name} / {script.name}")

    def party(script: Script) -> Callable[[], None]:
        def run() -> None:
            label = f"{scenario.name} / {script.name}"
            try:
                call = _dial(script, simulator, world)
            except Stalled as exc:  # while the call was placed: no step to blame
                failures[script.name] = [Failure(None, "", f"the call to make progress in "
                                                 f"virtual time ({exc})", "", script=label,
                                                 path=str(scenario.path))]
                return
            drive(call, script)
        return run

    parties = [script for script in scenario.calls if script.answers is not None]
    placer = Placer(simulator, world, parties, drive)
    world.outbound = placer
    for script in scenario.calls:
        if script.answers is None:
            scheduler.spawn(script.name, begin + script.start, party(script))
    clock.scheduler = scheduler
    try:
        with _serving(simulator, world):
            scheduler.run()
    finally:
        clock.scheduler = None
    for call, answering in placer.placed:
        if answering is None:
            calls.setdefault(call.name, call)
    for script in placer.unused():
        failures[script.name] = [Failure(
            None, "", f"a call to {script.answers} placed over the REST API for this party",
            "(no call to that number was placed)", script=f"{scenario.name} / {script.name}",
            path=str(scenario.path))]
    found = [failure for script in scenario.calls for failure in failures.get(script.name, [])]
    events = sorted((event for call in calls.values() for event in call.transcript),
                    key=lambda event: event.at)
    text = "\n".join(f"=== {name} ===\n{call.transcript_text()}" for name, call in calls.items())
    return ScriptResult(scenario.name, scenario.path, passed=not found, failures=found,
                        transcript=events, transcript_text=text)


def _serving(simulator: Simulator, world: World | None) -> AbstractContextManager[Any]:
    """The simulated REST API serves `world` for the run, when the simulator has one."""
    if simulator.rest is None or world is None:
        return nullcontext()
    return simulator.rest.attach(world)  # type: ignore[no-any-return]


def run_script(
    path: str | Path,
    simulator_factory: SimulatorFactory,
    *,
    prompts: PromptResolver | None = None,
) -> ScriptResult:
    """Load one script and play it against a fresh simulator; never raises for a bad script.
    `prompts` looks up the wording of `expect_prompt` steps (a script that has some fails
    without it)."""
    path = Path(path)
    try:
        script = load_script(path)
    except ScriptError as exc:
        return _malformed(path, exc)
    problem = _prompt_problem(script, prompts)
    if problem is not None:
        return _malformed(path, problem)
    return _play(script, simulator_factory(), prompts)


@dataclass(frozen=True)
class Batch:
    """Scripted calls that run in order on one line (one database): a single script, or every
    script of a folder whose _folder.yaml says `shared_database: true`."""

    paths: tuple[Path, ...]
    settings: FolderSettings


def _is_script(path: Path) -> bool:
    return path.is_file() and path.suffix in SCRIPT_SUFFIXES and not path.name.startswith("_")


def _inherit(folder: Path, parent: FolderSettings) -> FolderSettings:
    own = load_folder_settings(folder)
    return FolderSettings(own.shared_database, own.dataset or parent.dataset, own.at or parent.at)


def settings_above(path: Path) -> FolderSettings:
    """A file's folder settings: its folder's, with defaults from the folders above it that
    have a _folder.yaml too."""
    chain = []
    folder = path.parent
    while (folder / FOLDER_FILE).is_file():
        chain.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    settings = FolderSettings()
    for folder in reversed(chain):
        settings = _inherit(folder, settings)
    return settings


def _folder_batches(folder: Path, parent: FolderSettings) -> Iterator[Batch]:
    settings = _inherit(folder, parent)
    if settings.shared_database:
        scripts = sorted((p for p in folder.rglob("*") if _is_script(p)),
                         key=lambda p: p.relative_to(folder).parts)
        if scripts:
            yield Batch(tuple(scripts), settings)
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith((".", "_")):
            yield from _folder_batches(entry, settings)
        elif _is_script(entry):
            yield Batch((entry,), settings)


def plan(paths: Iterable[str | Path]) -> list[Batch]:
    """Files as given; folders walked recursively in name order, a shared folder as one batch.

    Raises ScriptError for a broken _folder.yaml.
    """
    batches: list[Batch] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            batches.extend(_folder_batches(path, settings_above(path)))
        else:
            batches.append(Batch((path,), settings_above(path)))
    return batches


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Every script file the paths name, folders walked recursively, in the order they run."""
    return [path for batch in plan(paths) for path in batch.paths]


def _fixed_line(factory: SimulatorFactory) -> LineOpener:
    @contextmanager
    def line(first: Script) -> Iterator[SimulatorFactory]:
        yield factory

    return line


def run_batch(
    batch: Batch, line: LineOpener, prompts: PromptResolver | None = None
) -> list[ScriptResult]:
    """Play a batch's scripts in order on one line opened for it."""
    results: dict[Path, ScriptResult] = {}
    scripts: list[Script] = []
    for path in batch.paths:
        try:
            script = batch.settings.apply(load_script(path))
        except ScriptError as exc:
            results[path] = _malformed(path, exc)
            continue
        unfit = _prompt_problem(script, prompts)
        if unfit is not None:
            results[path] = _malformed(path, unfit)
        else:
            scripts.append(script)
    if scripts:
        first = scripts[0]
        with line(first) as factory:
            for script in scripts:
                if script.dataset != first.dataset:
                    base = first.dataset or "a copy of the configured database"
                    problem = f"runs in a shared folder on {base}, not on {script.dataset!r}"
                    results[script.path] = _malformed(
                        script.path, ScriptError(script.path, problem)
                    )
                    continue
                results[script.path] = _play(script, factory(), prompts)
    return [results[path] for path in batch.paths]


def run_scripts(
    paths: Iterable[str | Path] | str | Path,
    simulator_factory: SimulatorFactory | None = None,
    *,
    line: LineOpener | None = None,
    prompts: PromptResolver | None = None,
) -> list[ScriptResult]:
    """Run every script (folders walked recursively, see `plan`), each batch on a line of its
    own when `line` is given, otherwise all with simulators from `simulator_factory`.
    `prompts` looks up the wording of `expect_prompt` steps (scripts that have some fail
    without it)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    if line is None:
        if simulator_factory is None:
            raise ValueError("run_scripts needs a simulator factory or a line")
        line = _fixed_line(simulator_factory)
    results: list[ScriptResult] = []
    for raw in paths:
        try:
            batches = plan([raw])
        except ScriptError as exc:
            results.append(_malformed(exc.path, exc))
            continue
        for batch in batches:
            results.extend(run_batch(batch, line, prompts))
    return results
