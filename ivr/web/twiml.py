"""The one module that builds TwiML: neutral instructions -> a VoiceResponse document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twilio.twiml.voice_response import Dial as DialVerb
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine.instructions import (
    Conference,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Instruction,
    Leave,
    Pause,
    Play,
    Say,
)


def render(instructions: Sequence[Instruction], *, action_url: str, silence_url: str,
           dial_url: str, voices: Mapping[str, tuple[str, str]], queue_url: str = "",
           wait_url: str = "", room_wait_url: str = "") -> str:
    """TwiML for one turn; every Gather is followed by a Redirect that reports the silence.
    An <Enqueue> reports its end to `queue_url` and holds with `wait_url`; an agent alone in
    a conference room hears `room_wait_url`, and reports the room's end to `dial_url`."""
    response = VoiceResponse()
    for ins in instructions:
        if isinstance(ins, Say):
            voice, language = voices[ins.locale]
            response.say(ins.text, voice=voice, language=language)
        elif isinstance(ins, Pause):
            response.pause(length=ins.seconds)
        elif isinstance(ins, Play):
            response.play(ins.url)
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
                elif isinstance(p, Play):
                    gather.play(p.url)
                else:
                    gather.pause(length=p.seconds)
            response.redirect(silence_url, method="POST")
        elif isinstance(ins, Dial):
            response.dial(ins.number, action=dial_url, method="POST", timeout=ins.timeout)
        elif isinstance(ins, Enqueue):
            response.enqueue(ins.queue, action=queue_url, method="POST", wait_url=wait_url,
                             wait_url_method="POST")
        elif isinstance(ins, Conference):
            agent = ins.waiting == "agent"
            dial = DialVerb(action=dial_url if agent else None, method="POST" if agent else None)
            dial.conference(ins.room, start_conference_on_enter=True,
                            end_conference_on_exit=True, beep=False,
                            wait_url=room_wait_url if agent else None,
                            wait_method="POST" if agent else None)
            response.append(dial)
        elif isinstance(ins, Leave):
            response.leave()
        elif isinstance(ins, Hangup):
            response.hangup()
    return str(response)


def hangup_only() -> str:
    """The answer to anything about a call that has ended."""
    response = VoiceResponse()
    response.hangup()
    return str(response)
