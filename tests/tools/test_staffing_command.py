"""`ivr12333 staffing`: agents per half hour, Erlang C and A side by side, from a CSV of
arrivals or from the call records, with the assumptions printed."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from ivr.tools.cli import main


def _rows(output: str) -> dict[str, list[str]]:
    """The table's rows by half hour (rich draws them with │ between cells)."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and re.fullmatch(r"\d\d:\d\d", cells[0]):
            found[cells[0]] = cells[1:]
    return found


def test_agents_per_half_hour_from_a_csv(runner: CliRunner, tmp_path: Path) -> None:
    arrivals = tmp_path / "arrivals.csv"
    arrivals.write_text("start,calls\n09:00,100\n09:30,600\n10:00,0\n", encoding="utf-8")
    result = runner.invoke(main, ["staffing", "--arrivals", str(arrivals), "--aht", "240",
                                  "--patience", "120", "--no-simulate"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["09:30"] == ["600", "87", "81.1 %", "79", "81.9 %", "5.9 %"]
    assert rows["10:00"] == ["0", "0", "100.0 %", "0", "100.0 %", "0.0 %"]
    assert rows["09:00"][0] == "100"
    assert "Erlang C: callers never give up" in result.output
    assert "AHT 240 s; mean patience 120 s; target 80 % answered within 20 s" in result.output


def test_a_bad_arrivals_file_is_named_with_its_line(runner: CliRunner, tmp_path: Path) -> None:
    arrivals = tmp_path / "arrivals.csv"
    arrivals.write_text("09:00,100\n09:15,3\n", encoding="utf-8")
    result = runner.invoke(main, ["staffing", "--arrivals", str(arrivals), "--aht", "240",
                                  "--patience", "120"])
    assert result.exit_code == 2
    assert f"{arrivals}:2: expected HH:MM (on the hour or half past),calls" in result.output


def test_either_records_or_a_file(runner: CliRunner) -> None:
    result = runner.invoke(main, ["staffing", "--from", "2026-11-23"])
    assert result.exit_code == 2
    assert "give either --from DAY --to DAY (the call records) or --arrivals" in result.output
