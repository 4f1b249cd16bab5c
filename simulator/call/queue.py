"""Queues: <Enqueue> and <Leave> (the caller's side), <Dial><Queue> (the agent's side), the
dequeue and the bridge between them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from simulator import transcript as kind
from simulator.call.dial import DIAL_TIMEOUT_SECONDS, Dialling
from simulator.call.state import Hold
from simulator.errors import ApplicationError
from simulator.twiml import method_attr, number_attr, text_of
from simulator.world import Member

if TYPE_CHECKING:
    from simulator.call import Call


class Queueing(Dialling):
    """A caller waits in a queue; an agent dials it and takes the caller at its head."""

    def _enqueue(self, verb: Element) -> None:
        name = text_of(verb)
        if verb.get("workflowSid") or any(child.tag == "Task" for child in verb):
            self._not_simulated("<Enqueue workflowSid>/<Task> (TaskRouter)")
            raise ApplicationError("<Enqueue> to a TaskRouter workflow is not simulated")
        if not name:
            raise ApplicationError("<Enqueue> has no queue name")
        if len(name) > 64:
            raise ApplicationError(f"<Enqueue> queue name longer than 64 characters: {name!r}")
        queue = self.world.queue(name)
        action = verb.get("action")
        wait_url = verb.get("waitUrl")
        hold = Hold("queue", verb, (self._verbs, self._next, self._document_url),
                     urljoin(self._document_url, action) if action else None,
                     method_attr(verb, self._warn),
                     urljoin(self._document_url, wait_url) if wait_url else None,
                     method_attr(verb, self._warn, "waitUrlMethod"),
                     queue=queue, since=self.clock.now)
        if len(queue.members) >= queue.max_size:
            self._event(kind.QUEUE, f"{name} is full ({queue.max_size}): QueueResult=queue-full")
            self._hold = hold
            self._queue_done("queue-full", 0)
            return
        hold.member = Member(self, self.clock.now)
        queue.members.append(hold.member)
        self._hold = hold
        self._event(kind.QUEUE, f"enters queue {name} ({queue.sid}) at position "
                                f"{len(queue.members)} of {len(queue.members)}")
        for agent in list(queue.agents):
            agent._events.append(("caller-waiting", queue))
            self.world.wake(agent)

    def _leave(self, verb: Element) -> None:
        hold = self._hold
        assert hold is not None and hold.queue is not None
        self._event(kind.QUEUE, f"<Leave>: the caller leaves queue {hold.queue.name}")
        self._queue_done("leave", self.clock.now - hold.since)

    def _queue_done(self, result: str, waited: float) -> None:
        """The caller is out of the queue (left, full, bridged and done): its action or the
        verb after the <Enqueue>."""
        hold = self._hold
        assert hold is not None and hold.queue is not None
        if hold.member is not None and hold.member in hold.queue.members:
            hold.queue.members.remove(hold.member)
        self._leave_hold()
        params = {"QueueResult": result, "QueueSid": hold.queue.sid,
                  "QueueTime": str(round(waited))}
        if hold.action:
            self._fetch(hold.action, hold.method, params)
        else:
            self._note(f"<Enqueue> has no action (QueueResult={result}): the next verb runs")

    def _hold_params(self) -> dict[str, str]:
        """The extra parameters of a wait document's requests (and its Redirects)."""
        hold = self._hold
        if hold is None or hold.kind != "queue" or hold.queue is None:
            return {}
        queue = hold.queue
        return {"QueueSid": queue.sid, "QueuePosition": str(queue.position(self)),
                "QueueTime": str(round(self.clock.now - hold.since)),
                "AvgQueueTime": str(queue.average_wait()),
                "CurrentQueueSize": str(len(queue.members)),
                "MaxQueueSize": str(queue.max_size)}

    def _dial_queue(self, verb: Element, noun: Element) -> None:
        name = text_of(noun)
        if not name:
            raise ApplicationError("<Queue> has no queue name")
        for task in ("reservationSid", "postWorkActivitySid"):
            if noun.get(task):
                self._not_simulated(f"<Queue {task}> (TaskRouter)")
                raise ApplicationError(f"<Queue {task}> (TaskRouter) is not simulated")
        queue = self.world.queue(name)
        self.dialled.append(f"queue:{name}")
        action, method = self._dial_action(verb)
        hold = Hold("agent", verb, (self._verbs, self._next, self._document_url), action,
                     method, queue=queue, since=self.clock.now)
        timeout = number_attr(verb, "timeout", DIAL_TIMEOUT_SECONDS, self._warn)
        hold.until = self.clock.after(timeout)
        url = noun.get("url")
        hold.wait_url = urljoin(self._document_url, url) if url else None
        hold.wait_method = method_attr(noun, self._warn)
        self._hold = hold
        self._event(kind.DIAL, f"queue {name} ({len(queue.members)} waiting)")
        queue.agents.append(self)

    def _dequeue(self, hold: Hold) -> None:
        """This agent takes the caller at the head of its queue."""
        queue = hold.queue
        assert queue is not None
        member = queue.members.pop(0)
        if self in queue.agents:
            queue.agents.remove(self)
        waited = self.clock.now - member.since
        queue.waited.append(waited)
        hold.peer = member.call
        self._event(kind.QUEUE, f"dequeues {member.call.name} ({member.call.call_sid}) from "
                                f"{queue.name} after {waited:g} s")
        member.call._events.append(("dequeued", self, hold.wait_url, hold.wait_method))
        self.world.wake(member.call)

    def _bridge(self, peer: Call) -> None:
        hold = self._hold
        assert hold is not None
        hold.kind = "bridge"
        hold.peer = peer
        hold.bridged_at = self.clock.now
        self._event(kind.BRIDGE, f"connected to {peer.name} ({peer.call_sid})")
