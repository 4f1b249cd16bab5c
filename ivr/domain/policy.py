"""Region policy as data: pooling relations, limits, lockout, agent hours, relation wording."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ivr.store.schema import DEFAULT_LINE_NAME, DEFAULT_LINE_NAME_EN

Sex = Literal["male", "female"]

CLOSE_RELATIVES = (
    "spouse",
    "parent",
    "child",
    "sibling",
    "grandparent",
    "maternal_grandparent",
    "grandchild",
    "maternal_grandchild",
)
IMMEDIATE_FAMILY = ("spouse", "parent", "child")
POOL_RELATIONS = {"close_relatives": CLOSE_RELATIVES, "immediate_family": IMMEDIATE_FAMILY}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")


def parse_days(spec: str) -> frozenset[int]:
    """'mon-fri', 'sat', 'mon,wed,fri' or 'daily' -> weekday numbers (Monday = 0)."""
    spec = spec.strip().lower()
    if spec == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        ends = part.strip().split("-")
        if len(ends) > 2 or any(e not in _DAYS for e in ends):
            raise ValueError(f"unknown days {spec!r} (use mon..sun, ranges like mon-fri)")
        first, last = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
        if last < first:
            raise ValueError(f"day range {part!r} runs backwards")
        days.update(range(first, last + 1))
    return frozenset(days)


@dataclass(frozen=True)
class Shift:
    """One staffed period: days of the week and a time range in the region's time zone."""

    days_spec: str
    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, days: str, hours: str) -> Shift:
        m = _HOURS_RE.match(hours.strip())
        if not m:
            raise ValueError(f"hours {hours!r} must look like 09:00-12:00")
        h1, m1 = int(m.group(1)), int(m.group(2))
        start = time(h1, m1)
        end = time.max if m.group(5) else time(int(m.group(3)), int(m.group(4)))
        if end <= start:
            raise ValueError(f"hours {hours!r} end before they start")
        return cls(days.strip().lower(), parse_days(days), start, end)

    def covers(self, t: time) -> bool:
        return self.start <= t and (t < self.end or self.end == time.max)


DEFAULT_HOURS = (("mon-fri", "09:00-12:00"), ("mon-fri", "13:00-17:00"))
#: seconds a caller may wait in the agent queue before the line says it is busy
DEFAULT_MAX_QUEUE_WAIT = 600
MAX_QUEUE_WAIT_RANGE = (60, 3600)
LINE_NAME_MAX = 40
_LINE_NAME_EN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ,.'&()-]*$")
#: a number the line answers for one region (E.164, as Twilio sends `To`)
_NUMBER_RE = re.compile(r"^\+[1-9]\d{4,14}$")
#: a Chinese long-distance area code (区号): 010, 020-029, 0xxx
_AREA_CODE_RE = re.compile(r"^0(10|2\d|3\d{2}|[5-79]\d{2}|4(?!00)\d{2}|8(?!00)\d{2})$")


def _holiday(value: Any, what: str = "holidays") -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{what} must be dates YYYY-MM-DD: {value!r} is not one")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} must be real dates: {value!r} is not one") from None


def _dates(value: Any, what: str) -> tuple[date, ...]:
    """A list of distinct dates, sorted."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of dates YYYY-MM-DD")
    days = [_holiday(d, what) for d in value]
    if len(set(days)) != len(days):
        raise ValueError(f"{what} must list each date once")
    return tuple(sorted(days))


#: Monday to Friday: a make-up working day is staffed with the shifts of these days
WEEKDAYS = frozenset(range(5))


@dataclass(frozen=True)
class Region:
    """A pooling area's rules; the defaults are those of dataset.md."""

    code: str = "000000"
    name: str = "默认统筹区"
    pool_relations: str = "close_relatives"
    max_members: int = 7
    multiple_funders: bool = True
    commercial_insurance: bool = True
    lockout_after: int = 3
    agent_number: str | None = None
    agent_hours: tuple[tuple[str, str], ...] = DEFAULT_HOURS
    timezone: str = "Asia/Shanghai"
    #: closed days (public holidays), in the region's time zone
    holidays: tuple[date, ...] = ()
    #: make-up working days (调休上班, 补班): a Saturday or Sunday staffed like a weekday
    workdays: tuple[date, ...] = ()
    max_queue_wait: int = DEFAULT_MAX_QUEUE_WAIT
    #: the line's name as the greeting says it (digits are read one by one)
    line_name: str = DEFAULT_LINE_NAME
    line_name_en: str = DEFAULT_LINE_NAME_EN
    #: the region's name for the English voice ("" when it has none: its pinyin is said)
    name_en: str = ""
    #: the numbers that reach this region directly (the `To` of a call), and the area codes
    #: (区号) of callers' fixed lines routed to it: one line, many regions (call-flow.md §0)
    numbers: tuple[str, ...] = ()
    area_codes: tuple[str, ...] = ()
    #: how many agents answer its queue: read from the database with the region, never from a
    #: dataset's region object (agents are records of their own)
    agents: int = field(default=0, compare=False)
    shifts: tuple[Shift, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("multiple_funders", "commercial_insurance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        for name in ("max_members", "lockout_after", "max_queue_wait"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number")
        for name in ("code", "name", "timezone", "line_name", "line_name_en", "name_en"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text")
        if self.pool_relations not in POOL_RELATIONS:
            raise ValueError("pool_relations must be close_relatives or immediate_family")
        if self.max_members < 1:
            raise ValueError("max_members must be at least 1")
        if self.lockout_after < 1:
            raise ValueError("lockout_after must be at least 1")
        low, high = MAX_QUEUE_WAIT_RANGE
        if not low <= self.max_queue_wait <= high:
            raise ValueError(f"max_queue_wait must be {low} to {high} seconds")
        line = self.line_name.strip()
        if not line or len(line) > LINE_NAME_MAX or line != self.line_name:
            raise ValueError(f"line_name must be text of 1 to {LINE_NAME_MAX} characters, "
                             "without leading or trailing spaces")
        if any(not (ch.isalnum() or ch in "()（）·") for ch in line):
            raise ValueError("line_name may hold only letters and digits (a voice reads it: "
                             "no * or other signs)")
        if len(self.line_name_en) > 60 or not _LINE_NAME_EN_RE.match(self.line_name_en):
            raise ValueError("line_name_en must be English text of at most 60 characters "
                             "(letters, digits, spaces: the English voice reads it)")
        if self.name_en and (len(self.name_en) > 60
                             or not _LINE_NAME_EN_RE.match(self.name_en)):
            raise ValueError("name_en must be English text of at most 60 characters "
                             "(letters, digits, spaces: the English voice reads it)")
        for what, values, rule, form in (
                ("numbers", self.numbers, _NUMBER_RE, "E.164 numbers like +867712333"),
                ("area_codes", self.area_codes, _AREA_CODE_RE, "area codes like 0771")):
            if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"{what} must be a list of text")
            bad = next((v for v in values if not rule.match(v)), None)
            if bad is not None:
                raise ValueError(f"{what} must hold {form}, not {bad!r}")
            if len(set(values)) != len(values):
                raise ValueError(f"{what} must list each once")
        if not isinstance(self.holidays, tuple) or not all(
                isinstance(d, date) for d in self.holidays):
            raise ValueError("holidays must be a list of dates YYYY-MM-DD")
        if not isinstance(self.workdays, tuple) or not all(
                isinstance(d, date) for d in self.workdays):
            raise ValueError("workdays must be a list of dates YYYY-MM-DD")
        weekday = next((d for d in self.workdays if d.weekday() in WEEKDAYS), None)
        if weekday is not None:
            raise ValueError(f"workdays must be Saturdays or Sundays (a weekday is a working "
                             f"day already): {weekday.isoformat()} is a weekday")
        both = sorted(set(self.workdays) & set(self.holidays))
        if both:
            raise ValueError(f"workdays: {both[0].isoformat()} is also a holiday")
        ZoneInfo(self.timezone)  # raises for an unknown zone
        shifts = tuple(Shift.parse(d, h) for d, h in self.agent_hours)
        object.__setattr__(self, "shifts", shifts)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Region:
        """Build from a dataset's `region` object (or a database row); unknown keys ignored."""
        kwargs: dict[str, Any] = {}
        for key in (
            "code", "name", "pool_relations", "max_members", "multiple_funders",
            "commercial_insurance", "lockout_after", "agent_number", "timezone",
            "max_queue_wait", "line_name", "line_name_en", "name_en",
        ):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        hours = data.get("agent_hours")
        if isinstance(hours, str):
            hours = json.loads(hours)
        if hours is not None:
            kwargs["agent_hours"] = tuple((str(d), str(h)) for d, h in hours)
        for key in ("holidays", "workdays"):
            if data.get(key) is not None:
                kwargs[key] = _dates(data[key], key)
        for key in ("numbers", "area_codes"):
            value = data.get(key)
            if isinstance(value, str):  # a database row: JSON
                value = json.loads(value)
            if value is not None:
                if not isinstance(value, list | tuple):
                    raise ValueError(f"{key} must be a list of text")
                kwargs[key] = tuple(value)
        return cls(**kwargs)

    def allows(self, relationship: str) -> bool:
        """May a funder bind a member with this relationship here?"""
        return relationship in POOL_RELATIONS[self.pool_relations]

    def is_staffed(self, now: datetime) -> bool:
        """Are agents on duty at `now` (an aware datetime), in the region's time zone?"""
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        t = local.time()
        if local.date() in self.workdays:  # 补班: the weekday shifts
            return any(s.days & WEEKDAYS and s.covers(t) for s in self.shifts)
        return any(local.weekday() in s.days and s.covers(t) for s in self.shifts)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def as_row(self) -> dict[str, Any]:
        """The columns of the regions table."""
        return {
            "code": self.code,
            "name": self.name,
            "pool_relations": self.pool_relations,
            "max_members": self.max_members,
            "multiple_funders": self.multiple_funders,
            "commercial_insurance": self.commercial_insurance,
            "lockout_after": self.lockout_after,
            "agent_number": self.agent_number,
            "agent_hours": json.dumps([list(h) for h in self.agent_hours]),
            "timezone": self.timezone,
            "holidays": json.dumps([d.isoformat() for d in self.holidays]),
            "workdays": json.dumps([d.isoformat() for d in self.workdays]),
            "max_queue_wait": self.max_queue_wait,
            "line_name": self.line_name,
            "line_name_en": self.line_name_en,
            "name_en": self.name_en,
            "numbers": json.dumps(list(self.numbers)),
            "area_codes": json.dumps(list(self.area_codes)),
        }


def relation_to_funder(relationship: str, member_sex: Sex, member_birth: date,
                       funder_birth: date) -> str:
    """How the funder hears a member: relationship word key, gendered by the member's ID."""
    male = member_sex == "male"
    elder = member_birth < funder_birth
    if member_birth == funder_birth:  # twins: the ID numbers can't tell who is the elder
        sibling = "brother" if male else "sister"
    elif male:
        sibling = "elder_brother" if elder else "younger_brother"
    else:
        sibling = "elder_sister" if elder else "younger_sister"
    words = {
        "spouse": "husband" if male else "wife",
        "parent": "father" if male else "mother",
        "child": "son" if male else "daughter",
        "sibling": sibling,
        "grandparent": "grandfather" if male else "grandmother",
        "maternal_grandparent": "maternal_grandfather" if male else "maternal_grandmother",
        "grandchild": "grandson" if male else "granddaughter",
        "maternal_grandchild": "maternal_grandson" if male else "maternal_granddaughter",
    }
    return words[relationship]


def relation_to_member(relationship: str, funder_sex: Sex, funder_birth: date,
                       member_birth: date) -> str:
    """How a beneficiary hears a funder: the inverse relation, gendered by the funder's ID."""
    inverse = {
        "spouse": "spouse",
        "parent": "child",
        "child": "parent",
        "sibling": "sibling",
        "grandparent": "grandchild",
        "maternal_grandparent": "maternal_grandchild",
        "grandchild": "grandparent",
        "maternal_grandchild": "maternal_grandparent",
    }[relationship]
    return relation_to_funder(inverse, funder_sex, funder_birth, member_birth)


#: relationships where the member is of an older generation than the funder, or younger, and
#: how many generations apart they are
GENERATIONS_APART = {"parent": 1, "child": 1, "grandparent": 2, "maternal_grandparent": 2,
                     "grandchild": 2, "maternal_grandchild": 2}
MEMBER_ELDER = ("parent", "grandparent", "maternal_grandparent")
MEMBER_YOUNGER = ("child", "grandchild", "maternal_grandchild")
#: the fewest years between a parent and their child (a grandparent: twice that)
MIN_GENERATION_YEARS = 12


def _years_between(older: date, younger: date) -> int:
    """Whole years from `older` to `younger` (an age on that day)."""
    years = younger.year - older.year
    return years - 1 if (younger.month, younger.day) < (older.month, older.day) else years


def implausible(relationship: str, funder_birth: date, funder_sex: Sex, member_birth: date,
                member_sex: Sex) -> str | None:
    """Why a binding reads as nonsense (docs/dataset.md §4), or None: a parent younger than
    the child or less than 12 years older, a grandparent less than 24 years older, a spouse of
    the same sex. Both dates come from the ID numbers."""
    apart = GENERATIONS_APART.get(relationship)
    if apart is not None:
        need = MIN_GENERATION_YEARS * apart
        older, younger = ((member_birth, funder_birth) if relationship in MEMBER_ELDER
                          else (funder_birth, member_birth))
        side = "before" if relationship in MEMBER_ELDER else "after"
        if not older < younger:
            return (f"{relationship!r}: the member must be born {side} the funder "
                    f"(member {member_birth}, funder {funder_birth})")
        if _years_between(older, younger) < need:
            return (f"{relationship!r}: the member must be born at least {need} years {side} "
                    f"the funder (member {member_birth}, funder {funder_birth})")
    if relationship == "spouse" and funder_sex == member_sex:
        return (f"'spouse': funder and member are both {funder_sex} by their ID numbers "
                "(a spouse is 丈夫 or 妻子)")
    return None


#: Every relation word key either function can return (the prompt catalogue must name them all).
RELATION_WORDS = (
    "husband", "wife", "father", "mother", "son", "daughter", "elder_brother",
    "younger_brother", "elder_sister", "younger_sister", "grandfather", "grandmother",
    "maternal_grandfather", "maternal_grandmother", "grandson", "granddaughter",
    "maternal_grandson", "maternal_granddaughter", "brother", "sister",
)
