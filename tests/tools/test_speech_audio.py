"""Speech offline: what is sent to espeak-ng (numbers, pinned readings, pinyin), the audio
cache, a line without a synthesiser, real durations on the simulator's clock, and
`ivr12333 prompts --audio`."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypinyin import Style, lazy_pinyin
from servers import run_cli
from twiml_app import create_app

from ivr.tools import synth
from ivr.tools.synth import Synthesiser, normalise_zh, pinyin
from simulator import Clock, Simulator, WsgiTransport
from simulator.clock import speech_seconds
from simulator.sounds import real_durations

MISSING = "espeak-ng is not installed: make system-deps (or: sudo apt-get install espeak-ng)"


@pytest.fixture
def espeak() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        pytest.fail(MISSING, pytrace=False)
    return found


def test_numbers_are_written_as_a_mandarin_speaker_reads_them() -> None:
    assert normalise_zh("截至2026年11月21日") == "截至二〇二六年十一月二十一日"
    assert normalise_zh("后四位是 0 0 1 3,确认请按1") == "后四位是 零零幺三,确认请按一"
    assert normalise_zh("后四位是 0 1 2 X") == "后四位是 零幺二叉"
    assert normalise_zh("请输入您的18位身份证号码") == "请输入您的十八位身份证号码"
    assert normalise_zh("拨打12333") == "拨打幺二三三三"


def test_pinned_readings_override_pypinyins_guess() -> None:
    # what pypinyin alone says, and why each reading is pinned
    assert lazy_pinyin("重听", style=Style.TONE3)[0] == "zhong4"
    assert lazy_pinyin("还款", style=Style.TONE3)[0] == "hai2"
    assert lazy_pinyin("余额为", style=Style.TONE3)[2] == "wei4"
    assert pinyin("重听请按星号键。").startswith("chong2 ting1 qing3 an4 xing1 hao4 jian4")
    assert "huan2 kuan3" in pinyin("还款")
    assert "yu2 e2 wei2 yi1 qian1" in pinyin("余额为一千")
    assert "ren2 gong1 fu2 wu4 shi2 jian1 wei2" in pinyin("人工服务时间为")
    # nothing but pinyin, numbers and pauses reaches the voice
    said = pinyin("截至2026年11月21日,您的医保个人账户余额为一千二百三十四元五角六分。")
    assert re.fullmatch(r"[a-z]+[1-5]( ([a-z]+[1-5]|[,.]))*( [,.])?", said), said


def test_without_a_synthesiser_nothing_is_rendered(tmp_path: Path) -> None:
    none = Synthesiser(tmp_path, program=None)
    assert not none.available
    assert none.render("欢迎致电", "cmn-CN") is None
    assert none.seconds("Welcome", "en-US") is None
    assert "apt-get install espeak-ng" in synth.HOW_TO_GET


def test_audio_is_rendered_once_per_text_and_voice(espeak: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    voice = Synthesiser(tmp_path)
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counted(args: list[str], **kwargs: object) -> object:
        runs.append(args)
        return real_run(args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(synth.subprocess, "run", counted)
    zh = voice.render("欢迎致电医保服务热线。", "cmn-CN")
    again = voice.render("欢迎致电医保服务热线。", "zh-CN")  # the same voice
    en = voice.render("Welcome to the hotline.", "en-US")
    assert zh is not None and en is not None and again == zh
    assert [args[2] for args in runs] == ["cmn-latn-pinyin", "en-us"]
    assert zh.path != en.path
    assert 1.0 < zh.seconds < 10.0 and 0.8 < en.seconds < 6.0
    with wave.open(str(zh.path)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(zh.seconds, abs=0.001)
    assert oct(zh.path.stat().st_mode & 0o777) == "0o600"
    # a new synthesiser on the same folder finds the file: no new process
    assert Synthesiser(tmp_path).render("欢迎致电医保服务热线。", "cmn-CN") == zh
    assert len(runs) == 2
    assert voice.render("Bonjour", "fr-FR") is None  # no voice for it: shown as text


def test_real_durations_set_the_virtual_clock() -> None:
    """A plain <Say> takes the seconds its audio takes; SSML and unknown texts keep the
    per-character estimate; outside the block nothing changes."""
    def said_at() -> list[float]:
        sim = Simulator(WsgiTransport(create_app()), "http://pizza.test/voice",
                        clock=Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)))
        with sim.dial() as call:
            return [u.at for u in call.said]

    estimated = said_at()
    welcome = "Welcome to Pizza Line."
    with real_durations(lambda text, _voice, _lang: 3.25 if text == welcome else None):
        heard = said_at()
    assert estimated[1] == pytest.approx(speech_seconds(welcome))
    assert heard[1] == pytest.approx(3.25)
    assert heard[2:] == [at - estimated[1] + 3.25 for at in estimated[2:]]
    assert said_at() == estimated


@pytest.mark.slow
def test_prompts_audio_writes_every_prompt_and_times_the_results(espeak: str,
                                                                 tmp_path: Path) -> None:
    from ivr.engine.prompts import Catalogue
    from ivr.resources import data_dir

    out = tmp_path / "audio"
    done = run_cli("prompts", "--audio", str(out), timeout=300)
    assert done.returncode == 0, done.stderr
    catalogue = Catalogue.load(data_dir("prompts"))
    with (out / "durations.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = {(loc, pid) for loc, prompts in catalogue.prompts.items() for pid in prompts}
    assert {(r["locale"], r["prompt"]) for r in rows} == expected
    for row in rows:
        wav = out / row["locale"] / f"{row['prompt']}.wav"
        with wave.open(str(wav)) as w:
            assert w.getnframes() / w.getframerate() == pytest.approx(float(row["seconds"]),
                                                                      abs=0.01)
    balance = next(r for r in rows if (r["locale"], r["prompt"]) == ("zh-CN",
                                                                      "balance_employee"))
    assert "二〇二六" not in balance["text"]  # the table shows the words the line sends
    report = (out / "results.txt").read_text(encoding="utf-8")
    found = re.search(r"^balance +1 1 1 450102197503150013# 1 135790# +([\d.]+)s +([\d.]+)s "
                      r"+([\d.]+)s$", report, re.M)
    assert found, report
    listening, ahead, estimate = map(float, found.groups())
    assert ahead < listening and estimate != listening
    for result in ("pool", "transactions", "policy_withdrawal_cases", "policy_fraud"):
        assert re.search(rf"^{result} ", report, re.M), report
    assert os.stat(out / "durations.csv").st_size > 1000
