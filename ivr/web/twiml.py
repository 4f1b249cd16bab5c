"""The one module that builds TwiML: neutral instructions -> a TwiML document.

The document is exactly what twilio's `VoiceResponse` serialises (attributes sorted by name,
booleans as true/false, an empty element as `<Name />`, ElementTree's escaping), written as
text: building the ElementTree cost about as much as the rest of a menu webhook's Python.
tests/test_twiml.py holds the two equal, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ivr.engine.instructions import Dial, Gather, Hangup, Instruction, Pause, Say

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_CDATA = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                            "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})


def _element(name: str, attrs: Mapping[str, str | int | bool | None], content: str = "") -> str:
    """<name a="..."...>content</name>; `content` is TwiML already (escaped)."""
    parts = [name]
    for key in sorted(attrs):
        value = attrs[key]
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f'{key}="{text.translate(_ATTRIBUTE)}"')
    opening = " ".join(parts)
    return f"<{opening}>{content}</{name}>" if content else f"<{opening} />"


def _say(say: Say, voices: Mapping[str, tuple[str, str]]) -> str:
    voice, language = voices[say.locale]
    return _element("Say", {"voice": voice, "language": language}, say.text.translate(_CDATA))


def _pause(pause: Pause) -> str:
    return _element("Pause", {"length": pause.seconds})


def render(instructions: Sequence[Instruction], *, action_url: str, silence_url: str,
           dial_url: str, voices: Mapping[str, tuple[str, str]]) -> str:
    """TwiML for one turn; every Gather is followed by a Redirect that reports the silence."""
    out = [DECLARATION, "<Response>"]
    for ins in instructions:
        if isinstance(ins, Say):
            out.append(_say(ins, voices))
        elif isinstance(ins, Pause):
            out.append(_pause(ins))
        elif isinstance(ins, Gather):
            prompts = "".join(_say(p, voices) if isinstance(p, Say) else _pause(p)
                              for p in ins.prompts)
            out.append(_element("Gather", {
                "action": action_url, "method": "POST", "timeout": ins.timeout,
                "numDigits": ins.num_digits, "finishOnKey": ins.finish_on_key,
                "actionOnEmptyResult": False,
            }, prompts))
            out.append(_element("Redirect", {"method": "POST"}, silence_url.translate(_CDATA)))
        elif isinstance(ins, Dial):
            out.append(_element("Dial", {"action": dial_url, "method": "POST",
                                         "timeout": ins.timeout}, ins.number.translate(_CDATA)))
        elif isinstance(ins, Hangup):
            out.append("<Hangup />")
    if len(out) == 2:
        return DECLARATION + "<Response />"
    out.append("</Response>")
    return "".join(out)


def hangup_only() -> str:
    """The answer to anything about a call that has ended."""
    return render([Hangup()], action_url="", silence_url="", dial_url="", voices={})
