"""Draw a flow (state_machines/hotline.yaml) as a graphviz diagram that reads at a glance.

Everything is derived from the `Flow` object: states, their kinds (menu, number entry,
pass-through, dial, hang-up) and transitions. Two things keep the picture small:

* Conventions. A transition shared by many states (`* 9 0`, silence, invalid: the YAML lists
  them with the x-menus / x-gathering anchors) is drawn once, from one "every menu" node,
  instead of one arrow per menu. A state's own transition that does what the convention does
  (9 in the main menu repeats it, which is where 9 leads anyway) joins the convention.
* Merging. All transitions between the same two states are one arrow whose label groups the
  keys by condition: ``1, 2, 3 [not may_retry]``. An unguarded transition that follows guarded
  ones for the same key is the fallback and reads ``[else]``.

The DOT source is a pure function of the flow: this module writes it in YAML order, with no
paths, dates or versions in it. Its sha256 is written into the SVG as a comment, so a stale
picture is found without comparing graphviz's output bytes (they vary with its version and
fonts).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz

from ivr.engine.flow import KEY_TRIGGERS, Flow, StateSpec

#: a transition (same key, destination and condition) from this many states or more is a
#: convention of every menu, drawn once; `conventions=True` draws it from every state instead
CONVENTION_SOURCES = 4

#: Styling hints: clusters seeded by state names, each growing to every state its seeds
#: dominate (reached only through them). A name the flow lacks is skipped; a state in no
#: cluster is drawn loose. Nothing else depends on state names.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("verification: password", ("password", "verification_failed")),
    ("verification: ID or card", ("verify_method",)),
    ("results (verified callers)", ("balance", "pool", "transactions")),
    ("policy: family mutual-aid items", ("policy_pool",)),
    ("policy information", ("policy",)),
    ("the agents' line (/agent)", ("agent_line",)),
)

FINGERPRINT_RE = re.compile(r"<!-- ivr12333 call-flow dot-sha256: ([0-9a-f]{64}) -->")

_KEYS = {trigger: key for key, trigger in KEY_TRIGGERS.items()}
_FONT = "Helvetica"
_STYLE: dict[str, dict[str, str]] = {
    "menu": {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbe9f6"},
    "number": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fdf1c7"},
    "pass": {"shape": "box", "style": "filled", "fillcolor": "white"},
    "dial": {"shape": "box", "style": "rounded,filled", "fillcolor": "#d5f0d5"},
    "hangup": {"shape": "box", "style": "rounded,filled", "fillcolor": "#eeeeee",
               "peripheries": "2"},
    "convention": {"shape": "note", "style": "filled,dashed", "fillcolor": "#f4ecf7"},
}


class _Html(str):
    """An HTML-like label, written between < > instead of quotes."""


def _quote(text: str) -> str:
    """A DOT string: quoted, newlines as \\n; an _Html label between < >."""
    if isinstance(text, _Html):
        return f"<{text}>"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Dot:
    """Writes DOT text itself, so the source (and its fingerprint) depends on nothing but the
    flow and this module, not on the graphviz package's formatting."""

    def __init__(self, name: str) -> None:
        self.lines = [f"digraph {_quote(name)} {{"]
        self.depth = 1

    def _line(self, text: str, attrs: dict[str, str]) -> None:
        body = " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())
        self.lines.append("\t" * self.depth + (f"{text} [{body}]" if body else text))

    def attr(self, kind: str, **attrs: str) -> None:
        self._line(kind, attrs)

    def node(self, name: str, **attrs: str) -> None:
        self._line(_quote(name), attrs)

    def edge(self, tail: str, head: str, **attrs: str) -> None:
        self._line(f"{_quote(tail)} -> {_quote(head)}", attrs)

    def open(self, name: str, **attrs: str) -> None:
        self._line(f"subgraph {_quote(name)} {{", {})
        self.depth += 1
        self.attr("graph", **attrs)

    def close(self) -> None:
        self.depth -= 1
        self._line("}", {})

    def source(self) -> str:
        return "\n".join([*self.lines, "}", ""])


def trigger_label(trigger: str) -> str:
    """How a trigger reads on an arrow: the key itself, `number#`, or the engine's event."""
    if trigger in _KEYS:
        return _KEYS[trigger]
    return {"entered": "number#", "next": ""}.get(trigger, trigger)


def _sources(flow: Flow, transition: dict[str, Any]) -> list[str]:
    src = transition.get("source")
    if src == "*":
        return list(flow.states)
    return [src] if isinstance(src, str) else [str(s) for s in src or ()]


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@dataclass(frozen=True)
class Edge:
    """One transition from one state; `dest` None stays in the state (YAML `=`)."""

    source: str
    trigger: str
    dest: str | None
    guard: str  # "" or the condition text, without brackets

    def target(self, state: str) -> str:
        return state if self.dest is None else self.dest


@dataclass
class Convention:
    """A transition shared by many states, drawn once from a convention node."""

    trigger: str
    dest: str | None
    guard: str
    sources: list[str] = field(default_factory=list)


def expand(flow: Flow) -> list[Edge]:
    """Every transition from every source, in YAML order, with its guard spelled out."""
    edges: list[Edge] = []
    guarded: set[tuple[str, str]] = set()  # (state, trigger) with a guarded transition so far
    for t in flow.transitions:
        conds = _names(t.get("conditions")) + [f"not {u}" for u in _names(t.get("unless"))]
        if t.get("when_target"):  # leaving verification for where the caller was going
            conds.insert(0, f"going to {t['when_target']}")
        dest = t.get("dest")
        for s in _sources(flow, t):
            key = (s, str(t["trigger"]))
            guard = " and ".join(conds) if conds else ("else" if key in guarded else "")
            if conds:
                guarded.add(key)
            edges.append(Edge(s, key[1], None if dest in (None, "=") else str(dest), guard))
    return edges


def split_conventions(edges: list[Edge]) -> tuple[list[Convention], list[Edge]]:
    """The conventions (shared by CONVENTION_SOURCES states or more) and the other edges."""
    groups: dict[tuple[str, str | None, str], Convention] = {}
    for e in edges:
        groups.setdefault((e.trigger, e.dest, e.guard),
                          Convention(e.trigger, e.dest, e.guard)).sources.append(e.source)
    conventions = [c for c in groups.values() if len(c.sources) >= CONVENTION_SOURCES]
    # a note that would only say "stays" (its states share nothing else) is no note: each
    # state keeps its own loop (the agents' states and the region menu: silence said again)
    leading = {frozenset(c.sources) for c in conventions if c.dest is not None}
    conventions = [c for c in conventions
                   if c.dest is not None or frozenset(c.sources) in leading]
    members = {(s, c.trigger, c.dest, c.guard) for c in conventions for s in c.sources}
    rest: list[Edge] = []
    for e in edges:
        if (e.source, e.trigger, e.dest, e.guard) in members:
            continue
        same = next((c for c in conventions if c.trigger == e.trigger and c.guard == e.guard
                     and c.dest is not None and e.target(e.source) == c.dest), None)
        if same is not None and e.source not in same.sources:
            same.sources.append(e.source)  # e.g. 9 in the main menu: it leads there anyway
        else:
            rest.append(e)
    return conventions, rest


def _label(pairs: Iterable[tuple[str, str]]) -> str:
    """(trigger, guard) pairs as lines `1, 2 [guard]`, one line per guard, in order."""
    by_guard: dict[str, list[str]] = {}
    for trigger, guard in pairs:
        keys = by_guard.setdefault(guard, [])
        if trigger_label(trigger) not in keys:
            keys.append(trigger_label(trigger))
    lines = []
    for guard, keys in by_guard.items():
        lines.append(", ".join(k for k in keys if k))
        if guard:
            lines[-1] += f"\n[{guard}]"
    return "\n".join(line.strip() for line in lines if line)


def kind(spec: StateSpec) -> str:
    if spec.gather:
        return spec.gather
    if spec.dial or spec.enqueue or spec.conference:  # to an agent: dialled, queued, bridged
        return "dial"
    return "hangup" if spec.hangup else "pass"


def _convention_title(flow: Flow, sources: list[str]) -> str:
    specs = [flow.states[s] for s in sources]
    if all(sp.gather == "menu" for sp in specs):
        word, base = "menu", [s for s, sp in flow.states.items() if sp.gather == "menu"]
    elif all(sp.gather for sp in specs):
        word, base = "menu or number entry", [s for s, sp in flow.states.items() if sp.gather]
    else:
        word, base = "state", list(flow.states)
    missing = [s for s in base if s not in sources]
    if not missing:
        return f"in every {word}"
    if len(missing) <= 4:
        return f"in every {word}\nexcept {', '.join(missing)}"
    return "in " + ",\n".join(", ".join(sources[i:i + 3]) for i in range(0, len(sources), 3))


def dominators(flow: Flow, edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """For each state reachable from the initial one over `edges`: the states every path to
    it passes through (itself included)."""
    preds: dict[str, list[str]] = {s: [] for s in flow.states}
    succs: dict[str, list[str]] = {s: [] for s in flow.states}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    roots = [flow.initial, *(s for s in flow.entries.values() if s != flow.initial)]
    reach, todo = list(roots), list(roots)
    while todo:
        for b in succs[todo.pop()]:
            if b not in reach:
                reach.append(b)
                todo.append(b)
    dom = {s: set(reach) for s in reach}
    for root in roots:  # where a call starts: nothing before it
        dom[root] = {root}
    changed = True
    while changed:
        changed = False
        for s in reach[len(roots):]:
            new = set.intersection(*(dom[p] for p in preds[s] if p in dom)) | {s}
            if new != dom[s]:
                dom[s], changed = new, True
    return dom


def sections(flow: Flow, edges: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """The SECTIONS clusters for this flow: seeds it has, plus the states they dominate."""
    dom = dominators(flow, edges)
    taken: set[str] = set()
    out = []
    for title, seeds in SECTIONS:
        present = [s for s in seeds if s in flow.states and s != flow.initial]
        members = [s for s in flow.states if s not in taken and (
            s in present or (s in dom and any(p in dom[s] for p in present)))]
        if members:
            taken.update(members)
            out.append((title, members))
    return out


def dot_source(flow: Flow, *, conventions: bool = False) -> str:
    """The DOT source of the diagram: a pure function of the flow.

    `conventions=True` draws the shared transitions from every state (one arrow per menu)
    instead of once from a convention node.
    """
    edges = expand(flow)
    shared, rest = ([], edges) if conventions else split_conventions(edges)
    clustered = sections(flow, [(e.source, e.target(e.source)) for e in edges])
    cluster_of = {s: i for i, (_, members) in enumerate(clustered) for s in members}

    # one arrow per (from, to), in order of first appearance
    arrows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for e in rest:
        arrows.setdefault((e.source, e.target(e.source)), []).append((e.trigger, e.guard))
    notes: dict[frozenset[str], str] = {}
    note_members: dict[str, list[str]] = {}
    for c in shared:
        node = notes.setdefault(frozenset(c.sources), f"every_{len(notes) + 1}")
        note_members.setdefault(node, c.sources)
        arrows.setdefault((node, c.dest or node), []).append((c.trigger, c.guard))

    g = _Dot(flow.name)
    g.attr("graph", rankdir="TB", compound="true", newrank="true", nodesep="0.15",
           ranksep="0.3", fontname=_FONT, labelloc="t", labeljust="c",
           label=_legend(flow.name, notes=bool(shared)))
    g.attr("node", fontname=_FONT, fontsize="12", margin="0.1,0.04", height="0.3")
    g.attr("edge", fontname=_FONT, fontsize="9", arrowsize="0.7", color="#555555")

    g.node("_start", label="", shape="circle", style="filled", fillcolor="black",
           width="0.15", height="0.15")
    g.edge("_start", flow.initial, label=" call")
    for n, (entry, state) in enumerate(flow.entries.items(), start=1):  # another way in
        g.node(f"_start_{n}", label="", shape="circle", style="filled", fillcolor="black",
               width="0.15", height="0.15")
        g.edge(f"_start_{n}", state, label=f" {entry} call")
    for i, (title, members) in enumerate(clustered):
        g.open(f"cluster_{i}", label=title, labeljust="l", style="rounded,filled",
               color="#bbbbbb", fillcolor="#fafafa", fontsize="12", fontcolor="#444444")
        for s in members:
            g.node(s, **_STYLE[kind(flow.states[s])])
        g.close()
    for s, spec in flow.states.items():
        if s not in cluster_of:
            g.node(s, **_STYLE[kind(spec)])
    for node, members in note_members.items():
        # what keeps the caller where they are is said in the note (and drawn as a bare loop)
        stays = _label(arrows.get((node, node), []))
        text = _convention_title(flow, members)
        if stays:
            text += "\n\nstays (said again):\n" + stays.replace("\n[", " [")
        g.node(node, label=text, fontsize="11", **_STYLE["convention"])

    # arrows from one state into one cluster with one shared condition become one arrow to
    # the cluster's border naming where each key leads ("1: balance, 2: pool [verified]")
    into: dict[tuple[str, int, str], list[tuple[str, list[tuple[str, str]]]]] = {}
    for (a, b), pairs in arrows.items():
        guards = {guard for _, guard in pairs}
        if (a in flow.states and b in cluster_of and cluster_of[b] != cluster_of.get(a)
                and len(guards) == 1 and all(t in _KEYS for t, _ in pairs)):
            into.setdefault((a, cluster_of[b], guards.pop()), []).append((b, pairs))
    merged = {(a, b): (i, guard, group) for (a, i, guard), group in into.items()
              if len(group) > 1 for b, _ in group}
    for (a, b), pairs in arrows.items():
        loop = a == b and a in note_members  # said in the note: a bare loop
        attrs: dict[str, str] = {"label": "" if loop else _pad(_label(pairs))}
        if (a, b) in merged:
            i, guard, group = merged[(a, b)]
            if b != group[0][0]:
                continue
            text = "\n".join(f"{', '.join(trigger_label(t) for t, _ in ps)}: {dest}"
                             for dest, ps in group)
            attrs = {"label": _pad(text + (f"\n[{guard}]" if guard else "")),
                     "lhead": f"cluster_{i}"}
            # the cluster is ranked by its other arrivals, if every member has one: the
            # shortcut then does not stretch the picture sideways
            if all(any(y == d and x != a for x, y in arrows) for d, _ in group):
                attrs["constraint"] = "false"
        if a in note_members:
            attrs.update(style="dashed", color="#8e6aa8", fontcolor="#6c4a85")
            if b in note_members[a]:
                attrs["constraint"] = "false"  # back into the menus (9): rank by the rest
        g.edge(a, b, **attrs)
    return g.source()


def _pad(label: str) -> str:
    """A space either side keeps a label off its arrow."""
    return "\n".join(f" {line} " for line in label.split("\n")) if label else ""


def _legend(name: str, *, notes: bool) -> _Html:
    """The title and a key to the colours, as the graph's label (no nodes, no edges)."""
    def swatch(kind_: str, text: str) -> str:
        rounded = "" if kind_ == "pass" else ' style="rounded"'
        return f'<td bgcolor="{_STYLE[kind_]["fillcolor"]}" border="1"{rounded}> {text} </td>'
    return _Html(
        '<table border="0" cellspacing="4" cellpadding="2">'
        f'<tr><td colspan="6"><font point-size="16"><b>12333 {name} call flow</b></font></td></tr>'
        "<tr>"
        + swatch("menu", "menu: one key")
        + swatch("number", "number ended by #")
        + swatch("pass", "passes straight on")
        + swatch("dial", "dials an agent")
        + swatch("hangup", "hangs up")
        + (swatch("convention", "shared by many states") if notes else "")
        + "</tr>"
        '<tr><td colspan="6"><font point-size="10">arrows: key [condition]; '
        "number# = digits ended by #; [else] = none of the other conditions for that key"
        "</font></td></tr></table>"
    )


def fingerprint(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def embedded_fingerprint(svg: str) -> str | None:
    """The fingerprint an SVG written by `draw` carries, or None."""
    found = FINGERPRINT_RE.search(svg)
    return found.group(1) if found else None


def load_flow(path: Path | None = None, prompts: Path | None = None) -> Flow:
    """The flow at `path` with the catalogues in `prompts` (default: the bundled ones)."""
    from ivr.engine.model import CallModel
    from ivr.engine.prompts import Catalogue
    from ivr.resources import data_dir

    return Flow(path or data_dir("state_machines") / "hotline.yaml", CallModel,
                Catalogue.load(prompts or data_dir("prompts")))


def render(source: str, fmt: str) -> bytes:
    """Run dot on `source`; an SVG carries the source's fingerprint as a comment."""
    try:
        data: bytes = graphviz.Source(source).pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound:
        raise RuntimeError("graphviz is not installed (no `dot`): apt-get install graphviz"
                           ) from None
    except graphviz.CalledProcessError as exc:
        raise RuntimeError(f"dot failed: {exc.stderr!r}") from None
    if fmt == "svg":
        text = data.decode("utf-8")
        mark = f"<!-- ivr12333 call-flow dot-sha256: {fingerprint(source)} -->\n"
        at = text.index("<svg")
        data = (text[:at] + mark + text[at:]).encode("utf-8")
    return data


def draw(output: Path, *, conventions: bool = False, flow: Flow | None = None) -> None:
    """Render the flow to `output` (.svg or .png, by its suffix)."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError("the output must end in .svg or .png")
    data = render(dot_source(flow or load_flow(), conventions=conventions), fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
