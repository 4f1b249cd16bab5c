"""Tests for ivr.identity: GB 11643 ID numbers, keypad input, masking and card numbers."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.domain.identity import (
    IdNumber,
    card_digits,
    check_character,
    from_keypad,
    is_valid_id_number,
    mask_card_number,
    mask_id_number,
    normalise_card_number,
    parse_id_number,
    synthetic_id_number,
)
from ivr.errors import InvalidCardNumber, InvalidIdNumber

TODAY = date(2025, 6, 1)
FAR_FUTURE = date(9999, 12, 31)

# --- worked examples from the standard ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sex", "birth"),
    [
        ("11010519491231002X", "female", date(1949, 12, 31)),
        ("440524188001010014", "male", date(1880, 1, 1)),
        ("34052419800101001X", "male", date(1980, 1, 1)),
    ],
)
def test_standard_examples_are_valid(raw: str, sex: str, birth: date) -> None:
    parsed = parse_id_number(raw, today=TODAY)
    assert parsed.value == raw
    assert parsed.sex == sex
    assert parsed.birth_date == birth
    assert parsed.last4 == raw[-4:]
    assert parsed.masked == "*" * 14 + raw[-4:]
    assert is_valid_id_number(raw, today=TODAY)


def test_check_character_hand_computed() -> None:
    # 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 against weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2:
    # 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 % 11 = 2; "10X98765432"[2] = "X".
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"
    assert check_character("11010519800101001") != check_character("11010519800101002")


@pytest.mark.parametrize(
    ("first17", "reason"),
    [
        ("1101051949123100", "length"),
        ("110105194912310021", "length"),
        ("1101051949123100A", "characters"),
    ],
)
def test_check_character_rejects_bad_input(first17: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as exc:
        check_character(first17)
    assert exc.value.reason == reason


def test_lower_case_x_is_normalised() -> None:
    assert parse_id_number("11010519491231002x", today=TODAY).value == "11010519491231002X"


def test_default_today_accepts_past_and_rejects_far_future() -> None:
    assert is_valid_id_number("11010519491231002X")
    # 9999-12-31 with a correct check character is still in the future for the default today.
    future = synthetic_id_number("110105", date(9999, 12, 31), 1, "male")
    with pytest.raises(InvalidIdNumber) as exc:
        parse_id_number(future)
    assert exc.value.reason == "future"


def test_birth_date_equal_to_today_is_allowed() -> None:
    # 11010520240101001 -> check "4"
    assert parse_id_number("110105202401010014", today=date(2024, 1, 1)).birth_date == date(
        2024, 1, 1
    )


# --- invalid cases --------------------------------------------------------------------------

INVALID = [
    # (raw, reason, today)
    ("", "length", TODAY),
    ("11010519491231002", "length", TODAY),  # 17
    ("11010519491231002X0", "length", TODAY),  # 19
    ("1101051949123100", "length", TODAY),  # 16
    ("11010519491231002Y", "characters", TODAY),
    ("1101051949123100AX", "characters", TODAY),
    ("X1010519491231002X", "characters", TODAY),
    ("110105194912*1002X", "characters", TODAY),  # '*' in the middle
    ("*1010519491231002X", "characters", TODAY),
    ("11010519491231002 ", "characters", TODAY),  # trailing space
    (" 11010519491231002", "characters", TODAY),
    ("1101051949 231002X", "characters", TODAY),
    ("11010519491231002#", "characters", TODAY),  # raw keypad '#' is not stripped here
    ("１１０１０５１９４９１２３１００２X", "characters", TODAY),  # full-width digits
    ("11010549123100X", "characters", TODAY),  # 15-digit with X
    ("11010549123100*", "characters", TODAY),  # '*' only allowed at the end of 18
    ("11010549123100a", "characters", TODAY),
    ("110105194912310021", "check_digit", TODAY),  # correct is X
    ("110105194912310020", "check_digit", TODAY),
    ("440524188001010015", "check_digit", TODAY),  # correct is 4
    ("44052418800101001*", "check_digit", TODAY),  # '*' means X, but correct is 4
    ("110105194902300012", "birth_date", TODAY),  # Feb 30, correct check char "2"
    ("110105202602290016", "birth_date", TODAY),  # 2026-02-29, not a leap year; check "6"
    ("110105179912310016", "birth_date", TODAY),  # 1799-12-31, before 1800; check "6"
    ("110105491330001", "birth_date", TODAY),  # legacy, month 13
    ("110105490230001", "birth_date", TODAY),  # legacy, Feb 30 1949
    ("11010520240102001X", "future", date(2024, 1, 1)),  # born the day after "today"; check "X"
    ("110105491231002", "future", date(1949, 12, 30)),  # legacy, future against injected today
]


@pytest.mark.parametrize(("raw", "reason", "today"), INVALID)
def test_invalid_numbers_give_exact_reason(raw: str, reason: str, today: date) -> None:
    with pytest.raises(InvalidIdNumber) as exc:
        parse_id_number(raw, today=today)
    assert exc.value.reason == reason
    assert not is_valid_id_number(raw, today=today)
    message = str(exc.value)
    assert message and message.endswith(".")
    # Never the whole number in a message; at most its last four characters.
    if len(raw) > 4:
        assert raw[:-4] not in message


# --- keypad ---------------------------------------------------------------------------------


def test_keypad_star_means_x() -> None:
    assert from_keypad("11010519491231002*") == "11010519491231002X"
    assert from_keypad("11010519491231002*#") == "11010519491231002X"
    assert from_keypad("440524188001010014#") == "440524188001010014"
    assert from_keypad("440524188001010014") == "440524188001010014"
    parsed = parse_id_number(from_keypad("11010519491231002*#"), today=TODAY)
    assert parsed.value == "11010519491231002X"
    assert parsed.value.endswith("X")
    # parse_id_number also accepts the raw keypad '*' in last position.
    assert parse_id_number("11010519491231002*", today=TODAY).value == "11010519491231002X"


def test_keypad_star_elsewhere_is_invalid() -> None:
    with pytest.raises(InvalidIdNumber) as exc:
        parse_id_number(from_keypad("1101051949123100*2#"), today=TODAY)
    assert exc.value.reason == "characters"


# --- legacy 15-digit numbers ----------------------------------------------------------------


def test_legacy_number_is_upgraded() -> None:
    # 110105 49 1231 002 -> insert "19" before the year: 110105 1949 1231 002 (17 digits),
    # check character "X" (worked out in test_check_character_hand_computed): 11010519491231002X.
    parsed = parse_id_number("110105491231002", today=TODAY)
    assert parsed.value == "11010519491231002X"
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "female"  # last legacy digit 2 is even
    # 340524 80 0101 001 -> 340524 1980 0101 001, check "X" (the standard's 1980 example).
    assert parse_id_number("340524800101001", today=TODAY).value == "34052419800101001X"
    assert parse_id_number("340524800101001", today=TODAY).sex == "male"


# --- IdNumber -------------------------------------------------------------------------------


def test_id_number_repr_is_masked() -> None:
    parsed = parse_id_number("11010519491231002X", today=TODAY)
    assert "11010519491231" not in repr(parsed)
    assert "11010519491231" not in str(parsed)
    assert "11010519491231" not in f"{parsed}"
    assert repr(parsed) == "IdNumber('**************002X')"
    assert parsed == IdNumber("11010519491231002X")
    with pytest.raises(AttributeError):
        parsed.value = "440524188001010014"  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

regions = st.text(alphabet="0123456789", min_size=6, max_size=6)
births = st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 12, 31))
sequences = st.integers(min_value=0, max_value=999)
Sex = Literal["male", "female"]
sexes: st.SearchStrategy[Sex] = st.sampled_from(["male", "female"])


@given(regions, births, sequences, sexes)
def test_synthetic_numbers_parse_and_round_trip(
    region: str, birth: date, sequence: int, sex: Sex
) -> None:
    value = synthetic_id_number(region, birth, sequence, sex)
    assert len(value) == 18
    assert value[:6] == region
    # the sequence moves by at most one, to fix parity
    assert abs(int(value[14:17]) - sequence) <= 1
    parsed = parse_id_number(value, today=birth)
    assert parsed.value == value
    assert parsed.sex == sex
    assert parsed.birth_date == birth


@given(regions, births, sequences, sexes, st.integers(0, 17), st.data())
def test_any_single_character_change_is_rejected(
    region: str, birth: date, sequence: int, sex: Sex, position: int, data: st.DataObject
) -> None:
    value = synthetic_id_number(region, birth, sequence, sex)
    new = data.draw(st.sampled_from([c for c in "0123456789X" if c != value[position]]))
    changed = value[:position] + new + value[position + 1 :]
    with pytest.raises(InvalidIdNumber):
        parse_id_number(changed, today=FAR_FUTURE)
    assert not is_valid_id_number(changed, today=FAR_FUTURE)


@given(st.text(max_size=40))
def test_masking_reveals_at_most_last_four(value: str) -> None:
    for masked in (mask_id_number(value), mask_card_number(value)):
        assert len(masked) == len(value)
        if len(value) <= 4:
            assert masked == "*" * len(value)
        else:
            assert masked[:-4] == "*" * (len(value) - 4)
            assert masked[-4:] == value[-4:]


def test_masking_examples() -> None:
    assert mask_id_number("11010519491231002X") == "**************002X"
    assert mask_id_number("1234") == "****"
    assert mask_id_number("12345") == "*2345"
    assert mask_id_number("") == ""


def test_synthetic_sequence_parity_adjustment() -> None:
    # sequence ^ 1: even -> +1 for male, odd -> -1 for female; stays in 0..999
    assert synthetic_id_number("110105", date(1990, 1, 1), 998, "male")[14:17] == "999"
    assert synthetic_id_number("110105", date(1990, 1, 1), 999, "male")[14:17] == "999"
    assert synthetic_id_number("110105", date(1990, 1, 1), 1, "female")[14:17] == "000"
    assert synthetic_id_number("110105", date(1990, 1, 1), 0, "female")[14:17] == "000"
    assert synthetic_id_number("110105", date(1949, 12, 31), 2, "female") == "11010519491231002X"


@pytest.mark.parametrize(
    ("region", "birth", "sequence"),
    [
        ("11010", date(1990, 1, 1), 1),
        ("11010a", date(1990, 1, 1), 1),
        ("110105", date(1799, 12, 31), 1),
        ("110105", date(1990, 1, 1), -1),
        ("110105", date(1990, 1, 1), 1000),
    ],
)
def test_synthetic_rejects_bad_arguments(region: str, birth: date, sequence: int) -> None:
    with pytest.raises(ValueError):
        synthetic_id_number(region, birth, sequence, "male")


# --- card numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised", "digits"),
    [
        ("123456789", "123456789", "123456789"),
        ("000000000", "000000000", "000000000"),
        ("A12345678", "A12345678", "12345678"),
        ("z12345678", "Z12345678", "12345678"),
        ("m00000001", "M00000001", "00000001"),
    ],
)
def test_valid_card_numbers(raw: str, normalised: str, digits: str) -> None:
    assert normalise_card_number(raw) == normalised
    assert card_digits(raw) == digits
    assert card_digits(normalised) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12345678",  # 8
        "1234567890",  # 10
        "A1234567",  # letter + 7
        "AB2345678",  # two letters
        "12345678A",  # trailing letter
        "1234A5678",
        "*12345678",
        " 12345678",
        "12345678 ",
        "Ä12345678",  # not A-Z
        "１２３４５６７８９",  # full-width digits
        "A1234567²",
    ],
)
def test_invalid_card_numbers(raw: str) -> None:
    with pytest.raises(InvalidCardNumber) as exc:
        normalise_card_number(raw)
    if len(raw) > 4:
        assert raw[:-4] not in str(exc.value)
    with pytest.raises(InvalidCardNumber):
        card_digits(raw)


def test_card_masking() -> None:
    assert mask_card_number("A12345678") == "*****5678"
    assert mask_card_number("123456789") == "*****6789"
