"""The engine's semantics: menu conventions and the verification gate come from the flow file,
a menu is one state, its transitions and its prompts; one clock drives everything timed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import STAFFED, VOICE_URL, Caller

from ivr.engine.flow import Flow
from ivr.engine.model import CallModel
from ivr.engine.prompts import Catalogue
from ivr.errors import FlowError
from ivr.resources import data_dir
from simulator import Clock, Simulator, WsgiTransport

TOPIC_ZH = "长期护理保险政策,请咨询当地医保部门。"
TOPIC_EN = "For long-term care insurance, please ask your local healthcare security office."


def _flow_spec() -> dict[str, Any]:
    text = (data_dir("state_machines") / "hotline.yaml").read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


def _with_fourth_topic(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the flow and prompts with one more policy topic: one state, its transition,
    its prompt in both languages — nothing else."""
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    shutil.copytree(data_dir("prompts"), prompts)
    flows.mkdir()
    spec = _flow_spec()
    spec["states"].append({"name": "policy_longterm", "prompt": ["policy_longterm", "result_menu"],
                           "gather": "menu"})
    spec["transitions"].append({"trigger": "press_4", "source": "policy",
                                "dest": "policy_longterm"})
    (flows / "hotline.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True),
                                        encoding="utf-8")
    for locale, text in (("zh-CN", TOPIC_ZH), ("en-US", TOPIC_EN)):
        path = prompts / f"{locale}.yaml"
        catalogue = yaml.safe_load(path.read_text(encoding="utf-8"))
        catalogue["prompts"]["policy_longterm"] = text
        path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    return flows, prompts


@pytest.fixture
def topic_caller(tmp_path: Path, app_factory: Callable[..., Any]) -> Caller:
    flows, prompts = _with_fourth_topic(tmp_path)
    clock = Clock(STAFFED)
    app = app_factory(now=clock, flows_dir=str(flows), prompts_dir=str(prompts))
    return Caller(Simulator(WsgiTransport(app), VOICE_URL, clock=clock,
                            status_callback="http://localhost/status"))


def _say(prompt_id: str, locale: str = "zh-CN") -> str:
    return Catalogue.load(data_dir("prompts")).render(prompt_id, locale, {})[0]


def _at_topic(caller: Caller, language: str = "1") -> Caller:
    return caller.dial().press(language).press("4").press("4")


@pytest.mark.parametrize("language, topic, locale", [("1", TOPIC_ZH, "zh-CN"),
                                                     ("2", TOPIC_EN, "en-US")])
def test_a_new_menu_is_one_state_and_gets_every_convention(topic_caller: Caller, language: str,
                                                           topic: str, locale: str) -> None:
    caller = _at_topic(topic_caller, language)
    assert topic in caller.heard
    caller.press("*")  # repeats
    assert topic in caller.heard
    caller.silence()  # no input: said so, then the topic again
    assert caller.heard.startswith(_say("no_input", locale)) and topic in caller.heard
    caller.press("7")  # an invalid key: said so, then the topic again
    assert caller.heard.startswith(_say("invalid_input", locale)) and topic in caller.heard
    caller.press("9")  # the main menu
    assert caller.heard.startswith(_say("main_menu", locale))
    caller.press("4").press("4").press("0")  # an agent (staffed hours)
    assert _say("agent_connecting", locale) in caller.heard
    topic_caller.close()


def test_a_new_menu_ends_the_call_at_the_third_silence(topic_caller: Caller) -> None:
    caller = _at_topic(topic_caller)
    caller.silence(3)
    assert caller.ended and _say("goodbye") in caller.heard
    topic_caller.close()


def _flow(tmp_path: Path, spec: dict[str, Any]) -> Flow:
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return Flow(path, CallModel, Catalogue.load(data_dir("prompts")))


def test_the_conventions_are_added_to_every_gathering_state_after_its_own(
    tmp_path: Path
) -> None:
    flow = _flow(tmp_path, _flow_spec())
    edges = set(flow.edges())
    menus = [s for s, st in flow.states.items() if st.gather == "menu" and st.conventions]
    assert len(menus) >= 10
    for state in menus:
        assert {(state, "press_star", state), (state, "press_0", "agent"),
                (state, "press_9", "main")} <= edges, state
    # welcome opts out: its own silence and invalid win, no * 9 0
    assert {t for t in edges if t[0] == "welcome"} == {
        ("welcome", "press_1", "call_region"), ("welcome", "press_2", "call_region"),
        ("welcome", "silence", "call_region"), ("welcome", "invalid", "call_region")}
    # first match wins: a state's own transitions come before the conventions
    order = [(t["trigger"], t["dest"]) for t in flow.transitions if t["source"] == "id_entry"]
    assert order.index(("entered", "id_confirm")) < order.index(("silence", "="))


def test_requires_verified_expands_to_the_gate(tmp_path: Path) -> None:
    flow = _flow(tmp_path, _flow_spec())
    from_main = [t for t in flow.transitions if t["source"] == "main"
                 and t["trigger"] == "press_1"]
    assert [(t["dest"], t.get("conditions"), t.get("unless"), t.get("remember"))
            for t in from_main] == [
        ("balance", ["already_verified"], None, None),
        ("verification_failed", None, ["may_retry"], None),
        ("verify_method", None, None, "balance"),
    ]
    leaving = [(t["dest"], t["when_target"]) for t in flow.transitions
               if t["source"] == "verified"]
    assert leaving == [("balance", "balance"), ("pool", "pool"),
                       ("transactions", "transactions")]


def test_a_gathering_state_that_cannot_handle_silence_is_refused(tmp_path: Path) -> None:
    spec = _flow_spec()
    spec["conventions"]["gathering"] = [r for r in spec["conventions"]["gathering"]
                                        if r["trigger"] != "silence"]
    with pytest.raises(FlowError, match=r"state main gathers keys but can't handle silence"):
        _flow(tmp_path, spec)


def test_a_state_that_opts_out_must_handle_silence_itself(tmp_path: Path) -> None:
    spec = _flow_spec()
    for state in spec["states"]:
        if state["name"] == "policy":
            state["conventions"] = False
    with pytest.raises(FlowError, match=r"state policy gathers keys but can't handle silence"):
        _flow(tmp_path, spec)


def test_requires_verified_needs_the_verification_section(tmp_path: Path) -> None:
    spec = _flow_spec()
    del spec["verification"]
    with pytest.raises(FlowError, match=r"balance, pool, transactions require a verified"):
        _flow(tmp_path, spec)


def test_the_limits_come_from_the_flow_file(tmp_path: Path,
                                            app_factory: Callable[..., Any]) -> None:
    """Two silences instead of three end the call when the flow file says so."""
    spec = _flow_spec()
    spec["limits"]["silences"] = 2
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hotline.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True),
                                        encoding="utf-8")
    caller = Caller(Simulator(WsgiTransport(app_factory(flows_dir=str(flows))), VOICE_URL))
    caller.dial().press("1").silence(2)
    assert caller.ended and _say("goodbye") in caller.heard
    caller.close()


def test_the_hourly_attempt_window_runs_on_the_injected_clock(
    app_factory: Callable[..., Any]
) -> None:
    """Ten password checks in an hour from one number; an hour later, checks again."""
    clock = Clock(STAFFED)
    app = app_factory(now=clock)
    simulator = Simulator(WsgiTransport(app), VOICE_URL, clock=clock, from_="+8613800009999")
    refused = _say("too_many_attempts")

    def attempts(calls: int) -> list[str]:
        heard = []
        for _ in range(calls):
            c = Caller(simulator).dial().press("1").press("1")
            c.press("1").press("450102198001010015#").press("1")
            for _ in range(3):  # the password again, for the same number
                c.press("000000#")
                heard.append(c.heard)
                if c.ended:
                    break
            c.close()
        return heard

    first = attempts(3)  # 9 checks
    assert not any(refused in h for h in first)
    second = attempts(1)  # the 10th is checked, the 11th refused
    assert refused not in second[0] and refused in second[1]
    clock.advance(timedelta(hours=1, minutes=1).total_seconds())
    third = attempts(1)
    assert refused not in third[0]


@pytest.mark.parametrize("change, message", [
    (lambda spec: spec["states"][0].update(gather="menus"),
     r"hotline.yaml, state welcome gather: gather must be menu \(one key\) or number"),
    (lambda spec: spec["transitions"][0].update(trigger="press_x"),
     r"transitions\[0\] \(press_x from welcome\) trigger: a trigger is press_0"),
    (lambda spec: spec["limits"].update(silences=0),
     r"limits silences: a limit is a whole number of at least 1, not 0"),
    (lambda spec: spec["states"][1].update(colour="red"),
     r"state call_region: unknown key\(s\) colour"),
])
def test_the_flow_format_is_a_schema_naming_the_place(tmp_path: Path, change: Any,
                                                        message: str) -> None:
    spec = _flow_spec()
    change(spec)
    with pytest.raises(FlowError, match=message):
        _flow(tmp_path, spec)
