"""Load generator (`ivr12333 load`): full signed calls through the simulator, timed per webhook.

Each call is what a caller checking their balance does: answer, Mandarin (1), balance (1),
by ID number (1), the ID and #, confirm (1), the password and #, then hang up (the status
callback). Calls run `concurrency` at a time on threads; every webhook request is timed and
labelled with the step it belongs to, so the password check can be told apart from the rest.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.domain.identity import mask_id_number

if TYPE_CHECKING:  # the simulator (and with it twilio) is loaded only when a run starts
    from ivr.engine.prompts import Catalogue
    from simulator import Call, Failure, Simulator, Transport

#: The steps of a call, in order, as the latency report names them.
STEPS = ("answer", "menu", "id", "password", "status")
#: Histogram buckets: upper bounds in milliseconds (the last one is open).
BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
MAX_ERROR_KINDS = 20
#: People named per kind of failure in the report (the most frequent first).
MAX_PEOPLE_SHOWN = 3
#: What a caller may hear instead of their balance (prompt id, what it means), in the order
#: they are looked for: the first one heard is the reason a call failed.
FAILURE_PROMPTS = (
    ("system_busy", "application error"),
    ("too_many_attempts", "the caller's number reached the hourly verification limit"),
    ("verification_failed", "too many wrong passwords in the call"),
    ("password_wrong", "wrong password, unknown number or locked password (the line does "
                       "not tell them apart)"),
    ("id_malformed", "the ID number was refused"),
    ("too_many_invalid", "the keys were refused too often"),
    ("invalid_input", "a key was refused"),
    ("no_input", "no key was heard"),
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a simulated caller says they are: an ID number and the plain query password."""

    id_number: str
    password: str
    #: the number the caller dials: their region's own (one line, many regions), or "" for
    #: the simulator's default
    called: str = ""

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
    numbers = (data.get("region") or {}).get("numbers") or [""]
    return [Identity(str(p["id_number"]).upper(), str(p["password"]), str(numbers[0]))
            for p in data.get("people", []) if isinstance(p.get("password"), str)]


def synthetic_identities(n: int, seed: int = 0) -> Sequence[Identity]:
    """People 0..n-1 of `ivr12333 demo --people n --seed seed`, derived, not read."""
    from ivr.dataset import synthetic

    class _Lazy(Sequence[Identity]):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: Any) -> Any:
            if isinstance(i, slice):
                return [self[k] for k in range(*i.indices(n))]
            if not -n <= i < n:
                raise IndexError(i)  # which also ends an iteration
            p = synthetic.person(i % n, seed)
            return Identity(p.id_number, p.password, synthetic.NUMBER)

    return _Lazy()


# ---- timing ---------------------------------------------------------------------------------
_step = threading.local()  # the step each caller thread is at: what its webhooks are filed under


# ---- results --------------------------------------------------------------------------------
def _failure(step: str, reason: str, who: str) -> Failure:
    """A load call's failure: at `step`, `reason`, who called (ID number masked); no transcript
    is kept (what a caller keyed is personal)."""
    from simulator import Failure  # the simulator loads twilio: only when a load runs

    return Failure(None, step, reason, "", who=who)


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
    errors: Counter[str] = field(default_factory=Counter)  # kind of failure -> calls
    people: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> masked ID -> calls
    latencies: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def add_failure(self, failure: Failure) -> None:
        """Count a failed call under its kind (new kinds beyond MAX_ERROR_KINDS: "other")."""
        kind = failure.kind
        if kind not in self.errors and len(self.errors) >= MAX_ERROR_KINDS:
            kind = "other errors"
        self.errors[kind] += 1
        self.people.setdefault(kind, Counter())[failure.who] += 1

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
def _catalogue() -> Catalogue:
    from ivr.engine.prompts import Catalogue
    from ivr.resources import data_dir

    return Catalogue.load(data_dir("prompts"))


def _expected_after_password(catalogue: Catalogue | None = None) -> tuple[str, ...]:
    """What the balance result ends with in Mandarin: the result menu (from the catalogue),
    with or without an agent to offer."""
    from ivr.engine.prompts import DEFAULT_LOCALE

    cat = catalogue or _catalogue()
    return tuple(cat.render(pid, DEFAULT_LOCALE, {})[0]
                 for pid in ("result_menu", "result_menu_no_agent"))


def failure_prompts(catalogue: Catalogue | None = None) -> list[tuple[str, str]]:
    """(rendered text, reason) of each FAILURE_PROMPTS prompt, in every locale."""
    from ivr.engine.prompts import LOCALES

    catalogue = catalogue or _catalogue()
    # a prompt with values (password_wrong says how many tries are left) is known by its
    # wording up to the first value
    return [(catalogue.prompts[locale][pid].text.split("{", 1)[0], f"{meaning} (heard {pid})")
            for pid, meaning in FAILURE_PROMPTS for locale in LOCALES]


def _heard_reason(heard: str, prompts: Sequence[tuple[str, str]]) -> str | None:
    """The reason of the first failure prompt in what the caller heard, if any."""
    return next((reason for text, reason in prompts if text and text in heard), None)


def _press(call: Call, step: str, keys: str) -> None:
    _step.name = step
    call.press(keys)


def full_call(simulator: Simulator, who: Identity, caller_number: str, *,
              expect: tuple[str, ...] | None, think: float = 0.0,
              prompts: Sequence[tuple[str, str]] = ()) -> Failure | None:
    """One verification + balance call; None when it went as expected, else why it failed.

    `prompts` ((text, reason), see failure_prompts) name the reason from what was heard.
    """
    from simulator import SimulatorError

    _step.name = "answer"
    step = "answer"
    who_masked = mask_id_number(who.id_number)
    call: Call | None = None

    def ended(call: Call) -> Failure:
        if call.error:
            return _failure(step, f"application error: {_short(call.error)}", who_masked)
        reason = _heard_reason(call.heard, prompts)
        return _failure(step, reason or f"the call ended ({_short(call.outcome)})", who_masked)

    try:
        call = simulator.dial(from_=caller_number, to=who.called or None)
        if call.ended:
            return ended(call)
        for step, keys in (("menu", "1"), ("menu", "1"), ("menu", "1"), ("id", who.id_keys + "#"),
                           ("menu", "1"), ("password", who.password + "#")):
            if think:  # jittered, so that callers who started together drift apart
                time.sleep(think * random.uniform(0.5, 1.5))
            _press(call, step, keys)
            if call.ended:
                return ended(call)
        if expect is not None and not any(text in call.heard for text in expect):
            reason = _heard_reason(call.heard, prompts)
            return _failure("password", reason or "the balance was not read (no known prompt "
                           "heard instead)", who_masked)
        step = "status"
        _step.name = "status"
        call.hangup()
        if call.error:
            return _failure("status", _short(call.error), who_masked)
        return None
    except SimulatorError as exc:  # the call could not go on: no more detail (keys are PII)
        return _failure(step, type(exc).__name__, who_masked)
    except Exception as exc:  # a load run reports failures, it does not stop at the first
        return _failure(step, f"{type(exc).__name__}: {_short(str(exc))}", who_masked)
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
    from simulator import Simulator, Timed, WebhookRequest

    lock = threading.Lock()
    result = LoadResult(latencies={s: [] for s in STEPS})

    def record(request: WebhookRequest, seconds: float) -> None:
        step = getattr(_step, "name", "answer")
        with lock:
            result.latencies.setdefault(step, []).append(seconds)

    simulator = Simulator(Timed(transport, record), url, auth_token=auth_token,
                          status_callback=status_callback)
    catalogue = _catalogue()
    expect = _expected_after_password(catalogue) if check else None
    prompts = failure_prompts(catalogue)
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
            failure = full_call(simulator, who, f"+8617{run:04d}{k:07d}", expect=expect,
                                think=think, prompts=prompts)
            with lock:
                result.calls += 1
                if failure is None:
                    result.completed += 1
                else:
                    result.add_failure(failure)
            if progress is not None:
                progress(failure is None)

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
    lines += [f"  {n} x {kind}: {_people_line(result.people.get(kind, Counter()))}"
              for kind, n in result.errors.most_common()]
    return lines


def _people_line(people: Counter[str]) -> str:
    """Who made the failed calls (masked): the most frequent first, then how many more."""
    shown = [f"{who} x {n}" for who, n in people.most_common(MAX_PEOPLE_SHOWN)]
    rest = len(people) - len(shown)
    return ", ".join(shown) + (f" and {rest} more {'person' if rest == 1 else 'people'}"
                               if rest else "")
