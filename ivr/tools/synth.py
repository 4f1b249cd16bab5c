"""What the line says, as audio, offline: espeak-ng run as a separate process (it is GPL).

Debian 12's espeak-ng 1.51 `cmn` voice reads many characters as English (upstream issues
#1236, #1370), so Mandarin is first written as tone-numbered pinyin (pypinyin, with pinned
readings where its guess is wrong for this line) and read by the `cmn-latn-pinyin` voice;
numbers are written out first (2026年 is 二〇二六年, 18位 is 十八位, 12333 is 幺二三三三).
English goes to `en-us` as it is. docs/speech.md gives the measurements behind the choice.
Audio is cached per (text, voice) in a folder the caller owns (the phone's is private and
removed at its end: a balance sentence is personal data).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from ivr.engine import speech

PROGRAM = "espeak-ng"
#: how to get the voice, for the page and the command line
HOW_TO_GET = "sudo apt-get install espeak-ng   (Debian, Ubuntu; GPL-3.0, run as a separate " \
             "program)"
#: espeak-ng voice per language family of a <Say language>
VOICES = {"zh": "cmn-latn-pinyin", "cmn": "cmn-latn-pinyin", "en": "en-us"}
#: words per minute (espeak-ng's default 175): Mandarin at ~3.7 syllables a second, near a
#: recorded hotline's calm pace; docs/speech.md has the measurements
RATE = {"cmn-latn-pinyin": 200, "en-us": 160}
#: readings pypinyin guesses wrong in this line's sentences (longest match first)
PINNED = {
    "重听": "chong2 ting1",
    "还款": "huan2 kuan3",
    "额为": "e2 wei2",  # 余额为: the balance is
    "期为": "qi1 wei2",  # 日期为: the date is
    "间为": "jian1 wei2",  # 时间为: the hours are
    "数为": "shu4 wei2",
    "为您": "wei4 nin2",  # 为您转接: for you
}
_ZH_DIGITS = "〇一二三四五六七八九"
_PHONE_DIGITS = "零幺二三四五六七八九"
_YEAR = re.compile(r"([0-9]{4})年")
_SPACED = re.compile(r"(?<![0-9])[0-9Xx](?: [0-9Xx])+(?![0-9])")  # read-backs: 0 0 1 3
_NUMBER = re.compile(r"[0-9]+")
_PINNED = re.compile("|".join(sorted(map(re.escape, PINNED), key=len, reverse=True)))
_CJK = re.compile(r"[\u3400-\u9fff]+")
#: Chinese punctuation as the pauses espeak-ng knows
_PUNCT = str.maketrans({"，": ", ", "。": ". ", "、": ", ", "；": "; ", "：": ": ", "！": "! ",
                        "？": "? ", "「": " ", "」": " ", "（": " ", "）": " ", "·": " "})


def normalise_zh(text: str) -> str:
    """Numbers as a Mandarin speaker reads them here: years digit by digit (二〇二六年),
    read-backs and long numbers digit by digit with 幺, counts and days as numbers."""
    text = _YEAR.sub(lambda m: "".join(_ZH_DIGITS[int(d)] for d in m[1]) + "年", text)
    text = _SPACED.sub(lambda m: "".join(
        "叉" if ch in "Xx" else _PHONE_DIGITS[int(ch)] for ch in m[0] if ch != " "), text)

    def number(m: re.Match[str]) -> str:
        if len(m[0]) >= 5 or m[0].startswith("0"):  # a line, a card, a phone: digit by digit
            return "".join(_PHONE_DIGITS[int(d)] for d in m[0])
        return speech.integer_zh(int(m[0]))
    return _NUMBER.sub(number, text)


def pinyin(text: str) -> str:
    """Mandarin text as the tone-numbered pinyin the `cmn-latn-pinyin` voice reads."""
    text = normalise_zh(text).replace("〇", "零").translate(_PUNCT)  # 〇 is read líng
    out: list[str] = []
    at = 0
    for m in _PINNED.finditer(text):
        out.extend(_syllables(text[at:m.start()]))
        out.append(PINNED[m[0]])
        at = m.end()
    out.extend(_syllables(text[at:]))
    return " ".join(" ".join(out).split())


def _syllables(text: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"([\u3400-\u9fff]+)", text):
        if _CJK.fullmatch(part):
            words.extend(lazy_pinyin(part, style=Style.TONE3, neutral_tone_with_five=True))
        elif part.strip():
            # Latin letters (APP) are spelled; punctuation stays for the pauses
            words.append(re.sub(r"[A-Za-z]+", lambda m: " ".join(m[0].lower()), part))
    return words


def voice_for(language: str | None) -> str | None:
    """The espeak-ng voice for a <Say language> (cmn-CN, zh-CN, en-US), None if none."""
    family = (language or "en-US").split("-", 1)[0].lower()
    return VOICES.get(family)


def words_for(text: str, voice: str) -> str:
    """What is sent to the voice: pinyin for Mandarin, the text itself otherwise."""
    return pinyin(text) if voice == "cmn-latn-pinyin" else text


@dataclass(frozen=True)
class Audio:
    """One rendered utterance: its WAV file and how long it plays."""

    path: Path
    seconds: float


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return round(w.getnframes() / w.getframerate(), 3)


class Synthesiser:
    """Renders texts to WAV files in `folder` with espeak-ng, each (text, voice) once."""

    def __init__(self, folder: Path, program: str | None = PROGRAM) -> None:
        """`program`: espeak-ng's name or path (None: no synthesiser, text only)."""
        self.folder = folder
        self.program = shutil.which(program) if program else None
        self._done: dict[tuple[str, str], Audio] = {}

    @property
    def available(self) -> bool:
        return self.program is not None

    def render(self, text: str, language: str | None) -> Audio | None:
        """The audio of `text` in the voice for `language`; None without a synthesiser or a
        voice for that language."""
        voice = voice_for(language)
        if self.program is None or voice is None or not text.strip():
            return None
        key = (text, voice)
        if key not in self._done:
            name = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:32]
            path = self.folder / f"{name}.wav"
            if not path.exists():
                self._run(words_for(text, voice), voice, path)
            self._done[key] = Audio(path, wav_seconds(path))
        return self._done[key]

    def _run(self, words: str, voice: str, path: Path) -> None:
        partial = path.with_suffix(f".{threading.get_ident()}.part")  # renders may run at once
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        assert self.program is not None
        subprocess.run([self.program, "-v", voice, "-s", str(RATE.get(voice, 160)),
                        "-w", str(partial), "--stdin"], input=words.encode("utf-8"),
                       check=True, capture_output=True, timeout=60)
        partial.replace(path)

    def seconds(self, text: str, language: str | None) -> float | None:
        """How long `text` plays in its voice (for the simulator's clock), None if unknown."""
        audio = self.render(text, language)
        return audio.seconds if audio is not None else None
