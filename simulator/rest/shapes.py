"""Twilio's JSON shapes for the simulated REST resources: calls, queues and their members,
conferences and their participants, list pages and errors (api.twilio.com/2010-04-01).

Field names and value kinds are those of Twilio's API reference (the twilio library parses
them): dates in RFC 2822 (`Fri, 04 Dec 2026 10:00:00 +0000`), durations and times as strings
or integers as Twilio gives them, absent values as null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from simulator.clock import Clock
from simulator.world import Conference, Member, Participant, Queue

API_VERSION = "2010-04-01"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
ERROR_DOCS = "https://www.twilio.com/docs/errors/{code}"


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def moment(clock: Clock, seconds: float | None) -> str | None:
    """A clock second as Twilio writes dates (RFC 2822, UTC); None stays None."""
    if seconds is None:
        return None
    return format_datetime((clock.start + timedelta(seconds=seconds)).astimezone(UTC))


def error(status: int, code: int, message: str, more_info: str | None = None) -> dict[str, Any]:
    """Twilio's error body: code, message, more_info, status."""
    return {"code": code, "message": message,
            "more_info": more_info or ERROR_DOCS.format(code=code), "status": status}


def call(account_sid: str, clock: Clock, call: Any) -> dict[str, Any]:
    """A Call resource from a simulated call (simulator.call.Call)."""
    uri = f"{account_path(account_sid)}/Calls/{call.call_sid}"
    answered_at = getattr(call, "answered_at", None)
    started = answered_at if answered_at is not None else None
    if started is None and call.direction == "inbound":
        started = call.started
    ended = call.ended_at
    duration = None
    if ended is not None:
        duration = str(math.ceil(ended - started)) if started is not None else "0"
    return {
        "sid": call.call_sid,
        "account_sid": account_sid,
        "parent_call_sid": getattr(call, "parent_call_sid", None),
        "date_created": moment(clock, call.started),
        "date_updated": moment(clock, ended if ended is not None else clock.now),
        "to": call.to,
        "to_formatted": call.to,
        "from": call.from_,
        "from_formatted": call.from_,
        "phone_number_sid": None,
        "status": call.status,
        "start_time": moment(clock, started),
        "end_time": moment(clock, ended),
        "duration": duration,
        "price": None,
        "price_unit": "USD",
        "direction": call.direction,
        "answered_by": getattr(call, "answered_by", None),
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {
            name: f"{uri}/{path}.json" for name, path in (
                ("notifications", "Notifications"), ("recordings", "Recordings"),
                ("payments", "Payments"), ("events", "Events"), ("siprec", "Siprec"),
                ("streams", "Streams"), ("user_defined_message_subscriptions",
                                         "UserDefinedMessageSubscriptions"),
                ("user_defined_messages", "UserDefinedMessages"))
        },
    }


def queue(account_sid: str, clock: Clock, queue: Queue) -> dict[str, Any]:
    uri = f"{account_path(account_sid)}/Queues/{queue.sid}"
    return {
        "sid": queue.sid,
        "account_sid": account_sid,
        "friendly_name": queue.name,
        "current_size": len(queue.members),
        "max_size": queue.max_size,
        "average_wait_time": queue.average_wait(),
        "date_created": moment(clock, queue.created),
        "date_updated": moment(clock, clock.now),
        "uri": f"{uri}.json",
        "subresource_uris": {"members": f"{uri}/Members.json"},
    }


def member(account_sid: str, clock: Clock, queue: Queue, member: Member) -> dict[str, Any]:
    return {
        "call_sid": member.call.call_sid,
        "queue_sid": queue.sid,
        "date_enqueued": moment(clock, member.since),
        "position": queue.position(member.call),
        "wait_time": round(clock.now - member.since),
        "uri": f"{account_path(account_sid)}/Queues/{queue.sid}/Members/"
               f"{member.call.call_sid}.json",
    }


def conference_status(room: Conference) -> str:
    """init (nobody has started it), in-progress, completed."""
    if room.ended:
        return "completed"
    return "in-progress" if room.started else "init"


def conference(account_sid: str, clock: Clock, room: Conference) -> dict[str, Any]:
    uri = f"{account_path(account_sid)}/Conferences/{room.sid}"
    return {
        "sid": room.sid,
        "account_sid": account_sid,
        "friendly_name": room.name,
        "status": conference_status(room),
        "region": "us1",
        "api_version": API_VERSION,
        "date_created": moment(clock, room.created),
        "date_updated": moment(clock, room.ended_at if room.ended else clock.now),
        "reason_conference_ended": getattr(room, "reason", None) if room.ended else None,
        "call_sid_ending_conference": None,
        "uri": f"{uri}.json",
        "subresource_uris": {"participants": f"{uri}/Participants.json",
                             "recordings": f"{uri}/Recordings.json"},
    }


def participant(account_sid: str, clock: Clock, room: Conference,
                participant: Participant) -> dict[str, Any]:
    sid = participant.call.call_sid
    return {
        "account_sid": account_sid,
        "call_sid": sid,
        "conference_sid": room.sid,
        "label": participant.label,
        "call_sid_to_coach": None,
        "coaching": False,
        "muted": participant.muted,
        "hold": participant.hold,
        "start_conference_on_enter": participant.start_on_enter,
        "end_conference_on_exit": participant.end_on_exit,
        "status": "connected",
        "queue_time": "0",
        "date_created": moment(clock, participant.since),
        "date_updated": moment(clock, clock.now),
        "uri": f"{account_path(account_sid)}/Conferences/{room.sid}/Participants/{sid}.json",
    }


def page(key: str, path: str, records: Sequence[Mapping[str, Any]],
         query: Mapping[str, str], number: int, size: int) -> dict[str, Any]:
    """A list page as Twilio answers it: the records under `key`, and the page links."""
    start = number * size
    chunk = list(records[start:start + size])
    kept = {name: value for name, value in query.items()
            if name not in ("Page", "PageSize", "PageToken")}

    def link(at: int) -> str:
        return f"{path}?{urlencode({**kept, 'PageSize': size, 'Page': at})}"

    more = start + size < len(records)
    return {
        key: chunk,
        "uri": link(number),
        "first_page_uri": link(0),
        "next_page_uri": link(number + 1) if more else None,
        "previous_page_uri": link(number - 1) if number > 0 else None,
        "page": number,
        "page_size": size,
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
    }
