"""Validate ID numbers (GB 11643) and social-security card numbers before any lookup or log.

Callers key these in on a phone pad, so this module also maps keypad input (``*`` for ``X``)
and masks numbers so that logs and operator messages never show more than the last four.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from ivr.errors import InvalidCardNumber, InvalidIdNumber

__all__ = [
    "IdNumber",
    "card_digits",
    "check_character",
    "from_keypad",
    "is_valid_id_number",
    "mask_card_number",
    "mask_id_number",
    "normalise_card_number",
    "parse_id_number",
    "synthetic_id_number",
]

Sex = Literal["male", "female"]

# ISO 7064 MOD 11-2 weights for the first 17 characters (2**(17 - i) mod 11).
_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_EARLIEST_BIRTH = date(1800, 1, 1)
# The hotline serves China: "today" is the date in Beijing, whatever the server's zone.
_CHINA_TZ = ZoneInfo("Asia/Shanghai")
_VISIBLE = 4


def _is_ascii_digits(text: str) -> bool:
    """True for non-empty ASCII digits only (str.isdigit alone accepts '²' and '１')."""
    return text.isascii() and text.isdigit()


def _china_today() -> date:
    """Default 'today' for the future-birth-date check, taken in China's time zone."""
    return datetime.now(_CHINA_TZ).date()


def _check_char(first17: str) -> str:
    """Check character for 17 already-validated ASCII digits; the hot path skips re-validation."""
    total = sum(w * (ord(c) - 48) for w, c in zip(_WEIGHTS, first17, strict=True))
    return _CHECK_CHARS[total % 11]


def check_character(first17: str) -> str:
    """Compute the GB 11643 check character so numbers can be verified or built."""
    if len(first17) != 17:
        raise InvalidIdNumber("length", f"Expected 17 digits, got {len(first17)} characters.")
    if not _is_ascii_digits(first17):
        raise InvalidIdNumber("characters", "The first 17 characters must all be digits.")
    return _check_char(first17)


def mask_id_number(value: str) -> str:
    """Hide all but the last four characters so logs never carry a whole number."""
    if len(value) <= _VISIBLE:
        return "*" * len(value)
    return "*" * (len(value) - _VISIBLE) + value[-_VISIBLE:]


def mask_card_number(card: str) -> str:
    """Hide all but the last four characters of a card number; never raises, for use in logs."""
    return mask_id_number(card)


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A validated ID number in its 18-character form; build it with parse_id_number."""

    value: str

    def __repr__(self) -> str:
        """Masked, so an IdNumber that ends up in a log or f-string does not leak the number."""
        return f"IdNumber({mask_id_number(self.value)!r})"

    __str__ = __repr__

    @property
    def sex(self) -> Sex:
        """Sex from the parity of the 17th character (odd is male), as the standard defines."""
        return "male" if (ord(self.value[16]) - 48) % 2 == 1 else "female"

    @property
    def birth_date(self) -> date:
        """Birth date from characters 7-14 (already validated when parsed)."""
        v = self.value
        return date(int(v[6:10]), int(v[10:12]), int(v[12:14]))

    @property
    def last4(self) -> str:
        """The last four characters, which callers may be asked to confirm."""
        return self.value[-_VISIBLE:]

    @property
    def masked(self) -> str:
        """The number as it may appear in logs and operator messages."""
        return mask_id_number(self.value)


def from_keypad(keys: str) -> str:
    """Turn DTMF digits into ID characters: the pad has no X, so callers press '*' for it."""
    if keys.endswith("#"):
        keys = keys[:-1]
    return keys.replace("*", "X")


def parse_id_number(raw: str, *, today: date | None = None) -> IdNumber:
    """Validate an 18- or legacy 15-digit number and normalise it, naming the reason it fails.

    Accepted: 18 characters whose last may be X, x or '*' (keypad), or 15 digits, which are
    upgraded by inserting "19" before the two-digit year and appending the check character.
    Nothing is stripped: spaces or any other character make the number invalid.
    Checks run in the order length, characters, check character, birth date, future.
    """
    n = len(raw)
    if n == 18:
        body, last = raw[:17], raw[17]
        if not _is_ascii_digits(body):
            raise InvalidIdNumber(
                "characters", f"ID number {mask_id_number(raw)} has a non-digit before the end."
            )
        if last in "xX*":
            last = "X"
        elif not ("0" <= last <= "9"):
            raise InvalidIdNumber(
                "characters", f"ID number {mask_id_number(raw)} ends in a disallowed character."
            )
        if _check_char(body) != last:
            raise InvalidIdNumber(
                "check_digit", f"ID number {mask_id_number(raw)} has a wrong check character."
            )
        value = body + last
    elif n == 15:
        if not _is_ascii_digits(raw):
            raise InvalidIdNumber(
                "characters", f"Legacy ID number {mask_id_number(raw)} must be 15 digits."
            )
        body = raw[:6] + "19" + raw[6:]
        value = body + _check_char(body)
    else:
        raise InvalidIdNumber("length", f"An ID number has 18 characters (or 15), not {n}.")

    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            "birth_date", f"ID number {mask_id_number(raw)} has a birth date that does not exist."
        ) from None
    if birth < _EARLIEST_BIRTH:
        raise InvalidIdNumber(
            "birth_date", f"ID number {mask_id_number(raw)} has a birth date before 1800."
        )
    if birth > (today if today is not None else _china_today()):
        raise InvalidIdNumber(
            "future", f"ID number {mask_id_number(raw)} has a birth date in the future."
        )
    return IdNumber(value)


def is_valid_id_number(raw: str, *, today: date | None = None) -> bool:
    """Yes/no form of parse_id_number for branching in call flows."""
    try:
        parse_id_number(raw, today=today)
    except InvalidIdNumber:
        return False
    return True


def synthetic_id_number(region: str, birth: date, sequence: int, sex: Sex) -> str:
    """Build a valid 18-character number for demo and test data, never a real person's by intent.

    ``region`` is any 6 ASCII digits, ``birth`` must be on or after 1800-01-01 and ``sequence``
    in 0..999. If the sequence's parity does not match ``sex`` (odd = male) its lowest bit is
    flipped (``sequence ^ 1``: even -> +1 for male, odd -> -1 for female), which keeps it in
    0..999. Raises ValueError for arguments outside these ranges.
    """
    if len(region) != 6 or not _is_ascii_digits(region):
        raise ValueError("region must be 6 digits")
    if birth < _EARLIEST_BIRTH:
        raise ValueError("birth must be on or after 1800-01-01")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be in 0..999")
    if sex not in ("male", "female"):
        raise ValueError("sex must be 'male' or 'female'")
    if (sequence % 2 == 1) != (sex == "male"):
        sequence ^= 1
    body = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return body + _check_char(body)


def normalise_card_number(raw: str) -> str:
    """Validate a social-security card number (9 digits, or A-Z plus 8 digits) and upper-case it."""
    if len(raw) != 9:
        raise InvalidCardNumber(f"A card number has 9 characters, not {len(raw)}.")
    head = raw[0]
    if "a" <= head <= "z":
        head = head.upper()
    if not (("A" <= head <= "Z") or ("0" <= head <= "9")) or not _is_ascii_digits(raw[1:]):
        raise InvalidCardNumber(
            f"Card number {mask_card_number(raw)} must be 9 digits or a letter and 8 digits."
        )
    return head + raw[1:]


def card_digits(card: str) -> str:
    """The digits of a card number, which is all a caller can key in on a phone pad."""
    normalised = normalise_card_number(card)
    return normalised[1:] if normalised[0].isalpha() else normalised
