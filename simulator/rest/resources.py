"""The simulated resources: Calls, Queues and Members, Conferences and Participants.

Each handler checks its parameters as Twilio does (required ones, their values), then reads the
world of the run or acts on a live call (simulator.call.remote). Twilio parameters that are not
simulated are refused with a 501 naming them (never silently dropped); MachineDetection is
simulated roughly and reported (see docs/simulator.md, the REST table).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from simulator.rest import shapes
from simulator.rest.api import (
    Handler,
    Request,
    RestError,
    missing,
    not_found,
    not_simulated,
)
from simulator.world import Conference, Participant, Queue

SID = r"[A-Z]{2}[0-9a-f]{32}"
CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "failed",
                 "no-answer", "canceled")
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
MAX_QUEUE_SIZE = 5000
#: parameters of Calls create that are simulated
CALL_CREATE = {"To", "From", "Url", "Method", "Twiml", "StatusCallback", "StatusCallbackEvent",
               "StatusCallbackMethod", "Timeout", "FallbackUrl", "FallbackMethod",
               "MachineDetection", "MachineDetectionTimeout"}
#: Twilio's other parameters of Calls create: refused as not simulated
CALL_CREATE_OTHERS = {"ApplicationSid", "SendDigits", "Record", "RecordingChannels",
                      "RecordingStatusCallback", "RecordingStatusCallbackMethod",
                      "RecordingStatusCallbackEvent", "SipAuthUsername", "SipAuthPassword",
                      "MachineDetectionSpeechThreshold", "MachineDetectionSpeechEndThreshold",
                      "MachineDetectionSilenceTimeout", "AsyncAmd", "AsyncAmdStatusCallback",
                      "AsyncAmdStatusCallbackMethod", "Byoc", "CallReason", "CallToken",
                      "RecordingTrack", "TimeLimit", "Trim", "CallerId", "ClientNotificationUrl"}
CALL_UPDATE_OTHERS = {"FallbackUrl", "FallbackMethod", "StatusCallback",
                      "StatusCallbackMethod", "TimeLimit"}
PARTICIPANT_CREATE = {"From", "To", "Label", "StartConferenceOnEnter", "EndConferenceOnExit",
                      "Beep", "Muted", "Timeout", "StatusCallback", "StatusCallbackEvent",
                      "StatusCallbackMethod"}
PARTICIPANT_UPDATE = {"Muted", "Hold", "HoldUrl", "HoldMethod", "AnnounceUrl",
                      "AnnounceMethod", "EndConferenceOnExit"}
CONFERENCE_UPDATE = {"Status", "AnnounceUrl", "AnnounceMethod"}


# --- checks ---------------------------------------------------------------------------------


def _refuse_others(request: Request, others: set[str], what: str) -> None:
    for name in sorted(others):
        if name in request.params:
            raise not_simulated(f"{what} with {name}")


def _url(request: Request, name: str, code: int = 21205) -> str | None:
    value = request.params.get(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RestError(400, code, f"{name} is not a valid URL: {value}")
    return value


def _method(request: Request, name: str) -> str:
    value = request.params.get(name, "POST").upper()
    if value not in ("GET", "POST"):
        raise RestError(400, 20001, f"{name} must be GET or POST, not {value!r}")
    return value


def _bool(request: Request, name: str, default: bool) -> bool:
    value = request.params.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise RestError(400, 20001, f"{name} must be true or false, not {value!r}")
    return value.lower() == "true"


def _events(request: Request) -> tuple[str, ...]:
    raw = request.params.get("StatusCallbackEvent", "")
    events = tuple(raw.replace(",", " ").split()) or ("completed",)
    for event in events:
        if event not in CALL_EVENTS:
            raise RestError(400, 20001, f"StatusCallbackEvent {event!r} is not one of "
                            f"{', '.join(CALL_EVENTS)}")
    return events


def _timeout(request: Request) -> float:
    value = request.params.get("Timeout", "60")
    if not value.isdigit() or not 1 <= int(value) <= 600:
        raise RestError(400, 20001, f"Timeout must be a whole number of seconds from 1 to 600, "
                        f"not {value!r}")
    return float(value)


def _page(request: Request, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    size_text = request.query.get("PageSize", str(shapes.DEFAULT_PAGE_SIZE))
    number_text = request.query.get("Page", "0")
    if not size_text.isdigit() or not 1 <= int(size_text) <= shapes.MAX_PAGE_SIZE:
        raise RestError(400, 20001, f"PageSize must be from 1 to {shapes.MAX_PAGE_SIZE}")
    if not number_text.isdigit():
        raise RestError(400, 20001, "Page must be a whole number")
    return shapes.page(key, request.full_path, records, request.query, int(number_text),
                       int(size_text))


def _fields(request: Request) -> tuple[str, Any]:
    return request.api.account_sid, request.world.clock


# --- calls ----------------------------------------------------------------------------------


def _find_call(request: Request) -> Any:
    sid = request.groups["call"]
    for call in request.world.calls:
        if call.call_sid == sid:
            return call
    raise not_found(request.full_path)


def list_calls(request: Request) -> tuple[int, dict[str, Any]]:
    for name in request.query:
        if name.startswith(("StartTime", "EndTime")):
            raise not_simulated(f"listing calls by {name}")
    wanted = {key: request.query[key] for key in ("To", "From", "Status", "ParentCallSid")
              if key in request.query}
    if "Status" in wanted and wanted["Status"] not in CALL_STATUSES:
        raise RestError(400, 20001, f"Status {wanted['Status']!r} is not a call status")
    account, clock = _fields(request)
    records = []
    for call in reversed(request.world.calls):  # Twilio lists the newest first
        shape = shapes.call(account, clock, call)
        if all(shape[{"To": "to", "From": "from", "Status": "status",
                      "ParentCallSid": "parent_call_sid"}[key]] == value
               for key, value in wanted.items()):
            records.append(shape)
    return 200, _page(request, "calls", records)


def fetch_call(request: Request) -> tuple[int, dict[str, Any]]:
    account, clock = _fields(request)
    return 200, shapes.call(account, clock, _find_call(request))


def create_call(request: Request) -> tuple[int, dict[str, Any]]:
    _refuse_others(request, CALL_CREATE_OTHERS, "Calls create")
    to = request.require("To", 21201)
    from_ = request.require("From", 21213)
    twiml = request.params.get("Twiml")
    url = _url(request, "Url")
    if twiml is None and url is None:
        raise RestError(400, 21205, "Url parameter is required (or Twiml)")
    if twiml is not None and url is not None:
        raise RestError(400, 20001, "give Url or Twiml, not both")
    status_callback = _url(request, "StatusCallback", 21609)
    detection = request.params.get("MachineDetection")
    if detection is not None and detection not in ("Enable", "DetectMessageEnd"):
        raise RestError(400, 20001, f"MachineDetection must be Enable or DetectMessageEnd, "
                        f"not {detection!r}")
    world = request.world
    if world.outbound is None:
        raise not_simulated("Placing a call outside a scenario (a run with parties to answer)")
    call = world.outbound(
        to=to, from_=from_, url=url, method=_method(request, "Method"), twiml=twiml,
        fallback_url=_url(request, "FallbackUrl"),
        fallback_method=_method(request, "FallbackMethod"),
        status_callback=status_callback,
        status_callback_method=_method(request, "StatusCallbackMethod"),
        status_callback_events=_events(request), timeout=_timeout(request),
        machine_detection=detection)
    account, clock = _fields(request)
    return 201, shapes.call(account, clock, call)


def update_call(request: Request) -> tuple[int, dict[str, Any]]:
    _refuse_others(request, CALL_UPDATE_OTHERS, "Calls update")
    call = _find_call(request)
    status = request.params.get("Status")
    twiml = request.params.get("Twiml")
    url = _url(request, "Url")
    if status is not None and status not in ("completed", "canceled"):
        raise RestError(400, 20001, f"Status must be completed or canceled, not {status!r}")
    if twiml is not None and url is not None:
        raise RestError(400, 20001, "give Url or Twiml, not both")
    if status is None and twiml is None and url is None:
        raise RestError(400, 20001, "Calls update needs Url, Twiml or Status")
    if call.ended:
        raise RestError(400, 21220, "Call is not in-progress. Cannot redirect.")
    if status == "canceled" and call.status not in ("queued", "ringing"):
        call.remote_note("Status=canceled on a call that is not queued or ringing: "
                         "nothing happens (Twilio's rule)")
    elif status is not None:
        call.remote_end(status)
    else:
        call.remote_redirect(url, _method(request, "Method"), twiml)
    account, clock = _fields(request)
    shape = shapes.call(account, clock, call)
    if status in ("completed", "canceled") and not call.ended:
        shape["status"] = status if status == "completed" else call.status
    return 200, shape


# --- queues and members ---------------------------------------------------------------------


def _find_queue(request: Request) -> Queue:
    sid = request.groups["queue"]
    for queue in request.world.queues.values():
        if queue.sid == sid:
            return queue
    raise not_found(request.full_path)


def _max_size(request: Request, default: int) -> int:
    text = request.params.get("MaxSize")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_QUEUE_SIZE:
        raise RestError(400, 20001, f"MaxSize must be from 1 to {MAX_QUEUE_SIZE}, not {text!r}")
    return int(text)


def list_queues(request: Request) -> tuple[int, dict[str, Any]]:
    account, clock = _fields(request)
    records = [shapes.queue(account, clock, queue) for queue in request.world.queues.values()]
    return 200, _page(request, "queues", records)


def create_queue(request: Request) -> tuple[int, dict[str, Any]]:
    name = request.require("FriendlyName")
    if len(name) > 64:
        raise RestError(400, 20001, "FriendlyName is longer than 64 characters")
    world = request.world
    if name in world.queues:
        raise RestError(400, 22003, f"A queue named {name!r} already exists")
    size = _max_size(request, world.max_queue_sizes.get(name, 1000))
    world.max_queue_sizes[name] = size
    queue = world.queue(name)
    queue.max_size = size
    account, clock = _fields(request)
    return 201, shapes.queue(account, clock, queue)


def fetch_queue(request: Request) -> tuple[int, dict[str, Any]]:
    account, clock = _fields(request)
    return 200, shapes.queue(account, clock, _find_queue(request))


def update_queue(request: Request) -> tuple[int, dict[str, Any]]:
    queue = _find_queue(request)
    name = request.params.get("FriendlyName")
    if name is not None and name != queue.name:
        raise not_simulated("Renaming a queue (Queues update FriendlyName)")
    queue.max_size = _max_size(request, queue.max_size)
    account, clock = _fields(request)
    return 200, shapes.queue(account, clock, queue)


def _find_member(request: Request) -> tuple[Queue, Any]:
    queue = _find_queue(request)
    key = request.groups["member"]
    if key == "Front":
        if not queue.members:
            raise not_found(request.full_path)
        return queue, queue.members[0]
    for member in queue.members:
        if member.call.call_sid == key:
            return queue, member
    raise not_found(request.full_path)


def list_members(request: Request) -> tuple[int, dict[str, Any]]:
    queue = _find_queue(request)
    account, clock = _fields(request)
    records = [shapes.member(account, clock, queue, member) for member in queue.members]
    return 200, _page(request, "queue_members", records)


def fetch_member(request: Request) -> tuple[int, dict[str, Any]]:
    queue, member = _find_member(request)
    account, clock = _fields(request)
    return 200, shapes.member(account, clock, queue, member)


def update_member(request: Request) -> tuple[int, dict[str, Any]]:
    queue, member = _find_member(request)
    url = _url(request, "Url", 21205)
    if url is None:
        raise missing("Url")
    account, clock = _fields(request)
    shape = shapes.member(account, clock, queue, member)
    member.call.remote_dequeue(url, _method(request, "Method"))
    return 200, shape


# --- conferences and participants -----------------------------------------------------------


def _find_room(request: Request) -> Conference:
    key = request.groups["conference"]
    for room in reversed(request.world.rooms):
        if room.sid == key:
            return room
    raise not_found(request.full_path)


def list_conferences(request: Request) -> tuple[int, dict[str, Any]]:
    for key in request.query:
        if key.startswith(("DateCreated", "DateUpdated")):
            raise not_simulated(f"listing conferences by {key}")
    status = request.query.get("Status")
    if status is not None and status not in ("init", "in-progress", "completed"):
        raise RestError(400, 20001, f"Status {status!r} is not init, in-progress or completed")
    name = request.query.get("FriendlyName")
    account, clock = _fields(request)
    records = [shapes.conference(account, clock, room) for room in reversed(request.world.rooms)
               if (name is None or room.name == name)
               and (status is None or shapes.conference_status(room) == status)]
    return 200, _page(request, "conferences", records)


def fetch_conference(request: Request) -> tuple[int, dict[str, Any]]:
    account, clock = _fields(request)
    return 200, shapes.conference(account, clock, _find_room(request))


def update_conference(request: Request) -> tuple[int, dict[str, Any]]:
    _refuse_others(request, {"StatusCallback"}, "Conferences update")
    room = _find_room(request)
    status = request.params.get("Status")
    announce = _url(request, "AnnounceUrl", 20001)
    if status is not None and status != "completed":
        raise RestError(400, 20001, f"Status must be completed, not {status!r}")
    if status is None and announce is None:
        raise RestError(400, 20001, "Conferences update needs Status or AnnounceUrl")
    if room.ended:
        raise RestError(400, 20001, f"the conference {room.sid} has ended")
    if announce is not None:
        method = _method(request, "AnnounceMethod")
        for index, participant in enumerate(list(room.participants)):
            participant.call.remote_announce(announce, method, fetch=index == 0,
                                             others=[p.call for p in room.participants])
    if status == "completed":
        room.ended = True
        room.ended_at = request.world.clock.now
        for participant in list(room.participants):
            participant.call.remote_conference_ended()
    account, clock = _fields(request)
    return 200, shapes.conference(account, clock, room)


def _find_participant(request: Request) -> tuple[Conference, Participant]:
    room = _find_room(request)
    key = request.groups["participant"]
    for participant in room.participants:
        if key in (participant.call.call_sid, participant.label):
            return room, participant
    raise not_found(request.full_path)


def list_participants(request: Request) -> tuple[int, dict[str, Any]]:
    room = _find_room(request)
    account, clock = _fields(request)
    wanted = {key: request.query[key].lower() == "true" for key in ("Muted", "Hold", "Coaching")
              if key in request.query}
    records = [shape for shape in (shapes.participant(account, clock, room, p)
                                   for p in room.participants)
               if all(shape[key.lower()] == value for key, value in wanted.items())]
    return 200, _page(request, "participants", records)


def fetch_participant(request: Request) -> tuple[int, dict[str, Any]]:
    room, participant = _find_participant(request)
    account, clock = _fields(request)
    return 200, shapes.participant(account, clock, room, participant)


def update_participant(request: Request) -> tuple[int, dict[str, Any]]:
    _refuse_others(request, {"WaitUrl", "WaitMethod", "BeepOnExit", "Coaching",
                             "CallSidToCoach"}, "Participants update")
    room, participant = _find_participant(request)
    unknown = set(request.params) - PARTICIPANT_UPDATE
    if not set(request.params) & PARTICIPANT_UPDATE:
        raise RestError(400, 20001, "Participants update needs one of "
                        + ", ".join(sorted(PARTICIPANT_UPDATE)))
    del unknown  # parameters Twilio does not know are ignored, as Twilio does
    call = participant.call
    if "Muted" in request.params:
        participant.muted = _bool(request, "Muted", participant.muted)
        call.remote_mute(participant.muted)
    if "EndConferenceOnExit" in request.params:
        participant.end_on_exit = _bool(request, "EndConferenceOnExit", participant.end_on_exit)
    if "Hold" in request.params:
        hold = _bool(request, "Hold", participant.hold)
        participant.hold = hold
        call.remote_hold(hold, _url(request, "HoldUrl", 20001), _method(request, "HoldMethod"))
    elif "HoldUrl" in request.params:
        raise RestError(400, 20001, "HoldUrl is used with Hold=true")
    announce = _url(request, "AnnounceUrl", 20001)
    if announce is not None:
        call.remote_announce(announce, _method(request, "AnnounceMethod"), fetch=True, others=[])
    account, clock = _fields(request)
    return 200, shapes.participant(account, clock, room, participant)


def create_participant(request: Request) -> tuple[int, dict[str, Any]]:
    _refuse_others(request, {"WaitUrl", "WaitMethod", "Coaching", "CallSidToCoach",
                             "EarlyMedia", "Record", "ConferenceRecord", "MaxParticipants",
                             "ConferenceStatusCallback", "ConferenceStatusCallbackEvent",
                             "ConferenceStatusCallbackMethod", "Region", "CallerId",
                             "SipAuthUsername", "SipAuthPassword", "JitterBufferSize",
                             "ConferenceTrim", "RecordingChannels", "TimeLimit",
                             "MachineDetection", "AmdStatusCallback", "CallReason"},
                   "Participants create")
    to = request.require("To", 21201)
    from_ = request.require("From", 21213)
    key = request.groups["conference"]
    world = request.world
    room = next((r for r in reversed(world.rooms) if r.sid == key), None)
    if room is None and re.fullmatch(SID, key):
        raise not_found(request.full_path)
    name = room.name if room is not None else key
    if room is not None and room.ended:
        raise RestError(400, 20001, f"the conference {room.sid} has ended")
    if world.outbound is None:
        raise not_simulated("Dialling a participant outside a scenario")
    flags = {"startConferenceOnEnter": _bool(request, "StartConferenceOnEnter", True),
             "endConferenceOnExit": _bool(request, "EndConferenceOnExit", False),
             "muted": _bool(request, "Muted", False)}
    beep = request.params.get("Beep", "true")
    if beep not in ("true", "false", "onEnter", "onExit"):
        raise RestError(400, 20001, f"Beep must be true, false, onEnter or onExit, not {beep!r}")
    attributes = " ".join(f'{attr}="{str(value).lower()}"' for attr, value in flags.items())
    twiml = (f'<Response><Dial><Conference {attributes} beep="{beep}">'
             f"{_xml(name)}</Conference></Dial></Response>")
    label = request.params.get("Label")
    call = world.outbound(
        to=to, from_=from_, url=None, method="POST", twiml=twiml, fallback_url=None,
        fallback_method="POST", status_callback=_url(request, "StatusCallback", 21609),
        status_callback_method=_method(request, "StatusCallbackMethod"),
        status_callback_events=_events(request), timeout=_timeout(request),
        machine_detection=None, label=label)
    room = room or world.conference(name)
    pending = Participant(call, flags["startConferenceOnEnter"], flags["endConferenceOnExit"],
                          beep in ("true", "onEnter"), beep in ("true", "onExit"),
                          flags["muted"], world.clock.now, label=label)
    account, clock = _fields(request)
    shape = shapes.participant(account, clock, room, pending)
    shape["status"] = "queued"
    return 201, shape


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _routes() -> list[tuple[re.Pattern[str], dict[str, Handler], str]]:
    def route(path: str, resource: str, **handlers: Callable[[Request], Any]
              ) -> tuple[re.Pattern[str], dict[str, Handler], str]:
        return re.compile(f"^{path}$"), {m.upper(): h for m, h in handlers.items()}, resource

    part = r"(?P<participant>[^/]+)"
    conference = r"(?P<conference>[^/]+)"
    return [
        route(r"/Calls\.json", "Calls", get=list_calls, post=create_call),
        route(rf"/Calls/(?P<call>{SID})\.json", "Calls", get=fetch_call, post=update_call),
        route(r"/Queues\.json", "Queues", get=list_queues, post=create_queue),
        route(rf"/Queues/(?P<queue>{SID})\.json", "Queues", get=fetch_queue,
              post=update_queue),
        route(rf"/Queues/(?P<queue>{SID})/Members\.json", "Queues/Members", get=list_members),
        route(rf"/Queues/(?P<queue>{SID})/Members/(?P<member>{SID}|Front)\.json",
              "Queues/Members", get=fetch_member, post=update_member),
        route(r"/Conferences\.json", "Conferences", get=list_conferences),
        route(rf"/Conferences/(?P<conference>{SID})\.json", "Conferences",
              get=fetch_conference, post=update_conference),
        route(rf"/Conferences/{conference}/Participants\.json", "Conferences/Participants",
              get=list_participants, post=create_participant),
        route(rf"/Conferences/(?P<conference>{SID})/Participants/{part}\.json",
              "Conferences/Participants", get=fetch_participant, post=update_participant),
    ]


ROUTES = _routes()
