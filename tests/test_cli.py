"""The `ivr12333` command: its sub-commands, and `graph` drawing the call flow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ivr.tools.cli import main as cli

FLOW = Path(__file__).resolve().parent.parent / "state_machines" / "hotline.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _states() -> list[str]:
    spec = yaml.safe_load(FLOW.read_text("utf-8"))
    return [s if isinstance(s, str) else s["name"] for s in spec["states"]]


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"^  (\w+)\s", result.output.split("Commands:", 1)[1], re.M))
    assert {"serve", "call", "import", "unlock", "graph", "demo"} <= listed


@pytest.mark.parametrize("command", ["serve", "call", "import", "unlock", "graph", "demo"])
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: main {command}" in result.output or f"{command} [OPTIONS]" in result.output


def test_graph_writes_an_svg_naming_every_state(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "flow.svg"
    result = runner.invoke(cli, ["graph", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    svg = target.read_text("utf-8")
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    for name in ("balance", "agent_dial", "welcome", "goodbye"):
        assert f">{name}<" in svg, name
    missing = [s for s in _states() if f">{s}<" not in svg]
    assert missing == []


def test_graph_all_draws_the_menu_conventions_too(runner: CliRunner, tmp_path: Path) -> None:
    plain, full = tmp_path / "plain.svg", tmp_path / "all.svg"
    assert runner.invoke(cli, ["graph", "-o", str(plain)]).exit_code == 0
    assert runner.invoke(cli, ["graph", "--all", "-o", str(full)]).exit_code == 0
    plain_svg, full_svg = plain.read_text("utf-8"), full.read_text("utf-8")
    # plain: the shared keys once, from an "in every menu" note; --all: from every menu
    assert ">in every menu<" in plain_svg and ">in every menu<" not in full_svg
    assert full_svg.count('class="edge"') > 2 * plain_svg.count('class="edge"')


def test_graph_writes_a_png(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "flow.png"  # the folder is created
    result = runner.invoke(cli, ["graph", "--output", str(target)])
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000


@pytest.mark.parametrize("name", ["flow.gif", "flow", "flow.svg.txt"])
def test_graph_refuses_another_format_without_a_traceback(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    target = tmp_path / name
    result = runner.invoke(cli, ["graph", "-o", str(target)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    assert ".svg or .png" in result.output
    assert "Traceback" not in result.output
    assert not target.exists()


def test_graph_into_an_impossible_place_says_so(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(cli, ["graph", "-o", str(blocker / "flow.svg")])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "cannot draw" in result.output
    assert "Traceback" not in result.output


def test_graph_needs_an_output(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["graph"])
    assert result.exit_code == 2
    assert "--output" in result.output
