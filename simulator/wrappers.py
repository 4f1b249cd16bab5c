"""Transports around a transport: signing (`Signed`) and timing (`Timed`) for any of them."""

from __future__ import annotations

import time
from collections.abc import Callable

from twilio.request_validator import RequestValidator

from simulator.transport import SIGNATURE_HEADER, Transport, WebhookRequest, WebhookResponse


class _OneValueEach(dict[str, str]):
    """Form values as RequestValidator reads them: without `getall`, it probes for it and for
    `getlist` on a plain dict, two exceptions per field."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


class Signed(Transport):
    """Every request through `inner` carries the X-Twilio-Signature Twilio would compute.

    The signature is the twilio library's, over the full URL (query string included) and, for
    a POST, its form parameters. Closing a wrapper closes the transport it wraps.
    """

    def __init__(self, inner: Transport, auth_token: str) -> None:
        self.inner = inner
        self._validator = RequestValidator(auth_token)

    def signature(self, request: WebhookRequest) -> str:
        """The X-Twilio-Signature of `request`."""
        signature: str = self._validator.compute_signature(request.url, _OneValueEach(request.form))
        return signature

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        return self.inner.handle(request.with_header(SIGNATURE_HEADER, self.signature(request)))

    def close(self) -> None:
        self.inner.close()


class Timed(Transport):
    """`record(request, seconds)` after every request through `inner`, failed ones too."""

    def __init__(
        self, inner: Transport, record: Callable[[WebhookRequest, float], None]
    ) -> None:
        self.inner = inner
        self.record = record

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        started = time.perf_counter()
        try:
            return self.inner.handle(request)
        finally:
            self.record(request, time.perf_counter() - started)

    def close(self) -> None:
        self.inner.close()
