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

from ivr.domain import accounts, agents, callers
from ivr.domain.accounts import PasswordCheck, Person
from ivr.domain.agents import PinCheck
from ivr.domain.identity import IdNumber, from_keypad, parse_id_number
from ivr.domain.pinkeys import Keyring
from ivr.domain.policy import Region
from ivr.engine import speech
from ivr.engine.flow import CallEvent, Flow, FlowModel
from ivr.engine.queue import CallQueue, Entry
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


class CallModel(FlowModel):
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

    def say(self, prompt_id: str, **values: Any) -> None:
        """A region without agent service: the menus don't offer 0 for an agent."""
        if prompt_id in ("main_menu", "result_menu") and not self.has_agents:
            if prompt_id == "main_menu":
                super().say("main_menu_no_agent")
            else:
                super().say("result_menu_no_agent")
            return
        if prompt_id == "welcome":  # the line's name, its digits one by one (幺二三三三)
            values = {"line": speech.line_name(self.region.line_name, "zh-CN"), **values}
        elif prompt_id == "welcome_english":  # always in the English voice
            values = {"line": speech.line_name(self.region.line_name_en, "en-US"), **values}
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
        region: Region = self._memo("region", lambda: accounts.line_region(self.services.db))
        return region

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
        by_days: dict[str, list[str]] = {}
        days_of: dict[str, frozenset[int]] = {}
        for s in self.region.shifts:  # "工作日上午9点至12点,下午1点至5点"
            start, end = speech.clock_range(s.start, s.end, self.data.lang)
            by_days.setdefault(s.days_spec, []).append(
                self.flow.catalogue.render("agent_shift", self.data.lang, {
                    "start": start, "end": end,
                })[0])
            days_of[s.days_spec] = s.days
        sep = self.word("punct", "times")
        shifts = [
            self.flow.catalogue.render("agent_days", self.data.lang, {
                "days": self._days_words(spec, days_of[spec]), "times": sep.join(times),
            })[0]
            for spec, times in by_days.items()
        ]
        hours = self.word("punct", "list_major").join(shifts)
        self.say("agent_closed_holidays" if self.region.holidays else "agent_closed",
                 hours=hours)

    def _days_words(self, spec: str, days: frozenset[int]) -> str:
        catalogue = self.flow.catalogue
        if f"days.{spec}" in catalogue.words[self.data.lang]:
            return self.word("days", spec)
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return self.word("punct", "list").join(self.word("days", names[d]) for d in sorted(days))

    def say_agent_failed(self) -> None:
        self.say("agent_failed")

    def dial_completed(self) -> bool:
        return self.dial_status in ("completed", "answered")

    # ---- the agent queue: the caller's side ---------------------------------------------------
    def join_queue(self) -> None:
        """Into the queue's table: only what the agent's summary needs."""
        verified = self.data.verified
        failed = (not verified
                  and self.data.password_failures >= self.flow.limits.password_failures)
        self.services.queue.join(self.call_sid, verified=bool(verified),
                                 last4=verified[-4:] if verified else None,
                                 last_menu=FAILED_VERIFICATION if failed else self.origin,
                                 lang=self.data.lang)

    def _leaving(self) -> str:
        def read() -> str:
            entry = self.services.queue.entry(self.call_sid)
            return (entry.leaving or "") if entry else ""
        reason: str = self._memo("leaving", read)
        return reason

    def queue_bridged(self) -> bool:
        return self.queue_result in ("bridged", "bridging-in-process")

    def queue_hung_up(self) -> bool:
        return self.queue_result == "hangup"

    def queue_left_by_key(self) -> bool:
        return self.queue_result == "leave" and self._leaving() == "key"

    def queue_timed_out(self) -> bool:
        return self.queue_result == "leave" and self._leaving() == "timeout"

    def leave_queue(self) -> None:
        self.services.queue.leave(self.call_sid)

    # ---- the agents' line -------------------------------------------------------------------
    def has_agent_service(self) -> bool:
        return self.has_agents

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
            result, _ = agents.check_pin(self.services.db, self.data.agent_pending or "",
                                         self.digits, self.region.code,
                                         self.region.lockout_after, self.services.keyring,
                                         self.services.now().timestamp())
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
        caller = "agents " + callers.caller_class(self.caller)
        return not callers.reserve_check(self.services.db, caller,
                                         self.services.settings.verify_attempts_per_hour,
                                         self.services.now().timestamp())

    def agent_pin_ok(self) -> bool:
        return self._pin_check() is PinCheck.OK

    def agent_may_retry(self) -> bool:
        return self.data.agent_failures < self.flow.limits.password_failures

    def mark_agent(self) -> None:
        self.data.agent, self.data.agent_pending = self.data.agent_pending, None

    def forget_agent_id(self) -> None:
        self.data.agent_pending = None

    def _taken(self) -> Entry | None:
        def take() -> Entry | None:
            return self.services.queue.take_next(self.call_sid)
        entry: Entry | None = self._memo("taken", take)
        return entry

    def caller_waiting(self) -> bool:
        """Takes the caller at the head of the queue for this agent, if anyone waits."""
        return self._taken() is not None

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
                return accounts.find_by_card_digits(conn, self.digits)
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
            caller = callers.caller_class(self.caller)
            settings = self.services.settings
            limit = (settings.withheld_attempts_per_hour if caller == callers.WITHHELD
                     else settings.verify_attempts_per_hour)
            return callers.reserve_check(self.services.db, caller, limit,
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
                self.services.keyring, now=self.services.now().timestamp())
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

    def mark_verified(self) -> None:
        self.data.verified, self.data.pending = self.data.pending, None
        self.data.values.pop("last4", None)

    def forget_pending(self) -> None:
        self.data.pending, self.data.card_shared = None, False
        self.data.values.pop("last4", None)

    # ---- results ----------------------------------------------------------------------------
    def _me(self) -> Person:
        def load() -> Person:
            with self.services.db.connect() as conn:
                person = accounts.find_person(conn, self.data.verified or "")
            if person is None:  # removed since verification: treat as a system error
                raise LookupError("verified person no longer in the data")
            return person
        person: Person = self._memo("me", load)
        return person

    def speak_balance(self) -> None:
        me = self._me()
        if me.status == "suspended" and me.has_account:
            # the balance is still the caller's: say it, and what the suspension means
            self.say("balance_suspended", as_of=me.as_of, balance=me.balance)
        elif not me.has_account:
            self.say("balance_resident")
        elif not me.monthly_credit_fen:
            self.say("balance_employee_no_credit", as_of=me.as_of, balance=me.balance)
        else:
            self.say("balance_employee", as_of=me.as_of, balance=me.balance,
                     credit=me.monthly_credit)

    def speak_pool(self) -> None:
        me = self._me()
        with self.services.db.connect() as conn:
            members = accounts.members_of(conn, me)
            funders = accounts.funders_of(conn, me)
        if members:
            if len(members) == 1:
                self.say("pool_funder_count_one")
            else:
                self.say("pool_funder_count", count=len(members))
            for m in members:
                self.say("pool_member", relation=self.word("relation", m.relation),
                         name=speech.Named(m.name, m.sex), since=m.since)
            remaining = self.region.max_members - len(members)
            if remaining > 0:
                self.say("pool_remaining", remaining=remaining, limit=self.region.max_members)
            else:
                self.say("pool_full", limit=self.region.max_members)
        if funders:
            if len(funders) == 1:
                self.say("pool_beneficiary_count_one")
            else:
                self.say("pool_beneficiary_count", count=len(funders))
            for f in funders:
                self.say("pool_funder", relation=self.word("relation", f.relation),
                         name=speech.Named(f.name, f.sex), since=f.since)
            # each funder by relation and surname: two 哥哥 are told apart, in deduction order
            order = self.word("punct", "list").join(
                self.flow.catalogue.render("pool_order_item", self.data.lang, {
                    "relation": self.word("relation", f.relation),
                    "name": speech.Named(f.name, f.sex),
                })[0]
                for f in funders)
            if me.status == "suspended":
                self.say("pool_order_suspended")
            elif me.has_account:
                if len(funders) == 1:
                    self.say("pool_order_own_first_one", order=order)
                else:
                    self.say("pool_order_own_first", order=order)
            elif len(funders) == 1:
                self.say("pool_order_funders_one", order=order)
            else:
                self.say("pool_order_funders", order=order)
        if not members and not funders:
            if me.scheme == "employee":
                self.say("pool_none_employee")
            else:
                self.say("pool_none_resident")

    def speak_transactions(self) -> None:
        me = self._me()
        with self.services.db.connect() as conn:
            entries = accounts.recent_transactions(conn, me.id_number)
        if not entries:
            self.say("tx_none")
            return
        if len(entries) == 1:
            self.say("tx_count_one")
        else:
            self.say("tx_count", count=len(entries))
        for t in entries:
            amount = abs(t.amount)
            if t.kind == "credit":
                self.say("tx_credit", date=t.date, amount=amount)
            elif t.kind == "pool_payment":
                paid_for = speech.Named(t.for_name or "",
                                        IdNumber(t.for_id).sex if t.for_id else None)
                self.say("tx_pool_payment", date=t.date, name=paid_for, amount=amount)
            elif t.amount >= 0:
                self.say("tx_refund", date=t.date, kind=self.word("kind", t.kind), amount=amount)
            else:
                self.say("tx_spend", date=t.date, kind=self.word("kind", t.kind), amount=amount)

    def speak_pool_policy(self) -> None:
        self.say("policy_pool", relatives=self.word("pool_relations", self.region.pool_relations))
        self.say("policy_commercial_yes" if self.region.commercial_insurance
                 else "policy_commercial_no")
