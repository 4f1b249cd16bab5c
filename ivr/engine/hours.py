"""A region's agent hours in words, as a recording says them: 工作日上午9点至12点,下午1点至5点 /
"weekdays, 9 a.m. to noon and 1 p.m. to 5 p.m."; and when today's staffed shift ends."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ivr.domain.policy import Region
from ivr.engine import speech
from ivr.engine.prompts import Catalogue

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days_words(catalogue: Catalogue, lang: str, spec: str, days: frozenset[int]) -> str:
    if f"days.{spec}" in catalogue.words[lang]:
        return catalogue.word("days", spec, lang)
    return catalogue.word("punct", "list", lang).join(
        catalogue.word("days", _DAY_NAMES[d], lang) for d in sorted(days))


def hours_words(catalogue: Catalogue, region: Region, lang: str) -> str:
    """Every shift of the region, grouped by their days."""
    by_days: dict[str, list[str]] = {}
    days_of: dict[str, frozenset[int]] = {}
    for s in region.shifts:
        start, end = speech.clock_range(s.start, s.end, lang)
        by_days.setdefault(s.days_spec, []).append(
            catalogue.render("agent_shift", lang, {"start": start, "end": end})[0])
        days_of[s.days_spec] = s.days
    sep = catalogue.word("punct", "times", lang)
    shifts = [
        catalogue.render("agent_days", lang, {
            "days": _days_words(catalogue, lang, spec, days_of[spec]), "times": sep.join(times),
        })[0]
        for spec, times in by_days.items()
    ]
    return catalogue.word("punct", "list_major", lang).join(shifts)


def shift_end(region: Region, now: datetime) -> datetime | None:
    """When the staffed shift `now` falls in ends (the latest end, if shifts overlap); None
    when nobody is on duty now."""
    if not region.is_staffed(now):
        return None
    local = now.astimezone(region.zone)
    t = local.time()
    ends = [s.end for s in region.shifts if s.covers(t)
            and (local.weekday() in s.days or local.date() in region.workdays)]
    end = max(ends)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if end == time.max:
        return day + timedelta(days=1)
    return day.replace(hour=end.hour, minute=end.minute)


def clock_words(at: datetime, region: Region, lang: str) -> str:
    """A shift's end as said: 下午5点 / "5 p.m."."""
    local = at.astimezone(region.zone).time()
    if local == time(0, 0):  # a shift to 24:00: 晚上12点, "midnight"
        local = time.max
    return speech.clock_range(time(0, 0), local, lang)[1] if lang == "en-US" \
        else speech.clock_range(local, local, lang)[0]
