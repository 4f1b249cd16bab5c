"""Reading TwiML as Twilio does: strict about the document, lenient (but loud) on attributes."""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from simulator.errors import ApplicationError
from simulator.transport import WebhookResponse

BODY_EXCERPT = 200
_DECLARATION = re.compile(rb"""\s*<\?xml[^>]*?encoding=["']([A-Za-z0-9._-]+)["'][^>]*\?>""")

Warn = Callable[[str], None]


def excerpt(text: str, limit: int = BODY_EXCERPT) -> str:
    """The first `limit` characters of a body, on one line, for error messages."""
    flat = " ".join(text.split())
    return flat[:limit] if flat else "(empty body)"


#: answers Twilio reads as TwiML; text/plain is read aloud, audio played (then Twilio hangs up)
XML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
AUDIO_TYPES = frozenset({"audio/mpeg", "audio/mp3", "audio/wav", "audio/wave", "audio/x-wav",
                         "audio/aiff", "audio/x-aiff", "audio/x-aifc", "audio/gsm",
                         "audio/x-gsm", "audio/ulaw", "audio/basic"})


def media_type(reply: WebhookResponse) -> str:
    """The Content-Type without its parameters, lower case ("" when absent)."""
    return reply.content_type.split(";", 1)[0].strip().lower()


def parse_document(reply: WebhookResponse) -> list[Element]:
    """The verbs Twilio plays for a reply: a 200 with XML rooted at <Response> (text/xml,
    application/xml, text/html, or no Content-Type), text/plain (read aloud, then hang up) or
    audio (played, then hang up); anything else is an ApplicationError."""
    where = f"{reply.url} answered"
    if reply.status != 200:
        moved = f" (Location: {reply.location})" if reply.location else ""
        raise ApplicationError(f"{where} HTTP {reply.status}{moved}: {excerpt(reply.text)}",
                               "11200")
    kind = media_type(reply)
    if kind == "text/plain":
        say = Element("Say")
        say.text = reply.text
        return [say, Element("Hangup")]
    if kind in AUDIO_TYPES:
        play = Element("Play")
        play.text = reply.url
        return [play, Element("Hangup")]
    if kind and kind not in XML_TYPES:
        raise ApplicationError(f"{where} Content-Type {reply.content_type!r}, which Twilio "
                               f"neither parses nor plays: {excerpt(reply.text)}", "12300")
    try:
        root = _root(reply.content or reply.text.encode("utf-8"))
    except DefusedXmlException as exc:
        raise ApplicationError(
            f"{where} XML with forbidden constructs ({exc!r}): {excerpt(reply.text)}"
        ) from exc
    except (ParseError, ValueError, LookupError) as exc:
        raise ApplicationError(
            f"{where} a body that is not XML ({exc}): {excerpt(reply.text)}"
        ) from exc
    if root.tag != "Response":
        raise ApplicationError(
            f"{where} XML whose root is <{root.tag}>, not <Response>: {excerpt(reply.text)}"
        )
    return list(root)


def _root(content: bytes) -> Element:
    """Parse untrusted XML; expat cannot decode multi-byte encodings (GBK…), so Python does."""
    try:
        root: Element = defusedxml.ElementTree.fromstring(content)
        return root
    except DefusedXmlException:
        raise
    except ValueError:
        declared = _DECLARATION.match(content)
        if declared is None:
            raise
        text = content[declared.end() :].decode(declared.group(1).decode("ascii"))
        root = defusedxml.ElementTree.fromstring(text)
        return root


def text_of(element: Element) -> str:
    """The text inside a verb, SSML tags flattened, surrounding whitespace stripped."""
    return "".join(element.itertext()).strip()


def method_attr(element: Element, warn: Warn, name: str = "method") -> str:
    """The verb's `method` (or another method attribute): GET or POST, POST when absent or
    invalid."""
    raw = element.get(name)
    if raw is None:
        return "POST"
    method = raw.strip().upper()
    if method not in ("GET", "POST"):
        warn(f"<{element.tag}> {name}={raw!r} is not GET or POST; Twilio uses POST")
        return "POST"
    return method


def number_attr(element: Element, name: str, default: float, warn: Warn) -> float:
    """A non-negative number attribute, the default when absent or invalid."""
    raw = element.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:
        warn(f"<{element.tag}> {name}={raw!r} is not a non-negative number; using {default:g}")
        return default
    return value


def count_attr(element: Element, name: str, default: int | None, warn: Warn) -> int | None:
    """A whole-number attribute (loop, numDigits), the default when absent or invalid."""
    raw = element.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        warn(f"<{element.tag}> {name}={raw!r} is not a whole number; using {default}")
        return default
    return value


def bool_attr(element: Element, name: str, default: bool, warn: Warn) -> bool:
    """A true/false attribute, the default when absent or invalid."""
    raw = element.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    warn(f"<{element.tag}> {name}={raw!r} is not true or false; using {str(default).lower()}")
    return default
