"""What a call remembers between webhooks: typed, and stored as JSON with the session."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from ivr.engine.prompts import DEFAULT_LOCALE


@dataclass
class CallData:
    """A call's data. Personal data (`pending`, `verified`) is forgotten when the call ends."""

    lang: str = DEFAULT_LOCALE
    silences: int = 0  # in a row, in the current state
    invalids: int = 0  # in a row, in the current state
    password_failures: int = 0  # in this call
    target: str | None = None  # the state a caller in verification is going to
    pending: str | None = None  # the ID number being verified
    card_shared: bool = False  # the card number being verified is two people's
    verified: str | None = None  # the verified caller's ID number
    values: dict[str, str] = field(default_factory=dict)  # prompt values kept across turns
    line: str = ""  # the entry the call came in by ("" callers, "agent" the agents' line)
    agent_pending: str | None = None  # the agent id keyed in, before its PIN
    agent: str | None = None  # the agent whose PIN was right
    agent_failures: int = 0  # wrong agent PINs in this call
    caller: str | None = None  # on the agents' line: the CallSid of the caller moved to the agent
    agent_retries: int = 0  # the agent waited for a caller Twilio's queue did not hold yet
    region: str | None = None  # the call's region (参保地) code; None: the line's region
    routed: str = ""  # how it was found (ivr/domain/routing.py); "": the caller picks it
    region_keys: list[str] = field(default_factory=list)  # the codes the region menu offered

    def reset_counters(self) -> None:
        self.silences = self.invalids = 0

    def to_json(self) -> str:
        # the fields by name, as asdict would give them (its deep copy costs ~10x the dump)
        return _DUMP({name: getattr(self, name) for name in _NAMES})

    @classmethod
    def from_json(cls, text: str) -> CallData:
        """The stored data; keys it doesn't know (an older version's) are left out."""
        raw: Any = json.loads(text) if text else {}
        if not isinstance(raw, dict):
            return cls()
        return cls(**{k: v for k, v in raw.items() if k in _KNOWN})


_NAMES = tuple(f.name for f in fields(CallData))
_KNOWN = frozenset(_NAMES)
_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
