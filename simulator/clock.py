"""A virtual clock: timeouts, pauses and speech advance it, nothing ever sleeps."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

SECONDS_PER_CJK_CHAR = 0.2
SECONDS_PER_OTHER_CHAR = 0.07
SECONDS_PER_KEY = 0.2
SECONDS_PER_PLAY = 1.0
SECONDS_PER_BEEP = 0.5
SECONDS_PER_DTMF_TONE = 0.2  # <Play digits>: one tone
SECONDS_PER_DTMF_WAIT = 0.5  # <Play digits>: each "w"
DIGITS = 3  # the clock keeps milliseconds: every moment it shows is rounded to them


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3400 <= code <= 0x9FFF  # CJK unified ideographs (+ extension A)
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x2FA1F  # extensions B+
    )


@functools.lru_cache(maxsize=1024)  # a line says the same prompts again and again
def speech_seconds(text: str) -> float:
    """Estimate how long a text-to-speech engine takes to say `text`."""
    cjk = sum(1 for char in text if _is_cjk(char))
    other = sum(1 for char in text if not char.isspace()) - cjk
    return round(cjk * SECONDS_PER_CJK_CHAR + other * SECONDS_PER_OTHER_CHAR, 3)


class Clock:
    """Seconds since the clock started (a call was dialled), advanced only by the simulation.

    `start` is the wall-clock moment that second 0 stands for (default: when the clock was
    made), so an application in the same process can read the call's virtual time.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError(f"the start of a call needs a time zone: {start.isoformat()}")
        self.start = start or datetime.now(UTC).astimezone()  # this machine's zone
        self._now = 0.0
        #: in a scenario, the scheduler that lets each call's time pass in turn (simulator.world)
        self.scheduler: Any = None

    @property
    def now(self) -> float:
        """The current virtual time in seconds since the call started."""
        return self._now

    @property
    def moment(self) -> datetime:
        """The current virtual moment (`start` plus the seconds simulated so far)."""
        return self.start + timedelta(seconds=self._now)

    def after(self, seconds: float) -> float:
        """The moment `seconds` from now, as the clock can show it (milliseconds): a deadline
        computed otherwise may lie a hair past every moment the clock reaches, and a call
        waiting for it would wait forever."""
        return round(self._now + seconds, DIGITS)

    def __call__(self) -> datetime:
        """The clock as an application's `now()`: the current virtual moment."""
        return self.moment

    def advance(self, seconds: float, *, scheduled: bool = False) -> float:
        """Move time forward (never backward) and return the new time.

        In a scenario (a scheduler is attached) a call's thread that lets time pass waits for
        its turn instead: the other calls run up to that moment first."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back {seconds} s")
        scheduler = self.scheduler
        if not scheduled and seconds and scheduler is not None and scheduler.party() is not None:
            scheduler.sleep(seconds)
            return self._now
        self._now = round(self._now + seconds, DIGITS)
        return self._now
