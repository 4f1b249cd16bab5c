"""ivr/web/twiml.py writes TwiML as text: byte for byte what twilio's VoiceResponse writes for
the same instructions (the way the hotline built it before), for any text, URLs and numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine.instructions import Dial, Gather, Hangup, Instruction, Pause, Say
from ivr.settings import Settings
from ivr.web import twiml

VOICES = Settings(database_url="sqlite://").voices


def reference(instructions: Sequence[Instruction], *, action_url: str, silence_url: str,
              dial_url: str, voices: Mapping[str, tuple[str, str]]) -> str:
    """The hotline's TwiML as twilio's library builds it."""
    response = VoiceResponse()
    for ins in instructions:
        if isinstance(ins, Say):
            voice, language = voices[ins.locale]
            response.say(ins.text, voice=voice, language=language)
        elif isinstance(ins, Pause):
            response.pause(length=ins.seconds)
        elif isinstance(ins, Gather):
            gather = response.gather(
                action=action_url, method="POST", timeout=ins.timeout,
                num_digits=ins.num_digits, finish_on_key=ins.finish_on_key,
                action_on_empty_result=False,
            )
            for p in ins.prompts:
                if isinstance(p, Say):
                    voice, language = voices[p.locale]
                    gather.say(p.text, voice=voice, language=language)
                else:
                    gather.pause(length=p.seconds)
            response.redirect(silence_url, method="POST")
        elif isinstance(ins, Dial):
            response.dial(ins.number, action=dial_url, method="POST", timeout=ins.timeout)
        elif isinstance(ins, Hangup):
            response.hangup()
    return str(response)


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30) | st.sampled_from(["", "余额 1,234.56 元。", 'a&b<c>"d"\n\t\r'])
SAY = st.builds(Say, TEXT, st.sampled_from(sorted(VOICES)))
PAUSE = st.builds(Pause, st.integers(0, 10))
GATHER = st.builds(Gather, st.lists(SAY | PAUSE, max_size=3).map(tuple),
                   st.none() | st.integers(1, 20), st.sampled_from(["", "#", "*"]),
                   st.integers(1, 15))
DIAL = st.builds(Dial, TEXT, st.integers(1, 60))
INSTRUCTION = SAY | PAUSE | GATHER | DIAL | st.just(Hangup())


@settings(max_examples=300, deadline=None)
@given(st.lists(INSTRUCTION, max_size=5), TEXT, TEXT, TEXT)
def test_the_same_document_as_twilios_library(instructions: list[Instruction], action: str,
                                              silence: str, dial: str) -> None:
    urls = {"action_url": action, "silence_url": silence, "dial_url": dial}
    assert twiml.render(instructions, **urls, voices=VOICES) == reference(
        instructions, **urls, voices=VOICES)


def test_a_menu_and_the_hangup() -> None:
    menu = [Gather((Say("普通话请按1", "zh-CN"), Pause(1), Say("For English, press 2.", "en-US")),
                   num_digits=1, timeout=5)]
    urls = {"action_url": "https://ivr.example.org/voice/step?s=1",
            "silence_url": "https://ivr.example.org/voice/step?s=1&e=silence",
            "dial_url": "https://ivr.example.org/voice/step?s=1&e=dialed"}
    assert twiml.render(menu, **urls, voices=VOICES) == reference(menu, **urls, voices=VOICES)
    assert "s=1&amp;e=silence</Redirect>" in twiml.render(menu, **urls, voices=VOICES)
    response = VoiceResponse()
    response.hangup()
    assert twiml.hangup_only() == str(response) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>')
