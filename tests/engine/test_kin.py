"""How relatives are named aloud (issue 23 §1-3): told apart, minors without a title, names
with "·" by the person's own name."""

from __future__ import annotations

from datetime import date

import pytest

from ivr.domain.accounts import PoolMember
from ivr.domain.identity import synthetic_id_number
from ivr.engine.kin import Kin, age_on
from ivr.engine.prompts import Catalogue
from ivr.engine.speech import Named, spoken_name, surname
from ivr.resources import data_dir

CATALOGUE = Catalogue.load(data_dir("prompts", None))
TODAY = date(2026, 12, 7)


def _m(relation: str, name: str, born: str, sex: str, since: str = "2024-01-01",
       seq: int = 10) -> PoolMember:
    ident = synthetic_id_number("450202", date.fromisoformat(born), seq, sex)  # type: ignore[arg-type]
    return PoolMember(relation, name, date.fromisoformat(since), sex, ident)  # type: ignore[arg-type]


def _said(lang: str, relatives: list[PoolMember]) -> list[str]:
    kin = Kin(CATALOGUE, lang, TODAY, relatives)
    return [kin.who(r) for r in relatives]


def test_two_elder_brothers_by_birth_order_in_both_languages() -> None:
    second = _m("elder_brother", "黄志伟", "1986-06-06", "male", "2024-01-01", 11)
    first = _m("elder_brother", "黄志刚", "1982-01-01", "male", "2025-01-01", 13)
    assert _said("zh-CN", [second, first]) == ["二哥黄先生", "大哥黄先生"]
    assert _said("en-US", [second, first]) == ["second-oldest brother, Mr Huang",
                                               "oldest brother, Mr Huang"]


def test_three_sons_and_one_daughter() -> None:
    sons = [_m("son", "覃一", "1990-01-01", "male", seq=11), _m("son", "覃三", "1999-01-01",
            "male", seq=13), _m("son", "覃二", "1995-01-01", "male", seq=15)]
    daughter = _m("daughter", "覃四", "2001-01-01", "female", seq=12)
    assert _said("zh-CN", [*sons, daughter]) == ["大儿子覃先生", "三儿子覃先生", "二儿子覃先生",
                                                 "女儿覃女士"]


def test_twins_of_one_kind_are_told_apart_by_the_binding_date() -> None:
    a = _m("elder_sister", "陈甲", "1980-03-03", "female", "2023-01-10", 12)
    b = _m("elder_sister", "陈乙", "1980-03-03", "female", "2024-02-01", 14)
    assert _said("zh-CN", [a, b]) == ["2023年1月10日绑定的姐姐陈女士",
                                      "2024年2月1日绑定的姐姐陈女士"]
    assert _said("en-US", [a, b])[1] == "elder sister bound on February 1, 2024, Ms Chen"


@pytest.mark.parametrize(("born", "minor"), [
    ("2008-12-08", True),    # seventeen, eighteen tomorrow
    ("2008-12-07", False),   # eighteen today
    ("2019-09-09", True),
])
def test_minors_are_named_by_relation_alone(born: str, minor: bool) -> None:
    child = _m("grandson", "覃乐乐", born, "male")
    zh, en = _said("zh-CN", [child])[0], _said("en-US", [child])[0]
    assert (zh, en) == (("孙子", "grandson") if minor else ("孙子覃先生", "grandson, Mr Qin"))
    assert (age_on(date.fromisoformat(born), TODAY) < 18) is minor


@pytest.mark.parametrize(("name", "sex", "zh", "en"), [
    ("古丽·阿不都", "female", "古丽女士", "Ms Guli"),
    ("阿不都·热合曼", "male", "阿不都先生", "Mr Abudu"),
    ("阿依古丽•买买提", "female", "阿依古丽女士", "Ms Ayiguli"),   # a bullet for the dot
    ("努尔 · 艾力", "male", "努尔先生", "Mr Nuer"),
])
def test_names_with_a_dot_are_said_by_the_persons_own_name(name: str, sex: str, zh: str,
                                                          en: str) -> None:
    person = Named(name, sex)  # type: ignore[arg-type]
    assert (spoken_name(person, "zh-CN"), spoken_name(person, "en-US")) == (zh, en)
    assert surname(name) == zh[:-2]
