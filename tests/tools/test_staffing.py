"""`ivr12333 staffing`: arrivals from a CSV, the two models side by side, bad files named."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from ivr.tools.cli import main


def _run(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    csv = tmp_path / "arrivals.csv"
    csv.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["staffing", "--arrivals", str(csv), *args])
    return result.exit_code, result.output


def test_two_half_hours_with_both_models_and_their_assumptions(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "start,calls\n09:30,600\n09:00,100\n", "--handle-time", "240",
                     "--patience", "120")
    assert code == 0, out
    rows = [line for line in out.splitlines() if re.match(r"│ \d\d:\d\d", line)]
    cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
    assert [c[0] for c in cells] == ["09:00", "09:30"]  # in order of the day
    # 600 calls of 4 min: Erlang C 87, Erlang A 79 agents (the sourced illustration)
    assert (cells[1][1], cells[1][3], cells[1][6], cells[1][10]) == ("600", "87", "79", "-8")
    assert "Erlang C (M/M/N)" in out and "Erlang A (M/M/N+M, Palm)" in out
    assert "mean 120 s" in out and "mean 240 s" in out
    assert "80.0% of calls answered within 20 s" in out and "abandons count as misses" in out


def test_the_target_moves_the_answer(tmp_path: Path) -> None:
    _, loose = _run(tmp_path, "start,calls\n09:00,600\n", "--target", "0.5")
    _, strict = _run(tmp_path, "start,calls\n09:00,600\n", "--target", "0.95")

    def c_agents(out: str) -> int:
        row = next(line for line in out.splitlines() if line.startswith("│ 09:00"))
        return int(row.strip("│").split("│")[3])
    assert c_agents(loose) < 87 < c_agents(strict)


def test_a_broken_file_is_named_with_its_line_and_rule(tmp_path: Path) -> None:
    cases = {
        "begin,calls\n09:00,1\n": "line 1: the header must be exactly `start,calls`",
        "start,calls\n09:15,3\n": "line 2: start '09:15' is not a half hour",
        "start,calls\n09:00,3\n09:00,4\n": "line 3: the half hour 09:00 comes twice",
        "start,calls\n09:00,-3\n": "line 2: calls '-3' is not a whole number",
        "start,calls\n09:00,3,4\n": "line 2: two fields",
        "start,calls\n": "no half hour in it",
    }
    for text, message in cases.items():
        code, out = _run(tmp_path, text)
        assert code == 1 and message in out and "Traceback" not in out, (text, out)
