"""The hotline: built once per process, it owns every turn of every call.

A front end (the web adapter, a text phone, a SIP bridge) turns what it received into a
`CallEvent` and calls `take_turn`; it gets back its own rendering of what to say and do.
A turn is: load the call, replay an answer already given, claim the step, step the flow, save.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ivr.domain import accounts, routing
from ivr.domain.pinkeys import Keyring, load
from ivr.engine.calldata import CallData
from ivr.engine.flow import CallEvent, Flow
from ivr.engine.hours import clock_words, hours_words, shift_end
from ivr.engine.instructions import (
    Conference,
    Gather,
    Hangup,
    Instruction,
    Leave,
    Pause,
    Play,
    Say,
)
from ivr.engine.model import CallModel, Services, speech_wait
from ivr.engine.prompts import DEFAULT_LOCALE, Catalogue
from ivr.engine.queue import Bridge, CallQueue, NoBridge
from ivr.engine.records import CallRecords
from ivr.engine.session import CallSession, SessionStore
from ivr.resources import data_dir
from ivr.settings import Settings
from ivr.store.schema import make_engine

log = logging.getLogger("ivr.engine")

NUMBER_TIMEOUT = 8  # seconds between keys while typing an ID, card number or password
ANSWER_WAIT_SECONDS = 12.0  # a duplicate waits for the first delivery (Twilio gives up at 15 s)

#: a front end's rendering of instructions for step `step` of a call (e.g. TwiML)
Render = Callable[[Sequence[Instruction], int], str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Hotline:
    """Everything a turn needs, built once per process: flow, catalogue, session store."""

    def __init__(self, settings: Settings, *, db: Engine | None = None,
                 now: Callable[[], datetime] | None = None,
                 keyring: Keyring | None = None, bridge: Bridge | None = None) -> None:
        """Raises PinKeyError when `keyring` is not given and the settings name none usable.
        `bridge` moves a queued caller into an agent's room (none: agents can take nobody)."""
        self.settings = settings
        self.now = now or _utcnow
        self.keyring = keyring or load(settings)
        self.db = db or make_engine(settings.database_url)
        self.catalogue = Catalogue.load(data_dir("prompts", settings.prompts_dir),
                                        liang=settings.zh_liang)
        self.queue = CallQueue(self.db, self.now)
        self.bridge = bridge or NoBridge()
        services = Services(self.db, settings, self.now, self.keyring, self.queue, self.bridge)
        self.flow = Flow(data_dir("state_machines", settings.flows_dir) / "hotline.yaml",
                         CallModel, self.catalogue,
                         model_factory=lambda flow: CallModel(flow, services))
        self.store = SessionStore(self.db, self.now,
                                  keep_ended_seconds=settings.keep_ended_days * 86400,
                                  max_call_seconds=settings.seal_idle_minutes * 60)
        self.timeouts = {"menu": settings.gather_timeout, "number": NUMBER_TIMEOUT}
        self.records = CallRecords(self.db, self.now, self.keyring)

    # ---- the turn -----------------------------------------------------------------------------
    def take_turn(self, call_sid: str, step: int, event: CallEvent, *, caller: str,
                  render: Render, called: str = "") -> str:
        """Answer one webhook of a call: `step` is the step the request answers (0 for the
        start). A retry or a replay gets the answer given to that request the first time; a
        call that has ended, a hang-up; any failure, an apology — never an exception."""
        if not call_sid:
            log.warning("webhook without CallSid")
            return render(self.apology_goodbye(), 0)
        try:
            if event.kind == "start":  # usually a new call: created, else its answer again
                new = CallSession(call_sid, caller, self.flow.initial)
                # its region (参保地): by the number called, the only one, the caller's area
                # code, or "" (the caller picks it)
                found = routing.route(self.db, called, caller)
                new.data.region, new.data.routed = found.code, found.how
                return self._first_turn(new, event, render)
            # usually the current step: claimed and read at once
            claimed = self.store.claim_current(call_sid, step)
            if claimed is not None:
                return self._claimed_turn(claimed, event, render)
            session = self.store.load(call_sid)
            if session is None:
                log.warning("call=%s unknown call", call_sid)
                return render(self.apology_goodbye(), 0)
            if session.ended:
                return render([Hangup()], 0)
            if step < session.step:  # a retry or a replay: the answer to that request
                return self._replayed(session, step + 1, render)
            if step > session.step:
                log.warning("call=%s request for step %s of %s", call_sid, step, session.step)
                return render(self.apology_goodbye(session.data.lang), 0)
            return self._next_turn(session, event, render)
        except Exception:
            log.exception("call=%s session store unavailable", call_sid)
            return render(self.apology_goodbye(), 0)

    def _first_turn(self, session: CallSession, event: CallEvent, render: Render) -> str:
        """The start: the call is created with its first answer. If it exists (the start
        again, or another worker's delivery of it), its first answer again; once ended, a
        hang-up. The start step has no effect but its answer, so nothing counts twice."""
        body = self._step(session, event, render)
        if not self.store.create(session, body):
            return self._replayed(session, 1, render)
        self.records.turn(session, event, self.flow.model())
        self._log(session, event)
        return body

    def _next_turn(self, session: CallSession, event: CallEvent, render: Render) -> str:
        # claim this step before anything with an effect (a password check): a duplicate
        # delivered to another worker meanwhile waits for our answer instead of counting
        if not self.store.claim(session.call_sid, session.step):
            return self._replayed(session, session.step + 1, render)
        return self._claimed_turn(session, event, render)

    def _claimed_turn(self, session: CallSession, event: CallEvent, render: Render) -> str:
        """The rest of a turn once its step is claimed: step the flow, save, log."""
        body = self._step(session, event, render)
        if not self.store.save(session, body):  # the call ended meanwhile (status callback)
            return render([Hangup()], 0)
        self.records.turn(session, event, self.flow.model())
        self._log(session, event)
        return body

    def _step(self, session: CallSession, event: CallEvent, render: Render) -> str:
        """Step the flow (a failure: an apology and the main menu) and render its answer.
        A call that ends here keeps nothing personal."""
        try:
            instructions = self.step(session, event)
        except Exception:
            log.exception("call=%s failed in state %s on %s", session.call_sid, session.state,
                          event.kind)
            self.records.failed(session.call_sid, session.state)
            instructions = self.recover(session)
        session.step += 1
        session.ended = bool(instructions) and isinstance(instructions[-1], Hangup)
        if session.ended:
            session.data = CallData()
        return render(instructions, session.step)

    def _replayed(self, session: CallSession, step: int, render: Render) -> str:
        """The answer given at `step`, waiting while another delivery is making it; once the
        call has ended, a hang-up."""
        deadline = time.monotonic() + ANSWER_WAIT_SECONDS
        while True:
            body = self.store.answer(session.call_sid, step)
            if body is not None:
                return body
            current = self.store.load(session.call_sid)
            if current is None or current.ended:
                return render([Hangup()], 0)
            if current.step != step or time.monotonic() >= deadline:
                return render(self.apology_goodbye(session.data.lang), 0)
            time.sleep(0.02)

    @staticmethod
    def _log(session: CallSession, event: CallEvent) -> None:
        # keys are logged by count only: they may be a password, or an ID number
        what = f"{len(event.value)} keys" if event.kind == "digits" else event.value or "-"
        log.info("call=%s %s -> %s (%s)", session.call_sid, event.kind, session.state, what)

    def end_call(self, call_sid: str) -> None:
        """The call is over (Twilio's status callback): forget its data and answers."""
        try:
            self.store.end(call_sid)
        except Exception:
            log.exception("call=%s could not close the session", call_sid)
        self.records.ended(call_sid)

    # ---- one step of the flow -----------------------------------------------------------------
    def step(self, session: CallSession, event: CallEvent) -> list[Instruction]:
        """Advance `session` by one event; mutates it and returns what to say and do."""
        model = self.flow.model()
        model.begin(session, event)
        if event.kind != "start":
            self.flow.machine.set_state(session.state, model=model)
        self.flow.run(model, event)
        session.state = model.state
        return self.flow.instructions(model, self.timeouts)

    def _say(self, pid: str, locale: str) -> Say:
        text, voice_locale = self.catalogue.render(pid, locale, {})
        return Say(text, voice_locale)

    def recover(self, session: CallSession) -> list[Instruction]:
        """After a failure: apologise and offer the main menu again (state reset to main); on
        the agents' line, apologise and hang up."""
        locale = session.data.lang
        if session.data.line:
            session.state = "goodbye"
            return self.apology_goodbye(locale)
        session.state = "main"
        session.data.reset_counters()
        prompts = (self._say("system_busy", locale), self._say("main_menu", locale))
        return [Gather(prompts, num_digits=1, timeout=self.timeouts["menu"])]

    def apology_goodbye(self, locale: str = DEFAULT_LOCALE) -> list[Instruction]:
        """When nothing can be stored: apologise, say goodbye, hang up."""
        return [self._say("system_busy", locale), self._say("goodbye", locale), Hangup()]

    # ---- the agent queue: what a waiting caller hears ------------------------------------------
    def hold(self, call_sid: str, key: str | None = None) -> list[Instruction]:
        """The wait document of a caller in the agent queue (Twilio asks for it again when it
        ends): the position and the expected wait, then music or quiet while `*` is heard;
        `*` (`key`) leaves for the main menu; at the region's maximum wait, the line is busy.
        Not a step of the call: it changes nothing but why the caller is sent out."""
        try:
            session = self.store.load(call_sid)
            entry = self.queue.entry(call_sid)
            if session is None or session.ended or entry is None:
                return [Leave()]
            lang = session.data.lang
            if key == "*":
                self.queue.mark_leaving(call_sid, "key")
                return [Leave()]
            if entry.leaving == "timeout" and key is None:  # silence after "the line is busy"
                return [Leave()]
            now = self.now()
            region = accounts.call_region(self.db, session.data.region)
            closing = shift_end(region, now)
            if closing is None:  # the hours ended while the caller waited: say so, and them
                self.queue.mark_leaving(call_sid, "timeout")
                text, voice = self.catalogue.render("queue_closed", lang, {
                    "hours": hours_words(self.catalogue, region, lang)})
                return [Gather((Say(text, voice),), num_digits=1, timeout=self.timeouts["menu"])]
            if now.timestamp() - entry.entered_at >= region.max_queue_wait:
                self.queue.mark_leaving(call_sid, "timeout")
                busy = (self._say("queue_busy", lang),)
                return [Gather(busy, num_digits=1, timeout=self.timeouts["menu"])]
            position = self.queue.position(call_sid)
            if position <= 1:
                said = [self._say("queue_next", lang)]
            else:
                midnight = now.astimezone(region.zone).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
                _, per_place = self.queue.waits_since(midnight.timestamp(), region.code)
                per_place = per_place or self.flow.limits.queue_wait_per_caller
                estimate = position * per_place
                left = (entry.told_until - now.timestamp()
                        if entry.told_until is not None else None)
                one = position == 2
                values: dict[str, Any] = {} if one else {"ahead": position - 1}
                # never a longer wait than the caller was told: the position alone; never a
                # wait beyond what the line will hold (its maximum wait, the hours' end): the
                # position, and that limit
                held_until = min(entry.entered_at + region.max_queue_wait, closing.timestamp())
                beyond = now.timestamp() + estimate > held_until
                only = beyond or (left is not None and estimate > left)
                if not only:
                    self.queue.told(call_sid, now.timestamp() + estimate)
                    values["wait"] = speech_wait(self.catalogue, lang, estimate)
                text, voice = self.catalogue.render(
                    ("queue_position_one_only" if one else "queue_position_only") if only
                    else ("queue_position_one" if one else "queue_position"), lang, values)
                said = [Say(text, voice)]
                if beyond and closing.timestamp() <= held_until:
                    said.append(Say(*self.catalogue.render("queue_beyond_close", lang, {
                        "end": clock_words(closing, region, lang)})))
                elif beyond:
                    minutes = max(int(held_until - now.timestamp()) // 60, 1)
                    said.append(Say(*self.catalogue.render("queue_beyond_wait", lang, {
                        "minutes": minutes})))
            said.append(self._say("queue_leave_key", lang))
            music = self.settings.hold_music_url
            every = self.flow.limits.queue_announce_every
            if music:
                return [Gather((*said, Play(music)), num_digits=1, timeout=1)]
            # no music: never a long silence (a caller would think the line dropped)
            half = Pause(max(every // 2, 1))
            return [Gather((*said, half, self._say("queue_stay", lang), half), num_digits=1,
                           timeout=1)]
        except Exception:
            log.exception("call=%s the queue's hold failed", call_sid)
            return [Pause(self.flow.limits.queue_announce_every)]

    def joined_room(self, call_sid: str, room: str) -> list[Instruction]:
        """A queued caller an agent took, moved out of the queue (Twilio's REST API) into the
        agent's room: told they are being connected, their wait measured; then with the agent,
        and goodbye when the agent hangs up. Not a step of the call."""
        try:
            session = self.store.load(call_sid)
            if session is None or session.ended:
                return [Hangup()]
            self.queue.connected(call_sid)
            self.records.bridged(call_sid, self._agent_in(room))
            lang = session.data.lang
        except Exception:
            log.exception("call=%s the move to an agent failed", call_sid)
            lang = DEFAULT_LOCALE
        return [self._say("queue_connected", lang), Conference(room),
                self._say("goodbye", lang), Hangup()]

    def _agent_in(self, room: str) -> str | None:
        """The id of the agent whose room it is (rooms are named after the agent's call), for
        the records; None when unknown."""
        try:
            agent = self.store.load(room)
        except Exception:
            log.exception("call=%s the agent's id could not be read", room)
            return None
        return agent.data.agent if agent is not None else None

    def agent_waiting(self, call_sid: str) -> list[Instruction]:
        """An agent alone in their room (the caller moved into it has not arrived): while the
        caller's call goes on, "connecting"; once it has ended, the room is ended, so the agent
        is back at the agent menu at once instead of waiting alone."""
        try:
            session = self.store.load(call_sid)
            caller = session.data.caller if session is not None else None
            theirs = self.store.load(caller) if caller else None
            gone = theirs is None or theirs.ended
            lang = session.data.lang if session is not None else DEFAULT_LOCALE
            if gone:
                log.info("agent call=%s: the caller left before the bridge", call_sid)
                if session is not None:  # the agent is told the caller has gone, not "ended"
                    session.data.caller = None
                    self.store.amend(session)
                self.bridge.end_room(call_sid)
                return [Pause(1)]
        except Exception:
            log.exception("call=%s the agent's wait failed", call_sid)
            return [Pause(5)]
        return [self._say("agent_waiting_for_caller", lang), Pause(5)]
