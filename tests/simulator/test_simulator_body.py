"""A webhook request's body is what urllib's urlencode writes for its form (the simulator
quotes each name and value once per process, not once per request)."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.clock import speech_seconds
from simulator.transport import WebhookRequest

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXT, TEXT, max_size=6))
def test_the_body_is_urlencode_of_the_form(form: dict[str, str]) -> None:
    expected = urlencode(form).encode("ascii") if form else b""
    assert WebhookRequest("POST", "http://localhost/voice", form).body == expected
    assert WebhookRequest("POST", "http://localhost/voice", form).body == expected  # cached


def test_speech_seconds_counts_cjk_and_other_characters() -> None:
    assert speech_seconds("余额 1.5 元") == round(3 * 0.2 + 3 * 0.07, 3)
    assert speech_seconds("余额 1.5 元") == speech_seconds("余额 1.5 元")
