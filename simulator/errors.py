"""Errors the simulator raises on purpose, so callers catch these and nothing else."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class CallEnded(SimulatorError):
    """The caller tried to act (press, stay silent, hang up) on a call that has already ended."""


class NotWaiting(SimulatorError):
    """The caller pressed keys while no <Gather> was listening (never raised by a sane call)."""


class ConnectionFailed(SimulatorError):
    """A webhook request could not be delivered (connection refused, timeout, app crashed)."""


class ApplicationError(SimulatorError):
    """The application answered something Twilio would reject; the call ends with this error."""
