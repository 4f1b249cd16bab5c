"""Issue 22's "done when": a busy Monday morning, generated from a seeded random.Random as one
scenario (many callers, each from its own number, and two agents taking caller after caller on
one virtual clock), played in-process against the real app, then the call records, the report
and `ivr12333 staffing` read back. Where the design fixes a figure it is asserted exactly; where
timing decides (who is answered, how fast), plausibly."""

from __future__ import annotations

import json
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

from ivr.domain.measures import build, per_agent
from ivr.resources import demo_dataset
from ivr.tools.cli import main

SEED = 12333
AT = "2026-11-23T09:00:00+08:00"  # a Monday, staffed 09:00-12:00
CALLERS = 200
ARRIVALS_OVER = 90 * 60  # seconds: the callers arrive over 90 minutes
#: the demo dataset's two agents and a third, added by the scenario's own dataset
AGENTS = (("1001", "246810"), ("1002", "135791"), ("1003", "975310"))
FIRST = 3  # callers per agent who ask for an agent before anybody else calls
FIRST_GAP = 5  # seconds between those first callers
AGENTS_START = 25  # seconds: the agents call in as the first callers join the queue
CALLS_PER_AGENT = 15  # each agent takes this many callers, then hangs up
MAX_QUEUE_WAIT = 600  # the demo region's max_queue_wait
ANNOUNCE_EVERY = 45  # limits.queue_announce_every: the longest wait is told at an announcement
PATHS = ("fraud", "patient", "impatient", "menu_hangup")
SHARES = (0.30, 0.40, 0.15, 0.15)
PATIENT_EXTRA = (45, 150)  # a patient caller holds on this much longer than the line holds
AGENT_HOLD = 900  # an agent's wait in the room: longer than any caller's whole hold
OPERATOR_TOKEN = "busy-morning-operator-token"
SUPERVISOR_TOKEN = "busy-morning-supervisor-token"


def _caller(path: str, rng: random.Random) -> list[Any]:
    """A caller's steps for a designed path (Mandarin: 1 at the welcome)."""
    if path == "fraud":  # main 4 (policy), 3 (fraud warning), then hang up: self-served
        return [{"press": "1"}, {"press": "4"}, {"press": "3"},
                {"expect_prompt": "policy_fraud"}, "hangup"]
    if path == "menu_hangup":  # hangs up at the main menu: a menu abandon
        return [{"press": "1"}, "hangup"]
    if path == "impatient":  # 0, then hangs up within seconds, always behind a long queue
        return [{"press": "1"}, {"press": "0"}, {"expect_prompt": "agent_connecting"},
                {"wait": rng.randint(8, 40)}]
    # patient: 0, then on hold (the queue, then the agent's room) for longer than the line
    # holds anybody in the queue; hangs up in the room (the room ends, the agent is back at the
    # agent menu), or hears the line is busy at the longest wait and hangs up there. Never
    # within seconds of being taken, while the agent hears who is coming.
    return [{"press": "1"}, {"press": "0"}, {"expect_prompt": "agent_connecting"},
            {"wait": MAX_QUEUE_WAIT + ANNOUNCE_EVERY + rng.randint(*PATIENT_EXTRA)}]


def _agent(n: int, agent_id: str, pin: str) -> dict[str, Any]:
    """Log in, then caller after caller: in the room until the caller hangs up (AGENT_HOLD is
    longer than any caller's hold), which ends the room; back at the agent menu, 1 for the
    next one."""
    steps: list[Any] = [{"expect_prompt": "agent_id_entry"}, {"press": f"{agent_id}#"},
                        {"press": f"{pin}#"}, {"expect_dial": "conference:"}]
    for _ in range(CALLS_PER_AGENT - 1):
        steps += [{"wait": AGENT_HOLD}, {"expect_prompt": "agent_menu"}, {"press": "1"},
                  {"expect_dial": "conference:"}]
    steps += [{"wait": AGENT_HOLD}, {"expect_prompt": "agent_menu"}]
    return {"name": f"agent {agent_id}", "from": f"+8677112309{n:02d}", "url": "/agent",
            "start": AGENTS_START, "steps": steps}


def _morning(rng: random.Random, dataset: Path) -> tuple[dict[str, Any], list[str]]:
    """The scenario and each caller's path. The first FIRST callers per agent ask for an agent
    before anybody else calls: the agents find callers waiting on logging in, and take the
    first ones within the service-level target; the random arrivals after them keep the queue
    from running dry until the agents have taken CALLS_PER_AGENT callers each (an agent who
    found nobody would fail the scenario)."""
    first = FIRST * len(AGENTS)
    paths = ["patient"] * first + rng.choices(PATHS, SHARES, k=CALLERS - first)
    starts = sorted(rng.uniform(FIRST_GAP * first, ARRIVALS_OVER) for _ in paths[first:])
    starts = [i * FIRST_GAP for i in range(first)] + [round(s, 1) for s in starts]
    calls = [{"name": f"caller {i} ({path})", "from": f"+86138{i:08d}", "start": start,
              "steps": _caller(path, rng)}
             for i, (path, start) in enumerate(zip(paths, starts, strict=True))]
    calls += [_agent(n, agent_id, pin) for n, (agent_id, pin) in enumerate(AGENTS)]
    return {"name": "a busy Monday morning", "at": AT, "dataset": str(dataset), "calls": calls}, \
        paths


def _dataset(folder: Path) -> Path:
    """The demo people and agents, and a third agent (docs/dataset.md §5a)."""
    data = json.loads(demo_dataset().read_text(encoding="utf-8"))
    known = {a["id"] for a in data["agents"]}
    data["agents"] += [{"id": agent_id, "name": "刘洋", "pin": pin}
                       for agent_id, pin in AGENTS if agent_id not in known]
    path = folder / "three_agents.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _read_board(client: Any, token: str = OPERATOR_TOKEN) -> dict[str, Any]:
    answer = client.get("/ops/wallboard.json", auth=("ops", token))
    assert answer.status_code == 200, answer.status
    board: dict[str, Any] = answer.get_json()
    return board


def _polling(app_factory: Callable[..., Any], boards: list[dict[str, Any]],
             clients: list[Any], supervised: list[dict[str, Any]]) -> Callable[..., Any]:
    """app_factory, with the app's wallboard JSON read (as an operator and a supervisor would,
    over its own route) before any request that comes a virtual minute or more after the
    previous read."""

    def make(*, now: Callable[[], datetime], **overrides: Any) -> Any:
        app = app_factory(now=now, operator_token=OPERATOR_TOKEN,
                          supervisor_token=SUPERVISOR_TOKEN, **overrides)
        inner, client = app.wsgi_app, app.test_client()
        clients.append(client)
        last: list[datetime] = []

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") != "/ops/wallboard.json" and \
                    (not last or now() - last[-1] >= timedelta(minutes=1)):
                last.append(now())
                boards.append(_read_board(client))
                supervised.append(_read_board(client, SUPERVISOR_TOKEN))
            return inner(environ, start_response)

        app.wsgi_app = wsgi
        return app

    return make


def test_a_busy_morning_gives_the_figures_its_design_implies(
        app_factory: Callable[..., Any], db_url: str, tmp_path: Path) -> None:
    scenario, paths = _morning(random.Random(SEED), _dataset(tmp_path))
    script = tmp_path / "busy_morning.yaml"
    script.write_text(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False),
                      encoding="utf-8")
    boards: list[dict[str, Any]] = []
    supervised: list[dict[str, Any]] = []
    clients: list[Any] = []
    result = play_script(_polling(app_factory, boards, clients, supervised), script,
                         database_url=db_url)
    assert result.passed, str(result)[:4000]
    boards.append(_read_board(clients[0]))  # after the last call

    # the wallboard, read every virtual minute: the queue grew, then shrank to nobody
    waiting = [b["in_queue"] for b in boards]
    assert len(boards) >= 80 and waiting[0] == 0 and max(waiting) >= 10, waiting
    peak = waiting.index(max(waiting))
    assert min(waiting[peak:-1]) <= max(waiting) // 2, waiting  # shrank while the agents worked
    assert waiting[-1] == 0 and boards[-1]["in_menus"] == 0, waiting
    assert max(b["agents_logged_in"] for b in boards) == len(AGENTS)
    assert max(b["agents_on_call"] for b in boards) == len(AGENTS)
    assert boards[-1]["agents_logged_in"] == 0
    answered = [b["answered_today"] for b in boards]
    assert answered == sorted(answered) and answered[0] == 0
    # the supervisors' board, read at the same moments: each agent's state adds up to the
    # operators' counts; the operators' board never names an agent
    assert len(supervised) == len(boards) - 1
    for plain, board in zip(boards, supervised, strict=False):
        states = Counter(a["state"] for a in board["agents"])
        assert states["on a call"] == plain["agents_on_call"] == board["agents_on_call"]
        assert states["on a call"] + states["free"] == plain["agents_logged_in"]
        assert {k: v for k, v in board.items() if k != "agents"} == plain
        assert "agents" not in plain
    assert any(Counter(a["state"] for a in b["agents"])["on a call"] == len(AGENTS)
               for b in supervised)
    assert {a["agent_id"] for b in supervised for a in b["agents"]} == {a for a, _ in AGENTS}

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
    assert boards[-1]["answered_today"] == total.answered
    assert boards[-1]["abandoned_today"] == total.abandoned
    # fixed by the design
    assert total.offered == CALLERS  # the agents' calls are not offered
    assert total.self_served == design["fraud"]
    assert total.outcomes["abandoned_menu"] == design["menu_hangup"]
    assert total.queue_offered == queued
    assert total.left_by_key == 0
    assert total.answered + total.abandoned + total.timed_out == queued
    # every agent took CALLS_PER_AGENT callers (the queue never ran dry: else an agent's script
    # fails); only the impatient abandoned; the patient callers not taken heard the line busy
    assert total.answered == len(AGENTS) * CALLS_PER_AGENT
    assert total.abandoned == design["impatient"]
    assert total.timed_out == design["patient"] - total.answered
    callers = [r for r in report.rows if r["line"] == "caller"]
    assert Counter(r["detail"] for r in callers if r["outcome"] == "self_served") \
        == {"policy_fraud": design["fraud"]}
    # decided by timing
    assert total.service_level is not None and 0 < total.service_level < 1
    assert total.asa is not None and 0 < total.asa < MAX_QUEUE_WAIT
    assert total.aht is not None and 0 < total.aht < MAX_QUEUE_WAIT + 200
    assert total.occupancy is not None and 0.5 < total.occupancy <= 1
    # per agent: each took exactly CALLS_PER_AGENT callers; their times add up to the line's
    agents = {f.agent_id: f for f in per_agent(report.rows)}
    assert {a: f.answered for a, f in agents.items()} == {
        agent_id: CALLS_PER_AGENT for agent_id, _ in AGENTS}
    assert round(sum(f.handled for f in agents.values()), 1) == round(total.agent_talk, 1)
    assert round(sum(f.logged_in for f in agents.values()), 1) == \
        round(total.agent_logged_in, 1)
    assert sorted(t for f in agents.values() for t in f.talk) == sorted(total.talk)
    assert all(f.occupancy is not None and 0.5 < f.occupancy <= 1 for f in agents.values())
    funnel = dict(report.funnel)
    assert funnel["policy"] == design["fraud"] and funnel["agent_queue"] == queued
    assert funnel["main"] == CALLERS and funnel["verify_method"] == 0
    # the half hours: as many calls as the design started in each
    starts = [c["start"] for c in scenario["calls"] if not c["name"].startswith("agent")]
    halves = {f"09:{m:02d}" if m < 60 else f"10:{m - 60:02d}": 0 for m in (0, 30, 60)}
    for start in starts:
        minute = int(start // 1800) * 30
        halves[f"09:{minute:02d}" if minute < 60 else f"10:{minute - 60:02d}"] += 1
    assert {f"{h.start:%H:%M}": h.offered for h in report.half_hours if h.offered} == halves

    runner = CliRunner()
    page, records = tmp_path / "report.html", tmp_path / "records.csv"
    out = runner.invoke(main, ["report", "--database-url", db_url, "--from", "2026-11-23",
                               "--to", "2026-11-23", "-o", str(page), "--csv", str(records)])
    assert out.exit_code == 0, out.output
    assert f"{CALLERS} calls offered from 2026-11-23 to 2026-11-23" in out.output
    assert f"wrote {records}: {CALLERS + len(AGENTS)} call records" in out.output
    # no agent's id without --agents; with it, each agent's row (and never a PIN)
    texts = {"html": page.read_text(encoding="utf-8"), "csv": records.read_text(encoding="utf-8")}
    texts["html"] = re.sub(r"<svg.*?</svg>", "", texts["html"], flags=re.S) + "\n".join(
        re.findall(r"<text[^>]*>([^<]*)</text>", texts["html"]))
    supervised = tmp_path / "supervisors.html"
    out = runner.invoke(main, ["report", "--database-url", db_url, "--from", "2026-11-23",
                               "--to", "2026-11-23", "-o", str(supervised), "--agents"])
    assert out.exit_code == 0, out.output
    assert supervised.stat().st_mode & 0o777 == 0o600
    texts["supervisors"] = supervised.read_text(encoding="utf-8")
    for agent_id, _ in AGENTS:
        assert f"<tr><td>{agent_id}</td><td>{CALLS_PER_AGENT}</td>" in texts["supervisors"]
    whole = {v: re.compile(rf"(?<![0-9A-Za-z.]){v}(?![0-9A-Za-z])") for pair in AGENTS
             for v in pair}
    assert {(where, v) for where, text in texts.items() for v, pattern in whole.items()
            if pattern.search(text)} == {("supervisors", a) for a, _ in AGENTS}

    # Erlang C and A here; the simulated day (the third answer, minutes for a morning this
    # size) is tested on small days in test_day_simulation.py
    out = runner.invoke(main, ["staffing", "--database-url", db_url, "--from", "2026-11-23",
                               "--to", "2026-11-23", "--no-simulate"])
    assert out.exit_code == 0, out.output
    assert "Erlang C: callers never give up" in out.output
    assert "Erlang A (Palm, M/M/c+M)" in out.output
    assert f"AHT {total.aht:.0f} s" in out.output  # measured in the records
    planned = {}
    for line in out.output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and re.fullmatch(r"\d\d:\d\d", cells[0]):
            planned[cells[0]] = cells[1:]
    # the half hours of the morning: the callers who asked for an agent, and agents for both
    asked = Counter(f"{datetime.fromtimestamp(r['started_at'], zone):%H}:"
                    f"{datetime.fromtimestamp(r['started_at'], zone).minute // 30 * 30:02d}"
                    for r in callers if r["queue_wait"] is not None)
    assert set(planned) >= set(asked) and len(asked) == 3
    for half, count in asked.items():
        calls, c_agents, _, a_agents, _, _ = planned[half]
        assert calls == str(count), (half, planned[half])
        # callers who give up need no more agents than callers who never do
        assert 1 <= int(a_agents) <= int(c_agents), (half, planned[half])
