"""Slow clients against a running hotline: do signed calls still get answered?

Opens N connections to a LOOPBACK server that trickle their request (the headers, or a
body) a few bytes at a time, and meanwhile sends signed answer webhooks (POST /voice, a new
call each) one after another, timing each. Everything stops by itself after --seconds.

    python bench/slow_clients.py --url http://127.0.0.1:5000 --token TOKEN --slow 50
    python bench/slow_clients.py ... --slow 200 --mode body --public-url https://ivr.example.org

Only loopback addresses are accepted: this is a measuring tool, not a load tool for others'
servers. Prints one JSON line (answered, failed, p50/p99/max ms, slow connections held).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

MAX_SLOW = 1000


@dataclass
class SlowStats:
    opened: int = 0
    refused: int = 0
    closed_by_server: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _loopback(host: str) -> str:
    address = socket.gethostbyname(host)
    if not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"{host} is not a loopback address: refusing to open slow connections")
    return address


def trickle(host: str, port: int, mode: str, interval: float, until: float,
            stats: SlowStats) -> None:
    """One slow client: a request sent a few bytes every `interval` s, never finished."""
    head = b""
    if mode == "headers":
        payload = (b"POST /voice HTTP/1.1\r\nHost: x\r\n"
                   + b"".join(b"X-Slow-%d: %s\r\n" % (i, b"a" * 20) for i in range(2000)))
    else:  # headers at once, then a body announced at 60 KiB (under the 64 KiB cap) and sent
        # 8 bytes at a time
        head = (b"POST /voice HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 61440\r\n\r\n")
        payload = b"CallSid=CA" + b"a" * 61430
    step = 8
    while time.monotonic() < until:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                with stats.lock:
                    stats.opened += 1
                sock.sendall(head)
                sent = 0
                while time.monotonic() < until and sent < len(payload):
                    sock.sendall(payload[sent:sent + step])
                    sent += step
                    time.sleep(interval)
                if time.monotonic() >= until:
                    return
        except OSError:
            with stats.lock:
                stats.closed_by_server += 1
            time.sleep(interval)


def signed_calls(url: str, token: str, public_url: str | None, until: float,
                 pause: float) -> tuple[list[float], int]:
    """Signed answer webhooks one after another until `until`; their latencies (ms)."""
    validator = RequestValidator(token)
    signed_on = (public_url.rstrip("/") if public_url else url) + "/voice"
    latencies: list[float] = []
    failed = 0
    with httpx.Client(timeout=10.0) as client:
        while time.monotonic() < until:
            params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
                      "From": "+8613900000001", "To": "+8612333", "CallStatus": "ringing",
                      "Direction": "inbound"}
            headers = {"X-Twilio-Signature": validator.compute_signature(signed_on, params)}
            start = time.perf_counter()
            try:
                response = client.post(f"{url}/voice", data=params, headers=headers)
                ok = response.status_code == 200 and b"<Response" in response.content
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - start) * 1000
            if ok:
                latencies.append(elapsed)
            else:
                failed += 1
            time.sleep(pause)
    return latencies, failed


def measure(url: str, token: str, *, slow: int, mode: str = "headers", seconds: float = 10.0,
            interval: float = 0.5, warmup: float = 1.0, public_url: str | None = None,
            pause: float = 0.02, bodies: int = 0) -> dict[str, object]:
    """`slow` connections trickling in `mode`, and `bodies` more trickling bodies."""
    parts = urlsplit(url)
    host = _loopback(parts.hostname or "")
    port = parts.port or 80
    slow, bodies = min(slow, MAX_SLOW), min(bodies, MAX_SLOW)
    stats = SlowStats()
    until = time.monotonic() + warmup + seconds
    threads = [threading.Thread(target=trickle, args=(host, port, kind, interval, until, stats),
                                daemon=True)
               for kind, n in ((mode, slow), ("body", bodies)) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(warmup)  # let the slow clients take whatever they can
    latencies, failed = signed_calls(url.rstrip("/"), token, public_url, until, pause)
    for t in threads:
        t.join(timeout=interval + 6)
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

    return {"slow": slow, "mode": mode, "bodies": bodies, "answered": len(latencies),
            "failed": failed,
            "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
            "p99_ms": pct(99), "max_ms": round(ordered[-1], 1) if ordered else None,
            "slow_opened": stats.opened, "slow_closed_by_server": stats.closed_by_server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--token", required=True, help="the auth token the server checks")
    parser.add_argument("--public-url", help="the server's IVR_PUBLIC_URL, if set")
    parser.add_argument("--slow", type=int, default=50, help=f"slow connections (<= {MAX_SLOW})")
    parser.add_argument("--mode", choices=["headers", "body"], default="headers")
    parser.add_argument("--bodies", type=int, default=0, help="more connections trickling bodies")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.5, help="s between two trickles")
    args = parser.parse_args()
    result = measure(args.url, args.token, slow=args.slow, mode=args.mode, seconds=args.seconds,
                     interval=args.interval, public_url=args.public_url, bodies=args.bodies)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
