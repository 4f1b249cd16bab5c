"""A regression guard on what a webhook costs the database: SQL statements and pool checkouts
per webhook of a verification + balance call (bench/profile_webhooks.py measures the same).

Upper bounds, not timings: a change that adds a round trip to every webhook fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import STATUS_URL, VOICE_URL, prompt_pattern
from sqlalchemy import event

from simulator import Simulator, Transport, WebhookRequest, WebhookResponse, WsgiTransport

JIANGUO = ("450102197503150013", "135790")

#: webhook -> (most statements, most checkouts). The start reads the region (the greeting
#: says the line's name), inserts the call and its first answer; a step's webhook claims its
#: step and reads the call in one statement, then saves the session and its answer in one
#: transaction; a menu that says the main menu reads the
#: region too. The password webhook adds the per-number reservation (3 statements) and the
#: password check (reserve, then settle). The region is read with how many agents answer for
#: it, in one statement. The status callback also forgets the call's place in the agent queue
#: and frees a caller an agent's call had taken (two indexed deletes/updates, same transaction).
# The call records (ivr/engine/records.py) add one transaction to each turn (its events, one
# insert); the start also looks up and stores the number's keyed hash (two statements), and
# the end reads the call's events and writes its hang-up, its summary and the hash's window
# (one transaction): +1 statement and +1 checkout per turn, +5/+1 at the end.
# One line, many regions: the answer reads the regions once to find the call's (routing.py,
# one statement on its own checkout).
BOUNDS = {
    "answer": (7, 4),
    "language": (5, 4),
    "balance": (5, 4),
    "by ID": (5, 4),
    "ID number": (4, 3),
    "confirm": (5, 4),
    "password": (11, 8),
    "status callback": (9, 2),
}


class Counting(Transport):
    """Statements and checkouts on `engine` during each request through `inner`."""

    def __init__(self, inner: Transport, engine: Any) -> None:
        self.inner = inner
        self.counts: list[tuple[int, int]] = []
        self._statements = self._checkouts = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, *_args: Any) -> None:
        self._statements += 1

    def _checkout(self, *_args: Any) -> None:
        self._checkouts += 1

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        self._statements = self._checkouts = 0
        response = self.inner.handle(request)
        self.counts.append((self._statements, self._checkouts))
        return response


def test_statements_and_checkouts_per_webhook(app_factory: Callable[..., Any]) -> None:
    """The second call of a process: the first one's start also sealed and purged stale calls
    and its password check old attempts, which happens once a minute, not on every call."""
    app = app_factory()
    counting = Counting(WsgiTransport(app), app.extensions["ivr12333"].db)
    simulator = Simulator(counting, VOICE_URL, status_callback=STATUS_URL)
    id_number, password = JIANGUO
    for n in range(2):
        counting.counts.clear()
        call = simulator.dial(from_=f"+861380000000{n}")
        for keys in ("1", "1", "1", id_number + "#", "1", password + "#"):
            call.press(keys)
        assert prompt_pattern("balance_employee").search(call.heard), call.heard
        call.hangup()
    measured = dict(zip(BOUNDS, counting.counts, strict=True))
    over = {name: (measured[name], bound) for name, bound in BOUNDS.items()
            if measured[name][0] > bound[0] or measured[name][1] > bound[1]}
    assert not over, f"(statements, checkouts) per webhook above their bounds: {over}"
