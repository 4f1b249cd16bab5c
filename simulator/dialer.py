"""The phone number under test: where calls go, who calls, and how each call is set up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from simulator.call import DIAL_STATUSES, Call
from simulator.client import WebhookClient
from simulator.clock import Clock
from simulator.transport import Transport
from simulator.world import World
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
        method: str = "POST",
        fallback_url: str | None = None,
        rest: Any = None,
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
        if method not in ("GET", "POST"):
            raise ValueError(f"the voice URL's method must be GET or POST, not {method!r}")
        self.method = method  # how the voice URL is requested, as set on a Twilio number
        self.fallback_url = fallback_url  # the number's voice fallback URL
        #: the simulated REST API (simulator.rest.RestApi) a scenario's apps may call; its
        #: account SID is every call's AccountSid
        self.rest: Any = rest
        self.account_sid: str | None = rest.account_sid if rest is not None else None

    def dial(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        dial_status: str | None = None,
        at: datetime | None = None,
        world: World | None = None,
        url: str | None = None,
        method: str | None = None,
        fallback_url: str | None = None,
        geo: Mapping[str, Mapping[str, str]] | None = None,
        name: str | None = None,
    ) -> Call:
        """Place a call and play it until the caller must act (a <Gather> or <Record> waits,
        the call is on hold) or the call ends.

        `at` is the moment the call starts. On a shared clock the call starts at `at` or, when
        earlier calls already ran past it, right after them (time never goes back). `world`:
        the queues and conferences this call shares with others (a scenario); `url`: another
        voice URL (relative to the simulator's); `geo`: FromCity… overrides, by side.
        """
        if dial_status is not None:
            _check_dial_status(dial_status)
        clock = world.clock if world is not None else self.clock
        if clock is None:
            clock = Clock(at)
        elif at is not None and at > clock.moment:
            clock.advance((at - clock.moment).total_seconds())
        if world is None and self.rest is not None:  # a lone call (the phones): the REST API
            world = World(clock)  # serves its world until the next run or call
            self.rest.world = world
        transport = self.transport
        if self.auth_token:
            transport = Signed(transport, self.auth_token)
        client = WebhookClient(transport)
        call = Call(
            client,
            urljoin(self.url, url) if url else self.url,
            from_=from_ or self.from_,
            to=to or self.to,
            status_callback=self.status_callback,
            dial_status=dial_status or self.dial_status,
            clock=clock,
            world=world,
            method=method or self.method,
            fallback_url=fallback_url or self.fallback_url,
            geo=geo,
            name=name,
            account_sid=self.account_sid,
        )
        try:
            call.start()
        except BaseException:
            client.close()
            raise
        return call


    def outbound(self, world: World, *, to: str, from_: str, url: str | None, method: str,
                 fallback_url: str | None, fallback_method: str, status_callback: str | None,
                 status_callback_method: str, status_callback_events: tuple[str, ...],
                 name: str) -> Call:
        """A call an application places over the REST API, not yet placed (`Call.place`)."""
        transport = self.transport
        if self.auth_token:
            transport = Signed(transport, self.auth_token)
        call = Call(WebhookClient(transport), url or self.url, from_=from_, to=to,
                    status_callback=status_callback, dial_status=self.dial_status,
                    account_sid=self.account_sid, world=world, method=method,
                    fallback_url=fallback_url, fallback_method=fallback_method, name=name)
        call.status = "queued"
        call.direction = "outbound-api"
        call.status_callback_method = status_callback_method
        call.status_callback_events = status_callback_events
        return call


def _check_dial_status(status: str) -> None:
    if status not in DIAL_STATUSES:
        raise ValueError(f"dial status {status!r} is not one of {', '.join(DIAL_STATUSES)}")
