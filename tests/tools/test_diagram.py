"""The call-flow diagram: docs/call-flow.svg is current, every state is drawn and connected,
the shared menu keys are drawn once, and dot renders it (graphviz must be installed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.engine.flow import Flow
from ivr.tools import diagram
from ivr.tools.diagram import dot_source, draw, embedded_fingerprint, fingerprint, load_flow

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "state_machines" / "hotline.yaml"
DOCS_SVG = ROOT / "docs" / "call-flow.svg"

NODE = re.compile(r'^\t+"([^"]+)" \[', re.M)
EDGE = re.compile(r'^\t+"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?$', re.M)


def stale(svg: str, flow: Flow) -> str | None:
    """Why `svg` does not show `flow` (a message for the developer), or None if it does."""
    want = fingerprint(dot_source(flow))
    have = embedded_fingerprint(svg)
    if have == want:
        return None
    return (f"docs/call-flow.svg is stale: it shows a flow with fingerprint {have}, "
            f"state_machines/hotline.yaml (and ivr/tools/diagram.py) now give {want}. "
            "Run `make diagram` and commit docs/call-flow.svg.")


def _edges(source: str) -> list[tuple[str, str, str]]:
    return [(a, b, attrs or "") for a, b, attrs in EDGE.findall(source)]


def test_docs_svg_is_current() -> None:
    message = stale(DOCS_SVG.read_text("utf-8"), load_flow(FLOW))
    assert message is None, message


def test_the_staleness_check_fails_when_the_flow_changes(tmp_path: Path) -> None:
    changed = tmp_path / "hotline.yaml"
    changed.write_text(FLOW.read_text("utf-8").rstrip("\n")
                       + "\n  - {trigger: press_8, source: policy, dest: main}\n", "utf-8")
    flow = load_flow(changed)
    assert fingerprint(dot_source(flow)) != fingerprint(dot_source(load_flow(FLOW)))
    message = stale(DOCS_SVG.read_text("utf-8"), flow)
    assert message is not None and "make diagram" in message


def test_an_svg_without_a_fingerprint_is_stale() -> None:
    message = stale('<svg width="10pt"></svg>', load_flow(FLOW))
    assert message is not None and "make diagram" in message


def test_the_source_is_a_pure_function_of_the_flow() -> None:
    here = fingerprint(dot_source(load_flow(FLOW)))
    assert fingerprint(dot_source(load_flow(FLOW))) == here
    code = ("from pathlib import Path; from ivr.tools.diagram import *; "
            f"print(fingerprint(dot_source(load_flow(Path({str(FLOW)!r})))))")
    for seed in ("0", "12345"):  # set and dict order must not leak into the source
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out == here
    assert str(ROOT) not in dot_source(load_flow(FLOW))


@pytest.mark.parametrize("conventions", [False, True])
def test_every_state_is_a_node_reached_by_an_edge(conventions: bool) -> None:
    flow = load_flow(FLOW)
    source = dot_source(flow, conventions=conventions)
    nodes = NODE.findall(source)
    edges = _edges(source)
    assert len(nodes) == len(set(nodes))
    assert [s for s in flow.states if s not in nodes] == []
    # no floating node: each has an edge to or from another node
    linked = {a for a, b, _ in edges if a != b} | {b for a, b, _ in edges if a != b}
    assert [n for n in nodes if n not in linked] == []
    # every state is drawn as reached: an arrow leads into it (the initial one: the call)
    heads = {b for a, b, _ in edges if a != b}
    assert [s for s in flow.states if s not in heads] == []
    assert {a for a, _, _ in edges} | {b for _, b, _ in edges} <= set(nodes)


def test_the_shared_menu_keys_are_drawn_once() -> None:
    source = dot_source(load_flow(FLOW))
    edges = _edges(source)
    into_agent = [(a, attrs) for a, b, attrs in edges if b == "agent"]
    assert len(into_agent) == 1 and 'label=" 0 "' in into_agent[0][1]
    assert into_agent[0][0] not in load_flow(FLOW).states  # from the "every menu" note
    into_main_by_9 = [a for a, b, attrs in edges if b == "main" and 'label=" 9 "' in attrs]
    assert len(into_main_by_9) == 1
    # silence and invalid: replayed in the note, arrows only from the note (but from welcome,
    # and from agent_waiting, where silence means "look for the caller again")
    from_states = [(a, b) for a, b, attrs in edges if "silence" in attrs
                   and a not in ("welcome", "agent_waiting")]
    assert len({a for a, _ in from_states}) == 1
    assert "in every menu\\nexcept welcome" in source


def test_labels_read_as_keys_and_bracketed_conditions() -> None:
    source = dot_source(load_flow(FLOW))
    assert "press_" not in source and "entered" not in source
    labels = dict(((a, b), attrs) for a, b, attrs in _edges(source))
    assert labels[("main", "verification_failed")] == 'label=" 1, 2, 3 \\n [not may_retry] "'
    assert labels[("main", "verify_method")] == 'label=" 1, 2, 3 \\n [else] "'
    assert labels[("id_entry", "id_confirm")] == 'label=" number# \\n [id_well_formed] "'
    assert "[already_verified]" in labels[("main", "balance")]
    assert labels[("welcome", "call_region")] == 'label=" 1, 2, silence, invalid "'
    # the stale picture's mistake: a verified caller's 1 goes to the balance, not is_verified
    assert "is_verified" not in source


def test_without_the_cluster_hints_every_state_is_still_drawn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    flow = load_flow(FLOW)
    monkeypatch.setattr(diagram, "SECTIONS", (("gone", ("no_such_state",)),))
    source = dot_source(flow)
    assert "cluster_" not in source
    assert [s for s in flow.states if s not in NODE.findall(source)] == []


def test_dot_renders_the_diagram_with_its_fingerprint(tmp_path: Path) -> None:
    flow = load_flow(FLOW)
    target = tmp_path / "flow.svg"
    draw(target, flow=flow)
    svg = target.read_text("utf-8")
    assert svg.rstrip().endswith("</svg>")
    assert embedded_fingerprint(svg) == fingerprint(dot_source(flow))
    assert [s for s in flow.states if f">{s}<" not in svg] == []
    assert svg.count('class="edge"') == len(_edges(dot_source(flow)))
    width = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', svg)
    assert width is not None
    # fits a page: the stale picture was 3368pt (4491 px) wide; the callers' flow is about
    # 1050pt, the agents' line (a second way in, /agent) a column beside it, and the family
    # pool's policy items (issue 23 §10) a section of their own, another column
    assert int(width.group(1)) <= 2200, width.group(0)
