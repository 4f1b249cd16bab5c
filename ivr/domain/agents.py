"""The agents who answer the queue: who they are, and their PIN checks (locked like callers')."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Engine, bindparam, case, or_, update

from ivr.data.storage import agents
from ivr.domain import passwords
from ivr.domain.accounts import FAILURE_WINDOW_SECONDS, FAILURES_PER_WINDOW
from ivr.pinkeys import Keyring


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    name: str
    region_code: str


class PinCheck(Enum):
    OK = "ok"
    WRONG = "wrong"  # checked and wrong (or nobody has that id: a dummy check, the same cost)
    LOCKED = "locked"  # locked, or this wrong PIN locked it


_ID = bindparam("p_id", type_=agents.c.agent_id.type)
_REGION = bindparam("p_region", type_=agents.c.region_code.type)
# One check reserved before the hash, in one statement (it counts as a failure until the hash
# says otherwise): concurrent guesses on any worker get at most `p_limit` checks in a row.
_SINCE = bindparam("p_since", type_=agents.c.window_start.type)
_NOW = bindparam("p_now", type_=agents.c.window_start.type)
_WINDOW_OVER = agents.c.window_start < _SINCE
_RESERVE = (
    update(agents)
    .where(agents.c.agent_id == _ID, agents.c.region_code == _REGION, ~agents.c.locked,
           agents.c.failed_attempts < bindparam("p_limit"),
           or_(_WINDOW_OVER, agents.c.window_failures < FAILURES_PER_WINDOW))
    .values(failed_attempts=agents.c.failed_attempts + 1,
            window_failures=case((_WINDOW_OVER, 1), else_=agents.c.window_failures + 1),
            window_start=case((_WINDOW_OVER, _NOW), else_=agents.c.window_start))
    .returning(agents.c.pin_hash, agents.c.failed_attempts, agents.c.window_failures,
               agents.c.name)
)
_SUCCEEDED = (update(agents).where(agents.c.agent_id == _ID, ~agents.c.locked)
              .values(failed_attempts=0, window_failures=agents.c.window_failures - 1))
_LOCK = update(agents).where(agents.c.agent_id == _ID).values(locked=True)
_RELEASE = (update(agents).where(agents.c.agent_id == _ID, agents.c.failed_attempts > 0)
            .values(failed_attempts=agents.c.failed_attempts - 1,
                    window_failures=case((agents.c.window_failures > 0,
                                          agents.c.window_failures - 1), else_=0)))


def check_pin(engine: Engine, agent_id: str, pin: str, region_code: str,
              lockout_after: int, keyring: Keyring,
              now: float | None = None) -> tuple[PinCheck, Agent | None]:
    """An agent of the region and their PIN (hashed like callers' passwords, under
    `keyring`); every outcome costs one hash. At most `lockout_after` failures in a row and
    FAILURES_PER_WINDOW in FAILURE_WINDOW_SECONDS, as for callers' passwords."""
    now = time.time() if now is None else now
    params = {"p_id": agent_id, "p_region": region_code, "p_limit": lockout_after,
              "p_since": now - FAILURE_WINDOW_SECONDS, "p_now": now}
    with engine.begin() as conn:
        reserved = conn.execute(_RESERVE, params).first()
    if reserved is None:
        passwords.verify_password(pin, passwords.dummy_hash(keyring), keyring)
        return PinCheck.WRONG, None
    try:
        right = passwords.verify_password(pin, reserved.pin_hash, keyring)
    except Exception:  # e.g. a key this server lacks: no check was made, none is counted
        with engine.begin() as conn:
            conn.execute(_RELEASE, params)
        raise
    if right:
        with engine.begin() as conn:
            if conn.execute(_SUCCEEDED, params).rowcount == 1:
                return PinCheck.OK, Agent(agent_id, reserved.name, region_code)
        return PinCheck.LOCKED, None
    if reserved.failed_attempts >= lockout_after or reserved.window_failures >= FAILURES_PER_WINDOW:
        with engine.begin() as conn:
            conn.execute(_LOCK, params)
        return PinCheck.LOCKED, None
    return PinCheck.WRONG, None


def unlock(engine: Engine, agent_id: str) -> bool:
    """Operator unlock of an agent's PIN; False when there is no such agent."""
    with engine.begin() as conn:
        return conn.execute(update(agents).where(agents.c.agent_id == agent_id)
                            .values(locked=False, failed_attempts=0)).rowcount == 1
