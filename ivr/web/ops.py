"""The operators' pages, off the Twilio-facing paths: GET /ops/wallboard (HTML, refreshing
itself every 5 s) and /ops/wallboard.json. HTTP Basic with the operator token (any user
name); no token set, they answer 404. A Twilio signature opens nothing here."""

from __future__ import annotations

import hmac
import html
import json
import logging

from flask import Blueprint, Response, abort, current_app, request

from ivr.engine.hotline import Hotline
from ivr.engine.wallboard import Board, board, has_region

log = logging.getLogger("ivr.web")

bp = Blueprint("ops", __name__, url_prefix="/ops")

REFRESH_SECONDS = 5


def _hotline() -> Hotline:
    hotline: Hotline = current_app.extensions["ivr12333"]
    return hotline


@bp.before_request
def operator_only() -> Response | None:
    token = _hotline().settings.operator_token
    if not token:
        abort(404)
    auth = request.authorization
    given = (auth.password or "") if auth is not None and auth.type == "basic" else ""
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        if auth is not None:
            log.warning("refused an operator page: wrong credentials")
        return Response("operator credentials needed\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Basic realm="ivr12333 operators"'})
    return None


def _region() -> str | None:
    """`?region=CODE`: one region's board (404 for a region the line does not have)."""
    code = request.args.get("region") or None
    if code is not None:
        if not has_region(_hotline().db, code):
            abort(404, "no such region")
    return code


def _board() -> Board:
    hotline = _hotline()
    return board(hotline.db, hotline.now(), region=_region())


_NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/wallboard.json")
def wallboard_json() -> Response:
    return Response(json.dumps(_board().as_dict()), mimetype="application/json",
                    headers=_NO_STORE)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


@bp.get("/wallboard")
def wallboard() -> Response:
    b = _board()
    tiles = (("in the menus", str(b.in_menus), "in_menus"),
             ("in the queue", str(b.in_queue), "in_queue"),
             ("longest wait now", _secs(b.longest_wait_now), "longest_wait_now"),
             ("agents logged in", str(b.agents_logged_in), "agents_logged_in"),
             ("agents on a call", str(b.agents_on_call), "agents_on_call"),
             ("agents free", str(b.agents_free), "agents_free"),
             ("answered today", str(b.today.answered), "answered_today"),
             ("abandoned today", str(b.today.abandoned), "abandoned_today"),
             ("service level today", _pct(b.today.service_level), "service_level_today"),
             ("ASA today", _secs(b.today.asa), "asa_today"))
    cells = "".join(f"<div class='tile' id='{key}'><span class='value'>{html.escape(value)}"
                    f"</span><span class='name'>{html.escape(name)}</span></div>"
                    for name, value, key in tiles)
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
            "<title>ivr12333 wallboard</title><style>body{font-family:sans-serif;margin:1em}"
            ".tile{display:inline-block;width:12em;margin:.4em;padding:.8em;border:1px solid #999}"
            ".value{display:block;font-size:2.4em}.name{color:#555}</style></head><body>"
            f"<h1>ivr12333 wallboard</h1><p id='at'>{html.escape(b.at.isoformat('T', 'seconds'))}"
            " (today since midnight in the region's time zone; service level: answered within "
            "20 s, Genesys' treatment, docs/reports.md)</p>"
            f"{cells}</body></html>")
    return Response(page, mimetype="text/html", headers=_NO_STORE)
