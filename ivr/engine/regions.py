"""One line, many regions: how a call's region (参保地) is told and picked. A part of the call
model (ivr/engine/model.py), kept apart for size; the routing itself is ivr/domain/routing.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivr.domain import routing
from ivr.domain.policy import Region
from ivr.engine.calldata import CallData

if TYPE_CHECKING:
    from ivr.engine.flow import Flow
    from ivr.engine.model import Services


class RegionChoice:
    """The region menu and what is said of the region; the call model provides what is
    declared here."""

    if TYPE_CHECKING:
        services: Services
        flow: Flow
        data: CallData
        digits: str
        _memo_values: dict[str, Any]

        @property
        def region(self) -> Region: ...

        def say(self, prompt_id: str, **values: Any) -> None: ...

        def word(self, group: str, key: str) -> str: ...

        def _memo(self, key: str, compute: Any) -> Any: ...

    def region_known(self) -> bool:
        """The call's region was found when it began (else the caller picks it)."""
        return bool(self.data.routed)

    def _offered(self) -> tuple[routing.Offered, ...]:
        found: tuple[routing.Offered, ...] = self._memo(
            "offered", lambda: routing.offered(self.services.db))
        return found

    def several_regions(self) -> bool:
        """The line serves more than one region: a caller may pick another."""
        return len(self._offered()) > 1

    def say_region_routed(self) -> None:
        """Found by the caller's area code while other regions are served: which one, and how
        to pick another (a caller insured elsewhere)."""
        if self.data.routed == routing.BY_AREA and self.several_regions():
            self.say("region_routed", region=self._region_name(self.region.code))

    def say_region_menu(self) -> None:
        offered = self._offered()
        self.data.region_keys = [o.code for o in offered]
        zh = self.data.lang == "zh-CN"
        choices = [self.flow.catalogue.render("region_choice", self.data.lang, {
            "region": o.name if zh else o.name_en, "key": str(k)})[0]
            for k, o in enumerate(offered, start=1)]
        self.say("region_menu", choices=self.word("punct", "menu").join(choices))

    def region_listed(self) -> bool:
        key = self.digits
        return key.isdigit() and 1 <= int(key) <= len(self.data.region_keys)

    def choose_region(self) -> None:
        """The caller picked a region: a verification made for another region is forgotten
        (people belong to their region)."""
        code = self.data.region_keys[int(self.digits) - 1]
        if code != self.data.region:
            self.data.verified = self.data.pending = None
            self.data.values.pop("last4", None)
        self.data.region, self.data.routed = code, routing.BY_MENU
        self._memo_values.pop("region", None)
        self._memo_values["region_set"] = code

    def say_region_chosen(self) -> None:
        self.say("region_chosen", region=self._region_name(self.region.code))

    def _region_name(self, code: str) -> str:
        found = next((o for o in self._offered() if o.code == code), None)
        if found is None:
            region = self.region
            return region.name if self.data.lang == "zh-CN" else (
                region.name_en or routing.english_name(region.name))
        return found.name if self.data.lang == "zh-CN" else found.name_en
