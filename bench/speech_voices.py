"""Which offline voice reads the hotline's Mandarin: measured on the prompt catalogue.

    .venv/bin/python -m bench.speech_voices

For each espeak-ng route it counts the distinct Chinese characters of the zh-CN prompts that
the voice reads as English (espeak-ng marks a switch to English with "(en)" in its phoneme
output, -x), and times the main menu at a few speaking rates. docs/speech.md records a run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from ivr.engine.prompts import Catalogue
from ivr.resources import data_dir
from ivr.tools.prompt_audio import example_values
from ivr.tools.synth import pinyin

CJK = re.compile(r"[\u3400-\u9fff]")


def phonemes(program: str, voice: str, text: str) -> str:
    return subprocess.run([program, "-q", "-x", "-v", voice, "--stdin"], input=text.encode(),
                          capture_output=True, check=True).stdout.decode()


def main() -> int:
    program = shutil.which("espeak-ng")
    if program is None:
        print("espeak-ng is not installed", file=sys.stderr)
        return 2
    version = subprocess.run([program, "--version"], capture_output=True, text=True).stdout
    print(version.strip())
    cat = Catalogue.load(data_dir("prompts"))
    texts = [cat.render(pid, "zh-CN", example_values(p.text, "zh-CN"))[0]
             for pid, p in cat.prompts["zh-CN"].items() if p.locale == "zh-CN"]
    chars = sorted({ch for text in texts for ch in text if CJK.match(ch)})
    english = [ch for ch in chars if "(en)" in phonemes(program, "cmn", ch)]
    print(f"zh-CN prompts: {len(texts)}, distinct characters: {len(chars)}")
    print(f"cmn voice, characters as text: read as English {len(english)} "
          f"({100 * len(english) / len(chars):.0f}%), e.g. {''.join(english[:30])}")
    whole = [t for t in texts if "(en)" in phonemes(program, "cmn", t)]
    print(f"cmn voice, whole prompts with English in them: {len(whole)}/{len(texts)}")
    spelled = [t for t in texts if "(en)" in phonemes(program, "cmn-latn-pinyin", pinyin(t))]
    print(f"cmn-latn-pinyin voice, prompts as tone-numbered pinyin with English in them: "
          f"{len(spelled)}/{len(texts)}" + (f" ({spelled[0][:30]}...)" if spelled else ""))
    menu = pinyin(cat.render("main_menu", "zh-CN", {})[0])
    syllables = sum(1 for w in menu.split() if re.search(r"[a-z]", w))
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (150, 175, 200, 225):
            out = Path(tmp) / f"{rate}.wav"
            subprocess.run([program, "-v", "cmn-latn-pinyin", "-s", str(rate), "-w", str(out),
                            "--stdin"], input=menu.encode(), check=True)
            with wave.open(str(out)) as w:
                seconds = w.getnframes() / w.getframerate()
            print(f"main menu at {rate} wpm: {seconds:.1f} s, {syllables / seconds:.2f} "
                  f"syllables/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
