"""Erlang B, C and A against published tables and known examples, and against each other."""

from __future__ import annotations

import math

import pytest

from ivr.domain.erlang import (
    Interval,
    agents_needed,
    erlang_a_performance,
    erlang_b,
    erlang_c,
    erlang_c_performance,
)


@pytest.mark.parametrize("agents, load, blocking", [
    # the classic Erlang B table: the load N lines carry at a grade of service
    (5, 1.361, 0.01), (10, 4.461, 0.01), (10, 5.084, 0.02), (10, 6.216, 0.05),
    (20, 12.031, 0.01), (1, 1.0, 0.5), (2, 1.0, 0.2),
])
def test_erlang_b_matches_the_published_table(agents: int, load: float,
                                              blocking: float) -> None:
    assert erlang_b(agents, load) == pytest.approx(blocking, abs=5e-5)


def test_erlang_c_is_the_waiting_probability_of_mm_n() -> None:
    # one agent: P(wait) = ρ; two agents at A = 1: 1/3 (closed forms)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(3, 3.0) == 1.0  # N <= A: everyone waits


def test_erlang_c_reproduces_the_pyworkforce_example() -> None:
    """100 calls in 30 minutes, 3 minutes each, 80 % within 20 s: 14 agents, SL 0.888."""
    needed = agents_needed(Interval(100 / 1800, 180), 0.8, 20, "C")
    assert needed.agents == 14
    assert needed.service_level == pytest.approx(0.888, abs=5e-4)
    below = erlang_c_performance(13, Interval(100 / 1800, 180), 20)
    assert below.service_level < 0.8


def test_erlang_a_reproduces_the_sourced_illustration() -> None:
    """600 calls in a half hour, 4 minutes each, patience 2 minutes (the operators' notes):
    Erlang C 87 agents; Erlang A 79 agents give 0.82 and 5.9 % abandon, 75 give 0.71 and 9.0 %."""
    assert agents_needed(Interval(600 / 1800, 240), 0.8, 20, "C").agents == 87
    busy = Interval(600 / 1800, 240, 120)
    a79, a75 = erlang_a_performance(79, busy, 20), erlang_a_performance(75, busy, 20)
    assert (round(a79.service_level, 2), round(a79.abandon_probability, 3)) == (0.82, 0.059)
    assert (round(a75.service_level, 2), round(a75.abandon_probability, 3)) == (0.71, 0.090)
    assert agents_needed(busy, 0.8, 20, "A").agents == 79


@pytest.mark.parametrize("agents", [14, 20, 87])
def test_erlang_a_with_endless_patience_is_erlang_c(agents: int) -> None:
    calls = Interval(600 / 1800 if agents == 87 else 100 / 1800, 240 if agents == 87 else 180)
    c = erlang_c_performance(agents, calls, 20)
    a = erlang_a_performance(agents, Interval(calls.arrivals_per_second, calls.handle_seconds,
                                              1e9), 20)
    assert a.wait_probability == pytest.approx(c.wait_probability, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)
    assert a.mean_wait_answered == pytest.approx(c.mean_wait_answered, rel=1e-4)


def test_erlang_a_is_stable_where_erlang_c_is_not() -> None:
    """More work than agents: Erlang C's queue grows without end; Erlang A's callers give up."""
    over = Interval(0.1, 100, 60)  # 10 Erlangs
    assert erlang_c_performance(8, over, 20).service_level == 0.0
    a = erlang_a_performance(8, over, 20)
    assert 0 < a.service_level < 1 and a.abandon_probability > 0.15
    # conservation: answered + abandoned = offered; agents' work = load × answered share
    assert a.occupancy * 8 == pytest.approx(10 * (1 - a.abandon_probability), rel=1e-6)


def test_more_agents_never_serve_worse() -> None:
    calls = Interval(300 / 1800, 200, 90)
    levels = [erlang_a_performance(n, calls, 20).service_level for n in range(30, 45)]
    assert levels == sorted(levels) and levels[-1] > levels[0]
    assert math.isclose(agents_needed(Interval(0, 200), 0.8, 20).service_level, 1.0)
