"""Layering: the hotline knows nothing of the web. Only ivr/web/ imports flask or twilio, and
only ivr/web/twiml.py builds TwiML; the engine, flow and session model load without them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IVR = ROOT / "ivr"
WEB = IVR / "web"
WEB_ONLY = ("flask", "twilio", "werkzeug")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement, nested ones included."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    # ivr/web/voice.py -> ivr.web.voice; ivr/web/__init__.py -> ivr.web.__init__ (so that
    # one level up is the module's package in both cases)
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
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


def _modules(folder: Path) -> list[Path]:
    files = sorted(folder.rglob("*.py"))
    assert files, folder
    return files


def test_the_scanner_sees_the_web_imports() -> None:
    names = {m for _, m in _imports(WEB / "voice.py")}
    assert "flask" in names
    assert "twilio.request_validator" in names
    assert "ivr.engine" in names  # `from ..engine import Engine`, resolved
    assert "twilio.twiml.voice_response" in {m for _, m in _imports(WEB / "twiml.py")}


def test_no_module_outside_ivr_web_imports_flask_or_twilio() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _modules(IVR) if WEB not in path.parents
        for line, module in _imports(path)
        if module.split(".")[0] in WEB_ONLY
    ]
    assert offenders == []


def test_only_ivr_web_twiml_builds_twiml() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _modules(IVR) + _modules(ROOT / "simulator") if path != WEB / "twiml.py"
        for line, module in _imports(path)
        if module == "twilio.twiml" or module.startswith("twilio.twiml.")
    ]
    assert offenders == []


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)


def test_engine_flow_and_hotline_load_without_flask_or_twilio() -> None:
    result = _run(
        "import ivr.engine, ivr.flow, ivr.hotline, sys; "
        "assert not any(m.split('.')[0] in ('flask','twilio') for m in sys.modules)"
    )
    assert result.returncode == 0, result.stderr


def test_no_module_outside_ivr_web_loads_flask_or_twilio_at_import() -> None:
    """Every ivr module but ivr.web imported together: the web stays out (cli and callcmd
    reach for it only inside the commands that serve or call)."""
    names = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in _modules(IVR) if WEB not in p.parents
    )
    assert "ivr.engine" in names and "ivr.cli" in names
    result = _run(
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {WEB_ONLY!r})\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr
