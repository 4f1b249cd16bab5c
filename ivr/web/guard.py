"""The gate between the network and the Flask app under `serve`: an ASGI app that takes a
request whole, within its limits and its deadline, before a thread runs the webhook.

granian (a Rust HTTP server) parses the request line and headers, with its own read deadline
and size bound (ivr/web/serve.py). What reaches `RequestGuard` is a request whose headers are
in: it refuses too many headers (431), a declared body over the cap (413, before a byte of it
is read), a body that grows past the cap (413) or that is not in by its deadline (408). Until
then the request is one coroutine on the worker's event loop, never a thread: a thousand
clients trickling their bodies cost a thousand small buffers, not the threads that answer
signed calls. Only then does the WSGI app (Flask) run, on a pool of threads, reading the body
from memory; its answer (a TwiML document of a few KiB) is sent whole.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: A Twilio webhook carries some ten headers (Host, User-Agent, Content-Type, Content-Length,
#: X-Twilio-Signature, I-Twilio-Idempotency-Token, X-Home-Region, ...), a request through
#: nginx a few more: far more than this is no Twilio request.
MAX_HEADERS = 32


class RequestGuard:
    """Refuse what is too big or too slow; run the rest, body read, through `wsgi_app` on a
    pool of `threads` threads (one hop: the whole WSGI call, its answer sent from the loop)."""

    def __init__(self, wsgi_app: WSGIApp, *, threads: int, max_body: int, body_seconds: float,
                 max_headers: int = MAX_HEADERS) -> None:
        self.wsgi_app = wsgi_app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        self.max_body = max_body
        self.body_seconds = body_seconds
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if len(headers) > self.max_headers:
            await _answer(send, 431, "too many headers")
            return
        declared = [value for name, value in headers if name == b"content-length"]
        if len(declared) > 1 or (declared and not declared[0].strip().isdigit()):
            await _answer(send, 400, "bad Content-Length")
            return
        if declared and int(declared[0]) > self.max_body:
            await _answer(send, 413, "request body too large")  # before any of it is read
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_seconds):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_body:
                        await _answer(send, 413, "request body too large")
                        return
                    more = bool(message.get("more_body", False))
        except TimeoutError:
            await _answer(send, 408, "request body not received in time")
            return
        loop = asyncio.get_running_loop()
        status, response_headers, content = await loop.run_in_executor(
            self.pool, self._call, environ(scope, bytes(body)))
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})

    def _call(self, env: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The WSGI call, in a pool thread: its status, headers and whole body."""
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [(status, headers)]
            return _no_write

        result = self.wsgi_app(env, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[0]
        return (int(status.split(" ", 1)[0]),
                [(name.lower().encode("latin-1"), value.encode("latin-1"))
                 for name, value in headers], content)


def _no_write(_data: bytes) -> None:
    raise RuntimeError("the WSGI write() callable is not supported: return the body")


def environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope whose body has been read."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    env: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH":
            continue  # the body read is what counts
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        env[key] = f"{env[key]},{value}" if key in env else value
    return env


async def _answer(send: Send, status: int, reason: str) -> None:
    text = reason.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close"),
                            (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text, "more_body": False})
