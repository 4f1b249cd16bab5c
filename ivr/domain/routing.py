"""One line, many regions: which region (参保地) a call is for.

A deployment may hold several regions, each with its people, agents, hours and policy. A call
is for the region whose `numbers` hold the number it called (Twilio's `To`); else, when only
one region has people, that one; else the region whose `area_codes` hold the area code (区号)
of the caller's fixed line; else the caller picks it from a short menu (`offered`). Mobile
numbers, withheld and foreign numbers carry no area code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import Engine, exists, select

from ivr.store import prepared as fast
from ivr.store.schema import DEFAULT_LINE_NAME, DEFAULT_LINE_NAME_EN, people, regions

#: the spoken region menu holds at most this many (keys 1-9); more are reached by number or
#: area code only (dataset.md §2)
MENU_KEYS = 9

#: how a call's region was found
BY_NUMBER, BY_ONLY, BY_AREA, BY_MENU = "number", "only", "area", "menu"


@dataclass(frozen=True, slots=True)
class Offered:
    """A region a caller may pick: its code and its name in each language."""

    code: str
    name: str
    name_en: str  # as the English voice says it


@dataclass(frozen=True, slots=True)
class Route:
    """The region of a call: `code` None with `how` "" when the caller must pick it (the
    menu); `code` None with `how` "only" when the database holds no region with people yet
    (the line's region applies)."""

    code: str | None
    how: str


_ROWS = (select(regions.c.code, regions.c.name, regions.c.name_en, regions.c.numbers,
                regions.c.area_codes, regions.c.line_name, regions.c.line_name_en,
                exists().where(people.c.region_code == regions.c.code).label("served"))
         .order_by(regions.c.code))


@dataclass(frozen=True, slots=True)
class _Row:
    code: str
    name: str
    name_en: str
    numbers: tuple[str, ...]
    area_codes: tuple[str, ...]
    line_name: str
    line_name_en: str
    served: bool


def _rows(engine: Engine) -> list[_Row]:
    """Every region, in code order, with whether it has people: one prepared statement
    (ivr/store/prepared.py; read once per call)."""
    with fast.Transaction(engine) as tx:
        found = tx.run(fast.prepared(engine, _ROWS), {}).fetchall()
    return [_Row(code, name, name_en or "", tuple(json.loads(numbers or "[]")),
                 tuple(json.loads(area_codes or "[]")), line, line_en, bool(served))
            for code, name, name_en, numbers, area_codes, line, line_en, served in found]


#: the peoples an autonomous area is named for (中国的少数民族, and 各族)
_PEOPLES = sorted((
    "壮 白 苗 土家 蒙古 回 藏 维吾尔 彝 布依 朝鲜 满 侗 瑶 哈尼 哈萨克 傣 黎 傈僳 佤 畲 拉祜 水 "
    "东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 "
    "乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺 各").split(),
    key=len, reverse=True)
#: the kind of an autonomous area and its peoples, said in no English name (Guangxi, Dali)
_AUTONOMOUS = re.compile(f"(?:(?:{'|'.join(_PEOPLES)})族)*自治(?:区|州|县|旗)$")
#: a nationwide service number after +86 (400…, 800…): no area code (95xxx and 96xxx are
#: too short for a landline: 0951-0955 are Ningxia's area codes)
_SERVICE = ("400", "800")


def area_code(number: str) -> str | None:
    """The area code (区号, with its 0) of a Chinese fixed-line number in E.164 (+86…) or
    national form (0…); None for a mobile (1…), a service or foreign number, or none."""
    digits = number.strip()
    if digits.startswith("+86"):
        digits = digits[3:]
        if digits.startswith("0"):  # the trunk 0 kept after +86 (some SIP trunks send it)
            digits = digits[1:]
    elif digits.startswith("0") and not digits.startswith("00"):
        digits = digits[1:]
    else:
        return None
    if digits.startswith(_SERVICE):
        return None
    # a landline: 10 or 11 digits after the 0 (a 2-digit code and 8, a 3-digit and 7 or 8)
    if not digits.isascii() or not digits.isdigit() or not 10 <= len(digits) <= 11:
        return None
    if digits.startswith("10") or digits[0] == "2":  # 010, 020-029: two digits
        return "0" + digits[:2]
    if digits[0] in "01":  # mobile numbers (13…19…), and no area code starts with 00
        return None
    return "0" + digits[:3]


def route(engine: Engine, called: str, caller: str) -> Route:
    """The region of a new call (see the module's text)."""
    rows = _rows(engine)
    for row in rows:
        if called and called in row.numbers:
            return Route(row.code, BY_NUMBER)
    served = [r for r in rows if r.served]
    if len(served) <= 1:
        return Route(served[0].code if served else None, BY_ONLY)
    code = area_code(caller)
    if code is not None:
        for row in served:
            if code in row.area_codes:
                return Route(row.code, BY_AREA)
    return Route(None, "")


def offered(engine: Engine) -> tuple[Offered, ...]:
    """The regions a caller may pick, in code order, keyed 1, 2, … (at most MENU_KEYS)."""
    rows = _rows(engine)
    return tuple(Offered(r.code, r.name, r.name_en or english_name(r.name))
                 for r in rows if r.served)[:MENU_KEYS]


def greeting(engine: Engine) -> tuple[str, str]:
    """The line's name (Mandarin, English) before the caller has picked a region: the name
    every served region shares, else the neutral default."""
    served = [r for r in _rows(engine) if r.served]
    zh = {r.line_name for r in served}
    en = {r.line_name_en for r in served}
    return (zh.pop() if len(zh) == 1 else DEFAULT_LINE_NAME,
            en.pop() if len(en) == 1 else DEFAULT_LINE_NAME_EN)


def english_name(name: str) -> str:
    """A region's name for the English voice when it gives none: its pinyin as one word,
    without the 市/区/县 of its kind (南宁市 → Nanning)."""
    from pypinyin import Style, lazy_pinyin  # its dictionaries load on first use

    core = _AUTONOMOUS.sub("", name) or name  # 广西壮族自治区 → 广西, 大理白族自治州 → 大理
    core = core[:-1] if len(core) > 2 and core[-1] in "市区县州盟旗" else core
    text = "".join(lazy_pinyin(core, style=Style.NORMAL, errors="ignore"))
    text = text.replace("ü", "u").replace("v", "u")
    return text.capitalize() or "your region"

