"""What a verified caller hears: the balance, the family pool, recent transactions, the pool
policy. A part of the call model (ivr/engine/model.py), kept apart for size."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ivr.domain import accounts
from ivr.domain.accounts import Person
from ivr.domain.identity import IdNumber
from ivr.domain.policy import Region
from ivr.engine import speech
from ivr.engine.calldata import CallData
from ivr.engine.kin import ADULT_AGE, Kin, age_on

if TYPE_CHECKING:
    from ivr.engine.flow import Flow
    from ivr.engine.model import Services


class SpokenResults:
    """The result menus' speech; the call model provides what is declared here."""

    if TYPE_CHECKING:
        services: Services
        flow: Flow
        data: CallData

        @property
        def region(self) -> Region: ...

        def say(self, prompt_id: str, **values: Any) -> None: ...

        def word(self, group: str, key: str) -> str: ...

        def _memo(self, key: str, compute: Any) -> Any: ...

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
            self.say("balance_employee_no_credit", as_of=me.as_of, balance=me.balance,
                     month=self._credit_month(me))
        else:
            self.say("balance_employee", as_of=me.as_of, balance=me.balance,
                     credit=me.monthly_credit, month=self._credit_month(me))

    def _credit_month(self, me: Person) -> str:
        """The month the credit belongs to, the balance's own (2026年10月), never 本月: heard in
        December, an October balance's credit is October's."""
        assert me.as_of is not None  # an account always has its date (docs/dataset.md §3)
        return speech.month_words(me.as_of, self.data.lang)

    def _today(self) -> date:
        return self.services.now().astimezone(self.region.zone).date()

    def _kin(self, relatives: list[accounts.PoolMember]) -> Kin:
        return Kin(self.flow.catalogue, self.data.lang, self._today(), relatives)

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
            kin = self._kin(members)
            for m in members:
                self.say("pool_member", who=kin.who(m), since=m.since)
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
            kin = self._kin(funders)
            for f in funders:
                self.say("pool_funder", who=kin.who(f), since=f.since)
            # each funder as above (two 哥哥 are 大哥, 二哥), in deduction order
            order = self.word("punct", "list").join(
                self.flow.catalogue.render("pool_order_item", self.data.lang,
                                           {"who": kin.who(f)})[0]
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

    def _someone(self, name: str | None, id_number: str | None) -> str:
        """A relative no longer bound: 家人李先生 / "family member, Mr Li" (a minor: 家人)."""
        family = self.word("relation", "family")
        ident = IdNumber(id_number) if id_number else None
        if ident is not None and age_on(ident.birth_date, self._today()) < ADULT_AGE:
            return self.flow.catalogue.render("person_minor", self.data.lang,
                                              {"relation": family})[0]
        return self.flow.catalogue.render("person_named", self.data.lang, {
            "relation": family,
            "name": speech.Named(name or "", ident.sex if ident else None)})[0]

    def speak_transactions(self) -> None:
        me = self._me()
        with self.services.db.connect() as conn:
            entries = accounts.recent_transactions(conn, me.id_number)
            members = accounts.members_of(conn, me) if entries else []
            funders = accounts.funders_of(conn, me) if entries else []
        if not entries:
            self.say("tx_none")
            return
        if len(entries) == 1:
            self.say("tx_count_one")
        else:
            self.say("tx_count", count=len(entries))
        paid_for, paid_by = self._kin(members), self._kin(funders)
        for t in entries:
            amount = abs(t.amount)
            if t.received:  # from a relative's account, for the caller
                who = paid_by.who_by_id(t.payer_id) or self._someone(t.payer_name, t.payer_id)
                self.say("tx_pool_received", date=t.date, who=who, amount=amount)
            elif t.kind == "credit":
                self.say("tx_credit", date=t.date, amount=amount)
            elif t.kind == "pool_payment":
                who = paid_for.who_by_id(t.for_id) or self._someone(t.for_name, t.for_id)
                self.say("tx_pool_payment", date=t.date, who=who, amount=amount)
            elif t.amount >= 0:
                self.say("tx_refund", date=t.date, kind=self.word("kind", t.kind), amount=amount)
            else:
                self.say("tx_spend", date=t.date, kind=self.word("kind", t.kind), amount=amount)

    def speak_pool_relatives(self) -> None:
        self.say("policy_pool_who",
                 relatives=self.word("pool_relations", self.region.pool_relations))

    def speak_pool_uses(self) -> None:
        self.say("policy_pool_pays")
        self.say("policy_commercial_yes" if self.region.commercial_insurance
                 else "policy_commercial_no")
