"""Load generator (`ivr12333 load`): full signed calls through the simulator, timed per webhook.

Each call is what a caller checking their balance does: answer, Mandarin (1), balance (1),
by ID number (1), the ID and #, confirm (1), the password and #, then hang up (the status
callback). Calls run `concurrency` at a time on threads; every webhook request is timed and
labelled with the step it belongs to, so the password check (a deliberately slow scrypt hash)
can be told apart from the rest.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.domain.identity import mask_id_number

if TYPE_CHECKING:  # the simulator (and with it twilio) is loaded only when a run starts
    from simulator import Call, Connection, Reply, Simulator, Transport

#: The steps of a call, in order, as the latency report names them.
STEPS = ("answer", "menu", "id", "password", "status")
#: Histogram buckets: upper bounds in milliseconds (the last one is open).
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
MAX_ERROR_KINDS = 20


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a simulated caller says they are: an ID number and the plain query password."""

    id_number: str
    password: str

    @property
    def id_keys(self) -> str:
        return self.id_number.replace("X", "*")

    def __repr__(self) -> str:  # never a whole ID number or a password in a log or traceback
        return f"Identity({mask_id_number(self.id_number)!r})"


def demo_identities(path: Any = None) -> list[Identity]:
    """The bundled demo people (or a dataset file's) that carry a plain password."""
    from ivr.resources import demo_dataset

    with open(path or demo_dataset(), encoding="utf-8") as fh:
        data = json.load(fh)
    return [Identity(str(p["id_number"]).upper(), str(p["password"]))
            for p in data.get("people", []) if isinstance(p.get("password"), str)]


def synthetic_identities(n: int, seed: int = 0) -> Sequence[Identity]:
    """People 0..n-1 of `ivr12333 demo --people n --seed seed`, derived, not read."""
    from ivr.data import synthetic

    class _Lazy(Sequence[Identity]):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: Any) -> Any:
            if isinstance(i, slice):
                return [self[k] for k in range(*i.indices(n))]
            p = synthetic.person(i % n, seed)
            return Identity(p.id_number, p.password)

    return _Lazy()


# ---- timing ---------------------------------------------------------------------------------
_step = threading.local()


def timed(inner: Transport, record: Callable[[str, float], None]) -> Transport:
    """`inner`, with every webhook request timed and recorded under the caller's current step."""
    from simulator import Connection, Transport

    class TimedConnection(Connection):
        def __init__(self, wrapped: Connection) -> None:  # no client of its own
            self._wrapped = wrapped

        def request(self, method: str, url: str, params: Mapping[str, str]) -> Reply:
            started = time.perf_counter()
            try:
                return self._wrapped.request(method, url, params)
            finally:
                record(getattr(_step, "name", "answer"), time.perf_counter() - started)

        def close(self) -> None:
            self._wrapped.close()

    class TimedTransport(Transport):
        catch_app_errors = inner.catch_app_errors

        def _client(self) -> Any:  # pragma: no cover - connect() is overridden
            raise NotImplementedError

        def connect(self, auth_token: str | None = None) -> Connection:
            return TimedConnection(inner.connect(auth_token))

    return TimedTransport()


# ---- results --------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


@dataclass
class LoadResult:
    """What a load run measured: calls, errors by kind, per-step webhook latencies (seconds)."""

    calls: int = 0
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def webhooks(self, steps: Iterable[str] | None = None) -> list[float]:
        """Latencies of the webhooks of `steps` (default: all)."""
        chosen = STEPS if steps is None else tuple(steps)
        return [v for s in chosen for v in self.latencies.get(s, [])]

    @property
    def requests(self) -> int:
        return len(self.webhooks())

    def p(self, q: float, steps: Iterable[str] | None = None) -> float:
        """The q-th percentile webhook latency in milliseconds."""
        return percentile(self.webhooks(steps), q) * 1000


def histogram(latencies: Sequence[float]) -> list[tuple[str, int]]:
    """Counts per latency bucket (labels in milliseconds), empty leading/trailing ones dropped."""
    counts = [0] * (len(BUCKETS_MS) + 1)
    for seconds in latencies:
        ms = seconds * 1000
        i = next((k for k, bound in enumerate(BUCKETS_MS) if ms < bound), len(BUCKETS_MS))
        counts[i] += 1
    labels = [f"< {BUCKETS_MS[0]} ms"]
    labels += [f"{lo}-{hi} ms" for lo, hi in itertools.pairwise(BUCKETS_MS)]
    labels.append(f">= {BUCKETS_MS[-1]} ms")
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        return []
    return [(labels[i], counts[i]) for i in range(used[0], used[-1] + 1)]


def format_histogram(latencies: Sequence[float], width: int = 40) -> list[str]:
    """The histogram as text lines with bars."""
    rows = histogram(latencies)
    top = max((c for _, c in rows), default=0)
    lines = []
    for label, count in rows:
        bar = "█" * (round(count / top * width) if top else 0)
        lines.append(f"{label:>13} | {bar:<{width}} {count}")
    return lines


# ---- running ----------------------------------------------------------------------------------
def _expected_after_password() -> str:
    """What the balance result ends with in Mandarin: the result menu (from the catalogue)."""
    from ivr.engine.prompts import DEFAULT_LOCALE, Catalogue
    from ivr.resources import data_dir

    text, _ = Catalogue.load(data_dir("prompts")).render("result_menu", DEFAULT_LOCALE, {})
    return text


def _press(call: Call, step: str, keys: str) -> None:
    _step.name = step
    call.press(keys)


def full_call(simulator: Simulator, who: Identity, caller_number: str, *,
              expect: str | None, think: float = 0.0) -> str | None:
    """One verification + balance call; None when it went as expected, else what went wrong."""
    from simulator import SimulatorError

    _step.name = "answer"
    step = "answer"
    call: Call | None = None
    try:
        call = simulator.dial(from_=caller_number)
        if call.ended:
            return f"answer: the call ended ({_short(call.outcome)})"
        for step, keys in (("menu", "1"), ("menu", "1"), ("menu", "1"), ("id", who.id_keys + "#"),
                           ("menu", "1"), ("password", who.password + "#")):
            if think:  # jittered, so that callers who started together drift apart
                time.sleep(think * random.uniform(0.5, 1.5))
            _press(call, step, keys)
            if call.ended:
                return f"{step}: the call ended ({_short(call.outcome)})"
        if expect is not None and expect not in call.heard:
            return "password: the balance was not read (verification failed?)"
        step = "status"
        _step.name = "status"
        call.hangup()
        if call.error:
            return f"status: {_short(call.error)}"
        return None
    except SimulatorError as exc:  # the call could not go on: no more detail (keys are PII)
        return f"{step}: {type(exc).__name__}"
    except Exception as exc:  # a load run reports failures, it does not stop at the first
        return f"{step}: {type(exc).__name__}: {_short(str(exc))}"
    finally:
        if call is not None and not call.ended:
            _step.name = "status"
            try:
                call.close()
            except Exception:  # the call already failed; its error was counted
                pass


def _short(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 100 else line[:97] + "..."


def run_load(transport: Transport, url: str, identities: Sequence[Identity], *, calls: int,
             concurrency: int, auth_token: str | None, status_callback: str | None,
             check: bool = True, think: float = 0.0, max_seconds: float | None = None,
             progress: Callable[[bool], None] | None = None) -> LoadResult:
    """Place `calls` full calls, `concurrency` at a time; stops starting calls after max_seconds.

    Each call has its own caller number, so the per-number verification limit never trips.
    With `think`, each caller waits 0.5-1.5 x think before every key press and the callers
    start spread over 2 x think: callers in lockstep would arrive in bursts no line sees.
    """
    if calls < 0 or concurrency < 1:
        raise ValueError("calls must be >= 0 and concurrency >= 1")
    if not identities:
        raise ValueError("no identities to call as")
    from simulator import Simulator

    lock = threading.Lock()
    result = LoadResult(latencies={s: [] for s in STEPS})

    def record(step: str, seconds: float) -> None:
        with lock:
            result.latencies.setdefault(step, []).append(seconds)

    simulator = Simulator(timed(transport, record), url, auth_token=auth_token,
                          status_callback=status_callback)
    expect = _expected_after_password() if check else None
    run = secrets.randbelow(10_000)
    counter = itertools.count()
    started = time.perf_counter()
    deadline = started + max_seconds if max_seconds is not None else None
    stride = 7919 if len(identities) % 7919 else 1  # spread calls over the whole dataset

    def worker() -> None:
        if think:  # callers do not all dial in the same instant
            time.sleep(random.uniform(0, 2 * think))
        while True:
            with lock:
                k = next(counter)
            if k >= calls or (deadline is not None and time.perf_counter() > deadline):
                return
            who = identities[(k * stride) % len(identities)]
            error = full_call(simulator, who, f"+8617{run:04d}{k:07d}", expect=expect,
                              think=think)
            with lock:
                result.calls += 1
                if error is None:
                    result.completed += 1
                elif error in result.errors or len(result.errors) < MAX_ERROR_KINDS:
                    result.errors[error] += 1
                else:
                    result.errors["other errors"] += 1
            if progress is not None:
                progress(error is None)

    threads = [threading.Thread(target=worker, name=f"caller-{i}", daemon=True)
               for i in range(min(concurrency, max(calls, 1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def report_lines(result: LoadResult) -> list[str]:
    """The end-of-run report: totals, latency percentiles by step, histogram, errors."""
    secs = result.seconds or 1e-9
    lines = [
        f"{result.calls} calls in {result.seconds:.1f} s: {result.completed} completed, "
        f"{result.error_count} errors; {result.calls / secs:.1f} calls/s, "
        f"{result.requests / secs:.0f} webhooks/s",
        "",
        f"{'webhook latency (ms)':<22}{'count':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
    ]
    groups = [(s, (s,)) for s in STEPS] + [("all but password", tuple(
        s for s in STEPS if s != "password")), ("all", STEPS)]
    for label, steps in groups:
        values = result.webhooks(steps)
        if not values:
            continue
        lines.append(f"{label:<22}{len(values):>7}{result.p(50, steps):>9.1f}"
                     f"{result.p(90, steps):>9.1f}{result.p(99, steps):>9.1f}"
                     f"{max(values) * 1000:>9.1f}")
    lines += ["", "latency histogram (all webhooks):"]
    lines += ["  " + line for line in format_histogram(result.webhooks())]
    lines += ["", f"errors: {result.error_count}"]
    lines += [f"  {n} x {kind}" for kind, n in result.errors.most_common()]
    return lines
