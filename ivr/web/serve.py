"""Run the app under gunicorn (never Flask's development server)."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from ivr.settings import Settings


class HotlineServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with our options; each worker builds its own app (and Machine) once, on the
    settings the command parsed (a forked worker inherits them, no environment in between)."""

    def __init__(self, options: dict[str, Any], settings: Settings) -> None:
        self.options = options
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn >= 25.1 opens a control socket (for gunicornc) at one path per user,
        # $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl: a second server would
        # delete the first one's and take it over. The hotline has no use for it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        from ivr.web import create_app

        logging.basicConfig(
            level=self.settings.log_level,
            format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        )
        return create_app(self.settings)


#: A request (line, headers and body) must arrive whole within this many seconds of its first
#: byte, and no read may wait longer than READ_IDLE_SECONDS: a client that trickles its request
#: loses its connection instead of keeping a thread.
REQUEST_READ_SECONDS = 5.0
READ_IDLE_SECONDS = 2.0
#: threads per worker: a thread waits on one connection's request (up to REQUEST_READ_SECONDS)
#: or runs one webhook (a password check is one HMAC, a few µs). Measured: 2 workers x 8
#: threads answer signed calls at p99 27 ms, and still with 2 slow clients; 50 slow clients
#: take every thread (bench/README.md): a server reachable by anyone stands behind nginx
#: (deploy/, docs/deploy.md).
DEFAULT_THREADS = 8


class _DeadlineSocket:
    """A client socket whose reads end (as if the client had hung up) at the request's
    deadline or after READ_IDLE_SECONDS of silence; gunicorn then closes it quietly."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def setblocking(self, flag: bool) -> None:
        if flag:
            self._sock.settimeout(READ_IDLE_SECONDS)
        else:
            self._sock.setblocking(False)
            self.deadline = None  # between two requests of a kept-alive connection

    def _wait(self) -> bool:
        if self._sock.gettimeout() == 0.0:  # non-blocking: gunicorn's own polling
            return True
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + REQUEST_READ_SECONDS
        left = self.deadline - now
        if left <= 0:
            return False
        self._sock.settimeout(min(left, READ_IDLE_SECONDS))
        return True

    def recv(self, size: int, *flags: int) -> bytes:
        if not self._wait():
            return b""
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            return b""

    def recv_into(self, buffer: Any, *args: int) -> int:
        if not self._wait():
            return 0
        try:
            return self._sock.recv_into(buffer, *args)
        except TimeoutError:
            return 0

    def sendall(self, data: Any, *flags: int) -> None:
        self._sock.settimeout(10.0)  # a client that does not read its answer is let go too
        self._sock.sendall(data, *flags)


class DeadlineThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with a read deadline on every request."""

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, _DeadlineSocket):
            conn.sock = _DeadlineSocket(conn.sock)
        conn.sock.deadline = None
        return super().handle(conn)


def serve(settings: Settings, host: str, port: int, workers: int | None,
          threads: int = DEFAULT_THREADS, access_log: str | None = "-") -> None:
    """Serve until interrupted; `workers` defaults to the CPU count."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers or os.cpu_count() or 1,
        "worker_class": "ivr.web.serve.DeadlineThreadWorker",
        "threads": max(threads, 1),
        "accesslog": access_log,
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 5,
        # one request per connection, as under the sync workers before: each webhook goes to
        # whichever worker accepts it first (a kept-alive client would stay on one worker),
        # and no idle connection is kept open for anyone
        "keepalive": 0,
    }
    HotlineServer(options, settings).run()
