"""One call's client: builds its webhook requests and keeps its cookies, above any transport.

What httpx.Client is above an httpx transport, for one call: a new one for every call, so a
call's cookies are never seen by another, while the transport below is shared.
"""

from __future__ import annotations

import base64
import email.message
import functools
import http.cookiejar
import urllib.request
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import httpx

from simulator.transport import Transport, WebhookRequest, WebhookResponse


class _ResponseCookies:
    """A response as http.cookiejar reads it: its headers behind `info()`."""

    def __init__(self, response: WebhookResponse) -> None:
        self._headers = email.message.Message()
        for name, value in response.headers:
            self._headers[name] = value  # adds: repeated Set-Cookie headers all stay

    def info(self) -> email.message.Message:
        return self._headers


class WebhookClient:
    """One call's line to the application: requests as Twilio sends them, the call's cookies.

    POST sends the parameters form-encoded, GET in the query string. URLs are normalised as
    httpx normalises them (what is signed is what is requested); credentials in the URL become
    HTTP Basic authentication, as Twilio does. Redirects (3xx) are answers, never followed.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._cookies = http.cookiejar.CookieJar()

    def request(self, method: str, url: str, params: Mapping[str, str]) -> WebhookResponse:
        """Send one webhook request; ConnectionFailed when the application cannot be reached."""
        if method.upper() == "GET":
            request = WebhookRequest("GET", str(httpx.URL(url).copy_merge_params(dict(params))))
        else:
            request = WebhookRequest("POST", _normalised(url), dict(params))
        headers = {}
        authorization = _basic_auth(request.url)
        if authorization:
            headers["Authorization"] = authorization
        cookie = self._cookie_header(request.url)
        if cookie:
            headers["Cookie"] = cookie
        if headers:
            request = WebhookRequest(request.method, request.url, request.form, headers)
        response = self.transport.handle(request)
        self._keep_cookies(request.url, response)
        return response

    def cookies(self) -> dict[str, str]:
        """The call's cookies, by name."""
        return {cookie.name: cookie.value or "" for cookie in self._cookies}

    def close(self) -> None:
        """Forget the call's cookies; the transport, shared with other calls, stays open."""
        self._cookies.clear()

    def _cookie_header(self, url: str) -> str | None:
        if not len(self._cookies):
            return None
        probe = _cookie_request(url)
        self._cookies.add_cookie_header(probe)
        return probe.get_header("Cookie")

    def _keep_cookies(self, url: str, response: WebhookResponse) -> None:
        if any(name.lower() == "set-cookie" for name, _ in response.headers):
            self._cookies.extract_cookies(
                _ResponseCookies(response),  # type: ignore[arg-type]
                _cookie_request(url),
            )


@functools.lru_cache(maxsize=256)
def _normalised(url: str) -> str:
    """`url` as httpx normalises it; a call requests a handful of URLs again and again."""
    return str(httpx.URL(url))


def _cookie_request(url: str) -> urllib.request.Request:
    """The request as http.cookiejar reads it; credentials in the URL are no part of its host."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return urllib.request.Request(url)


def _basic_auth(url: str) -> str | None:
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return None
    username, _, password = netloc.rpartition("@")[0].partition(":")
    token = f"{unquote(username)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")
