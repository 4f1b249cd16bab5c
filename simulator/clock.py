"""A virtual clock: timeouts, pauses and speech advance it, nothing ever sleeps."""

from __future__ import annotations

SECONDS_PER_CJK_CHAR = 0.2
SECONDS_PER_OTHER_CHAR = 0.07
SECONDS_PER_KEY = 0.2
SECONDS_PER_PLAY = 1.0


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3400 <= code <= 0x9FFF  # CJK unified ideographs (+ extension A)
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x2FA1F  # extensions B+
    )


def speech_seconds(text: str) -> float:
    """Estimate how long a text-to-speech engine takes to say `text`."""
    cjk = sum(1 for char in text if _is_cjk(char))
    other = sum(1 for char in text if not char.isspace()) - cjk
    return round(cjk * SECONDS_PER_CJK_CHAR + other * SECONDS_PER_OTHER_CHAR, 3)


class Clock:
    """Seconds since the call was dialled, advanced only by the simulation."""

    def __init__(self) -> None:
        self._now = 0.0

    @property
    def now(self) -> float:
        """The current virtual time in seconds since the call started."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back {seconds} s")
        self._now = round(self._now + seconds, 3)
        return self._now
