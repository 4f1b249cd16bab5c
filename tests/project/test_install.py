"""Build the wheel, install it into a folder and use that copy (not the checkout) from elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from servers import key_file_of_tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "dataset-example.json"

PROBE = """
import json, sys
import ivr, ivr.tools.cli
from ivr.resources import data_dir, demo_dataset
print(json.dumps({
    "ivr": ivr.__file__, "cli": ivr.tools.cli.__file__,
    "prompts": str(data_dir("prompts")), "state_machines": str(data_dir("state_machines")),
    "demo": str(demo_dataset()), "version": ivr.__version__,
}))
"""

RUN_CLI = "import sys; from ivr.tools.cli import main; sys.argv[0] = 'ivr12333'; main()"


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.slow
def test_wheel_installs_and_runs_from_elsewhere(tmp_path: Path) -> None:
    wheels, target, work = tmp_path / "wheels", tmp_path / "target", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("IVR_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--no-index", "-q", "-w", str(wheels), str(REPO)], work, env)
    assert built.returncode == 0, built.stderr
    [wheel] = list(wheels.glob("ivr12333-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "ivr/__init__.py" in names
    assert "ivr/dataset/demo/demo.json" in names
    assert "simulator/__init__.py" in names
    # the web phone's page ships with it
    assert {"ivr/tools/phone/index.html", "ivr/tools/phone/phone.js",
            "ivr/tools/phone/phone.css"} <= set(names)
    assert not any(n.startswith("tests/") for n in names)

    installed = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                     "--target", str(target), str(wheel)], work, env)
    assert installed.returncode == 0, installed.stderr
    assert (target / "bin" / "ivr12333").is_file()

    env["PYTHONPATH"] = str(target)
    env["IVR_PIN_KEY_FILE"] = str(key_file_of_tests())  # never the developer's own key file
    probe = run([sys.executable, "-c", PROBE], work, env)
    assert probe.returncode == 0, probe.stderr
    where = {k: Path(v) if k != "version" else v for k, v in json.loads(probe.stdout).items()}
    for key in ("ivr", "cli", "demo"):
        assert Path(where[key]).is_relative_to(target), (key, where[key])
    assert not Path(where["ivr"]).is_relative_to(REPO)
    # the data folders ship inside the package, with every file of the checkout's folders
    for name in ("prompts", "state_machines"):
        folder = Path(where[name])
        assert folder == target / "ivr" / "_data" / name
        assert folder.is_dir()
        assert files_under(folder) == files_under(REPO / name), name

    url = f"sqlite:///{tmp_path}/installed.sqlite3"
    imported = run([sys.executable, "-c", RUN_CLI, "--database-url", url, "import",
                    str(EXAMPLE)], work, env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 8 people, 5 bindings, 6 transactions (region 450100)" in " ".join(
        imported.stdout.split())

    demo = run([sys.executable, "-c", RUN_CLI, "--database-url", url, "demo"], work, env)
    assert demo.returncode == 0, demo.stderr
    assert "imported 9 people, 5 bindings, 8 transactions (region 450100)" in " ".join(
        demo.stdout.split())

    bad = work / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    refused = run([sys.executable, "-c", RUN_CLI, "--database-url", url, "import", str(bad)],
                  work, env)
    assert refused.returncode == 1
    assert "nothing changed" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr
    assert not (work / "ivr").exists()
