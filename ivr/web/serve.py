"""Run the app under gunicorn (never Flask's development server)."""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication

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


def serve(settings: Settings, host: str, port: int, workers: int | None, threads: int = 1,
          access_log: str | None = "-") -> None:
    """Serve until interrupted; `workers` defaults to the CPU count."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers or os.cpu_count() or 1,
        "threads": threads,
        "accesslog": access_log,
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 5,
        "keepalive": 5,
    }
    HotlineServer(options, settings).run()
