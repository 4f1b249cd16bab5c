"""Issue 22's "done when": a busy Monday morning, generated from a seeded random.Random as one
scenario (many callers, each from its own number, and two agents taking caller after caller on
one virtual clock), played in-process against the real app, then the call records, the report
and `ivr12333 staffing` read back. Where the design fixes a figure it is asserted exactly; where
timing decides (who is answered, how fast), plausibly."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from click.testing import CliRunner
from conftest import play_script
from sqlalchemy import create_engine

from ivr.domain.measures import build
from ivr.tools.cli import main

AT = "2026-11-23T09:00:00+08:00"  # a Monday, staffed 09:00-12:00
CALLERS = 160
ARRIVALS_OVER = 80 * 60  # seconds: the callers arrive over 80 minutes
AGENTS = (("1001", "246810"), ("1002", "135791"))  # the demo dataset's agents
AGENTS_START = 150  # seconds: the agents log in once the first patient callers wait
CALLS_PER_AGENT = 18  # each agent takes this many callers, then hangs up
MAX_PATIENCE = 540  # below the region's max_queue_wait (600 s): nobody times out
PATHS = ("fraud", "patient", "impatient", "menu_hangup")
SHARES = (0.30, 0.40, 0.15, 0.15)


def _caller(path: str, rng: random.Random) -> list[Any]:
    """A caller's steps for a designed path (Mandarin: 1 at the welcome)."""
    if path == "fraud":  # main 4 (policy), 3 (fraud warning), then hang up: self-served
        return [{"press": "1"}, {"press": "4"}, {"press": "3"},
                {"expect_prompt": "policy_fraud"}, "hangup"]
    if path == "menu_hangup":  # hangs up at the main menu: a menu abandon
        return [{"press": "1"}, "hangup"]
    # 0 for an agent; then on hold (queue, then the agent's room) for `patience` seconds in
    # all, and the caller hangs up: answered if an agent took them by then, else abandoned
    patience = (rng.randint(240, MAX_PATIENCE) if path == "patient" else rng.randint(8, 40))
    return [{"press": "1"}, {"press": "0"}, {"expect_prompt": "agent_connecting"},
            {"wait": patience}]


def _agent(n: int, agent_id: str, pin: str) -> dict[str, Any]:
    """Log in, then caller after caller: on hold in the room until the caller hangs up (longer
    than any caller's patience), back at the agent menu, 1 for the next one."""
    steps: list[Any] = [{"expect_prompt": "agent_id_entry"}, {"press": f"{agent_id}#"},
                        {"press": f"{pin}#"}, {"expect_dial": "conference:"}]
    for _ in range(CALLS_PER_AGENT - 1):
        steps += [{"wait": 600}, {"expect_prompt": "agent_menu"}, {"press": "1"},
                  {"expect_dial": "conference:"}]
    steps += [{"wait": 600}, {"expect_prompt": "agent_menu"}]
    return {"name": f"agent {agent_id}", "from": f"+8677112309{n:02d}", "url": "/agent",
            "start": AGENTS_START, "steps": steps}


def _morning(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """The scenario and each caller's path. The first callers are patient ones, so the agents
    find callers waiting when they log in."""
    paths = ["patient"] * 6 + rng.choices(PATHS, SHARES, k=CALLERS - 6)
    starts = sorted(rng.uniform(0, ARRIVALS_OVER) for _ in range(CALLERS - 6))
    starts = [i * 15 for i in range(6)] + [round(s, 1) for s in starts]
    calls = [{"name": f"caller {i} ({path})", "from": f"+86138{i:08d}", "start": start,
              "steps": _caller(path, rng)}
             for i, (path, start) in enumerate(zip(paths, starts, strict=True))]
    calls += [_agent(n, agent_id, pin) for n, (agent_id, pin) in enumerate(AGENTS)]
    return {"name": "a busy Monday morning", "at": AT, "calls": calls}, paths


def test_a_busy_morning_gives_the_figures_its_design_implies(
        app_factory: Callable[..., Any], db_url: str, tmp_path: Path) -> None:
    scenario, paths = _morning(random.Random(12333))
    script = tmp_path / "busy_morning.yaml"
    script.write_text(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False),
                      encoding="utf-8")
    result = play_script(app_factory, script)
    assert result.passed, str(result)[:4000]

    design = Counter(paths)
    queued = design["patient"] + design["impatient"]
    zone = ZoneInfo("Asia/Shanghai")
    day = datetime(2026, 11, 23, tzinfo=zone)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            report = build(conn, day, day + timedelta(days=1), zone)
    finally:
        engine.dispose()
    total = report.total
    # fixed by the design
    assert total.offered == CALLERS  # the agents' calls are not offered
    assert total.self_served == design["fraud"]
    assert total.outcomes["abandoned_menu"] == design["menu_hangup"]
    assert total.queue_offered == queued
    assert total.timed_out == 0 and total.left_by_key == 0
    assert total.answered + total.abandoned == queued
    assert total.answered == len(AGENTS) * CALLS_PER_AGENT  # the queue never ran dry
    callers = [r for r in report.rows if r["line"] == "caller"]
    assert Counter(r["detail"] for r in callers if r["outcome"] == "self_served") \
        == {"policy_fraud": design["fraud"]}
    # decided by timing
    assert total.service_level is not None and 0 < total.service_level < 1
    assert total.asa is not None and 0 < total.asa < MAX_PATIENCE
    assert total.aht is not None and 0 < total.aht < MAX_PATIENCE
    assert total.occupancy is not None and 0.5 < total.occupancy <= 1
    assert sum(h.offered for h in report.half_hours) == CALLERS
    busy = [h for h in report.half_hours if h.offered]
    assert len(busy) >= 3  # 80 minutes of arrivals from 09:00

    runner = CliRunner()
    page, records = tmp_path / "report.html", tmp_path / "records.csv"
    out = runner.invoke(main, ["report", "--database-url", db_url, "--from", "2026-11-23",
                               "--to", "2026-11-23", "-o", str(page), "--csv", str(records)])
    assert out.exit_code == 0, out.output
    assert f"{CALLERS} calls offered from 2026-11-23 to 2026-11-23" in out.output
    assert f"wrote {records}: {CALLERS + len(AGENTS)} call records" in out.output

    out = runner.invoke(main, ["staffing", "--database-url", db_url, "--from", "2026-11-23",
                               "--to", "2026-11-23"])
    assert out.exit_code == 0, out.output
    assert "Erlang C: callers never give up" in out.output
    assert "Erlang A" in out.output
    planned = {}
    for line in out.output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and re.fullmatch(r"\d\d:\d\d", cells[0]):
            planned[cells[0]] = cells[1:]
    # the half hours of the morning: the callers who asked for an agent, and agents for both
    asked = Counter(f"{datetime.fromtimestamp(r['started_at'], zone):%H}:"
                    f"{datetime.fromtimestamp(r['started_at'], zone).minute // 30 * 30:02d}"
                    for r in callers if r["queue_wait"] is not None)
    for half, count in asked.items():
        assert planned[half][0] == str(count), (half, planned[half])
        assert int(planned[half][1]) >= 1 and int(planned[half][3]) >= 1
