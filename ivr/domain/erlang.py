"""How many agents a half hour needs: Erlang C (callers never give up) and Erlang A (callers
give up after an exponential patience), as steady-state models of one interval.

Erlang C is M/M/N: offered load A = λ·AHT; P(wait) from the Erlang B recursion; the share
answered within T is 1 − P(wait)·e^(−(N−A)·T/AHT); it needs N > A. Erlang A (Palm's
M/M/N+M) is the birth-death chain with death rate min(n, N)·μ + max(n − N, 0)·θ (θ = 1/mean
patience); it is stable at any load; P(abandon) = θ·E[queue]/λ; the share answered within T
follows a tagged caller through the queue (uniformisation). Koole & Mandelbaum, "Queueing
models of call centers" (2002); Mandelbaum & Zeltyn, "The Palm/Erlang-A queue" (2005).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the chain is cut where its probabilities are this small
_TAIL = 1e-13


@dataclass(frozen=True, slots=True)
class Interval:
    """What one interval offers: calls per second, the mean handle time and the mean patience
    in seconds (patience None: callers never give up)."""

    arrivals_per_second: float
    handle_seconds: float
    patience_seconds: float | None = None

    @property
    def load(self) -> float:
        """Offered load in Erlangs: λ·AHT."""
        return self.arrivals_per_second * self.handle_seconds


@dataclass(frozen=True, slots=True)
class Performance:
    """What N agents give an interval, as shares of all callers offered."""

    agents: int
    wait_probability: float  # a caller waits at all
    service_level: float  # answered within the target, of all offered
    abandon_probability: float  # gives up waiting (0 in Erlang C)
    mean_wait_answered: float  # seconds, over the callers answered
    occupancy: float  # the agents' busy share


def erlang_b(agents: int, load: float) -> float:
    """The blocking probability of M/M/N/N, by the stable recursion."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load are not negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """The probability that a caller waits in M/M/N (1 when N <= A: the queue grows)."""
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


def erlang_c_performance(agents: int, interval: Interval, target_seconds: float) -> Performance:
    a, aht = interval.load, interval.handle_seconds
    if agents <= a:  # unstable: everyone waits, the queue grows without end
        return Performance(agents, 1.0, 0.0, 0.0, math.inf, 1.0)
    pw = erlang_c(agents, a)
    sl = 1 - pw * math.exp(-(agents - a) * target_seconds / aht)
    return Performance(agents, pw, sl, 0.0, pw * aht / (agents - a), a / agents)


def _stationary(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """π_n of the Erlang A chain, n = 0.. until the tail is negligible."""
    terms = [1.0]
    n = 0
    while True:
        n += 1
        death = min(n, agents) * mu + max(n - agents, 0) * theta
        terms.append(terms[-1] * lam / death)
        if n > agents and terms[-1] < _TAIL * sum(terms) and lam < death:
            break
        if n > 100_000:
            raise ValueError("the chain does not settle (no patience and N <= A?)")
    total = sum(terms)
    return [t / total for t in terms]


def _served_within(agents: int, mu: float, theta: float, ahead: list[float],
                   target: float) -> tuple[float, float, float]:
    """For a tagged caller who finds j callers ahead in the queue with probability ahead[j]:
    (P(reaches an agent within `target`), P(reaches an agent at all), E[wait; reached]).

    In state j (callers ahead) the caller moves down at rate N·μ + j·θ (an agent frees, or one
    ahead gives up) and gives up at rate θ: the time in a state does not depend on which
    happens, so a caller who is served waited Σ 1/(N·μ + (i+1)·θ) over the states passed."""
    k = len(ahead)
    ever = waited = 0.0
    down_then = 1.0
    spent = 0.0
    for j in range(k):
        rate = agents * mu + j * theta
        down_then *= rate / (rate + theta)
        spent += 1 / (rate + theta)
        ever += ahead[j] * down_then
        waited += ahead[j] * down_then * spent
    if target <= 0:
        return 0.0, ever, waited
    # uniformisation of the transient chain (states j = k-1..0, then served or gone):
    # P(served by T) = Σ_m Poisson(m; Λ·T) · P(served within m steps)
    big = agents * mu + k * theta
    mean = big * target
    v = list(ahead)
    served = within = 0.0
    m = 0
    while m <= mean + 12 * math.sqrt(mean) + 30:
        m += 1
        nxt = [0.0] * k
        for j, mass in enumerate(v):
            if mass:
                down = agents * mu + j * theta
                nxt[j] += mass * (1 - (down + theta) / big)
                if j == 0:
                    served += mass * down / big
                else:
                    nxt[j - 1] += mass * down / big
        v = nxt
        within += served * math.exp(-mean + m * math.log(mean) - math.lgamma(m + 1))
    return within, ever, waited


def erlang_a_performance(agents: int, interval: Interval, target_seconds: float) -> Performance:
    if interval.patience_seconds is None:
        return erlang_c_performance(agents, interval, target_seconds)
    lam = interval.arrivals_per_second
    mu = 1 / interval.handle_seconds
    theta = 1 / interval.patience_seconds
    pi = _stationary(agents, lam, mu, theta)
    pw = sum(pi[agents:])
    queue = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    abandon = theta * queue / lam
    within, ever, waited = _served_within(agents, mu, theta, pi[agents:], target_seconds)
    immediate = 1 - pw
    busy = sum(min(n, agents) * p for n, p in enumerate(pi))
    return Performance(agents, pw, immediate + within, abandon, waited / (immediate + ever),
                       busy / agents)


def agents_needed(interval: Interval, target_share: float, target_seconds: float,
                  model: str = "C", most: int = 10_000) -> Performance:
    """The fewest agents whose service level (answered within `target_seconds`, of all
    offered) reaches `target_share`, under Erlang C ("C") or Erlang A ("A")."""
    if not 0 < target_share < 1:
        raise ValueError("the target share is between 0 and 1")
    if interval.arrivals_per_second <= 0:
        return Performance(0, 0.0, 1.0, 0.0, 0.0, 0.0)
    perf = erlang_a_performance if model == "A" else erlang_c_performance
    start = math.floor(interval.load) + 1 if model == "C" else 1
    for n in range(start, most + 1):
        result = perf(n, interval, target_seconds)
        if result.service_level >= target_share:
            return result
    raise ValueError(f"more than {most} agents needed")
