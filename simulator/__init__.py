"""A Twilio-faithful TwiML interpreter: text phone, scripted calls, load."""

from simulator.call import Call, PendingRecord, Request
from simulator.client import WebhookClient
from simulator.clock import Clock
from simulator.dialer import Simulator
from simulator.direct import DirectTransport
from simulator.errors import CallEnded, ConnectionFailed, NotWaiting, SimulatorError, Stalled
from simulator.gather import Collected, PendingGather
from simulator.phone import run_phone
from simulator.results import Failure, ScriptResult, summary, write_transcript, write_transcripts
from simulator.script import (
    Batch,
    LineOpener,
    PromptResolver,
    Wording,
    expand,
    plan,
    run_batch,
    run_script,
    run_scripts,
)
from simulator.script_format import (
    FolderSettings,
    PromptRef,
    Script,
    ScriptError,
    Step,
    load_script,
)
from simulator.transcript import Event, Utterance, format_events
from simulator.transport import (
    HttpTransport,
    Transport,
    WebhookRequest,
    WebhookResponse,
    WsgiTransport,
)
from simulator.world import Scheduler, World
from simulator.wrappers import Signed, Timed

__all__ = [
    "Batch",
    "Call",
    "CallEnded",
    "Clock",
    "Collected",
    "ConnectionFailed",
    "DirectTransport",
    "Event",
    "Failure",
    "FolderSettings",
    "PendingGather",
    "PendingRecord",
    "PromptRef",
    "PromptResolver",
    "Request",
    "Scheduler",
    "HttpTransport",
    "LineOpener",
    "NotWaiting",
    "Script",
    "ScriptError",
    "ScriptResult",
    "Signed",
    "Simulator",
    "SimulatorError",
    "Stalled",
    "Step",
    "Timed",
    "Transport",
    "Utterance",
    "WebhookClient",
    "WebhookRequest",
    "WebhookResponse",
    "World",
    "Wording",
    "WsgiTransport",
    "expand",
    "format_events",
    "load_script",
    "plan",
    "run_batch",
    "run_phone",
    "run_script",
    "run_scripts",
    "summary",
    "write_transcript",
    "write_transcripts",
]
