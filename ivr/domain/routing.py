"""One line, many regions: which region (参保地) a call is for.

A deployment may hold several regions, each with its people, agents, hours and policy. A call
is for the region whose `numbers` hold the number it called (Twilio's `To`); else, when only
one region has people, that one; else the region whose `area_codes` hold the area code (区号)
of the caller's fixed line; else the caller picks it from a short menu (`offered`). Mobile
numbers, withheld and foreign numbers carry no area code.
"""

from __future__ import annotations

import json
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


def area_code(number: str) -> str | None:
    """The area code (区号, with its 0) of a Chinese fixed-line number in E.164 (+86…) or
    national form (0…); None for a mobile (1…), a service or foreign number, or none."""
    digits = number.strip()
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0") and not digits.startswith("00"):
        digits = digits[1:]
    else:
        return None
    if not digits.isascii() or not digits.isdigit() or len(digits) < 9:
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

    core = name[:-1] if len(name) > 2 and name[-1] in "市区县州盟旗" else name
    text = "".join(lazy_pinyin(core, style=Style.NORMAL, errors="ignore"))
    text = text.replace("ü", "u").replace("v", "u")
    return text.capitalize() or "your region"

