"""The direct transport: a WSGI app called in-process with a hand-built environ.

No HTTP client at all: httpx's client and request machinery cost more CPU than a whole hotline
webhook, so in-process runs (scripted calls, the in-process load) take this path. The environ
is what a WSGI server builds for the same request (PEP 3333), the path decoded as latin-1.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from simulator.transport import Transport, WebhookRequest, WebhookResponse, crash_response

DEFAULT_PORTS = {"http": "80", "https": "443"}


def wsgi_environ(request: WebhookRequest, remote_addr: str = "127.0.0.1") -> dict[str, Any]:
    """The WSGI environ a server would pass the app for `request`."""
    parts = urlsplit(request.url)
    body = request.body
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(parts.path or "/").decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "",
        "SERVER_PORT": str(parts.port) if parts.port else DEFAULT_PORTS.get(parts.scheme, "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "HTTP_HOST": parts.netloc.rpartition("@")[2],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if request.method != "GET":
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in request.header_items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


class DirectTransport(Transport):
    """A WSGI app in-process, called directly; an exception inside the app answers 500."""

    def __init__(self, app: Any, remote_addr: str = "127.0.0.1") -> None:
        self.app = app
        self.remote_addr = remote_addr

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        status: list[str] = []
        headers: list[tuple[str, str]] = []
        written: list[bytes] = []

        def start_response(
            line: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            # PEP 3333: with exc_info, new headers replace those given before (nothing has been
            # sent yet: the whole response is buffered)
            status[:] = [line]
            headers[:] = response_headers
            return written.append

        try:
            result: Iterable[bytes] = self.app(wsgi_environ(request, self.remote_addr),
                                               start_response)
            try:
                for chunk in result:  # after what a legacy write() sent, in order
                    written.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if not status:
                raise RuntimeError("the WSGI app never called start_response")
        except Exception as exc:  # the app crashed: a server would answer 500
            return crash_response(request.url, exc)
        return WebhookResponse(int(status[0].split(" ", 1)[0]), tuple(headers),
                               b"".join(written), request.url)
