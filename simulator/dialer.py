"""The phone number under test: where calls go, who calls, and how each call is set up."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from simulator.call import DIAL_STATUSES, Call
from simulator.client import WebhookClient
from simulator.clock import Clock
from simulator.transport import Transport
from simulator.wrappers import Signed

DEFAULT_FROM = "+8613800000000"
DEFAULT_TO = "+8612333"


class Simulator:
    """Places simulated calls to one voice URL, like a Twilio number configured with it.

    Every call gets a client of its own (its own cookies) over the one `transport`, which the
    caller owns (and closes); with `auth_token`, every request is signed.
    """

    def __init__(
        self,
        transport: Transport,
        url: str,
        *,
        auth_token: str | None = None,
        from_: str = DEFAULT_FROM,
        to: str = DEFAULT_TO,
        status_callback: str | None = None,
        dial_status: str = "completed",
        clock: Clock | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the voice URL must be an absolute http(s) URL, not {url!r}")
        _check_dial_status(dial_status)
        self.transport = transport
        self.url = url
        self.auth_token = auth_token
        self.from_ = from_
        self.to = to
        self.status_callback = status_callback
        self.dial_status = dial_status
        #: one virtual clock for every call placed here (an in-process app may read it as its
        #: `now`); None: each call gets a clock of its own, starting at its `at` or now
        self.clock = clock

    def dial(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        dial_status: str | None = None,
        at: datetime | None = None,
    ) -> Call:
        """Place a call and play it until a <Gather> waits for the caller or the call ends.

        `at` is the moment the call starts. On a shared clock the call starts at `at` or, when
        earlier calls already ran past it, right after them (time never goes back).
        """
        if dial_status is not None:
            _check_dial_status(dial_status)
        clock = self.clock
        if clock is None:
            clock = Clock(at)
        elif at is not None and at > clock.moment:
            clock.advance((at - clock.moment).total_seconds())
        transport = self.transport
        if self.auth_token:
            transport = Signed(transport, self.auth_token)
        client = WebhookClient(transport)
        call = Call(
            client,
            self.url,
            from_=from_ or self.from_,
            to=to or self.to,
            status_callback=self.status_callback,
            dial_status=dial_status or self.dial_status,
            clock=clock,
        )
        try:
            call.start()
        except BaseException:
            client.close()
            raise
        return call


def _check_dial_status(status: str) -> None:
    if status not in DIAL_STATUSES:
        raise ValueError(f"dial status {status!r} is not one of {', '.join(DIAL_STATUSES)}")
