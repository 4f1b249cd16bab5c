"""Run the app under granian, a Rust HTTP server made for untrusted clients (never Flask's
development server): its worker processes parse HTTP in Rust on an event loop, each request
passes RequestGuard (ivr/web/guard.py: limits and the body deadline, no thread held), then the
Flask app runs on a pool of threads. The measurement behind the choice is in bench/README.md
("The server")."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from ivr.settings import Settings

log = logging.getLogger("ivr.web.serve")

#: The request line and headers must be in within this many seconds of the connection (granian
#: closes it otherwise), and then the body within as many again (RequestGuard answers 408).
HEADER_READ_SECONDS = 5.0
BODY_READ_SECONDS = 5.0
#: granian's HTTP/1 read buffer, which bounds the request line and headers together (431
#: beyond it; its least allowed value is 8 KiB): a Twilio webhook's headers are under 2 KiB.
MAX_HEADER_BYTES = 16 * 1024
#: threads per worker that run webhooks (a password check is one HMAC, a few µs). No thread
#: ever waits on a client: slow requests wait on the event loop, bounded by the deadlines.
DEFAULT_THREADS = 8
#: what a worker's access log line says: no body, no header (a signature is no one's business)
ACCESS_FORMAT = '%(addr)s - [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1f'
LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


class _QueryInPath(logging.Filter):
    """granian logs the path and the query apart: one request target, as nginx writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict) and args.get("query_string"):
            record.args = {**args, "path": f"{args['path']}?{args['query_string']}"}
        return True


def logging_config(level: str) -> dict[str, Any]:
    """granian's own lines, and the app's, on stderr with the pid; access lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"generic": {"format": LOG_FORMAT},
                       "access": {"format": "%(message)s"}},
        "filters": {"query": {"()": _QueryInPath}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "generic",
                       "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access",
                       "filters": ["query"], "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


def guarded(wsgi_app: Any, threads: int) -> Any:
    """`wsgi_app` as the ASGI app granian serves: RequestGuard on `threads` threads."""
    from ivr.web import MAX_BODY_BYTES
    from ivr.web.guard import RequestGuard

    return RequestGuard(wsgi_app, threads=threads, max_body=MAX_BODY_BYTES,
                        body_seconds=BODY_READ_SECONDS)


def _load_app(settings: Settings, threads: int) -> Any:
    """In each worker process: the app (and its Machine), built once on the parsed settings
    (a forked worker inherits them, no environment in between)."""
    from ivr.web import create_app

    log.info("Booting worker with pid: %d", os.getpid())
    return guarded(create_app(settings), threads)


def serve(settings: Settings, host: str, port: int, workers: int | None,
          threads: int = DEFAULT_THREADS, access_log: bool = True) -> None:
    """Serve the hotline until interrupted; `workers` defaults to the CPU count."""
    run(partial(_load_app, settings, max(threads, 1)), host, port, workers,
        access_log=access_log, log_level=settings.log_level)


def run(load: Callable[[], Any], host: str, port: int, workers: int | None, *,
        access_log: bool = True, log_level: str = "INFO") -> None:
    """Serve the ASGI app `load()` builds in each worker (guarded() around a WSGI app) until
    interrupted. SIGINT/SIGTERM: workers finish what they answer, then stop; SIGHUP: the
    workers are replaced by new ones (a graceful restart)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    server = Server(
        "ivr12333",  # a name for granian's messages: the app is what `load` returns
        address=host,
        port=port,
        interface=Interfaces.ASGINL,
        workers=workers or os.cpu_count() or 1,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(HEADER_READ_SECONDS * 1000),
            # one request per connection: each webhook goes to whichever worker accepts it
            # first, and no idle connection is kept open for anyone
            keep_alive=False,
            max_buffer_size=MAX_HEADER_BYTES,
        ),
        log_level=log_level.lower(),  # type: ignore[arg-type]
        log_dictconfig=logging_config(log_level.upper()),
        log_access=access_log,
        log_access_format=ACCESS_FORMAT,
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )
    server.serve(target_loader=load, wrap_loader=False)
