"""The Flask application factory: Twilio voice webhooks over the hotline engine."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from ivr.data.storage import ensure_schema
from ivr.engine.hotline import Engine
from ivr.settings import Settings
from ivr.web import twiml
from ivr.web.voice import bp

log = logging.getLogger("ivr.web")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings (DATABASE_URL, TWILIO_AUTH_TOKEN, NOW ...)."""
    config = dict(config or {})
    settings = Settings.from_env(**{
        attr: config[key]
        for key, attr in (("DATABASE_URL", "database_url"), ("TWILIO_AUTH_TOKEN", "auth_token"),
                          ("IVR_PUBLIC_URL", "public_url"),
                          ("VERIFY_ATTEMPTS_PER_HOUR", "verify_attempts_per_hour"))
        if key in config})
    app = Flask(__name__)
    app.config.update(config)
    app.config["TWILIO_AUTH_TOKEN"] = settings.auth_token
    app.config["IVR_PUBLIC_URL"] = (settings.public_url or "").rstrip("/") or None
    engine = Engine(settings, now=config.get("NOW"))
    try:
        ensure_schema(engine.db)
    except Exception as exc:  # keep serving: every call will hear the apology
        log.error("database unavailable at start-up: %s", exc)
    if not settings.auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: webhook signature validation is OFF. "
                    "Anyone who can reach this server can drive calls. Set it in production.")
    app.extensions["ivr12333"] = engine
    app.register_blueprint(bp)

    @app.errorhandler(404)
    def not_found(_error: Any) -> Response:
        return Response(twiml.hangup_only(), status=404, mimetype="text/xml")

    @app.errorhandler(405)
    def wrong_method(_error: Any) -> Response:
        return Response(twiml.hangup_only(), status=405, mimetype="text/xml")

    @app.errorhandler(Exception)
    def any_error(error: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):
            return Response(error.description or "", status=error.code or 500,
                            mimetype="text/plain")
        log.exception("unhandled error on a webhook")
        return Response(twiml.render(engine.apology_goodbye(), action_url="", silence_url="",
                                     dial_url="", voices=settings.voices),
                        status=200, mimetype="text/xml")

    return app
