"""The agent talks to the caller described: the caller an agent is told about is moved out of
the queue by the REST API into the agent's room, and no other. Scenarios against the
simulator's REST API: two agents at once, a caller who left with *, a caller whose end the
hotline never heard of (Twilio's queue and the hotline's table disagree), a REST API that fails."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import CALLS, play_script, prompt_pattern
from sqlalchemy import create_engine, select

from ivr.domain.callers import caller_key
from ivr.domain.measures import per_agent, summaries
from ivr.engine.records import CallRecords
from ivr.engine.session import CallSession
from ivr.store.schema import CALL_TABLES, metadata, queue_entries
from simulator import ScriptResult

PHANTOM = "CA" + "9" * 32  # a caller whose hang-up never reached the hotline


def sections(result: ScriptResult) -> dict[str, str]:
    """A scenario's transcript, per call name."""
    parts = re.split(r"^=== (.+) ===$", result.transcript_text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def call_sid(text: str) -> str:
    match = re.search(r"^Call (CA[0-9a-f]{32})", text, re.M)
    assert match, text[:200]
    return match.group(1)


def room_of(text: str) -> str | None:
    """The conference a call joined (rooms are named after the agent's call)."""
    match = re.search(r"joins conference (CA[0-9a-f]{32})", text)
    return match.group(1) if match else None


def described(agent_text: str) -> str:
    """What the agent was told about their caller."""
    if prompt_pattern("agent_summary_verified").search(agent_text):
        return "verified"
    if prompt_pattern("agent_summary_unverified").search(agent_text):
        return "unverified"
    return "nobody"


def test_two_agents_at_once_each_talk_to_the_caller_they_were_told_about(
        app_factory: Any, db_url: str) -> None:
    result = play_script(app_factory, CALLS / "agent_bridge_two_agents.yaml")
    assert result.passed, result.report() + result.transcript_text
    calls = sections(result)
    rooms = {name: room_of(text) for name, text in calls.items() if "caller" in name}
    agents = {call_sid(calls[name]): described(calls[name]) for name in ("agent 1001",
                                                                         "agent 1002")}
    assert sorted(agents.values()) == ["unverified", "verified"]
    assert agents[rooms["verified caller"]] == "verified"
    assert agents[rooms["unverified caller"]] == "unverified"
    # the records name the agent of each side: the agents' line after the PIN, each caller
    # the agent whose room they were moved into, and nothing of either for anybody else
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = summaries(conn, 0, 2e9)
    who = {call_sid(calls[name]): name.removeprefix("agent ") for name in ("agent 1001",
                                                                         "agent 1002")}
    named = {r["call_sid"]: r["agent_id"] for r in rows}
    assert named == {**{sid: agent for sid, agent in who.items()},
                     **{call_sid(calls[name]): who[str(rooms[name])]
                        for name in ("verified caller", "unverified caller")}}
    figures = {f.agent_id: f for f in per_agent(rows)}
    assert sorted(figures) == ["1001", "1002"]
    for agent in figures.values():
        # one caller each; in the room from the summary to 120 s after it, connected from
        # being ready to hanging up
        assert agent.answered == 1 and agent.talk == [agent.handled]
        assert agent.logged_in == agent.handled and agent.occupancy == 1.0
    # the summary of a verified caller (the last four of the ID, the menu) is the longer one
    told = {who[sid]: kind for sid, kind in agents.items()}
    assert {told[a]: f.aht for a, f in figures.items()} == {"unverified": 126.67,
                                                          "verified": 129.42}
    # the agents' ids are in the records alone (the ended calls' data is sealed), and go
    # with them when they are purged
    assert _naming_agents(engine) == {"call_events", "call_summaries"}
    later = datetime.fromtimestamp(max(r["ended_at"] for r in rows)) + timedelta(days=401)
    CallRecords(engine, lambda: later).purge(400 * 86400)
    assert _naming_agents(engine) == set()
    engine.dispose()


def _naming_agents(engine: Any) -> set[str]:
    """The call tables where 1001 or 1002 is found as a whole."""
    agent = re.compile(r"(?<![0-9A-Za-z.])100[12](?![0-9A-Za-z])")
    with engine.connect() as conn:
        return {name for name in CALL_TABLES
                if any(agent.search("|".join(str(v) for v in row))
                       for row in conn.execute(select(metadata.tables[name])))}


def test_a_caller_who_left_with_star_is_neither_described_nor_bridged(app_factory: Any) -> None:
    result = play_script(app_factory, CALLS / "agent_bridge_caller_left.yaml")
    assert result.passed, result.report() + result.transcript_text
    calls = sections(result)
    assert room_of(calls["leaving caller"]) is None
    assert room_of(calls["waiting caller"]) == call_sid(calls["agent"])


def _phantom(app: Any, verified_last4: str = "9999") -> None:
    """A caller who hung up while waiting, whose status callback the hotline never got: its
    session is live and its entry heads the queue, but Twilio's queue no longer holds it."""
    hotline = app.extensions["ivr12333"]
    hotline.store.create(CallSession(PHANTOM, "+8613800000299", "agent_queue"), "<Response/>")
    hotline.queue.join(PHANTOM, verified=True, last4=verified_last4, last_menu="balance",
                       lang="zh-CN", places_per_caller=2, region="450100",
                       caller=caller_key(hotline.keyring, "+8613800000299", "queue"))


def _entries(app: Any) -> list[tuple[str, str | None]]:
    with app.extensions["ivr12333"].db.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(queue_entries.c.call_sid, queue_entries.c.taken_by))]


def test_a_caller_gone_from_twilios_queue_is_skipped_not_described(app_factory: Any,
                                                                   tmp_path: Path) -> None:
    """The hotline's table says the phantom is first; Twilio's queue answers 404 for it: the
    agent hears about (and talks to) the caller really waiting, never the phantom's 9999; the
    phantom is left in the table, taken by nobody (its end, when heard of, removes it)."""
    script = tmp_path / "phantom.yaml"
    script.write_text((CALLS / "agent_bridge_caller_left.yaml").read_text("utf-8"),
                      encoding="utf-8")
    made: list[Any] = []
    result = play_script(app_factory, script, prepare=lambda app: (_phantom(app),
                                                                   made.append(app)))
    assert result.passed, result.report() + result.transcript_text
    agent = sections(result)["agent"]
    assert "9 9 9 9" not in agent and "9999" not in agent
    assert described(agent) == "unverified"
    assert (PHANTOM, None) in _entries(made[0])


def test_when_only_a_caller_twilio_lacks_is_left_nobody_is_described(
        app_factory: Any, tmp_path: Path) -> None:
    """The agent waits a moment, a few times, for a caller in the table whom Twilio's queue
    does not hold (yet); then hears that nobody waits, and about nobody."""
    script = tmp_path / "only_phantom.yaml"
    script.write_text("""\
name: only a caller who is gone
at: "2026-11-23T10:00:00+08:00"
calls:
  - name: agent
    from: "+867711230041"
    url: /agent
    steps:
      - expect_prompt: agent_id_entry
      - press: "1001#"
      - press: "246810#"
      - expect_prompt: agent_waiting_for_caller
      - silence: 3
      - expect_prompt: agent_nobody_waiting
      - expect_prompt: agent_menu
      - hangup
""", encoding="utf-8")
    result = play_script(app_factory, script, prepare=_phantom)
    assert result.passed, result.report() + result.transcript_text
    assert "9 9 9 9" not in result.transcript_text
    assert described(result.transcript_text) == "nobody"


def test_a_caller_gone_after_the_move_ends_the_room_and_the_agent_is_told(
        app_factory: Any, tmp_path: Path) -> None:
    """The caller is moved into the agent's room and hangs up there while the agent still
    hears the summary: the agent, alone in the room, is not left waiting: the room ends and
    the agent hears that the caller has hung up (not "the call has ended")."""
    script = tmp_path / "gone_after_move.yaml"
    script.write_text("""\
name: the caller hangs up after the move, before the agent joins
at: "2026-11-23T10:00:00+08:00"
calls:
  - name: caller
    from: "+8613800000271"
    steps:
      - press: "1"
      - press: "0"
      - expect_prompt: agent_connecting
      - wait: 24
      - hangup
  - name: agent
    from: "+867711230071"
    url: /agent
    start: 30
    steps:
      - expect_prompt: agent_id_entry
      - press: "1001#"
      - press: "246810#"
      - expect_dial: "conference:"
      - expect_prompt: agent_caller_gone
      - expect_prompt: agent_menu
      - hangup
""", encoding="utf-8")
    result = play_script(app_factory, script)
    assert result.passed, result.report() + result.transcript_text
    calls = sections(result)
    agent_sid = call_sid(calls["agent"])
    # the caller was in the room first and left it before the agent came
    assert room_of(calls["caller"]) == agent_sid
    caller_left = calls["caller"].index("hangup          by the caller")
    assert calls["caller"].index("joins conference") < caller_left
    assert "/agent/wait" in calls["agent"]


def test_a_failing_rest_api_gives_the_caller_back_to_the_queue(app_factory: Any,
                                                               tmp_path: Path) -> None:
    """Nothing answers at the REST address: the agent is told the caller could not be
    connected, is described nobody, and the caller keeps their place (not taken)."""
    script = tmp_path / "rest_down.yaml"
    script.write_text("""\
name: the REST API does not answer
at: "2026-11-23T10:00:00+08:00"
calls:
  - name: caller
    from: "+8613800000251"
    steps:
      - press: "1"
      - press: "0"
      - expect_prompt: agent_connecting
      - wait: 60
      - hangup
  - name: agent
    from: "+867711230051"
    url: /agent
    start: 10
    steps:
      - expect_prompt: agent_id_entry
      - press: "1001#"
      - press: "246810#"
      - expect_prompt: agent_bridge_failed
      - expect_prompt: agent_menu
      - hangup
""", encoding="utf-8")
    made: list[Any] = []
    result = play_script(app_factory, script, prepare=made.append,
                         rest_api_url="http://127.0.0.1:9")  # discard: nothing listens
    assert result.passed, result.report() + result.transcript_text
    agent = sections(result)["agent"]
    assert described(agent) == "nobody"  # no summary of a caller the agent will not talk to


def test_without_an_account_agents_are_told_no_caller_can_be_connected(
        app_factory: Any, tmp_path: Path) -> None:
    script = tmp_path / "no_account.yaml"
    script.write_text("""\
name: no Twilio account configured
at: "2026-11-23T10:00:00+08:00"
calls:
  - name: caller
    from: "+8613800000261"
    steps:
      - press: "1"
      - press: "0"
      - wait: 60
      - hangup
  - name: agent
    from: "+867711230061"
    url: /agent
    start: 10
    steps:
      - press: "1001#"
      - press: "246810#"
      - expect_prompt: agent_bridge_failed
      - hangup
""", encoding="utf-8")
    result = play_script(app_factory, script, account_sid=None)
    assert result.passed, result.report() + result.transcript_text
