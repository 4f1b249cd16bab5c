"""`ivr12333 prompts --audio DIR`: every prompt heard, timed, and the time callers take.

Each prompt of each locale is rendered with example values (a balance of 1234.56 yuan, a
date, a name) to DIR/LOCALE/ID.wav, and DIR/durations.csv lists how long each plays next to
the simulator's per-character estimate. Then calls to the in-process hotline on the demo
people find, breadth first, the shortest key path to every result (a state that ends with
the result menu) and time it with the real durations: from the answer to the first word of
the result, for a caller who listens to every prompt and for one who keys ahead (barge-in).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import string
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from ivr.settings import Settings
from ivr.tools.synth import HOW_TO_GET, Synthesiser

#: example values per placeholder format, and per plain placeholder name
EXAMPLES: dict[str, Any] = {"money": Decimal("1234.56"), "date": date(2026, 11, 21),
                            "digits": "0013", "name": "李四", "count": 2}
PLAIN = {
    "zh-CN": {"line": "医保服务热线", "relation": "妻子", "order": "妻子李女士",
              "hours": "工作日上午八点至下午五点", "start": "上午八点", "end": "下午五点",
              "relatives": "配偶、父母、子女", "kind": "门诊"},
    "en-US": {"line": "Healthcare Security hotline", "relation": "wife", "order": "your wife",
              "hours": "weekdays from 8 am to 5 pm", "start": "8 am", "end": "5 pm",
              "relatives": "spouse, parents and children", "kind": "outpatient"},
}
#: what the demo's first person keys where a number is asked for
ENTRIES = {"id_entry": "450102197503150013#", "password": "135790#"}
RESULT_PROMPT = "result_menu"
MAX_DEPTH = 10


def example_values(text: str, locale: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for _, name, spec, _ in string.Formatter().parse(text):
        if name:
            values[name] = EXAMPLES[spec] if spec in EXAMPLES else PLAIN[locale].get(name, name)
    return values


@dataclass(frozen=True)
class ResultTime:
    """A result reached, the keys that reach it, and when its first word is heard."""

    state: str
    keys: tuple[str, ...]
    listening: float  # seconds from the answer, the caller hearing every prompt out
    keying_ahead: float  # the caller pressing each key as its prompt starts


def write_prompts(catalogue: Any, synth: Synthesiser, folder: Path) -> list[list[str]]:
    """Every prompt of every locale as DIR/LOCALE/ID.wav; the rows of durations.csv."""
    from simulator.clock import speech_seconds

    rows = [["locale", "prompt", "voice", "seconds", "estimate", "text"]]
    texts = {(locale, pid): catalogue.render(pid, locale, example_values(prompt.text, locale))
             for locale, prompts in catalogue.prompts.items()
             for pid, prompt in sorted(prompts.items())}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # one espeak-ng each
        audios = dict(zip(texts, pool.map(lambda tv: synth.render(*tv), texts.values()),
                          strict=True))
    for (locale, pid), (text, voice_locale) in texts.items():
        (folder / locale).mkdir(parents=True, exist_ok=True)
        audio = audios[(locale, pid)]
        if audio is None:
            continue
        shutil.copyfile(audio.path, folder / locale / f"{pid}.wav")
        rows.append([locale, pid, voice_locale, f"{audio.seconds:.2f}",
                     f"{speech_seconds(text):.2f}", text])
    return rows


def shortest_paths(dial: Callable[[], Any], flow: Any,
                   path: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Breadth first over real calls: the fewest caller actions that reach each result.

    A state is one node per set of transitions taken (the flow remembers where a caller was
    going while it verifies them); results, the agent (0), going back (9) and repeating
    (*) are not followed further."""
    from ivr.engine.flow import KEY_TRIGGERS

    found: dict[str, tuple[str, ...]] = {}
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    todo: deque[tuple[str, ...]] = deque([()])
    while todo:
        keys = todo.popleft()
        call = dial()
        try:
            for k in keys:
                call.press(k, barge_in=True)
            state = path[-1][1] if path else ""
            node = (state, frozenset(path))
            if node in seen or call.ended or call.waiting is None or len(keys) > MAX_DEPTH:
                continue
            seen.add(node)
            found.setdefault(state, keys)
            spec = flow.states[state]
            if RESULT_PROMPT in spec.prompts:
                continue
            if spec.gather == "number":
                nexts = [ENTRIES[state]] if state in ENTRIES else []
            else:
                nexts = [k for k, t in KEY_TRIGGERS.items()
                         if t in flow.triggers[state] and k not in "*90"]
            todo.extend((*keys, k) for k in nexts)
        finally:
            if not call.ended:
                call.hangup()
            call.close()
    return found


def time_path(dial: Callable[[], Any], keys: tuple[str, ...], barge_in: bool) -> float:
    call = dial()
    try:
        for k in keys:
            call.press(k, barge_in=barge_in)
        first: float = call.said[0].at if call.said else call.clock.now
        return round(first - float(call.started), 2)
    finally:
        if not call.ended:
            call.hangup()
        call.close()


def run_prompts_audio(settings: Settings, folder: Path, out: Console, err: Console) -> int:
    from ivr.domain.pinkeys import Keyring, new_key
    from ivr.engine.prompts import Catalogue
    from ivr.resources import data_dir
    from ivr.tools.callcmd import LOCAL_STATUS_URL, LOCAL_URL, _Lines, region_zone
    from simulator import Clock, DirectTransport
    from simulator.sounds import real_durations

    logging.getLogger("ivr.web").setLevel(logging.ERROR)  # in-process: nothing listens
    work = Path(tempfile.mkdtemp(prefix="ivr12333-prompts-"))
    synth = Synthesiser(work)
    if not synth.available:
        err.print(f"no speech synthesiser (espeak-ng): {HOW_TO_GET}", markup=False,
                  highlight=False)
        shutil.rmtree(work, ignore_errors=True)
        return 2
    path: list[tuple[str, str]] = []  # (trigger, state entered)
    lines = _Lines(settings, keyring=Keyring.of(new_key()), url=None, live=True,
                   auth_token=None, from_=None, status_callback=None,
                   dial_status="completed", observe=lambda s, t, d: path.append((t, d)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        catalogue = Catalogue.load(data_dir("prompts", settings.prompts_dir))
        rows = write_prompts(catalogue, synth, folder)
        with (folder / "durations.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        out.print(f"wrote {len(rows) - 1} prompts to {folder} and their durations to "
                  f"{folder / 'durations.csv'}", highlight=False)
        db = work / "demo.sqlite3"
        shutil.copyfile(lines._template("demo"), db)
        database = f"sqlite:///{db}"
        zone = region_zone(database)
        at = datetime(2026, 11, 23, 10, 0, tzinfo=zone)  # a Monday morning: agents answer
        app = lines._app(database, lambda: clock.moment)
        lines.status_callback = LOCAL_STATUS_URL
        clock = Clock(at)

        calls = iter(range(10**8))

        def dial() -> Any:
            nonlocal clock
            path.clear()
            clock = Clock(at)
            # each call from its own number: the per-number verification limit stays away
            lines.from_ = f"+86138{next(calls):08d}"
            return lines.simulator(DirectTransport(app), LOCAL_URL, clock).dial()

        flow = lines.flow
        with real_durations(lambda text, _v, language: synth.seconds(text, language)):
            found = {state: keys for state, keys in shortest_paths(dial, flow, path).items()
                     if RESULT_PROMPT in flow.states[state].prompts}
            timed = [ResultTime(state, keys, time_path(dial, keys, False),
                           time_path(dial, keys, True)) for state, keys in found.items()]
        estimated = {state: time_path(dial, keys, False) for state, keys in found.items()}
        app.extensions["ivr12333"].db.dispose()
        report = [f"{'result':<18} {'keys':<44} {'listening':>9} {'keying ahead':>12} "
                  f"{'(estimate)':>10}"]
        for t in sorted(timed, key=lambda t: (len(t.keys), t.listening)):
            report.append(f"{t.state:<18} {' '.join(t.keys):<44} {t.listening:>8.1f}s "
                          f"{t.keying_ahead:>11.1f}s {estimated.get(t.state, 0):>9.1f}s")
        text = ("seconds from the answer to the first word of each result, along the fewest "
                "keys (demo person 1; real audio durations; estimate: the simulator's "
                "per-character guess)\n" + "\n".join(report) + "\n")
        (folder / "results.txt").write_text(text, encoding="utf-8")
        out.print(text, markup=False, highlight=False)
    finally:
        lines.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0
