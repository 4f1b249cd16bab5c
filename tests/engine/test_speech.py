"""ivr.speech: table rows for every rule, plus properties checked by independent parsers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.engine.speech import (
    date_words,
    digits,
    integer_en,
    integer_zh,
    masked_name,
    money,
    money_en,
    money_zh,
)

# --- zh-CN money ----------------------------------------------------------------------------

ZH_ROWS = [
    # rows from the brief
    ("0.05", "五分"),
    ("0", "零元"),
    ("1.05", "一元零五分"),
    ("10.50", "十元五角"),
    ("12", "十二元"),
    ("1001.01", "一千零一元零一分"),
    ("10000.10", "一万元一角"),
    ("100000.05", "十万元零五分"),
    ("3050.70", "三千零五十元七角"),
    ("103453", "十万三千四百五十三元"),
    ("1234.56", "一千二百三十四元五角六分"),
    ("20000", "两万元"),
    ("2200", "两千二百元"),
    ("2", "二元"),
    ("0.2", "二角"),
    ("0.22", "二角二分"),
    ("222", "两百二十二元"),
    ("200", "两百元"),
    ("20", "二十元"),
    ("110", "一百一十元"),
    ("100010", "十万零一十元"),
    ("100000000", "一亿元"),
    ("100010000", "一亿零一万元"),
    ("120000000", "一亿两千万元"),
    # 两 only for the leading 2 of a four-digit group (see the module docstring)
    ("2222", "两千二百二十二元"),
    ("22000", "两万两千元"),
    ("220000", "二十二万元"),
    ("200000000", "两亿元"),
    ("200000000000", "两千亿元"),
    ("10200", "一万零两百元"),
    ("1200", "一千二百元"),
    # zeros in every position
    ("1", "一元"),
    ("10", "十元"),
    ("100", "一百元"),
    ("1000", "一千元"),
    ("10000", "一万元"),
    ("101", "一百零一元"),
    ("1010", "一千零一十元"),
    ("1100", "一千一百元"),
    ("10001", "一万零一元"),
    ("10010", "一万零一十元"),
    ("10100", "一万零一百元"),
    ("11000", "一万一千元"),
    ("101000", "十万一千元"),
    ("1001000", "一百万一千元"),
    ("1000001", "一百万零一元"),
    ("10000000", "一千万元"),
    ("10010000", "一千零一万元"),
    ("19", "十九元"),
    ("15.5", "十五元五角"),
    ("0.01", "一分"),
    ("0.1", "一角"),
    ("0.10", "一角"),
    ("0.99", "九角九分"),
    ("100.01", "一百元零一分"),
    ("100.10", "一百元一角"),
    ("100.11", "一百元一角一分"),
    ("1.000", "一元"),  # trailing zeros beyond two places are not extra precision
    # 万 / 亿 boundaries and above
    ("9999", "九千九百九十九元"),
    ("99999999", "九千九百九十九万九千九百九十九元"),
    ("100000001", "一亿零一元"),
    ("110000000", "一亿一千万元"),
    ("1000000000", "十亿元"),
    ("1000100000", "十亿零一十万元"),
    ("1010000000", "十亿一千万元"),
    ("100001000", "一亿零一千元"),
    ("101000000", "一亿零一百万元"),
    ("1000000010", "十亿零一十元"),
    ("999999999999.99", "九千九百九十九亿九千九百九十九万九千九百九十九元九角九分"),
    ("1000000000000", "一万亿元"),
    ("1000100000000", "一万零一亿元"),
    ("2000000000000", "两万亿元"),
    # negatives
    ("-1.05", "负一元零五分"),
    ("-0.05", "负五分"),
    ("-0", "零元"),
    ("-0.00", "零元"),
]


@pytest.mark.parametrize(("amount", "expected"), ZH_ROWS)
def test_money_zh_rows(amount: str, expected: str) -> None:
    assert money(Decimal(amount), "zh-CN") == expected
    assert money_zh(Decimal(amount)) == expected


ZH_NO_LIANG_ROWS = [
    ("20000", "二万元"),
    ("2200", "二千二百元"),
    ("222", "二百二十二元"),
    ("200", "二百元"),
    ("2222", "二千二百二十二元"),
    ("120000000", "一亿二千万元"),
    ("200000000", "二亿元"),
    ("2.22", "二元二角二分"),
]


@pytest.mark.parametrize(("amount", "expected"), ZH_NO_LIANG_ROWS)
def test_money_zh_without_liang(amount: str, expected: str) -> None:
    assert money(Decimal(amount), "zh-CN", liang=False) == expected
    assert money_zh(Decimal(amount), liang=False) == expected


FEN_ROWS = [
    (105, "zh-CN", "一元零五分"),
    (0, "zh-CN", "零元"),
    (5, "zh-CN", "五分"),
    (1050, "zh-CN", "十元五角"),
    (2_000_000, "zh-CN", "两万元"),
    (-105, "zh-CN", "负一元零五分"),
    (105, "en-US", "one yuan and five fen"),
    (100, "en-US", "one yuan"),
    (-5, "en-US", "minus five fen"),
]


@pytest.mark.parametrize(("fen", "locale", "expected"), FEN_ROWS)
def test_money_int_is_fen(fen: int, locale: str, expected: str) -> None:
    assert money(fen, locale) == expected


# --- en-US money ----------------------------------------------------------------------------

EN_ROWS = [
    ("1234.56", "one thousand two hundred thirty-four yuan and fifty-six fen"),
    ("0", "zero yuan"),
    ("0.05", "five fen"),
    ("10.50", "ten yuan and fifty fen"),
    ("1", "one yuan"),
    ("1000000", "one million yuan"),
    ("0.01", "one fen"),
    ("0.99", "ninety-nine fen"),
    ("12", "twelve yuan"),
    ("20", "twenty yuan"),
    ("21.21", "twenty-one yuan and twenty-one fen"),
    ("100", "one hundred yuan"),
    ("101", "one hundred one yuan"),
    ("1000001", "one million one yuan"),
    ("103453", "one hundred three thousand four hundred fifty-three yuan"),
    (
        "999999999999.99",
        "nine hundred ninety-nine billion nine hundred ninety-nine million nine hundred "
        "ninety-nine thousand nine hundred ninety-nine yuan and ninety-nine fen",
    ),
    ("-3.10", "minus three yuan and ten fen"),
    ("-0", "zero yuan"),
]


@pytest.mark.parametrize(("amount", "expected"), EN_ROWS)
def test_money_en_rows(amount: str, expected: str) -> None:
    assert money(Decimal(amount), "en-US") == expected
    assert money_en(Decimal(amount)) == expected


# --- integers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "零"), (2, "二"), (3, "三"), (10, "十"), (12, "十二"), (200, "两百"), (-7, "负七")],
)
def test_integer_zh(n: int, expected: str) -> None:
    assert integer_zh(n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zero"),
        (3, "three"),
        (13, "thirteen"),
        (40, "forty"),
        (1000, "one thousand"),
        (-2, "minus two"),
        (10**18, "one quintillion"),
        (2 * 10**21, "two thousand quintillion"),
    ],
)
def test_integer_en(n: int, expected: str) -> None:
    assert integer_en(n) == expected


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.05, 0.0, True, "1.05", None])
def test_money_refuses_non_decimal_non_int(bad: object) -> None:
    with pytest.raises(TypeError):
        money(bad, "zh-CN")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money(bad, "en-US")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.05, 1, 105])
def test_money_zh_en_refuse_non_decimal(bad: object) -> None:
    with pytest.raises(TypeError):
        money_zh(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money_en(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.5, True])
def test_integer_helpers_refuse_non_int(bad: object) -> None:
    with pytest.raises(TypeError):
        integer_zh(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        integer_en(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1.005", "0.001", "-2.345", "1E-3", "NaN", "Infinity"])
def test_money_refuses_more_than_two_places(bad: str) -> None:
    for locale in ("zh-CN", "en-US"):
        with pytest.raises(ValueError):
            money(Decimal(bad), locale)


def test_unknown_locale() -> None:
    with pytest.raises(ValueError):
        money(Decimal("1"), "fr-FR")
    with pytest.raises(ValueError):
        date_words(date(2026, 1, 1), "zh")
    with pytest.raises(ValueError):
        digits("1", "")


# --- dates, digits, names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "zh", "en"),
    [
        (date(2026, 11, 21), "2026年11月21日", "November 21, 2026"),
        (date(2026, 1, 5), "2026年1月5日", "January 5, 2026"),
        (date(2000, 2, 29), "2000年2月29日", "February 29, 2000"),
        (date(1999, 12, 31), "1999年12月31日", "December 31, 1999"),
    ],
)
def test_date_words(d: date, zh: str, en: str) -> None:
    assert date_words(d, "zh-CN") == zh
    assert date_words(d, "en-US") == en


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("002X", "0 0 2 X"),
        ("12333", "1 2 3 3 3"),
        ("7", "7"),
        ("", ""),
        ("138 0013", "1 3 8 0 0 1 3"),
    ],
)
def test_digits(s: str, expected: str) -> None:
    assert digits(s, "zh-CN") == expected
    assert digits(s, "en-US") == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("李", "*"),
        ("李四", "李*"),
        ("张小三", "张*三"),
        ("欧阳小明", "欧**明"),
        ("阿卜杜·热西提", "阿*****提"),
        ("John Smith", "J*** S****"),
        ("Li", "L*"),
        ("  Ann  Lee ", "A** L**"),
        ("", ""),
    ],
)
def test_masked_name(name: str, expected: str) -> None:
    assert masked_name(name) == expected


# --- independent parsers for the properties ------------------------------------------------

_ZH_DIGIT_VALUE = {c: i for i, c in enumerate("一二三四五六七八九", 1)} | {"两": 2}
_ZH_SMALL_POWER = {"十": 1, "百": 2, "千": 3}


class _Term:
    """One spoken digit: its value, its power of ten, and whether 零 was said before it."""

    def __init__(self, digit: int, power: int, zero_before: bool, bare: bool) -> None:
        self.digit, self.power, self.zero_before, self.bare = digit, power, zero_before, bare


def parse_zh_integer(text: str) -> int:
    """Strict Chinese numerals → int.

    Besides the value it checks the reading rules independently of the implementation:
    powers strictly decrease, 零 appears exactly where zeros are skipped inside the next
    digit's four-digit group or a whole group is zero (never first, never last, never
    twice), a bare 十 only starts the number and a starting 10-19 is never 一十.
    """
    if text == "零":
        return 0
    terms: list[_Term] = []
    digit: int | None = None
    zero = False
    group_start = yi_start = 0  # terms before these indexes already carry 万 / 亿
    for i, ch in enumerate(text):
        if ch == "零":
            if zero or digit is not None or not terms:
                raise ValueError(f"misplaced 零 in {text!r}")
            zero = True
        elif ch in _ZH_DIGIT_VALUE:
            if digit is not None:
                raise ValueError(f"two digits in a row in {text!r}")
            digit = _ZH_DIGIT_VALUE[ch]
        elif ch in _ZH_SMALL_POWER:
            bare = digit is None
            if bare and not (ch == "十" and i == 0):
                raise ValueError(f"unit without digit in {text!r}")
            terms.append(_Term(digit or 1, _ZH_SMALL_POWER[ch], zero, bare))
            digit, zero = None, False
        elif ch in "万亿":
            if digit is not None:
                terms.append(_Term(digit, 0, zero, False))
                digit, zero = None, False
            if zero or len(terms) == (group_start if ch == "万" else yi_start):
                raise ValueError(f"empty group before {ch} in {text!r}")
            for term in terms[group_start if ch == "万" else yi_start :]:
                term.power += 4 if ch == "万" else 8
            group_start = len(terms)
            if ch == "亿":
                yi_start = group_start
        else:
            raise ValueError(f"unexpected {ch!r} in {text!r}")
    if digit is not None:
        terms.append(_Term(digit, 0, zero, False))
    elif zero:
        raise ValueError(f"trailing 零 in {text!r}")
    if not terms:
        raise ValueError(f"no number in {text!r}")
    first = terms[0]
    if first.zero_before or (first.power % 4 == 1 and first.digit == 1 and not first.bare):
        raise ValueError(f"bad start of {text!r}")
    for prev, term in zip(terms, terms[1:], strict=False):
        gap = prev.power - term.power
        # 零 iff a zero is skipped inside term's own four-digit group (一万零一, but
        # 十万一千) or a whole group is skipped (一亿零一千)
        skips_group = prev.power // 4 - term.power // 4 > 1
        if gap < 1 or term.zero_before != (gap > 1 and (term.power % 4 != 3 or skips_group)):
            raise ValueError(f"zeros misplaced in {text!r}")
    return sum(term.digit * 10**term.power for term in terms)


def _fraction_digit(word: str) -> int:
    """角 and 分 take a single digit 一..九 (二, never 两)."""
    digit = "一二三四五六七八九".find(word) + 1
    if len(word) != 1 or not digit:
        raise ValueError(f"bad 角/分 digit {word!r}")
    return digit


def parse_zh_money(text: str) -> Decimal:
    sign = 1
    if text.startswith("负"):
        sign, text = -1, text[1:]
    if text == "零元":
        return Decimal("0.00")
    yuan = jiao = fen = 0
    if "元" in text:
        head, text = text.split("元", 1)
        yuan = parse_zh_integer(head)
    if "角" in text:
        head, text = text.split("角", 1)
        jiao = _fraction_digit(head)
    if text:
        assert text.endswith("分"), text
        head = text[:-1]
        if yuan and not jiao:
            head = head.removeprefix("零")  # 零 is required here ...
            assert head != text[:-1], f"missing 零 before 分 in {text!r}"
        fen = _fraction_digit(head)  # ... and forbidden elsewhere
    assert yuan or jiao or fen, text
    return sign * (Decimal(yuan) + Decimal(jiao) / 10 + Decimal(fen) / 100)


_EN_VALUE = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
} | {
    w: 10 * i
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
_EN_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def parse_en_integer(words: list[str]) -> int:
    total = group = 0
    for word in words:
        if word == "hundred":
            group *= 100
        elif word in _EN_SCALE:
            total += group * _EN_SCALE[word]
            group = 0
        else:
            for part in word.split("-"):
                group += _EN_VALUE[part]
    return total + group


def parse_en_money(text: str) -> Decimal:
    if text == "zero yuan":
        return Decimal("0.00")
    yuan = fen = 0
    for clause in text.split(" and "):
        *number, unit = clause.split()
        if unit == "yuan":
            yuan = parse_en_integer(number)
        else:
            assert unit == "fen"
            fen = parse_en_integer(number)
    return Decimal(yuan) + Decimal(fen) / 100


# --- properties -----------------------------------------------------------------------------

# Fen amounts in [0, 10^14): digits drawn with extra zeros, so runs of zeros and group
# boundaries (万, 亿) are common rather than vanishingly rare.
_digit = st.one_of(st.just(0), st.just(0), st.just(1), st.just(2), st.integers(0, 9))
fen_amounts = st.one_of(
    st.lists(_digit, min_size=14, max_size=14).map(lambda ds: int("".join(map(str, ds)))),
    st.integers(0, 10**14 - 1),
)


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


@given(fen_amounts, st.booleans())
def test_zh_money_properties(fen: int, liang: bool) -> None:
    amount = _yuan(fen)
    text = money(amount, "zh-CN", liang=liang)
    assert not text.endswith("零")
    assert "零零" not in text
    assert ("元" in text) == (fen >= 100 or fen == 0)
    assert "零元" not in text or text == "零元"
    assert "元零" not in text or text.endswith("分")
    if liang:
        assert all(text[i + 1] in "百千万亿" for i, ch in enumerate(text) if ch == "两")
    else:
        assert "两" not in text
    assert parse_zh_money(text) == amount
    assert money(fen, "zh-CN", liang=liang) == text
    if fen:
        assert money(-amount, "zh-CN", liang=liang) == "负" + text


@given(fen_amounts)
def test_en_money_properties(fen: int) -> None:
    amount = _yuan(fen)
    text = money(amount, "en-US")
    assert ("yuan" in text) == (fen >= 100 or fen == 0)
    assert ("fen" in text) == (fen % 100 != 0)
    assert parse_en_money(text) == amount
    assert money(fen, "en-US") == text
    if fen:
        assert money(-amount, "en-US") == "minus " + text


@given(st.integers(0, 10**16 - 1))
def test_integer_zh_round_trips(n: int) -> None:
    assert parse_zh_integer(integer_zh(n)) == n
    assert parse_zh_integer(integer_zh(n, liang=False)) == n


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=3))
def test_third_place_rejected_unless_zero(amount: Decimal) -> None:
    if amount == amount.quantize(Decimal("0.01")):
        assert money(amount, "zh-CN")
    else:
        with pytest.raises(ValueError):
            money(amount, "zh-CN")


# --- names as a person would say them (no masking `*`, no Chinese in English) ------------------

from datetime import time  # noqa: E402

from ivr.engine.speech import Named, clock_range, spoken_name, surname  # noqa: E402


@pytest.mark.parametrize(("name", "sex", "zh", "en"), [
    ("陈丽", "female", "陈女士", "Ms Chen"),
    ("李建国", "male", "李先生", "Mr Li"),
    ("李小雨", "female", "李女士", "Ms Li"),  # never 李雨 (another person) nor 李星号雨
    ("欧阳小明", "male", "欧阳先生", "Mr Ouyang"),
    ("单田芳", "male", "单先生", "Mr Shan"),  # the surname's reading, not dan
    ("吕雪", "female", "吕女士", "Ms Lyu"),
    ("John Smith", "male", "Smith先生", "Mr Smith"),
    ("王芳", None, "王姓家人", "a family member named Wang"),
])
def test_spoken_name(name: str, sex: Any, zh: str, en: str) -> None:
    assert spoken_name(Named(name, sex), "zh-CN") == zh
    assert spoken_name(Named(name, sex), "en-US") == en


@given(st.text(alphabet="陈李王欧阳单吕张小明丽国雨山芳", min_size=1, max_size=4),
       st.sampled_from(["male", "female", None]))
def test_spoken_names_never_mask_and_english_has_no_chinese(name: str, sex: Any) -> None:
    for locale in ("zh-CN", "en-US"):
        said = spoken_name(Named(name, sex), locale)
        assert "*" not in said
        assert name not in said or len(name) == len(surname(name))  # never the full name
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in spoken_name(Named(name, sex), "en-US"))


@pytest.mark.parametrize(("start", "end", "zh", "en"), [
    (time(9), time(12), ("上午9点", "12点"), ("9 a.m.", "noon")),
    (time(13), time(17), ("下午1点", "5点"), ("1 p.m.", "5 p.m.")),
    (time(8, 30), time(17, 30), ("上午8点半", "下午5点半"), ("8:30 a.m.", "5:30 p.m.")),
    (time(0), time.max, ("凌晨0点", "晚上12点"), ("midnight", "midnight")),
])
def test_clock_range(start: time, end: time, zh: tuple[str, str], en: tuple[str, str]) -> None:
    assert clock_range(start, end, "zh-CN") == zh
    assert clock_range(start, end, "en-US") == en
