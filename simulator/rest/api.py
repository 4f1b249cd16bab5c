"""The simulated REST API as a WSGI app: Twilio's checks (account SID in the path, HTTP Basic
auth with the account's SID and auth token or an API key's SID and secret), routing, and the
answers for what is not simulated.

Every request is logged in the world of the run (`World.rest_requests`), so a scenario can
expect the requests an application made. The resources themselves are in
`simulator.rest.resources`.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from simulator.rest import shapes
from simulator.world import World

ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
KEY_SID = re.compile(r"^SK[0-9a-f]{32}$")
PREFIX = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)(?P<rest>/.*)?$")
#: resources of Twilio's 2010 API that exist but are not simulated: named as such, never faked
NOT_SIMULATED = ("Messages", "Recordings", "Transcriptions", "IncomingPhoneNumbers",
                 "OutgoingCallerIds", "Applications", "Notifications", "Sip", "Usage",
                 "AvailablePhoneNumbers", "Addresses", "Keys", "SigningKeys", "Tokens",
                 "Balance", "ConnectApps", "AuthorizedConnectApps", "ShortCodes", "SMS",
                 "Feedback", "Events", "Payments", "Siprec", "Streams",
                 "UserDefinedMessageSubscriptions", "UserDefinedMessages")
DOCS = "docs/simulator.md#15-the-rest-api"


class RestError(Exception):
    """An answer in Twilio's error shape."""

    def __init__(self, status: int, code: int, message: str, more_info: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info

    def body(self) -> dict[str, Any]:
        return shapes.error(self.status, self.code, self.message, self.more_info)


def not_found(path: str) -> RestError:
    """Twilio's answer for a resource that does not exist (20404)."""
    return RestError(404, 20404, f"The requested resource {path} was not found")


def not_simulated(what: str) -> RestError:
    """A resource or operation of Twilio's the simulator does not play: said, never faked."""
    return RestError(501, 20403, f"{what} is not simulated by the ivr12333 simulator "
                     f"(see {DOCS})", DOCS)


def missing(name: str, code: int = 20001) -> RestError:
    return RestError(400, code, f"Missing required parameter {name} in the post body")


@dataclass(frozen=True)
class RestRequest:
    """One request an application made to the REST API, as a scenario can expect it."""

    at: float  # clock seconds
    method: str
    path: str  # below /2010-04-01/Accounts/{AccountSid}, e.g. /Calls.json
    params: Mapping[str, str]  # the form (POST) or the query (GET)
    status: int  # the HTTP status answered
    resource: str = ""  # e.g. Calls, Queues/Members, Conferences/Participants


@dataclass
class Request:
    """What a handler gets: the method, the path below the account, the parameters."""

    method: str
    path: str
    full_path: str
    params: dict[str, str]
    query: dict[str, str]
    world: World
    api: RestApi
    groups: dict[str, str] = field(default_factory=dict)

    def require(self, name: str, code: int = 20001) -> str:
        value = self.params.get(name, "")
        if not value:
            raise missing(name, code)
        return value


Handler = Callable[[Request], tuple[int, dict[str, Any]]]


class RestApi:
    """Twilio's voice REST API for one account, over the world of the run going on.

    `auth_token` authenticates the account SID; `api_keys` maps API key SIDs (SK…) to their
    secrets. Attach a run's world with `attach` (the scenario runner does); outside a run the
    API answers 503 for anything but its own checks.
    """

    def __init__(self, account_sid: str, auth_token: str,
                 api_keys: Mapping[str, str] | None = None) -> None:
        if not ACCOUNT_SID.match(account_sid):
            raise ValueError(f"an account SID is AC and 32 lower-case hex digits, not "
                             f"{account_sid!r}")
        if not auth_token:
            raise ValueError("the REST API needs an auth token")
        for key in api_keys or {}:
            if not KEY_SID.match(key):
                raise ValueError(f"an API key SID is SK and 32 hex digits, not {key!r}")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys = dict(api_keys or {})
        self.world: World | None = None
        self.lock = threading.RLock()
        from simulator.rest.resources import ROUTES  # the handlers use this module's errors

        self.routes: list[tuple[re.Pattern[str], dict[str, Handler], str]] = ROUTES

    @contextmanager
    def attach(self, world: World) -> Iterator[World]:
        """Serve `world` (its calls, queues, conferences) for the duration of a run."""
        with self.lock:
            previous, self.world = self.world, world
        try:
            yield world
        finally:
            with self.lock:
                self.world = previous

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = _form(environ.get("QUERY_STRING", ""))
        params = dict(query)
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            params = _form(body.decode("utf-8", "replace"))
        status, payload, resource = self.handle(method, path, query, params,
                                                environ.get("HTTP_AUTHORIZATION", ""))
        data = json.dumps(payload).encode("utf-8")
        headers = [("Content-Type", "application/json; charset=utf-8"),
                   ("Content-Length", str(len(data)))]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="Twilio API"'))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [data]

    def handle(self, method: str, path: str, query: dict[str, str], params: dict[str, str],
               authorization: str) -> tuple[int, dict[str, Any], str]:
        """One request: (HTTP status, JSON body, the resource it concerned)."""
        with self.lock:
            world = self.world
            below, resource = path, ""
            try:
                found = PREFIX.match(path)
                self._authenticate(authorization)
                if found is None or found.group("account") != self.account_sid:
                    if found is not None:
                        raise RestError(403, 20003, "Authenticate: the account SID in the "
                                        "path is not the account of these credentials")
                    raise not_found(path)
                below = found.group("rest") or "/"
                if world is None:
                    raise RestError(503, 20503, "no simulated run is going on: the REST API "
                                    "serves the calls of a run (a scenario) while it runs")
                handler, groups, resource = self._route(method, below, path)
                request = Request(method, below, path, params, query, world, self, groups)
                status, payload = handler(request)
            except RestError as exc:
                status, payload = exc.status, exc.body()
            if world is not None:
                world.rest_requests.append(RestRequest(
                    world.clock.now, method, below, dict(params), status, resource))
            return status, payload, resource

    def _authenticate(self, authorization: str) -> None:
        import base64
        import binascii

        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise RestError(401, 20003, "Authenticate")
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise RestError(401, 20003, "Authenticate") from None
        expected = (self.auth_token if user == self.account_sid
                    else self.api_keys.get(user))
        if expected is None or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise RestError(401, 20003, "Authenticate")

    def _route(self, method: str, below: str, path: str) -> tuple[Handler, dict[str, str], str]:
        for pattern, handlers, resource in self.routes:
            found = pattern.match(below)
            if found is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                raise not_simulated(f"{method} {resource}")
            return handler, found.groupdict(), resource
        top = below.strip("/").split("/", 1)[0].removesuffix(".json")
        if top in NOT_SIMULATED:
            raise not_simulated(f"The {top} resource")
        raise not_found(path)


def _form(encoded: str) -> dict[str, str]:
    """Form or query parameters; a repeated one (StatusCallbackEvent=a&StatusCallbackEvent=b,
    as the twilio library sends a list) as its values joined by spaces."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        params[name] = f"{params[name]} {value}" if name in params else value
    return params


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 501: "Not Implemented",
            503: "Service Unavailable"}
