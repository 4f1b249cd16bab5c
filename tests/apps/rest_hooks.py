"""A TwiML app whose routes run the test's own code with a twilio client: each REST operation
is exercised from inside a webhook, as a real app makes it, while the scenario runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, request

#: route name -> hook(client, parameters) returning the TwiML body (or None: 204)
Hook = Callable[[Any, Mapping[str, str]], str | None]


def create_app(client: Any, hooks: Mapping[str, Hook]) -> Flask:
    app = Flask(__name__)
    seen: list[tuple[str, dict[str, str]]] = []
    app.config["SEEN"] = seen

    @app.route("/<name>", methods=["GET", "POST"])
    def hook(name: str) -> Response:
        params = dict(request.values)
        seen.append((name, params))
        if name not in hooks:
            return Response("<Response/>", mimetype="text/xml")
        body = hooks[name](client, params)
        if body is None:
            return Response(status=204)
        return Response(f"<Response>{body}</Response>", mimetype="text/xml")

    return app
