"""Layering: every import in every file (function-local ones included) against the rule of its
layer, as each folder's README states it. Only ivr/web/ imports flask or twilio, and only
ivr/web/twiml.py builds TwiML; the simulator knows nothing of the hotline."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IVR = ROOT / "ivr"
WEB_ONLY = ("flask", "twilio", "werkzeug", "granian")
BASE = ("ivr.errors", "ivr.settings", "ivr.resources")
#: generic helpers of this project that any layer may use
SHARED = ("schemacheck",)

#: layer -> what its modules may import from this project (prefixes of module names)
ALLOWED: dict[str, tuple[str, ...]] = {
    "ivr.__init__": (),
    "ivr.errors": (),
    "ivr.settings": ("ivr.errors",),
    "ivr.resources": ("ivr.errors",),
    # from the floor up: store < domain < dataset, engine < web < tools; nothing imports upwards
    "ivr.store": ("ivr.errors", "ivr.store"),
    "ivr.domain": (*BASE, "ivr.store", "ivr.domain"),
    "ivr.dataset": (*BASE, "ivr.store", "ivr.domain", "ivr.dataset"),
    "ivr.engine": (*BASE, *SHARED, "ivr.store", "ivr.domain", "ivr.engine"),
    "ivr.web": (*BASE, "ivr.store", "ivr.domain.pinkeys", "ivr.engine", "ivr.web"),
    "ivr.tools": ("ivr", "simulator", *SHARED),
    "simulator": ("simulator", *SHARED),
    "schemacheck": (),
}
PROJECT = ("ivr", "simulator", *SHARED)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path, where: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement, nested ones included; relative
    ones resolved as if the file were the module `where` (default: where it is)."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    # one level up from ivr/web/voice.py is ivr.web; from ivr/web/__init__.py too
    package = where or ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: -node.level]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> str:
    if module == "ivr":
        return "ivr.__init__"
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to ALLOWED and a README")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(path: Path, module: str | None = None) -> list[str]:
    """Every import of `path` that its layer's rule forbids."""
    where = module
    module = module or module_name(path)
    layer = layer_of(module)
    found = []
    for line, name in imports(path, where):
        top = name.split(".")[0]
        if top in WEB_ONLY and layer not in ("ivr.web", "ivr.tools", "simulator"):
            found.append(f"{module}:{line}: {name} (only ivr.web may use the web)")
        elif top in PROJECT and name != "ivr" and not _within(name, ALLOWED[layer]):
            found.append(f"{module}:{line}: {name} (not allowed in {layer})")
    return found


def _files() -> list[Path]:
    files = sorted([*IVR.rglob("*.py"), *(ROOT / "simulator").rglob("*.py"),
                    *(ROOT / "schemacheck").rglob("*.py")])
    assert len(files) > 30
    return files


def test_every_import_keeps_to_its_layer() -> None:
    offenders = [v for path in _files() for v in violations(path)]
    assert offenders == []


def test_every_layer_states_its_rule_in_a_readme() -> None:
    folders = sorted({p.parent for p in IVR.rglob("*.py") if p.parent != IVR})
    missing = [str(f.relative_to(ROOT)) for f in folders
               if "_data" not in f.parts and "demo" not in f.parts
               and not (f / "README.md").is_file()]
    assert missing == []
    for folder in ("store", "domain", "dataset", "engine", "web", "tools"):
        text = (IVR / folder / "README.md").read_text(encoding="utf-8")
        assert "may import" in text and "never" in text, folder


@pytest.mark.parametrize("code, where", [
    ("def handler():\n    import flask\n", "ivr.engine.model"),
    ("def later():\n    from ivr.web import create_app\n", "ivr.engine.hotline"),
    ("from ..tools import cli\n", "ivr.domain.accounts"),
    ("import ivr.engine.flow\n", "simulator.call"),
    ("from ivr.dataset import synthetic\n", "ivr.domain.accounts"),
    ("from ivr.domain import accounts\n", "ivr.store.schema"),
    ("from ivr.engine import flow\n", "ivr.dataset.importer"),
])
def test_the_check_fails_on_a_forbidden_import_anywhere(tmp_path: Path, code: str,
                                                        where: str) -> None:
    """A function-local `import flask` in the engine, a late import of the web, a relative
    import of the tools, the hotline in the simulator: each is caught."""
    copy = tmp_path / "mod.py"
    copy.write_text(code, encoding="utf-8")
    found = violations(copy, where)
    assert found and all(f.startswith(where + ":") for f in found), found


def test_only_ivr_web_twiml_builds_twiml() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _files() if path != IVR / "web" / "twiml.py"
        for line, module in imports(path)
        if module == "twilio.twiml" or module.startswith("twilio.twiml.")
    ]
    assert offenders == []


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)


def test_no_module_outside_ivr_web_loads_flask_or_twilio_at_import() -> None:
    """Every ivr module but ivr.web imported together: the web stays out (the tools reach for
    it only inside the commands that serve or call)."""
    names = sorted(module_name(p) for p in IVR.rglob("*.py") if "web" not in p.parts)
    assert "ivr.engine.flow" in names and "ivr.tools.cli" in names
    result = _run(
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {WEB_ONLY!r})\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr


def test_no_import_runs_back_up_a_layer() -> None:
    """The imports actually made between ivr's layers form no cycle: the graph of
    layer -> layers it imports has an order (store at the bottom, tools at the top)."""
    graph: dict[str, set[str]] = {}
    for path in _files():
        here = layer_of(module_name(path))
        for _line, name in imports(path):
            if name.split(".")[0] in PROJECT and name != "ivr":
                there = layer_of(name)
                if there != here:
                    graph.setdefault(here, set()).add(there)
    assert graph["ivr.domain"] >= {"ivr.store"} and graph["ivr.dataset"] >= {"ivr.domain"}
    order: list[str] = []
    done: set[str] = set()

    def visit(layer: str, path: tuple[str, ...]) -> None:
        assert layer not in path, " -> ".join((*path, layer))
        if layer not in done:
            for below in sorted(graph.get(layer, ())):
                visit(below, (*path, layer))
            done.add(layer)
            order.append(layer)

    for layer in sorted(graph):
        visit(layer, ())
    assert order.index("ivr.store") < order.index("ivr.domain") < order.index("ivr.dataset")
