"""The hotline's call model: the conditions and callbacks that state_machines/hotline.yaml names.

The Machine is built once (ivr.engine.flow); one model per thread is restored from the stored
session on every webhook. Conditions are queries; anything with an effect (counting a password
failure, recording a verification attempt) happens once per step, memoised, or in a callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select

from ivr.data.storage import verify_attempts
from ivr.domain import accounts
from ivr.domain.accounts import PasswordCheck, Person
from ivr.domain.identity import from_keypad, parse_id_number
from ivr.domain.policy import Region
from ivr.engine.instructions import Instruction, Say
from ivr.engine.prompts import Catalogue
from ivr.engine.session import CallSession
from ivr.errors import InvalidIdNumber
from ivr.settings import Settings

log = logging.getLogger("ivr.hotline")

MAX_SILENCES = 3
MAX_INVALIDS = 3
MAX_PASSWORD_FAILURES = 3
ATTEMPT_WINDOW_SECONDS = 3600


# Built once (building a statement costs more than running it); values come as parameters.
_COUNT_ATTEMPTS = select(func.count()).select_from(verify_attempts).where(
    verify_attempts.c.caller == bindparam("p_caller", type_=verify_attempts.c.caller.type),
    verify_attempts.c.at >= bindparam("p_since", type_=verify_attempts.c.at.type))
_RECORD_ATTEMPT = insert(verify_attempts)
_FORGET_ATTEMPTS = delete(verify_attempts).where(
    verify_attempts.c.at < bindparam("p_before", type_=verify_attempts.c.at.type))


@dataclass
class Services:
    """What callbacks may use: the database, settings, the catalogue and an injectable clock."""

    db: Engine
    settings: Settings
    catalogue: Catalogue
    now: Callable[[], datetime]
    states: dict[str, Any]  # StateSpec by name (for per-state invalid prompts)


def _plural(prompt_id: str, count: int) -> str:
    """English needs a singular wording for one; the catalogue has `<id>_one` for it."""
    return f"{prompt_id}_one" if count == 1 else prompt_id


class _Step:
    """Per-webhook memo: results computed once even if several conditions ask."""

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}


class Call:
    """One call as the state machine sees it; the machine sets `state` and the trigger methods."""

    state: str
    trigger: Callable[..., bool]

    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = CallSession("", "", "")
        self.out: list[Instruction] = []
        self.digits = ""
        self.dial_status = ""
        self._step = _Step()

    # ---- engine interface -------------------------------------------------------------------
    def begin(self, session: CallSession, digits: str = "", dial_status: str = "") -> None:
        self.session, self.digits, self.dial_status = session, digits, dial_status
        self.out = []
        self._step = _Step()
        self.session.data.setdefault("lang", "zh-CN")
        self.session.data.setdefault("counters", {"silences": 0, "invalids": 0})
        self.session.data.setdefault("values", {})

    def counters(self) -> dict[str, int]:
        counters: dict[str, int] = self.session.data["counters"]
        return counters

    @property
    def data(self) -> dict[str, Any]:
        return self.session.data

    @property
    def lang(self) -> str:
        return str(self.data["lang"])

    def say(self, prompt_id: str, **values: Any) -> None:
        merged = {**self.data["values"], **values}
        text, locale = self.services.catalogue.render(prompt_id, self.lang, merged)
        self.out.append(Say(text, locale))

    def word(self, group: str, key: str) -> str:
        return self.services.catalogue.word(group, key, self.lang)

    @property
    def dial_number(self) -> str:
        return self.region.agent_number or ""

    @property
    def region(self) -> Region:
        def load() -> Region:
            with self.services.db.connect() as conn:
                return accounts.region_for(conn)
        region: Region = self._memo("region", load)
        return region

    def _memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._step.memo:
            self._step.memo[key] = compute()
        return self._step.memo[key]

    # ---- language ---------------------------------------------------------------------------
    def use_zh(self) -> None:
        self.data["lang"] = "zh-CN"

    def use_en(self) -> None:
        self.data["lang"] = "en-US"

    # ---- no input, invalid input ------------------------------------------------------------
    def say_no_input(self) -> None:
        self.say("no_input")

    def say_invalid(self) -> None:
        spec = self.services.states[self.state]
        self.say(spec.invalid_prompt or "invalid_input")

    def say_too_many_invalid(self) -> None:
        self.say("too_many_invalid")

    def silence_under_limit(self) -> bool:
        return self.counters()["silences"] < MAX_SILENCES

    def invalid_under_limit(self) -> bool:
        return self.counters()["invalids"] < MAX_INVALIDS

    # ---- agent ------------------------------------------------------------------------------
    def agent_available(self) -> bool:
        return self.region.can_transfer(self.services.now())

    def say_agent_hours(self) -> None:
        if not self.region.agent_number:
            self.say("agent_unavailable")
            return
        by_days: dict[str, list[str]] = {}
        days_of: dict[str, frozenset[int]] = {}
        for s in self.region.shifts:  # "周一至周五9:00至12:00、13:00至17:00"
            by_days.setdefault(s.days_spec, []).append(
                self.services.catalogue.render("agent_shift", self.lang, {
                    "start": s.start.strftime("%H:%M").lstrip("0"),
                    "end": s.end.strftime("%H:%M").lstrip("0"),
                })[0])
            days_of[s.days_spec] = s.days
        sep = self.word("punct", "list")
        shifts = [
            self.services.catalogue.render("agent_days", self.lang, {
                "days": self._days_words(spec, days_of[spec]), "times": sep.join(times),
            })[0]
            for spec, times in by_days.items()
        ]
        self.say("agent_closed", hours=self.word("punct", "list_major").join(shifts))

    def _days_words(self, spec: str, days: frozenset[int]) -> str:
        catalogue = self.services.catalogue
        if f"days.{spec}" in catalogue.words[self.lang]:
            return self.word("days", spec)
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return self.word("punct", "list").join(self.word("days", names[d]) for d in sorted(days))

    def say_agent_failed(self) -> None:
        self.say("agent_failed")

    def dial_completed(self) -> bool:
        return self.dial_status in ("completed", "answered")

    # ---- verification -----------------------------------------------------------------------
    def already_verified(self) -> bool:
        return bool(self.data.get("verified"))

    def want_balance(self) -> None:
        self.data["target"] = "balance"

    def want_pool(self) -> None:
        self.data["target"] = "pool"

    def want_transactions(self) -> None:
        self.data["target"] = "transactions"

    def target_is_balance(self) -> bool:
        return self.data.get("target") == "balance"

    def target_is_pool(self) -> bool:
        return self.data.get("target") == "pool"

    def target_is_transactions(self) -> bool:
        return self.data.get("target") == "transactions"

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
        self.data["pending"] = id_number
        # read back what the caller typed (a legacy 15-digit number has no check character)
        self.data["values"]["last4"] = from_keypad(self.digits)[-4:]

    def _card_matches(self) -> list[Person]:
        def lookup() -> list[Person]:
            digits = self.digits.rstrip("#")
            if not (digits.isascii() and digits.isdigit() and len(digits) in (8, 9)):
                return []
            with self.services.db.connect() as conn:
                return accounts.find_by_card_digits(conn, digits)
        result: list[Person] = self._memo("card", lookup)
        return result

    def card_well_formed(self) -> bool:
        d = self.digits
        return d.isascii() and d.isdigit() and len(d) in (8, 9)

    def card_ambiguous(self) -> bool:
        return len(self._card_matches()) > 1

    def remember_card(self) -> None:
        matches = self._card_matches()
        # an unknown card goes on to the password all the same: same answer as a wrong password
        self.data["pending"] = matches[0].id_number if matches else None

    def _attempts_in_window(self) -> int:
        since = self.services.now().timestamp() - ATTEMPT_WINDOW_SECONDS
        with self.services.db.connect() as conn:
            return int(conn.execute(
                _COUNT_ATTEMPTS, {"p_caller": self.session.caller, "p_since": since}
            ).scalar_one())

    def over_attempt_limit(self) -> bool:
        """Per caller number, across calls and workers: one phone can't walk through IDs."""
        limit = self.services.settings.verify_attempts_per_hour
        return bool(self._memo("over", lambda: self._attempts_in_window() >= limit))

    def _password_check(self) -> PasswordCheck:
        def check() -> PasswordCheck:
            now = self.services.now().timestamp()
            with self.services.db.begin() as conn:
                conn.execute(_RECORD_ATTEMPT, {"caller": self.session.caller, "at": now})
                conn.execute(_FORGET_ATTEMPTS, {"p_before": now - ATTEMPT_WINDOW_SECONDS})
            result = accounts.check_password(
                self.services.db, self.data.get("pending"), self.digits,
                self.region.lockout_after,
            )
            if result is not PasswordCheck.OK:
                self.data["password_failures"] = self.data.get("password_failures", 0) + 1
            log.info("verification %s call=%s", result.value, self.session.call_sid)
            return result
        result: PasswordCheck = self._memo("password", check)
        return result

    def password_ok(self) -> bool:
        return self._password_check() is PasswordCheck.OK

    def password_locked(self) -> bool:
        return self._password_check() in (PasswordCheck.LOCKED, PasswordCheck.NOW_LOCKED)

    def may_retry(self) -> bool:
        return int(self.data.get("password_failures", 0)) < MAX_PASSWORD_FAILURES

    def mark_verified(self) -> None:
        self.data["verified"] = self.data.pop("pending")
        self.data["values"].pop("last4", None)

    def forget_pending(self) -> None:
        self.data.pop("pending", None)
        self.data["values"].pop("last4", None)

    # ---- results ----------------------------------------------------------------------------
    def _me(self) -> Person:
        def load() -> Person:
            with self.services.db.connect() as conn:
                person = accounts.find_person(conn, self.data["verified"])
            if person is None:  # removed since verification: treat as a system error
                raise LookupError("verified person no longer in the data")
            return person
        person: Person = self._memo("me", load)
        return person

    def speak_balance(self) -> None:
        me = self._me()
        if me.status == "suspended":
            self.say("balance_suspended")
        elif not me.has_account:
            self.say("balance_resident")
        else:
            self.say("balance_employee", as_of=me.as_of, balance=me.balance,
                     credit=me.monthly_credit)

    def speak_pool(self) -> None:
        me = self._me()
        with self.services.db.connect() as conn:
            members = accounts.members_of(conn, me)
            funders = accounts.funders_of(conn, me)
        if members:
            self.say(_plural("pool_funder_count", len(members)), count=len(members))
            for m in members:
                self.say("pool_member", relation=self.word("relation", m.relation),
                         name=m.name, since=m.since)
            remaining = max(self.region.max_members - len(members), 0)
            self.say("pool_remaining", remaining=remaining, limit=self.region.max_members)
        if funders:
            self.say(_plural("pool_beneficiary_count", len(funders)), count=len(funders))
            for f in funders:
                self.say("pool_funder", relation=self.word("relation", f.relation),
                         name=f.name, since=f.since)
            order = self.word("punct", "list").join(
                self.word("relation", f.relation) for f in funders)
            self.say("pool_order_own_first" if me.has_account else "pool_order_funders",
                     order=order)
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
        self.say(_plural("tx_count", len(entries)), count=len(entries))
        for t in entries:
            amount = abs(t.amount)
            if t.kind == "credit":
                self.say("tx_credit", date=t.date, amount=amount)
            elif t.kind == "pool_payment":
                self.say("tx_pool_payment", date=t.date, name=t.for_name or "", amount=amount)
            elif t.amount >= 0:
                self.say("tx_refund", date=t.date, kind=self.word("kind", t.kind), amount=amount)
            else:
                self.say("tx_spend", date=t.date, kind=self.word("kind", t.kind), amount=amount)

    def speak_pool_policy(self) -> None:
        self.say("policy_pool", relatives=self.word("pool_relations", self.region.pool_relations))
        self.say("policy_commercial_yes" if self.region.commercial_insurance
                 else "policy_commercial_no")
