"""An in-process transport without an HTTP client: one bare WSGI environ per request.

The simulator's WsgiTransport goes through httpx, whose client machinery costs more CPU than
a whole hotline webhook; this transport shows what the application itself costs in-process.
Requests are signed exactly as Twilio signs them, so the signature check runs for real.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from simulator import Connection, Reply, Transport


class DirectConnection(Connection):
    """One call's line: calls the WSGI app directly (no cookies: the hotline uses none)."""

    def __init__(self, app: Any, auth_token: str | None) -> None:  # no httpx client
        self._app = app
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._catch_app_errors = True

    def request(self, method: str, url: str, params: Mapping[str, str]) -> Reply:
        method = method.upper()
        parts = urlsplit(url)
        form = dict(params)
        query = parts.query
        if method == "GET":
            query = "&".join(q for q in (query, urlencode(form)) if q)
            url = f"{parts.scheme}://{parts.netloc}{parts.path}?{query}"
            form = {}
        body = urlencode(form).encode() if form else b""
        host, _, port = parts.netloc.partition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": parts.path or "/",
            "QUERY_STRING": query, "SERVER_NAME": host,
            "SERVER_PORT": port or ("443" if parts.scheme == "https" else "80"),
            "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": parts.netloc,
            "wsgi.url_scheme": parts.scheme, "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
        if self._validator is not None:
            environ["HTTP_X_TWILIO_SIGNATURE"] = self._validator.compute_signature(url, form)
        status: list[str] = []
        headers: list[tuple[str, str]] = []

        def start_response(s: str, h: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [s]
            headers[:] = h
            return lambda data: None

        try:
            result = self._app(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # like WsgiTransport: an app crash is a 500
            text = f"{type(exc).__name__}: {exc}"
            return Reply(500, "text/plain; charset=utf-8", text, url, text.encode())
        found = {k.lower(): v for k, v in headers}
        return Reply(int(status[0].split()[0]), found.get("content-type", ""),
                     content.decode("utf-8", "replace"), url, content, found.get("location", ""))

    def close(self) -> None:
        pass


class DirectWsgiTransport(Transport):
    """Calls a WSGI app in-process, no HTTP client in between."""

    catch_app_errors = True

    def __init__(self, app: Any) -> None:
        self.app = app

    def _client(self) -> Any:  # pragma: no cover - connect() is overridden
        raise NotImplementedError

    def connect(self, auth_token: str | None = None) -> Connection:
        return DirectConnection(self.app, auth_token)
