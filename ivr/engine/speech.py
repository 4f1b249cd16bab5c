"""Words for the text-to-speech voice: money, dates, digit read-backs and masked names.

Two locales, ``"zh-CN"`` and ``"en-US"``. Money is ``Decimal`` yuan or ``int`` fen end to
end; a ``float`` is refused with ``TypeError`` because it cannot hold 0.10 exactly.

Chinese amounts follow the spoken reading printed on receipts (一千零一元零一分):

* one 零 stands for a run of zeros between non-zero digits, never at the end of the
  integer part; 零 also comes before 分 when 角 is zero and there is a non-zero yuan part;
* 10-19 at the very start drop the 一 (十二元, 十万元) but keep it elsewhere (一百一十元);
* with ``liang=True`` a 2 that is the leading digit of its four-digit group and stands
  before 百, 千, 万 or 亿 is read 两 (两百元, 两千二百元, 两万元, 一亿两千万元);
  every other 2 is 二 (二元, 二十元, 十二万元, 二角);
* 万 and 亿 group the digits; above 亿 the count of 亿 is itself read (一万零一亿元).

Everything here is pure Python and allocation-light: it runs on every webhook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Literal

__all__ = [
    "LOCALES",
    "date_words",
    "digits",
    "integer_en",
    "integer_zh",
    "masked_name",
    "money",
    "money_en",
    "money_zh",
    "month_words",
    "Named",
    "clock_range",
    "spoken_name",
    "surname",
    "transliterated",
]

LOCALES = ("zh-CN", "en-US")

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ("", "十", "百", "千")  # by position inside a four-digit group
_WAN = 10**4
_YI = 10**8
_POW10 = tuple(10**p for p in range(8))

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")
_EN_TOP = 1000 ** (len(_EN_SCALES) - 1)

_EN_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def _check_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {LOCALES}")


def _check_int(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected int, got {type(n).__name__}")
    return n


# --- integers -------------------------------------------------------------------------------


def _zh_below_yi(n: int, liang: bool, at_start: bool, unit_follows: bool) -> str:
    """Read 0 < n < 10^8. ``unit_follows``: the ones digit is followed by 亿 (so 2 → 两亿)."""
    out: list[str] = []
    emitted = False  # something has been said already
    pending_zero = False  # zeros seen since the last spoken digit
    group_started = False  # a non-zero digit was said in the current four-digit group
    for p in range(7 if n >= _WAN else 3, -1, -1):
        pos = p % 4
        if pos == 3:
            group_started = False
        d = n // _POW10[p] % 10
        if d == 0:
            pending_zero = emitted
        else:
            if pending_zero:
                out.append("零")
                pending_zero = False
            if (
                d == 2
                and liang
                and not group_started
                and (pos >= 2 or (pos == 0 and (p == 4 or unit_follows)))
            ):
                word = "两"
            elif d == 1 and pos == 1 and at_start and not emitted:
                word = ""  # 十二, not 一十二, at the start of the number
            else:
                word = _ZH_DIGITS[d]
            out.append(word + _ZH_UNITS[pos])
            emitted = group_started = True
        if p == 4 and n >= _WAN:
            out.append("万")
            pending_zero = False
    return "".join(out)


def _zh_positive(n: int, liang: bool, at_start: bool, unit_follows: bool) -> str:
    if n < _YI:
        return _zh_below_yi(n, liang, at_start, unit_follows)
    high, low = divmod(n, _YI)
    text = _zh_positive(high, liang, at_start, True) + "亿"
    if low:
        if low < _YI // 10:
            text += "零"
        text += _zh_below_yi(low, liang, False, unit_follows)
    return text


def integer_zh(n: int, *, liang: bool = True) -> str:
    """Chinese numerals for a whole number: 103453 → 十万三千四百五十三, -5 → 负五, 0 → 零.

    ``liang`` only touches 2 before 百/千/万/亿 (两百); a bare 2 stays 二 — adding a
    classifier (两个) is the caller's business.
    """
    n = _check_int(n)
    if n < 0:
        return "负" + integer_zh(-n, liang=liang)
    if n == 0:
        return "零"
    return _zh_positive(n, liang, True, False)


def _en_below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words: list[str] = []
    if hundreds:
        words.append(_EN_ONES[hundreds] + " hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + ("-" + _EN_ONES[ones] if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return " ".join(words)


def _en_positive(n: int) -> str:
    words: list[str] = []
    top, n = divmod(n, _EN_TOP)
    if top:  # beyond the named scales: "two thousand quintillion"
        words.append(_en_positive(top) + " " + _EN_SCALES[-1])
    for scale in range(len(_EN_SCALES) - 2, -1, -1):
        group, n = divmod(n, 1000**scale)
        if group:
            words.append(_en_below_thousand(group) + (" " + _EN_SCALES[scale] if scale else ""))
    return " ".join(words)


def integer_en(n: int) -> str:
    """English words, short scale, no "and": 1234 → "one thousand two hundred thirty-four"."""
    n = _check_int(n)
    if n < 0:
        return "minus " + integer_en(-n)
    if n == 0:
        return "zero"
    return _en_positive(n)


# --- money ----------------------------------------------------------------------------------


def _yuan_to_fen(yuan: Decimal) -> int:
    """Exact Decimal yuan → int fen, without touching the decimal context."""
    if not isinstance(yuan, Decimal):
        raise TypeError(f"amount in yuan must be Decimal, got {type(yuan).__name__}")
    if not yuan.is_finite():
        raise ValueError(f"amount must be finite, got {yuan}")
    sign, digit_tuple, exponent = yuan.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    coefficient = int("".join(map(str, digit_tuple)))
    shift = exponent + 2
    fen: int
    if shift >= 0:
        fen = coefficient * 10**shift
    else:
        fen, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            raise ValueError(f"amount {yuan} has more than 2 decimal places")
    return -fen if sign else fen


def _amount_to_fen(amount: Decimal | int) -> int:
    if isinstance(amount, Decimal):
        return _yuan_to_fen(amount)
    if isinstance(amount, int) and not isinstance(amount, bool):
        return amount
    raise TypeError(f"amount must be Decimal (yuan) or int (fen), got {type(amount).__name__}")


def _money_zh_fen(fen: int, liang: bool) -> str:
    if fen < 0:
        return "负" + _money_zh_fen(-fen, liang)
    if fen == 0:
        return "零元"
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    parts: list[str] = []
    if yuan:
        parts.append(_zh_positive(yuan, liang, True, False) + "元")
    if jiao:
        parts.append(_ZH_DIGITS[jiao] + "角")
    if fen_digit:
        if yuan and not jiao:
            parts.append("零")
        parts.append(_ZH_DIGITS[fen_digit] + "分")
    return "".join(parts)


def _money_en_fen(fen: int) -> str:
    if fen < 0:
        return "minus " + _money_en_fen(-fen)
    if fen == 0:
        return "zero yuan"
    yuan, cents = divmod(fen, 100)
    parts: list[str] = []
    if yuan:
        parts.append(_en_positive(yuan) + " yuan")
    if cents:
        parts.append(_en_positive(cents) + " fen")
    return " and ".join(parts)


def money_zh(yuan: Decimal, *, liang: bool = True) -> str:
    """Decimal yuan in Chinese: Decimal("1001.01") → 一千零一元零一分."""
    return _money_zh_fen(_yuan_to_fen(yuan), liang)


def money_en(yuan: Decimal) -> str:
    """Decimal yuan in English: Decimal("10.50") → "ten yuan and fifty fen"."""
    return _money_en_fen(_yuan_to_fen(yuan))


def money(amount: Decimal | int, locale: str, *, liang: bool = True) -> str:
    """Words for an amount: ``int`` is fen, ``Decimal`` is yuan (at most 2 decimal places).

    ``float`` (and ``bool``) raise ``TypeError``; a third decimal place that is not zero
    raises ``ValueError`` (Decimal("1.500") is fine, Decimal("1.505") is not).
    ``liang`` only affects zh-CN.
    """
    fen = _amount_to_fen(amount)
    _check_locale(locale)
    if locale == "zh-CN":
        return _money_zh_fen(fen, liang)
    return _money_en_fen(fen)


# --- dates, digits, names -------------------------------------------------------------------


def date_words(d: date, locale: str) -> str:
    """2026年1月5日 / "January 5, 2026" (Arabic digits, no leading zeros)."""
    _check_locale(locale)
    if locale == "zh-CN":
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{_EN_MONTHS[d.month - 1]} {d.day}, {d.year}"


def month_words(d: date, locale: str) -> str:
    """The month of `d`: 2026年10月 / "October 2026"."""
    _check_locale(locale)
    if locale == "zh-CN":
        return f"{d.year}年{d.month}月"
    return f"{_EN_MONTHS[d.month - 1]} {d.year}"


def digits(s: str, locale: str) -> str:
    """Read-back, one character at a time: "002X" → "0 0 2 X". Whitespace in s is dropped."""
    _check_locale(locale)
    return " ".join(ch for ch in s if not ch.isspace())


#: digits of a phone number or a line's name, one by one: 1 is 幺 (一 sounds like 七 on a line)
_ZH_PHONE_DIGITS = "零幺二三四五六七八九"


def line_name(name: str, locale: str) -> str:
    """A line's name as the greeting says it: a number in it digit by digit, never as an
    amount (12333 is 幺二三三三, not 一万两千三百三十三; "1 2 3 3 3" in English)."""
    _check_locale(locale)
    if locale == "zh-CN":
        return "".join(_ZH_PHONE_DIGITS[int(ch)] if ch.isascii() and ch.isdigit() else ch
                       for ch in name)
    return re.sub(r"[0-9]+", lambda m: " ".join(m[0]), name)


def _is_ascii_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def masked_name(name: str) -> str:
    """Mask a name for reading aloud: 李四 → 李*, 张小三 → 张*三, 欧阳小明 → 欧**明, 李 → *.

    A name with any ASCII letter is masked word by word, keeping each word's first
    letter: "John Smith" → "J*** S****".
    """
    name = name.strip()
    if any(_is_ascii_letter(ch) for ch in name):
        return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split())
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --- how a person is named aloud --------------------------------------------------------------

#: two-character surnames: 欧阳明 is Mr/Ms 欧阳, not 欧
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 西门 南宫 "
    "独孤 轩辕 百里 呼延 申屠 太史 闻人 澹台 公冶 宗政 濮阳 淳于 单于 仲孙 钟离 万俟 赫连 "
    "拓跋 第五 东郭 左丘 梁丘 司空 司寇 亓官 谷梁 乐正 壤驷 公良 漆雕 巫马 羊舌 微生 "
    "呼延 归海 鲜于 闾丘 子车 颛孙 段干 百里 东门 公西 南门".split())
#: surnames read differently from the character's everyday reading (单 Shan, not dan)
_SURNAME_PINYIN = {
    "单": "shan", "曾": "zeng", "解": "xie", "仇": "qiu", "朴": "piao", "查": "zha",
    "区": "ou", "乐": "yue", "盖": "ge", "缪": "miao", "覃": "qin", "翟": "zhai",
    "种": "chong", "秘": "bi", "召": "shao", "员": "yun", "句": "gou", "隗": "wei",
    "宓": "mi", "祭": "zhai", "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun",
    "单于": "chanyu", "澹台": "tantai", "都": "du", "柏": "bai", "蕃": "pi", "繁": "po",
    "折": "she", "洗": "xian", "冼": "xian", "尉": "yu", "过": "guo", "阚": "kan",
}

Sex = Literal["male", "female"]


@dataclass(frozen=True, slots=True)
class Named:
    """A person as the voice names them: their full name (never spoken) and their sex (from
    the ID number, None when unknown)."""

    name: str
    sex: Sex | None = None


#: the dots between the parts of a transliterated name (古丽·阿不都): no Han surname
_NAME_DOTS = re.compile(r"\s*[·•・‧∙⋅]\s*")


def transliterated(name: str) -> bool:
    """A name written with "·" (古丽·阿不都, 阿不都·热合曼): its first part is the person's
    own name and there is no Han surname to put a title after."""
    return bool(_NAME_DOTS.search(name.strip()))


def surname(name: str) -> str:
    """The part a title follows: the family name (李建国 → 李, 欧阳小明 → 欧阳; "John Smith"
    → "Smith"), or the person's own name when there is no Han surname (古丽·阿不都 → 古丽)."""
    name = name.strip()
    if transliterated(name):
        return next((part for part in _NAME_DOTS.split(name) if part), "")
    if any(_is_ascii_letter(ch) for ch in name):
        words = name.split()
        return words[-1] if words else ""
    if name[:2] in _COMPOUND_SURNAMES and len(name) > 2:
        return name[:2]
    return name[:1]


#: characters whose reading in a transliterated (Uyghur, Kazakh, ...) name differs from the
#: everyday one: 阿不都 is Abudu, not Abudou
_TRANSLITERATION_PINYIN = {"都": "du", "拉": "la", "尔": "er", "提": "ti"}


def _romanised(family: str, transliterated_name: bool = False) -> str:
    """A Chinese surname in pinyin without tones, capitalised, ü as yu (passport style); a
    transliterated own name (古丽) as one word (Guli)."""
    if family in _SURNAME_PINYIN and not transliterated_name:
        text = _SURNAME_PINYIN[family]
    elif all(_is_ascii_letter(ch) or ch in "-'" for ch in family):
        return family
    else:
        from pypinyin import Style, lazy_pinyin  # its dictionaries load on first use

        if transliterated_name:
            text = "".join(_TRANSLITERATION_PINYIN.get(ch) or
                           "".join(lazy_pinyin(ch, style=Style.NORMAL, errors="ignore"))
                           for ch in family)
        else:
            text = "".join(lazy_pinyin(family, style=Style.NORMAL, errors="ignore"))
    return text.replace("v", "yu").replace("ü", "yu").capitalize()


def spoken_name(person: Named | str, locale: str) -> str:
    """How the voice names someone without saying their name: the surname and a title.

    李建国 (male) → 李先生 / "Mr Li"; 陈丽 (female) → 陈女士 / "Ms Chen"; sex unknown →
    李姓家人 / "a family member named Li". A name without a Han surname by the person's own
    name: 古丽·阿不都 → 古丽女士 / "Ms Guli". Never a masking `*`, and no Chinese characters in
    English.
    """
    _check_locale(locale)
    if isinstance(person, str):
        person = Named(person)
    family = surname(person.name)
    own = transliterated(person.name)
    if locale == "zh-CN":
        if person.sex is None:
            if own and family:
                return f"家人{family}"
            return f"{family}姓家人" if family else "您的家人"
        return family + ("先生" if person.sex == "male" else "女士")
    roman = _romanised(family, own) if family else ""
    if own and roman and person.sex is None:
        return f"a family member, {roman}"
    if not roman:
        return "your family member"
    if person.sex is None:
        return f"a family member named {roman}"
    return ("Mr " if person.sex == "male" else "Ms ") + roman


# --- clock times ------------------------------------------------------------------------------


def _zh_period(t: time) -> str:
    if t == time.max or t.hour >= 18:
        return "晚上"
    if t.hour < 6:
        return "凌晨"
    if t.hour < 12:
        return "上午"
    if t.hour == 12:
        return "中午"
    return "下午"


def _zh_clock(t: time) -> str:
    """9:00 → 9点, 13:30 → 1点半, 17:15 → 5点15分 (the period is said separately)."""
    if t == time.max:
        return "12点"
    hour = t.hour if t.hour <= 12 else t.hour - 12
    if t.minute == 0:
        return f"{hour}点"
    if t.minute == 30:
        return f"{hour}点半"
    return f"{hour}点{t.minute:02d}分" if t.minute < 10 else f"{hour}点{t.minute}分"


def _en_clock(t: time) -> str:
    """9:00 → "9 a.m.", 12:00 → "noon", 13:30 → "1:30 p.m.", end of day → "midnight"."""
    if t == time.max or (t.hour == 0 and t.minute == 0):
        return "midnight"
    if t.hour == 12 and t.minute == 0:
        return "noon"
    hour = t.hour % 12 or 12
    clock = f"{hour}" if t.minute == 0 else f"{hour}:{t.minute:02d}"
    return f"{clock} {'a.m.' if t.hour < 12 else 'p.m.'}"


def clock_range(start: time, end: time, locale: str) -> tuple[str, str]:
    """The words for a staffed period's two ends, as a recording says them: zh 上午9点 / 12点
    (the period once when both ends share it, or a morning runs to noon), 下午1点 / 5点;
    en "9 a.m." / "noon", "1 p.m." / "5 p.m."."""
    _check_locale(locale)
    if locale == "en-US":
        return _en_clock(start), _en_clock(end)
    first, last = _zh_period(start), _zh_period(end)
    same = first == last or (first == "上午" and end == time(12, 0))
    return first + _zh_clock(start), ("" if same else last) + _zh_clock(end)
