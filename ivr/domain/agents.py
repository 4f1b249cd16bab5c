"""The agents who answer the queue: who they are, and their PIN checks (locked like callers')."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Engine, bindparam, true, update

from ivr.domain import failures, passwords
from ivr.domain.pinkeys import Keyring
from ivr.store.schema import agents


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
_COUNTS = failures.failure_statements(agents, agents.c.agent_id == _ID,
                                      agents.c.region_code == _REGION,
                                      agents.c.pin_hash, agents.c.name, agents.c.region_code)
# an agent of any region (a line serving several: the agent's id says which region is theirs)
_COUNTS_ANY = failures.failure_statements(agents, agents.c.agent_id == _ID, true(),
                                          agents.c.pin_hash, agents.c.name,
                                          agents.c.region_code)
# A right PIN stored the old way (scrypt, or a key no longer current) is stored anew under the
# current key, over the very hash that was checked (never over one changed meanwhile).
_REHASH = (
    update(agents)
    .where(agents.c.agent_id == _ID, agents.c.pin_hash == bindparam("p_old"))
    .values(pin_hash=bindparam("p_new"))
)


def check_pin(engine: Engine, agent_id: str, pin: str, region_code: str | None,
              lockout_after: int, keyring: Keyring,
              now: float | None = None) -> tuple[PinCheck, Agent | None]:
    """An agent of the region (None: of any region) and their PIN (hashed like callers'
    passwords, under `keyring`); every outcome costs one hash. At most `lockout_after`
    failures in a row and FAILURES_PER_WINDOW in FAILURE_WINDOW_SECONDS, as for callers'
    passwords; a right PIN stored under an older key (or as scrypt) moves to the current key,
    as passwords do. The agent found carries their own region."""
    now = time.time() if now is None else now
    params = {"p_id": agent_id, "p_region": region_code, **failures.params(now, lockout_after)}
    statements = _COUNTS if region_code is not None else _COUNTS_ANY
    with engine.begin() as conn:
        reserved = conn.execute(statements.reserve, params).first()
    if reserved is None:
        passwords.verify_password(pin, passwords.dummy_hash(keyring), keyring)
        return PinCheck.WRONG, None
    try:
        right = passwords.verify_password(pin, reserved.pin_hash, keyring)
    except Exception:  # e.g. a key this server lacks: no check was made, none is counted
        with engine.begin() as conn:
            conn.execute(statements.release, params)
        raise
    if right:
        stored = reserved.pin_hash
        fresh = passwords.hash_password(pin, keyring) \
            if passwords.needs_rehash(stored, keyring) else None
        with engine.begin() as conn:
            if conn.execute(statements.succeeded, params).rowcount == 1:
                if fresh is not None:
                    conn.execute(_REHASH, {**params, "p_old": stored, "p_new": fresh})
                return PinCheck.OK, Agent(agent_id, reserved.name, reserved.region_code)
        return PinCheck.LOCKED, None
    if failures.reaches_limit(reserved, lockout_after):
        with engine.begin() as conn:
            conn.execute(statements.lock, params)
        return PinCheck.LOCKED, None
    return PinCheck.WRONG, None


def unlock(engine: Engine, agent_id: str) -> bool:
    """Operator unlock of an agent's PIN; False when there is no such agent."""
    with engine.begin() as conn:
        return conn.execute(update(agents).where(agents.c.agent_id == agent_id)
                            .values(locked=False, failed_attempts=0)).rowcount == 1
