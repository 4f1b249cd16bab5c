"""Errors the simulator raises on purpose, so callers catch these and nothing else."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class CallEnded(SimulatorError):
    """The caller tried to act (press, stay silent, hang up) on a call that has already ended."""


class NotWaiting(SimulatorError):
    """The caller pressed keys while no <Gather> was listening (never raised by a sane call)."""


class Stalled(SimulatorError):
    """A call or scenario made no progress in virtual time for too many steps in a row: a loop
    (in the simulator, or in documents that let no time pass) reported instead of a hang."""


class ConnectionFailed(SimulatorError):
    """A webhook request could not be delivered (connection refused, timeout, app crashed)."""


class ApplicationError(SimulatorError):
    """The application answered something Twilio would reject; the call ends with this error.

    `code` is Twilio's error code for it (11200 HTTP retrieval failure, 12100 document parse
    failure, …), what a fallback URL receives as ErrorCode."""

    def __init__(self, message: str, code: str = "12100") -> None:
        super().__init__(message)
        self.code = code
