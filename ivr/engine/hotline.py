"""The hotline engine: load prompts and flow once, then step one session per webhook."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine as Database

from ivr.data.storage import make_engine
from ivr.engine.flow import Event, Flow
from ivr.engine.instructions import Gather, Hangup, Instruction, Say
from ivr.engine.model import Call, Services
from ivr.engine.prompts import Catalogue
from ivr.engine.session import CallSession, SessionStore
from ivr.resources import data_dir
from ivr.settings import Settings

log = logging.getLogger("ivr.engine")

NUMBER_TIMEOUT = 8  # seconds between keys while typing an ID, card number or password


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Everything a webhook needs, built once per process: flow, catalogue, store."""

    def __init__(self, settings: Settings, *, db: Database | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.db = db or make_engine(settings.database_url)
        self.catalogue = Catalogue.load(data_dir("prompts", settings.prompts_dir),
                                        liang=settings.zh_liang)
        self.services = Services(self.db, settings, self.catalogue, now or _utcnow, {})
        self.flow = Flow(data_dir("state_machines", settings.flows_dir) / "hotline.yaml", Call,
                         self.catalogue, model_factory=lambda: Call(self.services))
        self.services.states = self.flow.states
        self.store = SessionStore(self.db)
        self.timeouts = {"menu": settings.gather_timeout, "number": NUMBER_TIMEOUT}

    def new_session(self, call_sid: str, caller: str) -> CallSession:
        return CallSession(call_sid, caller, self.flow.initial)

    def step(self, session: CallSession, event: Event) -> list[Instruction]:
        """Advance `session` by one event; mutates it and returns what to say and do."""
        model = self.flow.model()
        kind, value = event
        model.begin(session, digits=value if kind == "digits" else "",
                    dial_status=value if kind == "dialed" else "")
        if kind != "start":
            self.flow.machine.set_state(session.state, model=model)
        self.flow.run(model, event)
        session.state = model.state
        return self.flow.instructions(model, self.timeouts)

    def _say(self, pid: str, locale: str) -> Say:
        text, voice_locale = self.catalogue.render(pid, locale, {})
        return Say(text, voice_locale)

    def recover(self, session: CallSession) -> list[Instruction]:
        """After a failure: apologise and offer the main menu again (state reset to main)."""
        locale = str(session.data.get("lang", "zh-CN"))
        session.state = "main"
        session.data["counters"] = {"silences": 0, "invalids": 0}
        prompts = (self._say("system_busy", locale), self._say("main_menu", locale))
        return [Gather(prompts, num_digits=1, timeout=self.timeouts["menu"])]

    def apology_goodbye(self, locale: str = "zh-CN") -> list[Instruction]:
        """When nothing can be stored: apologise, say goodbye, hang up."""
        return [self._say("system_busy", locale), self._say("goodbye", locale), Hangup()]
