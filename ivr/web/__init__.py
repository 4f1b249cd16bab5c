"""The Flask application factory: Twilio voice webhooks over the hotline engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, request

from ivr.domain.pinkeys import Keyring
from ivr.engine.hotline import Hotline
from ivr.settings import Settings
from ivr.store.schema import ensure_schema
from ivr.web import twiml
from ivr.web.ops import bp as ops_bp
from ivr.web.voice import bp

log = logging.getLogger("ivr.web")

#: A Twilio webhook is a form of a few hundred bytes; anything far bigger is refused (413)
#: before it is read, parsed or hashed for its signature.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings, *, now: Callable[[], datetime] | None = None,
               keyring: Keyring | None = None) -> Flask:
    """Build the app on `settings`; `now` replaces the wall clock (tests, scripted calls);
    `keyring`, the PIN keys the settings name. Raises PinKeyError without a usable keyring."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY_BYTES
    bridge = None
    if settings.account_sid:
        from ivr.web.rest import TwilioBridge

        bridge = TwilioBridge(settings, lambda: settings.public_url
                              or request.host_url.rstrip("/"))
    engine = Hotline(settings, now=now, keyring=keyring, bridge=bridge)
    try:
        ensure_schema(engine.db)
    except Exception as exc:  # keep serving: every call will hear the apology
        log.error("database unavailable at start-up: %s", exc)
    if not settings.auth_token:
        log.warning("no auth token: webhook signature validation is OFF. Anyone who can "
                    "reach this server can drive calls (ivr12333 serve --insecure).")
    if bridge is None:
        log.warning("no Twilio account (IVR_ACCOUNT_SID): agents cannot take callers from "
                    "the queue (the REST API moves each caller to the agent described)")
    app.extensions["ivr12333"] = engine
    app.register_blueprint(bp)
    app.register_blueprint(ops_bp)

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
