"""In-process full calls per second through the simulator, by transport, against the Pizza Line.

    .venv/bin/python bench/transports.py [--calls 200] [--rounds 5]

Each call is signed, plays four documents (the order: menu, quantity, PIN; a cookie kept
across them) and posts its status callback: five webhooks. The app is tests/twiml_app.py, a
small Flask app that checks every signature: about half of the CPU is the app's. Transports
take turns, round after round; each keeps its best calls per wall second and its least CPU
milliseconds per call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from twiml_app import create_app  # noqa: E402

from simulator import DirectTransport, Simulator, Transport, WsgiTransport  # noqa: E402

TOKEN = "bench-token"
TRANSPORTS: dict[str, Callable[[Any], Transport]] = {
    "direct (no HTTP client)": DirectTransport,
    "WSGI through httpx": WsgiTransport,
}


def full_call(simulator: Simulator) -> None:
    call = simulator.dial()
    call.press("1")
    call.press("2#")
    call.press("1234")
    if call.error is not None or not call.heard.startswith("PIN 1234 accepted. Session s"):
        raise RuntimeError(f"the call went wrong: {call.error or call.heard}")


def measure(transport: Transport, calls: int) -> tuple[float, float]:
    """(calls per wall second, CPU ms per call) for `calls` calls in a row."""
    simulator = Simulator(transport, "http://pizza.test/voice", auth_token=TOKEN,
                          status_callback="/status")
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        full_call(simulator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best one counts")
    args = parser.parse_args(argv)
    apps = {label: create_app(auth_token=TOKEN) for label in TRANSPORTS}
    transports = {label: make(apps[label]) for label, make in TRANSPORTS.items()}
    best = dict.fromkeys(TRANSPORTS, (0.0, float("inf")))
    for transport in transports.values():
        measure(transport, 20)  # warm up
    for _ in range(args.rounds):  # in turns: a burst of other work lands on both
        for label, transport in transports.items():
            apps[label].config["PIZZA"].reset(auth_token=TOKEN)  # its request log grows
            rate, cpu = measure(transport, args.calls)
            best[label] = (max(best[label][0], rate), min(best[label][1], cpu))
    print("| transport | calls/s | CPU ms / call |\n|---|---:|---:|")
    for label, (rate, cpu) in best.items():
        print(f"| {label} | {rate:.0f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
