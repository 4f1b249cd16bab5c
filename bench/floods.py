"""The worst unsigned request's CPU against a normal webhook's, in one process (issue 20.5:
goal within 3x). Each request goes through the real WSGI app (signature checks on) from a
prebuilt environ, so only the app's work is timed; best of ROUNDS rounds of N requests.

    .venv/bin/python bench/floods.py          # about 20 s

Normal: a signed first webhook of a new call, every field Twilio sends (the session is created
and the welcome answered). Unsigned, each refused: the 6,800-field flood (before: parsed whole
and signed three times), the widest form the shape check lets through (99 fields filling the
64 KiB cap), the longest values it lets through (15 x 4 KiB), and a normal form badly signed.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.run import key_file, make_db, settings  # noqa: E402
from ivr.web import create_app, form  # noqa: E402

TOKEN = "bench-token-0123456789abcdef0123"
ROUNDS, N = 3, 200


def twilio_form(call_sid: str) -> dict[str, str]:
    return {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": "ringing", "CallToken": "A" * 1400, "Called": "+8612333",
            "CalledCountry": "CN", "Caller": "+8613900000001", "CallerCountry": "CN",
            "Direction": "inbound", "From": "+8613900000001", "FromCountry": "CN",
            "To": "+8612333", "ToCountry": "CN", "StirVerstat": "TN-Validation-Passed-A"}


def environ(body: bytes, signature: str) -> dict[str, Any]:
    env: dict[str, Any] = EnvironBuilder(
        path="/voice", method="POST", data=body, content_type=form.FORM_TYPE,
        headers={"X-Twilio-Signature": signature}, base_url="http://localhost").get_environ()
    return env


def _recorder(statuses: list[str]) -> Callable[..., None]:
    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        statuses.append(status)

    return start_response


def cpu_per_request(app: Any, make: Callable[[], dict[str, Any]], expect: str) -> float:
    """Best per-request process CPU (µs) over ROUNDS rounds of N requests."""
    best = float("inf")
    for _ in range(ROUNDS):
        environs = [make() for _ in range(N)]
        statuses: list[str] = []
        start_response = _recorder(statuses)

        started = time.process_time()
        for env in environs:
            env["wsgi.input"] = io.BytesIO(env["wsgi.input"].getvalue())
            b"".join(app(env, start_response))
        best = min(best, (time.process_time() - started) / N * 1e6)
        assert all(s.startswith(expect) for s in statuses), (expect, set(statuses))
    return best


def main() -> None:
    from twilio.request_validator import RequestValidator

    folder = Path(tempfile.mkdtemp(prefix="ivr-bench-floods-"))
    key_file(folder)
    app = create_app(settings(make_db(folder, "floods", 1000), TOKEN, folder))
    validator = RequestValidator(TOKEN)

    def normal() -> dict[str, Any]:
        params = twilio_form("CA" + uuid.uuid4().hex)
        return environ(urlencode(params).encode(),
                       validator.compute_signature("http://localhost/voice", params))

    sid = "CA" + uuid.uuid4().hex
    flood = b"CallSid=" + sid.encode() + b"".join(b"&a%d=" % i for i in range(6800))
    per = (64 * 1024 - 200) // 99
    widest = b"&".join([b"CallSid=" + sid.encode()]
                       + [b"F%02d=" % i + b"x" * (per - 5) for i in range(98)])
    longest = b"&".join([b"CallSid=" + sid.encode()]
                        + [b"V%02d=" % i + b"x" * 4090 for i in range(15)])
    bad = urlencode(twilio_form(sid)).encode()
    rows = [("normal: a signed first webhook (new call)", normal, "200")]
    for name, body, status in [
            (f"flood: {flood.count(b'&') + 1} fields, {len(flood)} bytes", flood, "400"),
            (f"widest allowed: {widest.count(b'&') + 1} fields, {len(widest)} bytes", widest,
             "403"),
            (f"longest values allowed: 16 fields, {len(longest)} bytes", longest, "403"),
            ("a normal form, badly signed", bad, "403")]:
        assert len(body) <= 64 * 1024, name
        rows.append((name, lambda body=body: environ(body, "bad"), status))
    results = [(name, status, cpu_per_request(app, make, status))
               for name, make, status in rows]
    base = results[0][2]
    print(f"\nbest of {ROUNDS} rounds of {N}, one process (other agents share the 2 cores)\n")
    print("| request | answer | CPU / request (µs) | x normal |")
    print("|---|---:|---:|---:|")
    for name, status, cpu in results:
        print(f"| {name} | {status} | {cpu:.0f} | {cpu / base:.2f} |")
    worst = max(results[1:], key=lambda r: r[2])
    print(f"\nworst unsigned: {worst[0]}: {worst[2] / base:.2f}x a normal request (goal <= 3)")


if __name__ == "__main__":
    main()
