"""Which HTTP server `serve` runs on: candidates measured in one run, on the floor app.

    .venv/bin/python bench/servers.py             # about 2 minutes on 2 cores
    .venv/bin/python bench/servers.py --requests 4000 --only serve granian-wsgi

Each candidate serves bench/floor_app.py's form_app (reads its form, answers a constant TwiML
document: the least a webhook does) with 2 workers on loopback:
  gunicorn-sync     gunicorn's sync workers (needs gunicorn: pip install -e .[bench])
  gunicorn-gthread  gunicorn's gthread workers, 8 threads
  granian-wsgi      granian's own WSGI interface (a blocking thread per request, body included)
  serve             what `ivr12333 serve` runs (ivr/web/serve.py): granian, RequestGuard
                    (limits, body deadline, on the event loop), a2wsgi's pool of 8 threads
CPU: REQUESTS form posts of a webhook's size from 8 client threads, one connection each;
the workers' CPU from /proc per request. Attacks (bench/slow_clients.py): signed posts one
after another while 200 connections trickle headers and 50 trickle bodies, then while 600
trickle bodies (more than granian's default 256 blocking threads a worker). Prints Markdown.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BIN, Server, free_port, machine_busy_seconds  # noqa: E402
from bench.slow_clients import measure  # noqa: E402

FORM = (b"CallSid=CA0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789"
        b"abcdef&From=%2B8613900000001&To=%2B8612333&CallStatus=in-progress&Direction=inbound"
        b"&ApiVersion=2010-04-01&Digits=1")
REQUEST = (b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\n"
           b"X-Twilio-Signature: 0123456789abcdef0123456789a=\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n" % len(FORM) + FORM)


def argv(name: str, port: int) -> list[str]:
    app = "bench.floor_app:form_app"
    bind = f"127.0.0.1:{port}"
    if name == "gunicorn-sync":
        return [str(BIN / "gunicorn"), "-b", bind, "-w", "2", "--no-control-socket", app]
    if name == "gunicorn-gthread":
        return [str(BIN / "gunicorn"), "-b", bind, "-w", "2", "-k", "gthread", "--threads", "8",
                "--keep-alive", "0", "--no-control-socket", app]
    if name == "granian-wsgi":
        return [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                str(port), "--workers", "2", "--http", "1", "--no-http1-keep-alive",
                "--log-level", "warning", app]
    return [sys.executable, "-m", "bench.serve_floor", "--port", str(port), "--workers", "2",
            "--form"]


def post(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(REQUEST)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.startswith(b"HTTP/1.1 200")


def cpu_per_request(server: Server, requests: int, clients: int = 8) -> tuple[float, float, int]:
    """(worker CPU µs per request, requests/s, failures)."""
    for _ in range(50):  # warm-up
        post(server.port)
    failures = 0
    lock = threading.Lock()
    per_client = requests // clients

    def client() -> None:
        nonlocal failures
        for _ in range(per_client):
            try:
                ok = post(server.port)
            except OSError:
                ok = False
            if not ok:
                with lock:
                    failures += 1

    cpu0, wall0 = server.worker_cpu(), time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    cpu = server.worker_cpu() - cpu0
    done = per_client * clients
    return cpu / done * 1e6, done / wall, failures


def attack(url: str, headers: int, bodies: int, seconds: float) -> dict[str, object]:
    """Signed posts while `headers` connections trickle headers and `bodies` trickle bodies."""
    return measure(url, "x" * 32, slow=headers, mode="headers", seconds=seconds, interval=0.5,
                   bodies=bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=3.0, help="each attack's length")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    names = args.only or ["gunicorn-sync", "gunicorn-gthread", "granian-wsgi", "serve"]
    rows = []
    busy0 = machine_busy_seconds()
    started = time.monotonic()
    for name in names:
        port = free_port()
        log = Path(tempfile.gettempdir()) / f"bench-servers-{name}.log"
        print(f"{name} ...", file=sys.stderr, flush=True)
        with Server(name, argv(name, port), port, log) as server:
            time.sleep(1.0)
            cpu_us, rps, failures = cpu_per_request(server, args.requests)
            mixed = attack(server.url, 200, 50, args.seconds)
            bodies = attack(server.url, 0, 600, args.seconds)
        rows.append((name, cpu_us, rps, failures, mixed, bodies))
    other = machine_busy_seconds() - busy0
    print(f"\n{len(names)} servers in {time.monotonic() - started:.0f} s (machine busy "
          f"{other:.0f} CPU-s in all, other agents included)\n")
    print("| server (2 workers, form floor) | worker CPU / request (µs) | requests/s | failed "
          "| 200 slow headers + 50 slow bodies: answered, max ms | 600 slow bodies: answered, "
          "max ms |")
    print("|---|---:|---:|---:|---|---|")
    for name, cpu_us, rps, failures, mixed, bodies in rows:
        def cell(r: dict[str, object]) -> str:
            n = r["answered"]
            total = int(n) + int(r["failed"])  # type: ignore[call-overload]
            return f"{n} / {total} in {args.seconds:g} s, {r['max_ms']}"
        print(f"| {name} | {cpu_us:.0f} | {rps:.0f} | {failures} | {cell(mixed)} | "
              f"{cell(bodies)} |")


if __name__ == "__main__":
    main()
