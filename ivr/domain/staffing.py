"""How many agents an interval needs: Erlang C (M/M/c, callers never give up) and Erlang A
(M/M/c+M, Palm: each waiting caller gives up after an exponential patience), for a service
level "answered within T seconds ÷ callers arriving". Both are steady-state models of one
interval with Poisson arrivals and exponential handle times (docs/reports.md says what that
leaves out). Pure arithmetic in floats: these are estimates, not money.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: no interval is staffed beyond this (a guard against a runaway search)
MAX_AGENTS = 5000


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of `agents` servers offered `load` erlangs (the stable recursion)."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller waits, M/M/c; 1 when the agents cannot keep up."""
    if agents <= load:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


@dataclass(frozen=True, slots=True)
class Estimate:
    """What `agents` give: service level, probability of abandoning, mean wait of those
    answered (ASA, Erlang C) or of all callers (Erlang A)."""

    agents: int
    service_level: float
    abandon: float
    wait: float


def erlang_c_estimate(agents: int, calls: float, seconds: float, aht: float,
                      target_seconds: float) -> Estimate:
    """Erlang C for `calls` arriving over `seconds`, handle time `aht` (seconds)."""
    load = calls * aht / seconds
    if agents <= load:
        return Estimate(agents, 0.0, 0.0, math.inf)
    waits = erlang_c(agents, load)
    level = 1 - waits * math.exp(-(agents - load) * target_seconds / aht)
    return Estimate(agents, level, 0.0, waits * aht / (agents - load))


def erlang_a_estimate(agents: int, calls: float, seconds: float, aht: float, patience: float,
                      target_seconds: float) -> Estimate:
    """Erlang A: the stationary birth-death chain (truncated where its tail is negligible);
    service level = answered within the target ÷ arrivals, from the position an arriving
    caller finds (PASTA) and the race between the line moving and their patience."""
    lam, mu, theta = calls / seconds, 1 / aht, 1 / patience
    if lam == 0:
        return Estimate(agents, 1.0, 0.0, 0.0)
    weights = [1.0]
    n = 0
    while True:  # unnormalised pi(n); stop when the tail is negligible
        n += 1
        weights.append(weights[-1] * lam / (min(n, agents) * mu + max(n - agents, 0) * theta))
        if n > agents and weights[-1] < 1e-12 * sum(weights):
            break
    total = sum(weights)
    pi = [w / total for w in weights]
    queue = sum((k - agents) * p for k, p in enumerate(pi) if k > agents)
    abandon = theta * queue / lam
    # an arrival finding n >= agents waits behind j = n - agents callers: it moves up at rate
    # agents*mu + j*theta (a service ends or one ahead gives up) and gives up at theta
    served_in_time = sum(pi[:agents])
    ahead = _served_within(len(pi) - agents, agents * mu, theta, target_seconds)
    served_in_time += sum(pi[agents + j] * ahead[j] for j in range(len(pi) - agents))
    return Estimate(agents, served_in_time, abandon, queue / lam)


def _served_within(positions: int, rate: float, theta: float, t: float) -> list[float]:
    """For a caller with j callers ahead (j < positions): P(reaching an agent within t before
    giving up), by uniformisation of the chain "phases left" (j + 1 moves to make)."""
    top = rate + (positions - 1) * theta + theta  # the fastest state's total rate
    steps = int(top * t + 10 * math.sqrt(top * t) + 20)
    # p[m]: probability of m moves still to make; start vectors for every j at once
    result = []
    for j in range(positions):
        p = [0.0] * (j + 2)
        p[j + 1] = 1.0
        served = 0.0
        weight = math.exp(-top * t)
        for step in range(steps + 1):
            served += weight * p[0]
            if step == steps:
                break
            nxt = [0.0] * len(p)
            nxt[0] = p[0]  # absorbed: served
            for m in range(1, len(p)):
                move = (rate + (m - 1) * theta) / top  # m-1 callers ahead still
                nxt[m - 1] += p[m] * move
                nxt[m] += p[m] * (1 - move - theta / top)  # stays (the rest gives up)
            p = nxt
            weight *= top * t / (step + 1)
        result.append(min(served, 1.0))
        if j > 0 and result[-1] < 1e-9:
            result.extend([0.0] * (positions - j - 1))
            break
    return result


def agents_needed(calls: float, seconds: float, aht: float, target_seconds: float,
                  target: float, patience: float | None = None) -> Estimate:
    """The fewest agents whose service level reaches `target`: Erlang C, or Erlang A when
    `patience` (mean seconds before a waiting caller gives up) is given."""
    if calls <= 0:
        return Estimate(0, 1.0, 0.0, 0.0)
    load = calls * aht / seconds
    # Erlang C needs more agents than the load; with abandonment fewer may do
    agents = max(1, math.floor(load) if patience is None else math.floor(load / 2))
    while agents <= MAX_AGENTS:
        estimate = (erlang_c_estimate(agents, calls, seconds, aht, target_seconds)
                    if patience is None else
                    erlang_a_estimate(agents, calls, seconds, aht, patience, target_seconds))
        if estimate.service_level >= target:
            return estimate
        agents += 1
    raise ValueError(f"more than {MAX_AGENTS} agents needed")
