"""The documents live in the repository (docs/) and a clone stands on its own.

- No tracked file points outside the repository: not to the old spec folder beside it, and
  not to an absolute path of the machine the project was written on (see OUTSIDE).
- Every relative link in README.md and docs/*.md resolves to a file or folder of the repository.
- docs/dataset-example.json imports cleanly into a fresh SQLite file.
- docs/call-flow.md names every state of state_machines/hotline.yaml.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from servers import keyring_of_tests

from ivr.dataset.importer import import_dataset, load_file
from ivr.store.schema import ensure_schema, make_engine

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
EXAMPLE = DOCS / "dataset-example.json"
MARKDOWN = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

# Spelled in pieces so that this file does not match its own patterns. The last alternative
# catches the old spec folder however a path to it is built (with `/` between the quoted parts).
_UP = re.escape("..")
OUTSIDE = re.compile(_UP + r"/shared\b|(?<![\w.~/-])/" + "work" + r"/"
                     + r"|\bshared[\"']?\s*/\s*[\"']?" + "spec" + r"\b")

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def tracked_files() -> list[Path]:
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                              check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    return [REPO / name for name in done.stdout.decode("utf-8").split("\0") if name]


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert offenders == [], "\n".join(offenders)


def test_the_outside_pattern_catches_what_it_should() -> None:
    up, root, spec = "..", "/" + "work", "spec"
    assert OUTSIDE.search(f"see {up}/shared/{spec}/call-flow.md")
    assert OUTSIDE.search(f'Path("{root}/shared/{spec}/dataset-example.json")')
    assert OUTSIDE.search(f"cd {root}/wt/docs")
    assert OUTSIDE.search('EXAMPLE = REPO.parent / "shared" / "' + 'spec" / "x.json"')
    assert not OUTSIDE.search("see docs/call-flow.md, https://example.com/work/x, network/x")


def links(path: Path) -> list[str]:
    """The link targets of a markdown file, code blocks and code spans left out."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return _INLINE_LINK.findall(text) + _REFERENCE.findall(text)


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if _SCHEME.match(target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        relative = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (doc.parent / relative).resolve()
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
    assert broken == [], f"{doc.relative_to(REPO)}: " + ", ".join(broken)


def test_the_docs_are_linked_from_their_index() -> None:
    index = set(links(DOCS / "README.md"))
    pages = {p.name for p in DOCS.iterdir() if p.is_file() and p.name != "README.md"}
    assert pages - index == set()


def test_dataset_example_imports_into_a_fresh_sqlite_file(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/docs.sqlite3")
    try:
        ensure_schema(engine)
        report = import_dataset(engine, load_file(EXAMPLE), keyring=keyring_of_tests())
    finally:
        engine.dispose()
    assert (report.people, report.bindings, report.transactions) == (8, 5, 6)
    assert report.region == "450100"


def test_call_flow_names_every_state() -> None:
    flow = yaml.safe_load((REPO / "state_machines" / "hotline.yaml").read_text("utf-8"))
    states = [s if isinstance(s, str) else s["name"] for s in flow["states"]]
    text = (DOCS / "call-flow.md").read_text(encoding="utf-8")
    missing = [s for s in states if f"`{s}`" not in text]
    assert missing == []
