"""`ivr12333 phone`: the web phone's local server (loopback only, a secret token in the URL).

The page only shows and plays; every caller action is a POST that the line (webphone.py)
turns into a simulator action, and all audio is rendered here. Standard library HTTP only:
one person's page on this machine, never a public server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mimetypes
import re
import secrets
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.tools.webphone import WebLine

STATIC = ("index.html", "phone.js", "phone.css")
MAX_BODY = 4096
MAX_PLAY_BYTES = 20 * 1024 * 1024  # a <Play> file fetched for the page
_AUDIO = re.compile(r"[0-9a-f]{32}\.(wav|mp3|ogg|bin)")
#: the page's own files only; audio from this server; nothing from anywhere else
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e6:
        return float(value)
    return None


def static_file(name: str) -> bytes:
    return (resources.files("ivr.tools") / "phone" / name).read_bytes()


class PlayFetcher:
    """A <Play> URL this machine can reach, fetched once into the audio folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._got: dict[str, str | None] = {}

    def __call__(self, url: str) -> str | None:
        if url not in self._got:
            self._got[url] = self._fetch(url)
        return self._got[url]

    def _fetch(self, url: str) -> str | None:
        import httpx

        if urlsplit(url).scheme not in ("http", "https"):
            return None
        try:
            with httpx.stream("GET", url, timeout=3.0, follow_redirects=True) as reply:
                kind = reply.headers.get("content-type", "").split(";")[0].strip()
                if reply.status_code != 200 or not kind.startswith("audio/"):
                    return None
                data = b""
                for chunk in reply.iter_bytes():
                    data += chunk
                    if len(data) > MAX_PLAY_BYTES:
                        return None
        except (httpx.HTTPError, OSError):
            return None
        ext = {"audio/mpeg": "mp3", "audio/ogg": "ogg"}.get(kind, "wav" if "wav" in kind
                                                            else "bin")
        name = f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.{ext}"
        (self.folder / name).write_bytes(data)
        (self.folder / name).chmod(0o600)
        return name


class PhoneServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, line: WebLine, audio: Path, hello: dict[str, Any],
                 graph: Callable[[dict[str, Any]], str | None] | None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = secrets.token_urlsafe(24)
        self.line, self.audio, self.hello, self.graph = line, audio, hello, graph

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.token}/"


class _Handler(BaseHTTPRequestHandler):
    server: PhoneServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # requests carry the token: never logged

    def _route(self) -> str | None:
        """The path after the token, or None (and a 403/404 sent) when it does not belong."""
        host = self.headers.get("Host", "")
        port = self.server.server_address[1]
        if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            self._send(403, b"wrong host", "text/plain")  # DNS rebinding
            return None
        token, _, rest = urlsplit(self.path).path.lstrip("/").partition("/")
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._send(404, b"not found", "text/plain")
            return None
        return rest.rstrip("/")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        rest = self._route()
        if rest is None:
            return
        if rest in ("", "index.html"):
            self._send(200, static_file("index.html"), "text/html; charset=utf-8")
        elif rest.startswith("static/") and rest[7:] in STATIC:
            kind = mimetypes.guess_type(rest)[0] or "application/octet-stream"
            self._send(200, static_file(rest[7:]), kind + "; charset=utf-8")
        elif rest == "api/hello":
            self._json(200, self.server.hello)
        elif rest.startswith("audio/") and _AUDIO.fullmatch(rest[6:]):
            path = self.server.audio / rest[6:]
            if path.is_file():
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self._send(200, path.read_bytes(), kind, cache=True)
            else:
                self._send(404, b"no such audio", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        rest = self._route()
        if rest is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY or self.headers.get("Content-Type") != "application/json":
            self._send(400, b"a small JSON body, please", "text/plain")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("a JSON object, please")
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        line = self.server.line
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "api/call": line.dial,
            "api/key": lambda: line.press(str(body.get("key", "")),
                                          str(body.get("phase", "listening")),
                                          _seconds(body.get("at"))),
            "api/timeout": line.timeout,
            "api/hangup": line.hangup,
        }
        if rest not in actions:
            self._send(404, b"not found", "text/plain")
            return
        from simulator import SimulatorError

        with line.lock:
            try:
                answer = actions[rest]()
            except (SimulatorError, ValueError) as exc:
                self._json(409, {"error": str(exc)})
                return
            if self.server.graph is not None:
                answer["svg"] = self.server.graph(answer)
        self._json(200, answer)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode("utf-8"),
                   "application/json")

    def _send(self, status: int, body: bytes, kind: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)
