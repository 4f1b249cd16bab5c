"""How the caller's relatives are named aloud, so that every one can be told apart.

Two relatives of one kind get their birth order (大哥/二哥, 大女儿/二女儿; "oldest brother",
"second-oldest brother"); relatives of one kind born the same day, or a kind without an order
word, get their binding date. A minor is named by the relation alone, without 先生/女士 or
Mr/Ms; a name written with "·" by the person's own name (speech.spoken_name).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol

from ivr.domain.accounts import PoolMember
from ivr.engine import speech

#: under this age (on the day of the call) a person is named without an adult's title
ADULT_AGE = 18


class _Catalogue(Protocol):
    words: dict[str, dict[str, str]]

    def render(self, pid: str, locale: str, values: dict[str, object]) -> tuple[str, str]: ...

    def word(self, group: str, key: str, locale: str) -> str: ...


def age_on(birth: date, day: date) -> int:
    """Whole years from `birth` to `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


class Kin:
    """One list of relatives (the members a caller funds, or the funders who fund them), each
    with the words that tell them apart from the others in that list."""

    def __init__(self, catalogue: _Catalogue, lang: str, today: date,
                 relatives: Iterable[PoolMember]) -> None:
        self._catalogue, self._lang, self._today = catalogue, lang, today
        self._relatives = list(relatives)
        self._by_id = {r.id_number: r for r in self._relatives}
        self._relation: dict[str, str] = {}
        kinds: dict[str, list[PoolMember]] = {}
        for r in self._relatives:
            kinds.setdefault(r.relation, []).append(r)
        for kind, group in kinds.items():
            for r in group:
                self._relation[r.id_number] = self._told_apart(kind, r, group)

    def _has(self, group: str, key: str) -> bool:
        return f"{group}.{key}" in self._catalogue.words[self._lang]

    def _told_apart(self, kind: str, r: PoolMember, group: list[PoolMember]) -> str:
        words = self._catalogue
        plain = words.word("relation", kind, self._lang)
        if len(group) == 1:
            return plain
        births = sorted(g.birth_date for g in group)
        rank = births.index(r.birth_date) + 1
        if (self._has("relation_nth", kind) and self._has("nth", str(rank))
                and len(set(births)) == len(births)):
            return words.word("relation_nth", kind, self._lang).replace(
                "{nth}", words.word("nth", str(rank), self._lang))
        return self._catalogue.render("relation_bound_on", self._lang,
                                      {"relation": plain, "since": r.since})[0]

    def minor(self, r: PoolMember) -> bool:
        return age_on(r.birth_date, self._today) < ADULT_AGE

    def who(self, r: PoolMember) -> str:
        """大哥黄先生 / "oldest brother, Mr Huang"; a minor: 女儿 / "daughter"."""
        relation = self._relation[r.id_number]
        if self.minor(r):
            return self._catalogue.render("person_minor", self._lang,
                                          {"relation": relation})[0]
        return self._catalogue.render("person_named", self._lang, {
            "relation": relation, "name": speech.Named(r.name, r.sex)})[0]

    def who_by_id(self, id_number: str | None) -> str | None:
        """The words for the relative with this ID number; None when they are not in the list
        (no longer bound)."""
        r = self._by_id.get(id_number or "")
        return self.who(r) if r is not None else None
