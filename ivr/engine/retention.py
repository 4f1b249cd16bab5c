"""What the line keeps and for how long, applied on demand (`ivr12333 purge`).

The same housekeeping runs by itself as calls come in (session.py, at most once a minute);
this runs it now, with the operator's settings, and says what it removed, counted only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, delete

from ivr.engine.queue import KEEP_WAITS_SECONDS
from ivr.engine.records import CallRecords
from ivr.engine.session import SessionStore
from ivr.settings import Settings
from ivr.store.schema import queue_waits


def purge(engine: Engine, settings: Settings, now: Callable[[], datetime]) -> dict[str, int]:
    """Seal idle calls, purge ended sessions and everything else past its time: name -> rows.
    The records of calls sealed idle are summarised first (ended by `idle`)."""
    store = SessionStore(engine, now, keep_ended_seconds=settings.keep_ended_days * 86400,
                         max_call_seconds=settings.seal_idle_minutes * 60)
    removed = store.housekeeping()
    at = now().timestamp()
    with engine.begin() as conn:
        removed["queue waits"] = conn.execute(
            delete(queue_waits).where(queue_waits.c.at < at - KEEP_WAITS_SECONDS)).rowcount
    records = CallRecords(engine, now)
    removed["idle calls summarised"] = records.close_idle(at - settings.seal_idle_minutes * 60)
    removed.update(records.purge(settings.keep_records_days * 86400))
    return removed
