"""Requests and callbacks: a call's webhooks as Twilio makes them (parameters, HTTP redirects,
the 15 s limit, the fallback URL), the callbacks whose answers are not played, the status
callback."""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import format_datetime
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.core import CallCore
from simulator.call.state import Request
from simulator.errors import ApplicationError, ConnectionFailed
from simulator.geo import geo_params
from simulator.transport import WEBHOOK_TIMEOUT_SECONDS, WebhookResponse
from simulator.twiml import excerpt, parse_document

API_VERSION = "2010-04-01"
MAX_REQUESTS_WITHOUT_INPUT = 200  # more than this between two caller actions is a redirect loop
MAX_HTTP_REDIRECTS = 10  # 3xx answers followed in a row before Twilio gives up (11215)
FOLLOWED_REDIRECTS = (301, 302, 303, 307)


class Webhooks(CallCore):
    """Every request a call makes goes through here."""

    def _base_params(self, call_sid: str, from_: str, to: str, direction: str) -> dict[str, str]:
        params = {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Caller": from_,
            "Called": to,
            "CallStatus": "in-progress",
            "Direction": direction,
            "ApiVersion": API_VERSION,
        }
        params.update(self._geo if (from_, to) == (self.from_, self.to) else geo_params(from_, to))
        return params

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = self._base_params(self.call_sid, self.from_, self.to, self.direction)
        params["CallStatus"] = self.status
        params.update(extra)
        return params

    def _request(self, method: str, url: str, params: dict[str, str]) -> WebhookResponse:
        """One webhook request as Twilio makes it: 301/302/303/307 followed (303, and 301/302
        after a POST, as GET without the parameters; 307 as it was), 15 s at most."""
        for _hop in range(MAX_HTTP_REDIRECTS + 1):
            before = self.clock.now
            reply = self._client.request(method, url, params)
            if self.clock.now - before > WEBHOOK_TIMEOUT_SECONDS:
                raise ApplicationError(
                    f"{method} {url} took {self.clock.now - before:g} s (virtual); Twilio gives "
                    f"up after {WEBHOOK_TIMEOUT_SECONDS:g} s", "11205")
            if reply.status not in FOLLOWED_REDIRECTS or not reply.location:
                return reply
            target = urljoin(url, reply.location)
            if reply.status != 307 and method == "POST":
                method, params = "GET", {}
            elif reply.status == 303:
                method, params = "GET", {}
            self._event(kind.HTTP_REDIRECT, f"{reply.status} -> {method} {target}")
            url = target
        raise ApplicationError(f"more than {MAX_HTTP_REDIRECTS} HTTP redirects in a row, the "
                               f"last to {url}", "11215")

    def _record_request(self, event_kind: str, method: str, url: str, params: dict[str, str],
                        what: str = "") -> None:
        self._event(event_kind, f"{what}: {method} {url}" if what else f"{method} {url}", params)
        self.requests.append(Request(self.clock.now, method, url, dict(params), what))

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> bool:
        """Request the next document; on any failure (after the fallback URL, if any) the call
        ends with an application error."""
        if self._requests_since_input >= MAX_REQUESTS_WITHOUT_INPUT:
            self._fail(
                f"redirect loop: {MAX_REQUESTS_WITHOUT_INPUT} requests without any caller input "
                f"(next would be {method} {url})"
            )
            return False
        self._requests_since_input += 1
        params = self._params(extra)
        self._record_request(kind.REQUEST, method, url, params)
        if self.status == "ringing":
            self.status = "in-progress"
        try:
            verbs = self._document(method, url, params)
        except ApplicationError as exc:
            if self.fallback_url and url != self.fallback_url:
                self._warn(f"{exc}; Twilio requests the fallback URL")
                fallback = {**params, "ErrorCode": exc.code, "ErrorUrl": url}
                self._record_request(kind.REQUEST, self.fallback_method, self.fallback_url,
                                     fallback, "fallback")
                try:
                    verbs = self._document(self.fallback_method, self.fallback_url, fallback)
                except ApplicationError as again:
                    self._fail(f"{exc}; the fallback URL too: {again}")
                    return False
            else:
                self._fail(str(exc))
                return False
        self._document_url = url
        self._verbs = verbs
        self._next = 0
        return True

    def _document(self, method: str, url: str, params: dict[str, str]) -> list[Element]:
        try:
            reply = self._request(method, url, params)
        except ConnectionFailed as exc:
            raise ApplicationError(f"{method} {url} failed: {exc}", "11205") from exc
        self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or '(no content type)'}")
        return parse_document(reply)

    def _side_document(self, url: str, method: str, params: Mapping[str, str]) -> list[Element]:
        """A document requested for another leg (a whisper): its verbs, or ApplicationError."""
        self._record_request(kind.REQUEST, method, url, dict(params), "whisper")
        try:
            reply = self._request(method, url, dict(params))
        except ConnectionFailed as exc:
            raise ApplicationError(f"{method} {url} failed: {exc}", "11205") from exc
        self._event(kind.RESPONSE, f"{reply.status} {reply.content_type or '(no content type)'}")
        return parse_document(reply)

    def _post(self, what: str, url: str, method: str, extra: Mapping[str, str],
              standard: bool = True) -> None:
        """A request whose answer is not played (callbacks): failures are warnings."""
        params = self._params(extra) if standard else {
            "AccountSid": self.account_sid, "CallSid": self.call_sid, **extra}
        self._post_exactly(what, url, method, params)

    def _post_exactly(self, what: str, url: str, method: str, params: dict[str, str]) -> None:
        """A callback with these parameters and no others (a conference's status callback)."""
        self._record_request(kind.CALLBACK, method, url, params, what)
        try:
            reply = self._request(method, url, params)
        except (ConnectionFailed, ApplicationError) as exc:
            self._warn(f"{what} failed: {exc}")
            return
        if not 200 <= reply.status < 300:
            self._warn(f"{what} answered HTTP {reply.status}: {excerpt(reply.text)}")

    def _post_status_callback(self) -> None:
        if not self.status_callback:
            return
        params = self._params({"CallDuration": str(math.ceil(self.duration)),
                               "Timestamp": format_datetime(self.clock.moment),
                               "CallbackSource": "call-progress-events",
                               "SequenceNumber": "0"})
        self._record_request(kind.STATUS_CALLBACK, "POST", self.status_callback, params)
        try:
            reply = self._request("POST", self.status_callback, params)
        except (ConnectionFailed, ApplicationError) as exc:
            self._warn(f"status callback failed: {exc}")
            return
        if not 200 <= reply.status < 300:
            self._warn(f"status callback answered HTTP {reply.status}: {excerpt(reply.text)}")
