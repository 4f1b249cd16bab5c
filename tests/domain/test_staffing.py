"""Erlang B/C/A against published figures: the Erlang B table (1 % blocking), the closed
form of a small Erlang C, pyworkforce's Erlang C example, and Erlang A's limit and the
figures of docs/reports.md's illustration."""

from __future__ import annotations

import pytest

from ivr.domain.staffing import (
    agents_needed,
    erlang_a_estimate,
    erlang_b,
    erlang_c,
    erlang_c_estimate,
)


@pytest.mark.parametrize(("lines", "erlangs"), [(1, 0.0101), (2, 0.153), (5, 1.361),
                                                (10, 4.461), (20, 12.031), (50, 37.901)])
def test_erlang_b_matches_the_published_table_at_one_percent(lines: int, erlangs: float) -> None:
    """The standard Erlang B table: the load `lines` carry at 1 % blocking."""
    assert erlang_b(lines, erlangs) == pytest.approx(0.01, abs=0.0002)


def test_erlang_c_of_three_agents_at_two_erlangs_is_four_ninths() -> None:
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)
    assert erlang_c(2, 2.0) == 1.0  # no more agents than the load: everyone waits


def test_erlang_c_reproduces_pyworkforce_s_example() -> None:
    """100 calls in 30 min, 3 min handle time, 80 % within 20 s: 14 agents, SL 0.888."""
    plan = agents_needed(100, 1800, 180, 20, 0.80)
    assert plan.agents == 14
    assert plan.service_level == pytest.approx(0.888, abs=0.0005)
    assert erlang_c_estimate(13, 100, 1800, 180, 20).service_level < 0.80


def test_erlang_a_tends_to_erlang_c_as_callers_never_give_up() -> None:
    c = erlang_c_estimate(14, 100, 1800, 180, 20)
    a = erlang_a_estimate(14, 100, 1800, 180, 1e7, 20)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.abandon < 1e-5


@pytest.mark.parametrize(("agents", "level", "abandon"), [(75, 0.71, 0.090), (79, 0.82, 0.059)])
def test_erlang_a_at_600_calls_with_two_minutes_of_patience(agents: int, level: float,
                                                            abandon: float) -> None:
    """600 calls in 30 min, AHT 4 min, mean patience 2 min (the sourced notes' example)."""
    estimate = erlang_a_estimate(agents, 600, 1800, 240, 120, 20)
    assert estimate.service_level == pytest.approx(level, abs=0.005)
    assert estimate.abandon == pytest.approx(abandon, abs=0.0005)


def test_with_abandonment_fewer_agents_reach_the_target() -> None:
    c = agents_needed(600, 1800, 240, 20, 0.80)
    a = agents_needed(600, 1800, 240, 20, 0.80, patience=120)
    assert (c.agents, a.agents) == (87, 79)
    assert agents_needed(0, 1800, 240, 20, 0.80).agents == 0
