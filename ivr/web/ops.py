"""The operators' pages, off the Twilio-facing paths: GET /ops/wallboard (HTML, refreshing
itself every 5 s) and /ops/wallboard.json. HTTP Basic with the operator token (any user
name): aggregates only; with the supervisor token, each agent's state and figures too (agents'
ids are their personal data: never shown with the operator token). Neither token set, they
answer 404. A Twilio signature opens nothing here."""

from __future__ import annotations

import hmac
import html
import json
import logging

from flask import Blueprint, Response, abort, current_app, g, request

from ivr.engine.hotline import Hotline
from ivr.engine.wallboard import Board, board, has_region

log = logging.getLogger("ivr.web")

bp = Blueprint("ops", __name__, url_prefix="/ops")

REFRESH_SECONDS = 5


def _hotline() -> Hotline:
    hotline: Hotline = current_app.extensions["ivr12333"]
    return hotline


def _matches(given: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(given.encode("utf-8"),
                                                     token.encode("utf-8"))


@bp.before_request
def operator_only() -> Response | None:
    settings = _hotline().settings
    if not settings.operator_token and not settings.supervisor_token:
        abort(404)
    auth = request.authorization
    given = (auth.password or "") if auth is not None and auth.type == "basic" else ""
    # both compared every time: how long the answer takes says nothing about which one matched
    operator = _matches(given, settings.operator_token)
    supervisor = _matches(given, settings.supervisor_token)
    g.supervisor = supervisor
    if not (operator or supervisor):
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


def _whose() -> str:
    code = _region()
    return f"region {code}" if code is not None else "every region"


def _board() -> Board:
    hotline = _hotline()
    return board(hotline.db, hotline.now(), agents=bool(g.get("supervisor")),
                 region=_region())


_NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/wallboard.json")
def wallboard_json() -> Response:
    return Response(json.dumps({**_board().as_dict(), "region": _region()}),
                    mimetype="application/json", headers=_NO_STORE)


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
    panel = _agents_panel(b)
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
            "<title>ivr12333 wallboard</title><style>body{font-family:sans-serif;margin:1em}"
            ".tile{display:inline-block;width:12em;margin:.4em;padding:.8em;border:1px solid #999}"
            ".value{display:block;font-size:2.4em}.name{color:#555}"
            "table{border-collapse:collapse;margin:.4em}td,th{border:1px solid #999;"
            "padding:.3em .6em}</style></head><body>"
            f"<h1>ivr12333 wallboard, {html.escape(_whose())}</h1>"
            f"<p id='at'>{html.escape(b.at.isoformat('T', 'seconds'))}"
            " (today since midnight in the region's time zone; service level: answered within "
            "20 s, Genesys' treatment, docs/reports.md)</p>"
            f"{cells}{panel}</body></html>")
    return Response(page, mimetype="text/html", headers=_NO_STORE)


def _agents_panel(b: Board) -> str:
    """For supervisors: one row per agent logged in now or with calls today."""
    if b.agents is None:
        return ""
    head = ("agent", "state now", "since", "answered today", "AHT today", "occupancy today")
    rows = "".join(
        f"<tr class='agent' data-agent='{html.escape(a.agent_id)}'>" + "".join(
            f"<td>{html.escape(c)}</td>" for c in (
                a.agent_id, a.state, a.since.strftime("%H:%M:%S") if a.since else "-",
                str(a.today.answered), _secs(a.today.aht), _pct(a.today.occupancy)))
        + "</tr>" for a in b.agents)
    return ("<h2>Agents (supervisors only)</h2><table id='agents'><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>")
