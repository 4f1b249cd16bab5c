"""How webhook requests reach the application: in-process (WSGI) or over HTTP, one client a call."""

from __future__ import annotations

import ssl
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from simulator.errors import ConnectionFailed

SIGNATURE_HEADER = "X-Twilio-Signature"
WEBHOOK_TIMEOUT_SECONDS = 15.0  # what Twilio waits for a webhook before giving up


@dataclass(frozen=True)
class Reply:
    """What the application answered to one webhook request."""

    status: int
    content_type: str
    text: str
    url: str
    content: bytes = b""
    location: str = ""


class Connection:
    """One call's line to the application: its own httpx client, so its own cookie jar."""

    def __init__(
        self, client: httpx.Client, auth_token: str | None, *, catch_app_errors: bool
    ) -> None:
        self._client = client
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._catch_app_errors = catch_app_errors

    def request(self, method: str, url: str, params: Mapping[str, str]) -> Reply:
        """POST `params` form-encoded (GET: in the query string), signed when a token is set."""
        method = method.upper()
        if method == "GET":
            target = str(httpx.URL(url).copy_merge_params(dict(params)))
            signed: Mapping[str, str] = {}
        else:
            target = str(httpx.URL(url))
            signed = params
        headers = {}
        if self._validator is not None:
            headers[SIGNATURE_HEADER] = self._validator.compute_signature(target, dict(signed))
        try:
            if method == "GET":
                response = self._client.get(target, headers=headers)
            else:
                response = self._client.post(target, data=dict(params), headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # an in-process app crashing is a 500, not ours
            if not self._catch_app_errors:
                raise
            return _crash_reply(target, exc)
        return Reply(
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            text=response.text,
            url=str(response.url),
            content=response.content,
            location=response.headers.get("location", ""),
        )

    def close(self) -> None:
        """Close the client (and its connections); the cookie jar goes with it."""
        self._client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _crash_reply(url: str, exc: Exception) -> Reply:
    """Turn an exception raised inside an in-process app into the 500 a server would send."""
    text = f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))
    return Reply(500, "text/plain; charset=utf-8", text, url, text.encode("utf-8"))


class Transport(ABC):
    """Opens one connection per call; implementations differ only in how bytes travel."""

    catch_app_errors = False

    @abstractmethod
    def _client(self) -> httpx.Client:
        """A fresh httpx client (fresh cookie jar) for one call."""

    def connect(self, auth_token: str | None = None) -> Connection:
        """Open a connection for one call; requests are signed when `auth_token` is given."""
        return Connection(self._client(), auth_token, catch_app_errors=self.catch_app_errors)


class WsgiTransport(Transport):
    """Calls a WSGI app in-process; an exception inside the app becomes a 500 reply."""

    catch_app_errors = True

    def __init__(self, app: Any) -> None:
        self.app = app

    def _client(self) -> httpx.Client:
        transport = httpx.WSGITransport(app=self.app)
        return httpx.Client(transport=transport, follow_redirects=False)


class HttpTransport(Transport):
    """Calls any URL over real HTTP, as Twilio would."""

    def __init__(self, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        # one TLS context for every call: building one costs ~30 ms of CPU, a load test's bulk
        self._tls = ssl.create_default_context()

    def _client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, follow_redirects=False, verify=self._tls)
