"""One exception hierarchy, so callers catch what the hotline raises and nothing else."""

from __future__ import annotations


class IvrError(Exception):
    """Base of every error the hotline raises on purpose."""


class InvalidIdNumber(IvrError, ValueError):
    """An ID number that fails GB 11643 (length, characters, check digit or birth date)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidCardNumber(IvrError, ValueError):
    """A social-security card number that is not 9 characters with at most a leading letter."""


class DatasetError(IvrError):
    """An import file breaks the dataset contract; names the record and the rule."""

    def __init__(self, record: str, rule: str) -> None:
        super().__init__(f"{record}: {rule}")
        self.record = record
        self.rule = rule


class FlowError(IvrError):
    """A state-machine or prompt file is inconsistent; raised at start-up, before any call."""


class StorageError(IvrError):
    """The database is unavailable, locked or corrupt."""


class SettingsError(IvrError, ValueError):
    """An operator setting (an environment variable) holds a value the hotline cannot use."""


class PinKeyError(IvrError):
    """The PIN keyring is missing, unsafe or broken, or a stored hash names a key it lacks."""
