"""ivr.policy: staffed hours in the region's zone, day specs, Region checks, relation words."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from ivr.domain.policy import (
    CLOSE_RELATIVES,
    IMMEDIATE_FAMILY,
    RELATION_WORDS,
    Region,
    Shift,
    parse_days,
    relation_to_funder,
    relation_to_member,
)

NANNING = Region(code="450100", agent_number="+867711234567")


def utc(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


# 2026-11-23 is a Monday; Asia/Shanghai is UTC+8 all year.
@pytest.mark.parametrize(("now", "staffed"), [
    (utc(2026, 11, 23, 0, 59), False),  # Mon 08:59
    (utc(2026, 11, 23, 1, 0), True),  # Mon 09:00
    (utc(2026, 11, 23, 3, 59, 59), True),  # Mon 11:59:59
    (utc(2026, 11, 23, 4, 0), False),  # Mon 12:00 lunch
    (utc(2026, 11, 23, 4, 59), False),  # Mon 12:59
    (utc(2026, 11, 23, 5, 0), True),  # Mon 13:00
    (utc(2026, 11, 23, 8, 59), True),  # Mon 16:59
    (utc(2026, 11, 23, 9, 0), False),  # Mon 17:00
    (utc(2026, 11, 27, 8, 59), True),  # Fri 16:59
    (utc(2026, 11, 28, 2, 0), False),  # Sat 10:00
    (utc(2026, 11, 29, 2, 0), False),  # Sun 10:00
    (utc(2026, 11, 22, 17, 30), False),  # Sun 17:30 UTC = Mon 01:30 local
    (utc(2026, 11, 27, 16, 30), False),  # Fri 16:30 UTC = Sat 00:30 local
    (utc(2026, 11, 23, 2, 0), True),  # Mon 02:00 UTC = 10:00 local (out if read as UTC)
])
def test_staffed_hours_in_shanghai_from_utc(now: datetime, staffed: bool) -> None:
    assert NANNING.is_staffed(now) is staffed


def test_staffed_hours_from_another_zone() -> None:
    # Sunday 21:00 in New York (EST, UTC-5) is Monday 10:00 in Shanghai
    ny = datetime(2026, 11, 22, 21, 0, tzinfo=ZoneInfo("America/New_York"))
    assert NANNING.is_staffed(ny) is True


def test_region_timezone_is_used() -> None:
    urumqi = Region(timezone="Asia/Urumqi")  # UTC+6
    # Monday 02:30 UTC: 10:30 in Shanghai but 08:30 in Urumqi
    assert NANNING.is_staffed(utc(2026, 11, 23, 2, 30)) is True
    assert urumqi.is_staffed(utc(2026, 11, 23, 2, 30)) is False
    assert urumqi.is_staffed(utc(2026, 11, 23, 3, 0)) is True


def test_holidays_are_closed_days_in_the_region_time_zone() -> None:
    """2026-10-01 (a Thursday) is a public holiday: closed all day, local time."""
    region = Region(code="450100", holidays=(date(2026, 10, 1),))
    assert region.is_staffed(utc(2026, 10, 1, 2, 0)) is False  # Thu 10:00 local
    assert region.is_staffed(utc(2026, 10, 2, 2, 0)) is True  # Fri 10:00 local
    assert region.is_staffed(utc(2026, 9, 30, 17, 0)) is False  # 01:00 on the 1st locally
    assert NANNING.is_staffed(utc(2026, 10, 1, 2, 0)) is True  # no holidays: a Thursday


def test_custom_shifts_daily_and_weekend() -> None:
    region = Region(agent_hours=(("sat,sun", "10:00-11:30"), ("daily", "20:00-21:00")))
    assert region.is_staffed(utc(2026, 11, 28, 2, 0)) is True  # Sat 10:00
    assert region.is_staffed(utc(2026, 11, 28, 3, 30)) is False  # Sat 11:30
    assert region.is_staffed(utc(2026, 11, 23, 2, 0)) is False  # Mon 10:00
    assert region.is_staffed(utc(2026, 11, 23, 12, 30)) is True  # Mon 20:30
    assert region.is_staffed(utc(2026, 11, 23, 13, 0)) is False  # Mon 21:00


def test_round_the_clock_shift_includes_the_last_second() -> None:
    """"00:00-24:00" must cover the whole day.

    Bug: Shift.parse turns 24:00 into time(23, 59, 59) and is_staffed tests `t < end`,
    so 23:59:59 (and every fraction after it) is unstaffed. Suggested fix: keep an
    `until_midnight` flag (or end=None) and treat it as `t >= start`.
    """
    region = Region(agent_hours=(("daily", "00:00-24:00"),))
    assert region.is_staffed(utc(2026, 11, 22, 16, 0)) is True  # 00:00
    assert region.is_staffed(utc(2026, 11, 23, 15, 59, 30)) is True  # 23:59:30
    assert region.is_staffed(utc(2026, 11, 23, 15, 59, 59)) is True  # 23:59:59


# --- day specs and shifts -------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}),
    (" Mon-Fri ", {0, 1, 2, 3, 4}),
    ("sat", {5}),
    ("sun", {6}),
    ("mon,wed,fri", {0, 2, 4}),
    ("mon-tue, thu-sat", {0, 1, 3, 4, 5}),
    ("daily", {0, 1, 2, 3, 4, 5, 6}),
    ("DAILY", {0, 1, 2, 3, 4, 5, 6}),
    ("mon-sun", {0, 1, 2, 3, 4, 5, 6}),
])
def test_parse_days(spec: str, days: set[int]) -> None:
    assert parse_days(spec) == frozenset(days)


@pytest.mark.parametrize(("spec", "message"), [
    ("funday", "unknown days"),
    ("", "unknown days"),
    ("mon-wed-fri", "unknown days"),
    ("monday", "unknown days"),
    ("mon,,fri", "unknown days"),
    ("fri-mon", "runs backwards"),
    ("sun-mon", "runs backwards"),
])
def test_parse_days_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_days(spec)


def test_shift_parse() -> None:
    shift = Shift.parse(" Mon-Fri ", " 09:00-12:00 ")
    assert (shift.days_spec, shift.days, shift.start, shift.end) == (
        "mon-fri", frozenset(range(5)), time(9, 0), time(12, 0),
    )


@pytest.mark.parametrize(("hours", "message"), [
    ("9-12", "must look like"),
    ("09:00", "must look like"),
    ("09:00-12:60", "must look like"),
    ("25:00-26:00", "must look like"),
    ("12:00-09:00", "end before they start"),
    ("12:00-12:00", "end before they start"),
])
def test_shift_hours_errors(hours: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shift.parse("mon-fri", hours)


@pytest.mark.parametrize("hours", ["09:00-24:30", "09:00-24:59"])
def test_past_midnight_end_is_refused(hours: str) -> None:
    """Bug: _HOURS_RE accepts any minutes after 24 ("24:30"), and Shift.parse silently reads
    them as end of day. Suggested fix: allow only "24:00" as an hour of 24."""
    with pytest.raises(ValueError, match="must look like"):
        Shift.parse("mon-fri", hours)


# --- Region ---------------------------------------------------------------------------------


def test_region_defaults_match_the_spec() -> None:
    r = Region()
    assert (r.pool_relations, r.max_members, r.multiple_funders, r.commercial_insurance,
            r.lockout_after, r.agent_number, r.timezone) == (
        "close_relatives", 7, True, True, 3, None, "Asia/Shanghai",
    )
    assert r.agent_hours == (("mon-fri", "09:00-12:00"), ("mon-fri", "13:00-17:00"))
    assert [(s.start, s.end) for s in r.shifts] == [
        (time(9, 0), time(12, 0)), (time(13, 0), time(17, 0)),
    ]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"pool_relations": "everyone"}, ValueError, "pool_relations"),
    ({"max_members": 0}, ValueError, "max_members"),
    ({"lockout_after": 0}, ValueError, "lockout_after"),
    ({"lockout_after": -1}, ValueError, "lockout_after"),
    ({"timezone": "Mars/Olympus_Mons"}, ZoneInfoNotFoundError, None),
    ({"agent_hours": (("mon-fri", "9-12"),)}, ValueError, "must look like"),
    ({"agent_hours": (("mon-fri", "17:00-09:00"),)}, ValueError, "end before they start"),
    ({"agent_hours": (("someday", "09:00-12:00"),)}, ValueError, "unknown days"),
])
def test_region_validation_errors(kwargs: dict[str, object], error: type[Exception],
                                  message: str | None) -> None:
    with pytest.raises(error, match=message):
        Region(**kwargs)  # type: ignore[arg-type]


def test_region_from_mapping_and_row_round_trip() -> None:
    region = Region.from_mapping({
        "code": "450100", "name": "南宁市", "pool_relations": "immediate_family",
        "max_members": 4, "multiple_funders": False, "commercial_insurance": False,
        "lockout_after": 5, "agent_number": "+867711234567",
        "agent_hours": [["sat", "10:00-11:00"]], "timezone": "Asia/Shanghai",
        "unknown_key": "ignored", "name_en": None, "holidays": ["2026-10-01"],
        "max_queue_wait": 300, "line_name": "12333医疗保障服务热线",
    })
    assert (region.code, region.max_members, region.multiple_funders, region.lockout_after) == (
        "450100", 4, False, 5,
    )
    assert region.agent_hours == (("sat", "10:00-11:00"),)
    row = region.as_row()
    assert row["agent_hours"] == '[["sat", "10:00-11:00"]]'
    assert row["holidays"] == '["2026-10-01"]' and row["max_queue_wait"] == 300
    # the row's JSON lists of dates are decoded by its reader (accounts.region_for)
    assert Region.from_mapping({**row, "holidays": json.loads(row["holidays"]),
                                "workdays": json.loads(row["workdays"])}) == region
    # None means "use the default"
    assert Region.from_mapping({"code": "1", "agent_number": None, "max_members": None}) == (
        Region(code="1")
    )


def test_region_allows() -> None:
    close, immediate = Region(), Region(pool_relations="immediate_family")
    assert [r for r in CLOSE_RELATIVES if close.allows(r)] == list(CLOSE_RELATIVES)
    assert [r for r in CLOSE_RELATIVES if immediate.allows(r)] == list(IMMEDIATE_FAMILY)
    assert IMMEDIATE_FAMILY == ("spouse", "parent", "child")
    assert immediate.allows("sibling") is False
    assert close.allows("cousin") is False


# --- relation words -------------------------------------------------------------------------

OLDER, YOUNGER = date(1970, 1, 1), date(1990, 1, 1)

# relationship (member as seen from funder) -> (male member, female member), member younger
TO_FUNDER = {
    "spouse": ("husband", "wife"),
    "parent": ("father", "mother"),
    "child": ("son", "daughter"),
    "sibling": ("younger_brother", "younger_sister"),
    "grandparent": ("grandfather", "grandmother"),
    "maternal_grandparent": ("maternal_grandfather", "maternal_grandmother"),
    "grandchild": ("grandson", "granddaughter"),
    "maternal_grandchild": ("maternal_grandson", "maternal_granddaughter"),
}

# relationship -> (male funder, female funder): how the member hears the funder, funder older
TO_MEMBER = {
    "spouse": ("husband", "wife"),
    "parent": ("son", "daughter"),  # the member is the funder's parent
    "child": ("father", "mother"),  # spec: a funder whose member is their child is 父亲/母亲
    "sibling": ("elder_brother", "elder_sister"),
    "grandparent": ("grandson", "granddaughter"),
    "maternal_grandparent": ("maternal_grandson", "maternal_granddaughter"),
    "grandchild": ("grandfather", "grandmother"),
    "maternal_grandchild": ("maternal_grandfather", "maternal_grandmother"),
}


@pytest.mark.parametrize("relationship", CLOSE_RELATIVES)
def test_relation_to_funder_table(relationship: str) -> None:
    male, female = TO_FUNDER[relationship]
    assert relation_to_funder(relationship, "male", YOUNGER, OLDER) == male
    assert relation_to_funder(relationship, "female", YOUNGER, OLDER) == female


@pytest.mark.parametrize("relationship", CLOSE_RELATIVES)
def test_relation_to_member_table(relationship: str) -> None:
    male, female = TO_MEMBER[relationship]
    assert relation_to_member(relationship, "male", OLDER, YOUNGER) == male
    assert relation_to_member(relationship, "female", OLDER, YOUNGER) == female


def test_sibling_elder_and_younger_both_ways() -> None:
    # the member is older than the funder
    assert relation_to_funder("sibling", "male", OLDER, YOUNGER) == "elder_brother"
    assert relation_to_funder("sibling", "female", OLDER, YOUNGER) == "elder_sister"
    assert relation_to_funder("sibling", "male", YOUNGER, OLDER) == "younger_brother"
    assert relation_to_funder("sibling", "female", YOUNGER, OLDER) == "younger_sister"
    # the funder is younger than the member: the member hears a younger sibling
    assert relation_to_member("sibling", "male", YOUNGER, OLDER) == "younger_brother"
    assert relation_to_member("sibling", "female", YOUNGER, OLDER) == "younger_sister"
    assert relation_to_member("sibling", "male", OLDER, YOUNGER) == "elder_brother"
    assert relation_to_member("sibling", "female", OLDER, YOUNGER) == "elder_sister"


def test_relation_words_are_exactly_the_catalogue() -> None:
    produced = {
        f(rel, sex, a, b)
        for f in (relation_to_funder, relation_to_member)
        for rel in CLOSE_RELATIVES
        for sex in ("male", "female")
        for a, b in ((OLDER, YOUNGER), (YOUNGER, OLDER), (OLDER, OLDER))  # and twins
    }
    assert produced == set(RELATION_WORDS)
    assert len(RELATION_WORDS) == len(set(RELATION_WORDS)) == 20


def test_unknown_relationship_raises() -> None:
    with pytest.raises(KeyError):
        relation_to_funder("cousin", "male", OLDER, YOUNGER)
    with pytest.raises(KeyError):
        relation_to_member("cousin", "male", OLDER, YOUNGER)


# --- make-up working days (调休上班, issue 23 §9) ------------------------------------------------

_SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 2026: the national-day week off, Sunday 9-20 and Saturday 10-10 worked instead
_GOLDEN_WEEK = Region.from_mapping({
    "holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"],
    "workdays": ["2026-09-20", "2026-10-10"]})


@pytest.mark.parametrize(("when", "staffed"), [
    (datetime(2026, 10, 10, 10, 0, tzinfo=_SHANGHAI), True),    # 补班 Saturday, morning shift
    (datetime(2026, 10, 10, 12, 30, tzinfo=_SHANGHAI), False),  # its lunch break, as a weekday
    (datetime(2026, 9, 20, 16, 59, tzinfo=_SHANGHAI), True),    # 补班 Sunday, afternoon shift
    (datetime(2026, 9, 20, 17, 0, tzinfo=_SHANGHAI), False),
    (datetime(2026, 10, 17, 10, 0, tzinfo=_SHANGHAI), False),   # an ordinary Saturday
    (datetime(2026, 10, 2, 10, 0, tzinfo=_SHANGHAI), False),    # a holiday
    (datetime(2026, 10, 10, 1, 30, tzinfo=UTC), True),          # 09:30 in Beijing
])
def test_a_make_up_working_day_is_staffed_like_a_weekday(when: datetime, staffed: bool) -> None:
    assert _GOLDEN_WEEK.is_staffed(when) is staffed


def test_workdays_are_stored_and_read_back() -> None:
    row = _GOLDEN_WEEK.as_row()
    assert json.loads(row["workdays"]) == ["2026-09-20", "2026-10-10"]
    again = Region.from_mapping({**row, "holidays": json.loads(row["holidays"]),
                                 "workdays": json.loads(row["workdays"])})
    assert again.workdays == (date(2026, 9, 20), date(2026, 10, 10))


@pytest.mark.parametrize(("workdays", "problem"), [
    (["2026-10-12"], "2026-10-12 is a weekday"),
    (["2026-10-10", "2026-10-10"], "each date once"),
    (["2026-02-30"], "real dates"),
    ("2026-10-10", "a list of dates"),
    (["2026-10-03"], "2026-10-03 is also a holiday"),
])
def test_broken_workdays_are_refused_naming_the_date(workdays: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Region.from_mapping({"holidays": ["2026-10-03"], "workdays": workdays})
