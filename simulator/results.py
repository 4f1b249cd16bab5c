"""What scripted calls come to: failures people can act on, results, a summary line, and the
transcripts written for their owner only."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from simulator.transcript import Event


@dataclass(frozen=True)
class Failure:
    """Why a call failed: which step, what was expected, what the caller actually heard (the one
    failure of scripted calls and load runs alike)."""

    step_index: int | None  # the step's number (1 = first); None when no single step is at fault
    step: str
    expected: str  # what was expected and did not happen (a load run: what went wrong instead)
    heard: str
    script: str = ""
    path: str = ""
    who: str = ""  # who called, masked (a load run's failures, which keep no transcript)

    @property
    def kind(self) -> str:
        """The failure without the person: what a load run's report groups calls by."""
        return f"{self.step}: {self.expected}"

    @property
    def message(self) -> str:
        """Script, step (number and text), expectation and what was heard, on a few lines."""
        where = "" if self.step_index is None else f" step {self.step_index} ({self.step})"
        heard = self.heard.replace("\n", "\n    ") if self.heard else "(nothing)"
        return (
            f"{self.script} [{self.path}]{where}: expected {self.expected}\n  heard:\n    {heard}"
        )


@dataclass(frozen=True)
class ScriptResult:
    """The outcome of one scripted call."""

    name: str
    path: Path
    passed: bool
    failures: list[Failure]
    transcript: list[Event] = field(default_factory=list)
    transcript_text: str = ""

    def report(self) -> str:
        """`PASS name [path]`, or `FAIL` and the message of each failure."""
        if self.passed:
            return f"PASS {self.name} [{self.path}]"
        return "\n".join(f"FAIL {failure.message}" for failure in self.failures)


def summary(results: Iterable[ScriptResult]) -> str:
    """The last line of a run: `N passed, M failed` (counting scripts)."""
    outcomes = [result.passed for result in results]
    return f"{outcomes.count(True)} passed, {outcomes.count(False)} failed"


def write_transcript(target: Path, text: str) -> None:
    """Write one transcript, readable by its owner only (0600 whatever the umask): what a
    caller typed, ID numbers and passwords among it, is in it. Its folder is created 0700."""
    if not target.parent.exists():
        target.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def write_transcripts(results: Iterable[ScriptResult], directory: str | Path) -> list[Path]:
    """Write one readable transcript file per call into `directory`; returns the files."""
    directory = Path(directory)
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    written: list[Path] = []
    taken: set[str] = set()
    for result in results:
        stem = re.sub(r"[^\w.-]+", "_", result.path.stem) or "call"
        name, number = f"{stem}.txt", 2
        while name in taken:
            name, number = f"{stem}-{number}.txt", number + 1
        taken.add(name)
        target = directory / name
        body = result.transcript_text or "(no call was placed)\n"
        write_transcript(target, f"{body}\n{result.report()}\n")
        written.append(target)
    return written
