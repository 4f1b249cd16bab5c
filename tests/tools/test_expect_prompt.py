"""Scripted calls pin behaviour, not wording: `expect_prompt: ID` against the real hotline, in
Mandarin and in English, and every project call still passing when every prompt is reworded."""

from __future__ import annotations

import string
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import CALLS, SCRIPTS, SHARED, STATUS_URL, VOICE_URL

from ivr.engine.prompts import LOCALES, Catalogue
from ivr.tools.cli import main as cli
from ivr.tools.localrest import local_rest
from ivr.tools.script_prompts import HotlinePrompts
from simulator import ScriptResult, Simulator, Wording, WsgiTransport, run_script

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
Play = Callable[..., ScriptResult]


@pytest.fixture
def play(app_factory: Callable[..., Any], tmp_path: Path) -> Play:
    """Play a script (its steps as YAML text) on the hotline, with the hotline's prompts."""

    def run(steps: str, *, prompts: Any = "hotline") -> ScriptResult:
        path = tmp_path / "call.yaml"
        path.write_text("steps:\n" + textwrap.indent(textwrap.dedent(steps).strip(), "  ")
                        + "\n", encoding="utf-8")
        simulator = Simulator(WsgiTransport(app_factory()), VOICE_URL, status_callback=STATUS_URL,
                              rest=local_rest().api)
        resolver = HotlinePrompts.load() if prompts == "hotline" else prompts
        return run_script(path, lambda: simulator, prompts=resolver)

    return run


def failure(result: ScriptResult) -> str:
    assert not result.passed
    return result.failures[0].expected


# --- Mandarin and English -------------------------------------------------------------------


def test_a_mandarin_call_by_prompt_ids(play: Play) -> None:
    result = play("""
        - expect_prompt: welcome
        - expect_prompt: welcome_english
        - expect_not_prompt: main_menu
        - press: "1"
        - expect_prompt: main_menu
        - expect_prompt: {id: main_menu, language: cmn-CN}
        - press: "1"
        - press: "1"
        - press: "450102197503150013#"
        - expect_prompt: {id: id_readback, values: {last4: "0 0 1 3"}}
        - press: "1"
        - press: "135790#"
        - expect_prompt: {id: balance_employee, values: {balance: "一千二百三十四元五角六分"}}
        - expect_prompt:
            id: balance_employee
            values:
              as_of: "2026年11月21日"
              balance: "一千二百三十四元五角六分"
              credit: "一百五十元"
        - expect_not_prompt: password_wrong
        - press: "7"
        - expect_prompt: invalid_input
        - silence: 3
        - expect_prompt: goodbye
        - expect_hangup
    """)
    assert result.passed, result.report()


def test_an_english_call_is_checked_against_the_english_wording(play: Play) -> None:
    result = play("""
        - press: "2"
        - expect_prompt: main_menu
        - expect_prompt: {id: main_menu, language: en-US}
        - expect_not_prompt: {id: main_menu, language: cmn-CN}
        - press: "1"
        - press: "1"
        - press: "450102197503150013#"
        - expect_prompt: {id: id_readback, values: {last4: "0 0 1 3"}}
        - press: "1"
        - press: "135790#"
        - expect_prompt:
            id: balance_employee
            values: {as_of: "November 21, 2026", credit: "one hundred fifty yuan"}
        - silence: 3
        - expect_prompt: goodbye
    """)
    assert result.passed, result.report()


def test_a_prompt_not_said_fails_with_its_wording(play: Play) -> None:
    result = play("""
        - press: "1"
        - expect_prompt: goodbye
    """)
    assert failure(result) == "to hear prompt goodbye: '感谢您的来电,再见。'"
    assert result.failures[0].step_index == 2
    assert "账户余额查询请按1" in result.failures[0].heard


def test_at_the_welcome_both_languages_are_heard_and_looked_for(play: Play) -> None:
    result = play("- expect_prompt: goodbye\n")
    assert failure(result) == ("to hear prompt goodbye: '感谢您的来电,再见。' in cmn-CN "
                               "or 'Thank you for calling. Goodbye.' in en-US")


def test_in_english_the_mandarin_wording_does_not_count(play: Play) -> None:
    result = play("""
        - press: "2"
        - expect_prompt: {id: main_menu, language: cmn-CN}
    """)
    assert failure(result).startswith("to hear prompt main_menu: '账户余额查询请按1,")
    assert failure(result).endswith("' in cmn-CN")
    unsaid = play("""
        - press: "2"
        - expect_not_prompt: main_menu
    """)
    assert failure(unsaid) == (
        "not to hear prompt main_menu: 'For your account balance, press 1. For family "
        "mutual-aid bindings, press 2. For recent transactions, press 3. For policy "
        "information, press 4. For an agent, press 0. To hear this again, press star.'")


def test_values_pin_the_data(play: Play) -> None:
    result = play("""
        - press: "1"
        - press: "1"
        - press: "1"
        - press: "450102197503150013#"
        - expect_prompt: {id: id_readback, values: {last4: "0 0 1 4"}}
    """)
    assert failure(result) == ("to hear prompt id_readback: "
                               "'您输入的身份证号码后四位是 0 0 1 4,确认请按1,重新输入请按2。'")


def test_a_placeholder_without_a_value_matches_any_words(play: Play) -> None:
    result = play("""
        - press: "1"
        - press: "1"
        - press: "1"
        - press: "450102197503150013#"
        - expect_prompt: id_readback
        - press: "2"
        - expect_not_prompt: id_readback
        - expect_prompt: balance_employee
    """)
    assert failure(result) == ("to hear prompt balance_employee: "
                               "'截至…,您的医保个人账户余额为…。…个人账户划入…。'")
    assert result.failures[0].step_index == 8


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("expect_prompt: goodby", "no prompt 'goodby' in the catalogue"),
        ("expect_prompt: {id: goodbye, values: {name: x}}",
         "prompt goodbye has no placeholder name (its placeholders: none)"),
        ("expect_prompt: {id: goodbye, language: en-GB}",
         "prompt goodbye has no wording in the <Say> language en-GB"),
    ],
)
def test_a_prompt_the_hotline_cannot_say_fails_before_the_call(
    play: Play, step: str, problem: str
) -> None:
    result = play(f'- press: "1"\n- {step}\n')
    assert failure(result).startswith(f"a well-formed scripted call: {problem}")
    assert result.failures[0].step_index == 2
    assert result.transcript == []


def test_without_a_catalogue_prompt_steps_fail_before_the_call(play: Play) -> None:
    result = play("- expect_prompt: welcome\n", prompts=None)
    assert failure(result).startswith("a well-formed scripted call: this run has no prompt "
                                      "catalogue to look prompt ids up in")
    assert "ivr12333 call --script" in failure(result)
    assert result.transcript == []


# --- the resolver ---------------------------------------------------------------------------


def test_the_resolver_speaks_the_voice_languages_of_the_settings() -> None:
    catalogue = Catalogue.load(PROMPTS)
    default = HotlinePrompts(catalogue, {"zh-CN": ("v", "cmn-CN"), "en-US": ("v", "en-US")})
    assert default("goodbye", {}, "cmn-CN") == [Wording(("感谢您的来电,再见。",))]
    assert default("goodbye", {}, "en-US") == [Wording(("Thank you for calling. Goodbye.",))]
    assert len(default("goodbye", {}, None)) == 2
    assert default("goodbye", {}, "fr-FR") == []
    # the welcome's English line is said in the en-US voice in both catalogues
    assert default("welcome_english", {}, "cmn-CN") == []
    assert default("welcome_english", {}, "en-US") == [
        Wording(("Welcome to the ", ". For English, press 2."))]
    other = HotlinePrompts(catalogue, {"zh-CN": ("v", "zh-CN"), "en-US": ("v", "en-GB")})
    assert other("goodbye", {}, "zh-CN") == default("goodbye", {}, "cmn-CN")
    assert other("goodbye", {}, "cmn-CN") == []
    assert other("tx_count", {"count": "5"}, "en-GB") == [Wording(("Your latest 5 transactions:",))]


# --- wording is free to change -----------------------------------------------------------------


def reword(text: str) -> str:
    """The same prompt in other words: 谢谢 -> «谢·谢», placeholders kept as they are."""
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(text):
        if literal:
            out.append("«" + "·".join(literal).replace("{", "{{").replace("}", "}}") + "»")
        if field is not None:
            out.append("{" + field + (f"!{conversion}" if conversion else "")
                       + (f":{spec}" if spec else "") + "}")
    return "".join(out)


@pytest.fixture
def reworded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Both catalogues with every prompt reworded, as the app's prompts (IVR_PROMPTS_DIR)."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    for locale in LOCALES:
        doc = yaml.safe_load((PROMPTS / f"{locale}.yaml").read_text("utf-8"))
        for pid, entry in doc["prompts"].items():
            if isinstance(entry, str):
                doc["prompts"][pid] = reword(entry)
            else:
                entry["text"] = reword(entry["text"])
        (folder / f"{locale}.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
    Catalogue.load(folder)
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(folder))
    return folder


@pytest.mark.slow
def test_every_project_call_passes_whatever_the_wording(reworded: Path, tmp_path: Path) -> None:
    """The goal of expect_prompt: reword every prompt of both catalogues, and every scripted
    call of tests/calls still passes; an expectation of the old wording does not."""
    goodbye = "感谢您的来电,再见。"
    assert goodbye not in (reworded / "zh-CN.yaml").read_text("utf-8")
    stale = tmp_path / "stale.yaml"
    text = (CALLS / "silence_limit.yaml").read_text("utf-8")
    stale.write_text("dataset: demo\n" + text.replace(
        "expect_prompt: goodbye", f'expect: "{goodbye}"'), "utf-8")
    database = f"sqlite:///{tmp_path / 'configured.sqlite3'}"
    result = CliRunner().invoke(cli, ["--database-url", database, "call", "--script", str(CALLS),
                                      "--script", str(stale)])
    total = len(SCRIPTS) + len(SHARED)
    assert result.output.rstrip().splitlines()[-1] == f"{total} passed, 1 failed", result.output
    flat = result.output.replace("\n", "")  # the console wraps long lines
    assert f"FAIL silence limit ends the call [{stale}]" in flat
    assert "«感·谢·您·的·来·电·,·再·见·。»" in flat  # what the reworded line said
