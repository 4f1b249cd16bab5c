"""The REST API on a loopback HTTP server, and a twilio client pointed at it.

`RestServer` serves a `RestApi` on 127.0.0.1 (a free port by default) in a thread of its own.
An application points its own twilio client at it through the library's documented way to
change how requests are made: a custom `http_client` (twilio-python,
advanced-examples/custom-http-client.md). `LocalHttpClient` sends what the library addresses
to https://api.twilio.com to the local server instead, and refuses anything else — in
particular the URLs a `region`/`edge` setting (or TWILIO_REGION / TWILIO_EDGE) rewrites to
`api.<edge>.<region>.twilio.com`, which would otherwise leave the simulator for Twilio.
"""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from simulator.rest.api import RestApi

TWILIO_API = "https://api.twilio.com"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return  # no access log: the world's request log is the record


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class RestServer:
    """`api` served over HTTP on `host`:`port` (0: a free port) until `close`."""

    def __init__(self, api: RestApi, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the simulated REST API listens on the loopback only, not {host}")
        self.api = api
        self._server = make_server(host, port, api, server_class=_ThreadingServer,
                                   handler_class=_QuietHandler)
        self.base_url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="sim-rest-api")
        self._thread.start()

    def client(self, username: str | None = None, password: str | None = None) -> Any:
        """A twilio `Client` for the API's account, sending its requests here."""
        return local_client(self.base_url, username or self.api.account_sid,
                            password or self.api.auth_token, self.api.account_sid)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class LocalHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """A twilio `http_client` that sends Twilio's REST requests to a local base URL."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise ValueError(f"the local REST base URL is scheme://host:port, not {base_url!r}")
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, params: Any = None, data: Any = None,
                headers: Any = None, auth: Any = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if not url.startswith(TWILIO_API + "/"):
            host = urlsplit(url).netloc
            raise ValueError(
                f"the twilio client asked for {host}, not api.twilio.com: a region or edge "
                "setting (region=/edge= or TWILIO_REGION/TWILIO_EDGE) rewrites Twilio's host, "
                "or the product is not one the simulator serves; clear the setting to use "
                "the simulated REST API")
        local = self.base_url + url[len(TWILIO_API):]
        return super().request(method, local, params=params, data=data, headers=headers,
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects)


def local_client(base_url: str, username: str, password: str,
                 account_sid: str | None = None) -> Any:
    """A twilio `Client` whose REST requests go to the simulator at `base_url`. Region and
    edge are refused (they would rewrite the address); so are TWILIO_REGION / TWILIO_EDGE."""
    import os

    from twilio.rest import Client

    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        if os.environ.get(name):
            raise ValueError(f"{name} is set: it would rewrite the simulated REST API's address "
                             "(twilio's get_hostname); unset it to use the simulator")
    return Client(username, password, account_sid, http_client=LocalHttpClient(base_url))
