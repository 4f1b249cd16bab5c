"""The hotline's call model: the conditions and callbacks that state_machines/hotline.yaml names.

The Machine is built once (ivr.engine.flow); one model per thread is restored from the stored
session on every webhook. Conditions are queries; anything with an effect (counting a password
failure, recording a verification attempt) happens once per step, memoised, or in a callback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from ivr.domain import accounts, agents, callers, routing
from ivr.domain.accounts import PasswordCheck, Person
from ivr.domain.agents import PinCheck
from ivr.domain.identity import from_keypad, parse_id_number
from ivr.domain.pinkeys import Keyring
from ivr.domain.policy import Region
from ivr.engine import speech
from ivr.engine.flow import CallEvent, Flow, FlowModel
from ivr.engine.hours import hours_words
from ivr.engine.queue import Bridge, CallQueue, Entry, Moved
from ivr.engine.regions import RegionChoice
from ivr.engine.results import SpokenResults
from ivr.engine.session import CallSession
from ivr.errors import InvalidIdNumber
from ivr.settings import Settings

log = logging.getLogger("ivr.hotline")

#: a query password's length (the import accepts only 6-digit passwords: docs/dataset.md)
PASSWORD_DIGITS = 6


@dataclass(frozen=True)
class Services:
    """What callbacks may use besides the flow: the database, settings, the clock and the keys
    passwords are hashed with."""

    db: Engine
    settings: Settings
    now: Callable[[], datetime]
    keyring: Keyring
    queue: CallQueue
    bridge: Bridge


#: how many times an agent waits for a caller in the table whom Twilio's queue does not hold
AGENT_RETRIES = 3

#: what a queue entry's `last_menu` says when the caller comes from failing verification
FAILED_VERIFICATION = "verification_failed"


def speech_wait(catalogue: Any, lang: str, seconds: float) -> str:
    """A wait in words, rounded as people round it (halves up): under a minute, about N
    minutes."""
    minutes = math.floor(seconds / 60 + 0.5)
    if seconds < 60 or minutes < 1:
        return str(catalogue.render("wait_under_minute", lang, {})[0])
    if minutes == 1:
        return str(catalogue.render("wait_one_minute", lang, {})[0])
    return str(catalogue.render("wait_minutes", lang, {"minutes": minutes})[0])


class CallModel(SpokenResults, RegionChoice, FlowModel):
    """The hotline's call as the state machine sees it: the conditions and callbacks the flow
    names. One per thread, long-lived; `begin` restores a call on it for one turn."""

    def __init__(self, flow: Flow, services: Services) -> None:
        super().__init__(flow)
        self.services = services
        self.caller = ""
        self.call_sid = ""
        self.digits = ""
        self.dial_status = ""
        self.queue_result = ""
        self.origin = ""  # the state the turn started in
        self._memo_values: dict[str, Any] = {}
        self._failed = False  # an agent's turn could not move its caller
        self._skipped = 0  # callers in the table whom Twilio's queue did not hold

    def begin(self, session: CallSession, event: CallEvent) -> None:
        """Take `session` for one turn: its data, the event's keys or transfer status."""
        super().begin(session, event)
        self.caller, self.call_sid = session.caller, session.call_sid
        self.digits = event.value if event.kind == "digits" else ""
        self.dial_status = event.value if event.kind == "dialed" else ""
        self.queue_result = event.value if event.kind == "left_queue" else ""
        self.origin = session.state
        if event.kind == "start":
            self.data.line = event.value
        self._memo_values = {}
        if event.kind == "start" and (self.data.region is not None or not self.data.routed):
            # found by routing.py, or "" (the caller is to pick it): a call that never gets
            # one is no region's in the records
            self._memo_values["region_set"] = self.data.region or ""

    def say(self, prompt_id: str, **values: Any) -> None:
        """A region without agent service: the menus don't offer 0 for an agent."""
        if prompt_id in ("main_menu", "result_menu") and not self.has_agents:
            if prompt_id == "main_menu":
                super().say("main_menu_no_agent")
            else:
                super().say("result_menu_no_agent")
            return
        if prompt_id in ("welcome", "welcome_english"):
            # the line's name, its digits one by one (幺二三三三); the English one always in
            # the English voice; before the caller picks a region, the name all regions share
            zh, en = ((self.region.line_name, self.region.line_name_en) if self.region_known()
                      else routing.greeting(self.services.db))
            values = {"line": speech.line_name(zh, "zh-CN") if prompt_id == "welcome"
                      else speech.line_name(en, "en-US"), **values}
        super().say(prompt_id, **values)

    def word(self, group: str, key: str) -> str:
        return self.flow.catalogue.word(group, key, self.data.lang)

    @property
    def dial_number(self) -> str:
        return self.region.agent_number or ""

    @property
    def queue_name(self) -> str:
        return f"ivr12333-{self.region.code}"

    @property
    def has_agents(self) -> bool:
        """The region has agent service: agents who answer its queue."""
        return self.region.agents > 0

    @property
    def region(self) -> Region:
        """The call's region (参保地): found when the call began, picked by the caller, or the
        agent's own; the line's region until then."""
        region: Region = self._memo(
            "region", lambda: accounts.call_region(self.services.db, self.data.region))
        return region

    def outcomes(self) -> dict[str, str]:
        """What this turn decided, for the call records (nothing personal): the password
        check's result (ok, wrong, locked, or limit: the number's checks were used up), an
        agent's PIN check, why the caller was sent out of the queue."""
        found: dict[str, str] = {}
        memo = self._memo_values
        if memo.get("reserved") is False:
            found["verification"] = "limit"
        elif isinstance(memo.get("password"), PasswordCheck):
            value = memo["password"].value
            found["verification"] = ("ok" if value == "ok" else
                                     "locked" if value in ("locked", "now_locked") else "wrong")
        if isinstance(memo.get("pin"), PinCheck):
            found["agent_login"] = memo["pin"].value
        if memo.get("leaving"):
            found["leaving"] = str(memo["leaving"])
        if "region_set" in memo:
            found["region"] = str(memo["region_set"])
        return found

    def _memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Per turn: computed once even if several conditions ask."""
        if key not in self._memo_values:
            self._memo_values[key] = compute()
        return self._memo_values[key]

    # ---- language ---------------------------------------------------------------------------
    def use_zh(self) -> None:
        self.data.lang = "zh-CN"

    def use_en(self) -> None:
        self.data.lang = "en-US"

    # ---- agent ------------------------------------------------------------------------------
    def agent_available(self) -> bool:
        return self.has_agents and self.region.is_staffed(self.services.now())

    def say_agent_hours(self) -> None:
        if not self.has_agents:
            self.say("agent_unavailable")
            return
        hours = hours_words(self.flow.catalogue, self.region, self.data.lang)
        self.say("agent_closed_holidays" if self.region.holidays else "agent_closed",
                 hours=hours)

    def say_agent_failed(self) -> None:
        self.say("agent_failed")

    def dial_completed(self) -> bool:
        return self.dial_status in ("completed", "answered")

    def caller_reached(self) -> bool:
        """On the agents' line: the caller moved into the agent's room was still there when
        the agent came (the agent's wait document forgets a caller who had gone)."""
        return self.data.caller is not None

    # ---- the agent queue: the caller's side ---------------------------------------------------
    def queue_place_taken(self) -> bool:
        """Into the queue's table (only what the agent's summary needs, and the number's keyed
        hash), unless this number (or the withheld class) holds its places already: the cap
        is decided in the same transaction that enqueues, across workers."""
        def join() -> bool:
            verified = self.data.verified
            failed = (not verified
                      and self.data.password_failures >= self.flow.limits.password_failures)
            who = callers.caller_key(self.services.keyring, self.caller, "queue")
            settings = self.services.settings
            cap = (settings.withheld_queue_places if who.withheld
                   else settings.queue_places_per_number)
            joined = self.services.queue.join(
                self.call_sid, verified=bool(verified),
                last4=verified[-4:] if verified else None,
                last_menu=FAILED_VERIFICATION if failed else self.origin,
                lang=self.data.lang, caller=who, places_per_caller=cap,
                region=self.region.code)
            if not joined:
                log.info("queue refused: places per number call=%s", self.call_sid)
            return joined
        taken: bool = self._memo("queue_place", join)
        return taken

    def say_queue_number_waiting(self) -> None:
        self.say("queue_number_waiting")

    def _leaving(self) -> str:
        def read() -> str:
            entry = self.services.queue.entry(self.call_sid)
            return (entry.leaving or "") if entry else ""
        reason: str = self._memo("leaving", read)
        return reason

    def queue_bridged(self) -> bool:
        return self.queue_result in ("bridged", "bridging-in-process")

    def queue_moved(self) -> bool:
        """Moved out of the queue into an agent's room by the REST API."""
        return self.queue_result == "redirected"

    def queue_hung_up(self) -> bool:
        return self.queue_result == "hangup"

    def queue_left_by_key(self) -> bool:
        return self.queue_result == "leave" and self._leaving() == "key"

    def queue_timed_out(self) -> bool:
        return self.queue_result == "leave" and self._leaving() == "timeout"

    def queue_full(self) -> bool:
        """Twilio refused the caller at once: the queue holds as many as it may."""
        return self.queue_result == "queue-full"

    def say_queue_full(self) -> None:
        self.say("queue_full")

    def leave_queue(self) -> None:
        self.services.queue.leave(self.call_sid)

    # ---- the agents' line -------------------------------------------------------------------
    def has_agent_service(self) -> bool:
        """The agents' line: agents answer for the region of the number called, or (a line
        serving several) for any region."""
        if self.has_agents:
            return True
        return self.data.routed != routing.BY_NUMBER and self._memo(
            "any_agents", lambda: accounts.any_agents(self.services.db))

    def say_agent_pin_wrong(self) -> None:
        self.say("agent_pin_wrong")

    def say_agent_pin_refused(self) -> None:
        self.say("agent_pin_refused")

    def say_agent_call_ended(self) -> None:
        self.say("agent_call_ended")

    def say_agent_caller_gone(self) -> None:
        self.say("agent_caller_gone")

    def agent_id_well_formed(self) -> bool:
        d = self.digits
        return d.isascii() and d.isdigit() and 3 <= len(d) <= 8

    def remember_agent_id(self) -> None:
        self.data.agent_pending = self.digits

    def _pin_check(self) -> PinCheck:
        def check() -> PinCheck:
            if self._agent_line_over_limit():
                self.data.agent_failures += 1
                log.info("agent login refused: attempt limit call=%s", self.call_sid)
                return PinCheck.WRONG
            # an agent of the number's region, else of any: their own region is theirs
            result, agent = agents.check_pin(
                self.services.db, self.data.agent_pending or "", self.digits,
                self.region.code if self.data.routed == routing.BY_NUMBER else None,
                self.region.lockout_after, self.services.keyring,
                self.services.now().timestamp())
            if agent is not None:
                self._memo_values["agent_region"] = agent.region_code
            if result is not PinCheck.OK:
                self.data.agent_failures += 1
            log.info("agent login %s call=%s", result.value, self.call_sid)
            return result
        result: PinCheck = self._memo("pin", check)
        return result

    def _agent_line_over_limit(self) -> bool:
        """PIN checks per calling number on the agents' line, counted apart from the callers'
        line (an office's shared number must not use up its callers' checks): one number can't
        walk through agent ids or lock every agent."""
        who = callers.caller_key(self.services.keyring, self.caller, "agents")
        return not callers.reserve_check(self.services.db, who,
                                         self.services.settings.verify_attempts_per_hour,
                                         self.services.now().timestamp())

    def agent_pin_ok(self) -> bool:
        return self._pin_check() is PinCheck.OK

    def agent_may_retry(self) -> bool:
        return self.data.agent_failures < self.flow.limits.password_failures

    def mark_agent(self) -> None:
        """The agent is in: their region's queue is theirs to answer."""
        self.data.agent, self.data.agent_pending = self.data.agent_pending, None
        region = self._memo_values.get("agent_region")
        if region and region != self.data.region:
            self.data.region = str(region)
            self._memo_values.pop("region", None)
            self._memo_values["region_set"] = region

    def forget_agent_id(self) -> None:
        self.data.agent_pending = None

    @property
    def room_name(self) -> str:
        """An agent's conference room is named after the agent's call; a caller's is the room
        of the agent who took them (while their queue entry says so)."""
        if self.data.line == "agent":
            return self.call_sid
        entry = self.services.queue.entry(self.call_sid)
        return (entry.taken_by or "") if entry is not None else ""

    def _taken(self) -> Entry | None:
        """The caller taken for this agent and moved out of the queue into the agent's room:
        the one the agent is then told about. A caller Twilio's queue does not hold (not yet:
        still hearing what precedes <Enqueue>; or no longer, their end not yet heard of) is
        skipped for this turn and left in the table; a caller whose move failed is given back
        to the queue."""
        def take() -> Entry | None:
            queue, bridge = self.services.queue, self.services.bridge
            skipped: list[str] = []
            self._failed = False
            self._skipped = 0
            try:
                while (entry := queue.take_next(self.call_sid, self.region.code)) is not None:
                    moved = bridge.move(self.queue_name, entry.call_sid, self.room_name)
                    log.info("agent call=%s caller call=%s move %s", self.call_sid,
                             entry.call_sid, moved.value)
                    if moved is Moved.MOVED:
                        self.data.caller = entry.call_sid
                        self.data.agent_retries = 0
                        return entry
                    skipped.append(entry.call_sid)
                    self._skipped += 1
                    if moved is Moved.FAILED:
                        self._failed = True
                        return None
                return None
            finally:
                for call_sid in skipped:
                    queue.release(call_sid)
        entry: Entry | None = self._memo("taken", take)
        return entry

    def caller_waiting(self) -> bool:
        """Takes the caller at the head of the queue for this agent and moves them into the
        agent's room, if anyone waits."""
        return self._taken() is not None

    def caller_on_the_way(self) -> bool:
        """A caller is in the table but not (yet) in Twilio's queue: the agent waits a moment
        and the hotline looks again, a few times (a caller whose end was never heard of stays
        in the table until it is sealed)."""
        if self._taken() is not None or not self._skipped:
            return False
        self.data.agent_retries += 1
        if self.data.agent_retries > AGENT_RETRIES:
            self.data.agent_retries = 0
            return False
        return True

    def bridge_failed(self) -> bool:
        return self._taken() is None and self._failed

    def say_agent_bridge_failed(self) -> None:
        self.say("agent_bridge_failed")

    def speak_caller_summary(self) -> None:
        """What the agent hears before the bridge: verified or not, the last four of the ID
        number digit by digit, what the caller was doing, how long they waited."""
        entry = self._taken()
        if entry is None:
            return
        menu = (entry.last_menu if f"menu.{entry.last_menu}" in
                self.flow.catalogue.words[self.data.lang] else "other")
        waited = self.wait_words(self.services.now().timestamp() - entry.entered_at)
        if entry.lang != self.data.lang:  # first: the agent greets the caller in it
            self.say("agent_summary_language", language=self.word("language", entry.lang))
        if entry.verified and entry.last4:
            self.say("agent_summary_verified", last4=entry.last4,
                     menu=self.word("menu", menu), waited=waited)
        elif entry.last_menu == FAILED_VERIFICATION:
            self.say("agent_summary_failed", waited=waited)
        else:
            self.say("agent_summary_unverified", menu=self.word("menu", menu), waited=waited)

    def wait_words(self, seconds: float) -> str:
        """A wait as a person says it: 不到一分钟, 约一分钟, 约两分钟."""
        return speech_wait(self.flow.catalogue, self.data.lang, seconds)

    # ---- verification -----------------------------------------------------------------------
    def already_verified(self) -> bool:
        return bool(self.data.verified)

    def _parsed_id(self) -> str | None:
        def parse() -> str | None:
            try:
                return parse_id_number(from_keypad(self.digits)).value
            except InvalidIdNumber:
                return None
        result: str | None = self._memo("id", parse)
        return result

    def id_well_formed(self) -> bool:
        return self._parsed_id() is not None

    def remember_id(self) -> None:
        id_number = self._parsed_id()
        assert id_number is not None
        self.data.pending = id_number
        # read back what the caller typed (a legacy 15-digit number has no check character)
        self.data.values["last4"] = from_keypad(self.digits)[-4:]

    def _card_matches(self) -> list[Person]:
        def lookup() -> list[Person]:
            with self.services.db.connect() as conn:
                return accounts.find_by_card_digits(conn, self.digits, self.region.code)
        result: list[Person] = self._memo("card", lookup)
        return result

    def card_well_formed(self) -> bool:
        d = self.digits
        return d.isascii() and d.isdigit() and len(d) in (8, 9)

    def remember_card(self) -> None:
        """Whatever the card matches goes on to the password: an unknown card and a card two
        people share are told apart only after it (the same answers, the same cost)."""
        matches = self._card_matches()
        self.data.pending = matches[0].id_number if len(matches) == 1 else None
        self.data.card_shared = len(matches) > 1

    def star_alone(self) -> bool:
        """A lone * at the password: the caller wants to key another number."""
        return self.digits == "*"

    def password_well_formed(self) -> bool:
        """A query password is 6 digits (docs/dataset.md): anything else is an invalid entry,
        decided from the keys alone, before any check is reserved or any hash is made."""
        d = self.digits
        return len(d) == PASSWORD_DIGITS and d.isascii() and d.isdigit()

    def over_attempt_limit(self) -> bool:
        """Per caller number (withheld numbers are one class), across calls and workers: one
        phone can't walk through ID numbers. Reserves the check when there is one left."""
        def reserve() -> bool:
            who = callers.caller_key(self.services.keyring, self.caller, "verify")
            settings = self.services.settings
            limit = (settings.withheld_attempts_per_hour if who.withheld
                     else settings.verify_attempts_per_hour)
            return callers.reserve_check(self.services.db, who, limit,
                                         self.services.now().timestamp())
        return not self._memo("reserved", reserve)

    def card_was_shared(self) -> bool:
        """The card of this verification is shared: the password is "checked" (a dummy, the
        same cost), then the caller is asked for the ID number instead."""
        if not self.data.card_shared:
            return False
        self._password_check()
        return True

    def _password_check(self) -> PasswordCheck:
        def check() -> PasswordCheck:
            result = accounts.check_password(
                self.services.db, self.data.pending, self.digits, self.region.lockout_after,
                self.services.keyring, now=self.services.now().timestamp(),
                region_code=self.region.code)
            if result is not PasswordCheck.OK and not self.data.card_shared:
                self.data.password_failures += 1
            log.info("verification %s call=%s", result.value, self.call_sid)
            return result
        result: PasswordCheck = self._memo("password", check)
        return result

    def password_ok(self) -> bool:
        return self._password_check() is PasswordCheck.OK

    def may_retry(self) -> bool:
        return self.data.password_failures < self.flow.limits.password_failures

    def say_password_wrong(self) -> None:
        """After a wrong try with tries left: how many this call still has; before the try that
        could lock the password (the region's `lockout_after` in a row, counted in this call:
        earlier calls are not told, so nothing tells numbers apart), what to do if it was
        forgotten or never set."""
        failures = self.data.password_failures
        left = self.flow.limits.password_failures - failures
        if min(left, self.region.lockout_after - failures) == 1:
            self.say("password_last_try", lockout=self.region.lockout_after)
        else:
            self.say("password_wrong", left=left)

    def mark_verified(self) -> None:
        self.data.verified, self.data.pending = self.data.pending, None
        self.data.values.pop("last4", None)

    def forget_pending(self) -> None:
        self.data.pending, self.data.card_shared = None, False
        self.data.values.pop("last4", None)
