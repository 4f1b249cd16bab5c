"""What a waiting <Gather> listens for, and how it turns pressed keys into Digits."""

from __future__ import annotations

from dataclasses import dataclass

KEYS = frozenset("0123456789*#")
AUTO_SPEECH_TIMEOUT = 1.0  # speechTimeout="auto": Twilio stops at the first pause; simulated 1 s


@dataclass(frozen=True)
class Collected:
    """The outcome of keys pressed at one <Gather>."""

    digits: str  # what Twilio posts as Digits
    finished_on_key: str  # what Twilio posts as FinishedOnKey ("" unless ended by that key)
    ignored: str  # keys pressed after the Gather had completed (they reach nobody)
    timed_out: bool  # the keys did not complete the Gather, so it ended after `timeout`

    @property
    def empty(self) -> bool:
        """True when nothing usable was collected: silence, or a lone finishOnKey."""
        return self.digits == ""


@dataclass(frozen=True)
class PendingGather:
    """A <Gather> waiting for the caller: its attributes with Twilio's defaults applied."""

    action: str
    method: str = "POST"
    timeout: float = 5.0
    finish_on_key: str = "#"
    num_digits: int | None = None
    action_on_empty_result: bool = False
    input: tuple[str, ...] = ("dtmf",)  # what it listens for: dtmf, speech, or both
    speech_timeout: str | None = None  # seconds, "auto", or None (Twilio: the timeout)
    language: str = "en-US"  # the language speech is recognised in
    hints: str = ""
    partial_result_callback: str | None = None
    partial_result_method: str = "POST"

    @property
    def keys(self) -> bool:
        """Whether this Gather listens for keys."""
        return "dtmf" in self.input

    @property
    def speech(self) -> bool:
        """Whether this Gather listens for speech."""
        return "speech" in self.input

    def end_of_speech(self) -> float:
        """Seconds of silence after speech before the Gather ends (speechTimeout)."""
        if self.speech_timeout is None:
            return self.timeout
        if self.speech_timeout == "auto":
            return AUTO_SPEECH_TIMEOUT
        return float(self.speech_timeout)

    def collect(self, keys: str) -> Collected:
        """Apply Twilio's rules: numDigits or finishOnKey completes it, else it times out."""
        bad = sorted(set(keys) - KEYS)
        if bad:
            raise ValueError(f"not phone keys: {''.join(bad)!r} (use 0-9 * #)")
        digits: list[str] = []
        for index, key in enumerate(keys):
            if self.finish_on_key and key == self.finish_on_key:
                return Collected("".join(digits), key, keys[index + 1 :], timed_out=False)
            digits.append(key)
            if self.num_digits is not None and len(digits) >= self.num_digits:
                return Collected("".join(digits), "", keys[index + 1 :], timed_out=False)
        return Collected("".join(digits), "", "", timed_out=True)

    def describe(self) -> str:
        """One line for transcripts: what completes this Gather and where it posts."""
        parts = [f"timeout={self.timeout:g}s"]
        if self.input != ("dtmf",):
            parts.append("input=" + " ".join(self.input))
        if self.speech:
            parts.append(f"language={self.language}")
        if self.num_digits is not None:
            parts.append(f"numDigits={self.num_digits}")
        finish = f"finishOnKey={self.finish_on_key!r}" if self.finish_on_key else "no finishOnKey"
        parts.append(finish)
        if self.action_on_empty_result:
            parts.append("actionOnEmptyResult")
        parts.append(f"action={self.method} {self.action}")
        return " ".join(parts)
