"""The seam between a call and the application: one webhook request in, one response out.

As in httpx, a transport is one method, `handle(request) -> response`, and `close()`. It only
carries a request to the application and the answer back. What a call adds sits above it:
building requests and keeping the call's cookies (`simulator.client.WebhookClient`), the
X-Twilio-Signature (`simulator.wrappers.Signed`), timing for the load generator (`Timed`).

Three transports:
- `HttpTransport`: real HTTP(S) to any URL; one httpx client, so one connection pool, for
  every call placed through it.
- `WsgiTransport`: a WSGI app in-process, through httpx's WSGI transport.
- `DirectTransport` (`simulator.direct`): a WSGI app in-process, called with a hand-built
  environ; no HTTP client at all, the fast path for in-process runs.
"""

from __future__ import annotations

import codecs
import functools
import http.cookiejar
import ssl
import traceback
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote_plus, urlencode

import httpx

from simulator.errors import ConnectionFailed

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
WEBHOOK_TIMEOUT_SECONDS = 15.0  # what Twilio waits for a webhook before giving up
_REFUSE_ALL = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])  # no domain is allowed


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook request as the simulator sends it, whatever carries it."""

    method: str  # GET or POST
    url: str  # absolute and normalised; a GET's parameters are already in its query string
    form: Mapping[str, str] = field(default_factory=dict)  # a POST's body parameters
    headers: Mapping[str, str] = field(default_factory=dict)  # besides Host, Content-*

    @property
    def body(self) -> bytes:
        """The form, encoded as a browser (and Twilio) encodes it; empty without a form."""
        if not self.form:
            return b""
        if all(type(k) is str and type(v) is str for k, v in self.form.items()):
            # what urlencode writes, each name and value quoted once per process: a call
            # sends the same twenty-odd names and mostly the same values again and again
            return "&".join(f"{_quoted(k)}={_quoted(v)}"
                            for k, v in self.form.items()).encode("ascii")
        return urlencode(self.form).encode("ascii")

    def header_items(self) -> list[tuple[str, str]]:
        """The headers to send, Content-Type included (Host and Content-Length: the carrier's)."""
        items = list(self.headers.items())
        if self.form:
            items.append(("Content-Type", FORM_CONTENT_TYPE))
        return items

    def with_header(self, name: str, value: str) -> WebhookRequest:
        """This request with one more header (or that header replaced)."""
        return replace(self, headers={**self.headers, name: value})


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    return quote_plus(text)


@dataclass(frozen=True)
class WebhookResponse:
    """What the application answered to one webhook request."""

    status: int
    headers: tuple[tuple[str, str], ...]  # as sent, in order (Set-Cookie may repeat)
    content: bytes
    url: str  # the URL requested: what error messages name

    def header(self, name: str) -> str:
        """The first value of header `name` (any case), or ""."""
        return next(iter(self.header_values(name)), "")

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (any case), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def content_type(self) -> str:
        return self.header("content-type")

    @property
    def location(self) -> str:
        return self.header("location")

    @property
    def text(self) -> str:
        """The body decoded by its declared charset (UTF-8 without one), errors replaced."""
        return self.content.decode(_charset(self.content_type), "replace")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
            try:
                return codecs.lookup(charset).name
            except LookupError:
                break
    return "utf-8"


def crash_response(url: str, exc: BaseException) -> WebhookResponse:
    """The 500 a server would send for an exception raised inside an in-process app."""
    text = f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))
    headers = (("Content-Type", "text/plain; charset=utf-8"),)
    return WebhookResponse(500, headers, text.encode("utf-8"), url)


class Transport(ABC):
    """Carries webhook requests to the application; shared by every call placed through it.

    A transport keeps no state of any one call (cookies belong to the call's WebhookClient),
    so calls on several threads may share one.
    """

    @abstractmethod
    def handle(self, request: WebhookRequest) -> WebhookResponse:
        """Deliver `request`, return the answer; ConnectionFailed if the app cannot be reached.

        An in-process app that raises answers 500 (`crash_response`), as a server would.
        """

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release what the transport holds (an HTTP connection pool); it is not used again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read(response: httpx.Response) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Status, headers and whole body of an httpx response, which is then closed."""
    try:
        content = response.read()
    finally:
        response.close()
    return response.status_code, tuple(response.headers.multi_items()), content


class HttpTransport(Transport):
    """Real HTTP(S) to any URL, as Twilio calls a webhook: no redirects followed.

    One httpx client for every call through this transport, so connections are reused; its
    cookie jar refuses every cookie (each call keeps its own, above the transport). Close it,
    or use it as a context manager; a forgotten one closes its connections when collected.
    """

    def __init__(self, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            # one TLS context for every call: building one costs ~30 ms of CPU
            verify=ssl.create_default_context(),
            cookies=http.cookiejar.CookieJar(_REFUSE_ALL),
            # every caller may wait on the server at once: no pool limit adds a queue of its own
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        )
        self._closer = weakref.finalize(self, self._client.close)

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        try:
            response = self._client.send(
                self._client.build_request(
                    request.method,
                    request.url,
                    content=request.body if request.method != "GET" else None,
                    headers=request.header_items(),
                )
            )
            status, headers, content = _read(response)
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        return WebhookResponse(status, headers, content, request.url)

    def close(self) -> None:
        self._closer()


class WsgiTransport(Transport):
    """A WSGI app in-process, through httpx's WSGI transport (no client, no network)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._wsgi = httpx.WSGITransport(app=app)

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        outgoing = httpx.Request(
            request.method,
            request.url,
            content=request.body if request.method != "GET" else None,
            headers=request.header_items(),
        )
        try:
            status, headers, content = _read(self._wsgi.handle_request(outgoing))
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # the app crashed: a server would answer 500
            return crash_response(request.url, exc)
        return WebhookResponse(status, headers, content, request.url)

