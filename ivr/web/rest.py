"""Twilio's REST API, for the one thing TwiML cannot do: move one particular queued caller
(the one the agent was told about) into the agent's conference room, and end a room.

`<Dial><Queue>` bridges whoever is at the head of Twilio's queue, which need not be the caller
the agent's summary described; updating that caller's queue Member with a Url moves exactly
them (https://www.twilio.com/docs/voice/api/member-resource). The client is twilio's; with
`rest_api_url` set it talks to that address instead (the simulator's REST API) through the
library's documented seam, a custom HTTP client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.engine.queue import Moved
from ivr.settings import Settings

log = logging.getLogger("ivr.web")

#: seconds a REST request may take: an agent waits for it
TIMEOUT = 5.0


class _ElsewhereHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends what the twilio library would send to *.twilio.com to another base URL."""

    def __init__(self, base: str) -> None:
        super().__init__(timeout=TIMEOUT)
        self.base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        if not parts.hostname or not parts.hostname.endswith(".twilio.com"):
            raise ValueError(f"not a Twilio API address: {parts.hostname}")
        moved = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, moved, *args, **kwargs)


class TwilioBridge:
    """The engine's Bridge (ivr.engine.queue) over Twilio's REST API."""

    def __init__(self, settings: Settings, base_url: Callable[[], str]) -> None:
        """`base_url`: this app's public base URL now (Twilio requests the moved caller's
        TwiML there)."""
        assert settings.account_sid
        username = settings.api_key_sid or settings.account_sid
        password = settings.api_key_secret if settings.api_key_sid else settings.auth_token
        http = _ElsewhereHttpClient(settings.rest_api_url) if settings.rest_api_url else None
        # an edge or region in the environment would rewrite the address: never here
        self.client = Client(username, password, account_sid=settings.account_sid,
                             http_client=http or TwilioHttpClient(timeout=TIMEOUT),
                             environment={})
        self._base_url = base_url
        self._queues: dict[str, str] = {}
        self._lock = threading.Lock()

    def _queue_sid(self, name: str) -> str | None:
        with self._lock:
            known = self._queues.get(name)
        if known is None:
            for queue in self.client.queues.list():
                if queue.friendly_name == name and queue.sid:
                    known = queue.sid
                    with self._lock:
                        self._queues[name] = known
                    break
        return known

    def move(self, queue: str, call_sid: str, room: str) -> Moved:
        url = f"{self._base_url()}/voice/bridge?{urlencode({'room': room})}"
        try:
            sid = self._queue_sid(queue)
            if sid is None:
                return Moved.GONE  # no such queue: nobody waits in it
            self.client.queues(sid).members(call_sid).update(url=url, method="POST")
            return Moved.MOVED
        except TwilioRestException as exc:
            if exc.status == 404:  # not (or no longer) a member of the queue
                return Moved.GONE
            log.error("REST: moving call=%s failed: %s %s", call_sid, exc.status, exc.code)
            return Moved.FAILED
        except Exception as exc:
            log.error("REST: moving call=%s failed: %s", call_sid, exc.__class__.__name__)
            return Moved.FAILED

    def end_room(self, room: str) -> bool:
        try:
            ended = False
            for status in ("init", "in-progress"):
                for conference in self.client.conferences.list(friendly_name=room,
                                                               status=status):
                    conference.update(status="completed")
                    ended = True
            return ended
        except Exception as exc:
            log.error("REST: ending room %s failed: %s", room, exc.__class__.__name__)
            return False
