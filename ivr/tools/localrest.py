"""The simulator's REST API for in-process calls into the hotline: one per process, on the
loopback, with throwaway credentials; and the settings that point the hotline's REST client
at it (so an agent in a scenario, the text phone or the web phone moves callers as on Twilio)."""

from __future__ import annotations

import atexit
import functools
import secrets
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LocalRest:
    """A running simulated REST API and what the hotline's settings need to use it."""

    api: Any  # simulator.rest.RestApi
    base_url: str
    account_sid: str
    api_key_sid: str
    api_key_secret: str

    def settings(self) -> dict[str, Any]:
        """Settings fields (Settings.model_copy(update=...)) for an in-process hotline."""
        return {"account_sid": self.account_sid, "api_key_sid": self.api_key_sid,
                "api_key_secret": self.api_key_secret, "rest_api_url": self.base_url}


@functools.cache
def local_rest() -> LocalRest:
    """Started on first use, stopped when the process ends."""
    from simulator.rest import RestApi, RestServer

    account = "AC" + secrets.token_hex(16)
    key, secret = "SK" + secrets.token_hex(16), secrets.token_urlsafe(24)
    server = RestServer(RestApi(account, secrets.token_urlsafe(24), {key: secret}))
    atexit.register(server.close)
    return LocalRest(server.api, server.base_url, account, key, secret)
