"""Housekeeping that need not run on every request: at most once per interval, per process."""

from __future__ import annotations

import threading


class Periodic:
    """`due(now)` is True at most once every `seconds` of the caller's clock (a Unix time), and
    again whenever that clock went back (tests, a corrected clock). Thread-safe; `missed()`
    makes the next call due (when the housekeeping it allowed was rolled back)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        with self._lock:
            last = self._last
            if last is not None and last <= now < last + self.seconds:
                return False
            self._last = now
            return True

    def missed(self) -> None:
        with self._lock:
            self._last = None
