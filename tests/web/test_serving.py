"""The attack figures: slow clients and huge bodies against `ivr12333 serve`, alone and behind
the shipped nginx site file (a real nginx)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from servers import LOOPBACK, HotlineServer, NginxServer, nginx_in_front  # noqa: F401

from ivr.tools.script_prompts import HotlinePrompts
from simulator import HttpTransport, Simulator, run_script

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.slow_clients import measure  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "serving-test-token-0123456789"
CALLS = Path(__file__).parent.parent / "calls"
TEN_MB = 10 * 1024 * 1024


def _hotline(db_url: str, folder: Path, **env: str) -> HotlineServer:
    return HotlineServer(db_url, folder, workers=2, auth_token=TOKEN, env=env)


def _assert_calls_answered(result: dict[str, Any], within_ms: float) -> None:
    assert result["slow_opened"] >= result["slow"], result
    assert result["failed"] == 0, result
    assert result["answered"] >= 20, result
    assert result["max_ms"] is not None and result["max_ms"] <= within_ms, result


def _huge_body(port: int) -> tuple[bytes, int]:
    """POST a 10 MB form; the answer's first line and how much of the body went out first."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(b"POST /voice HTTP/1.1\r\nHost: ivr\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"X-Twilio-Signature: x\r\n"
                     b"Content-Length: %d\r\n\r\n" % TEN_MB)
        sock.settimeout(0.05)
        sent, chunk = 0, b"a" * 65536
        answer = b""
        while sent < TEN_MB and not answer:
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                pass
            try:
                sent += sock.send(chunk[: TEN_MB - sent])
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(5)
        while b"\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
        return answer.split(b"\r\n", 1)[0], sent


def _worker_cpu_seconds(master_pid: int) -> float:
    """utime + stime of the main process's children (the server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


# --- `ivr12333 serve` alone -------------------------------------------------------------------


def test_250_slow_clients_do_not_stop_signed_calls(db_url: str, tmp_path: Path) -> None:
    """The attack run: 200 connections trickling headers and 50 trickling bodies answered 0
    of 20 signed calls in 3 s under gthread workers. Under granian and RequestGuard no thread
    waits on a client: every signed call is answered, each within a second."""
    with _hotline(db_url, tmp_path / "server") as server:
        result = measure(server.base_url, TOKEN, slow=200, mode="headers", bodies=50,
                         seconds=3.0, interval=0.5)
    assert result["slow_opened"] >= 250, result
    _assert_calls_answered(result, within_ms=1000)


def test_a_client_trickling_its_body_gets_408_at_the_deadline(db_url: str,
                                                              tmp_path: Path) -> None:
    with _hotline(db_url, tmp_path / "server") as server, \
            socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        sock.sendall(b"POST /voice HTTP/1.1\r\nHost: ivr\r\nX-Twilio-Signature: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 1000\r\n\r\nCallSid=CA")
        started = time.monotonic()
        answer = b""
        while not answer:
            try:
                sock.sendall(b"a")
            except OSError:
                break
            sock.settimeout(0.5)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 4.0 <= waited <= 8.0, waited  # the 5 s body deadline, never the app
    assert "POST /voice" in server.access_log() and " 408 " in server.access_log()


def _big_headers(port: int, count: int, size: int) -> bytes:
    """A request with `count` headers of `size` bytes; the answer's first line."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        head = b"POST /voice HTTP/1.1\r\nHost: ivr\r\nContent-Length: 0\r\n" + b"".join(
            b"X-Big-%d: %s\r\n" % (i, b"a" * size) for i in range(count)) + b"\r\n"
        with contextlib.suppress(OSError):
            sock.sendall(head)
        answer = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in answer and (more := sock.recv(4096)):
                answer += more
    return answer.split(b"\r\n", 1)[0]


def test_headers_are_bounded_in_size_and_count(db_url: str, tmp_path: Path) -> None:
    """The flood run: 90 headers of 8 KB cost ~56 ms each without nginx. Now the server stops
    reading at 16 KiB of headers (431), and more than 32 headers are refused before the app."""
    with _hotline(db_url, tmp_path / "server") as server:
        assert server.proc is not None
        _big_headers(server.port, 90, 8192)  # warm-up
        cpu_before = _worker_cpu_seconds(server.proc.pid)
        for _ in range(10):
            first = _big_headers(server.port, 90, 8192)
            assert first.startswith(b"HTTP/1.1 431") or first == b"", first
        cpu = _worker_cpu_seconds(server.proc.pid) - cpu_before
        assert _big_headers(server.port, 40, 10).startswith(b"HTTP/1.1 431")
        assert _big_headers(server.port, 20, 10).startswith(b"HTTP/1.1 403")  # unsigned
    assert cpu <= 0.010 * 10, f"{cpu * 1000:.0f} ms of worker CPU for 10 refusals"
    assert "rejected unsigned" in server.error_log()  # the 20-header one reached the app


def test_a_10_mb_body_is_refused_before_it_is_sent_and_costs_no_cpu(db_url: str,
                                                                     tmp_path: Path) -> None:
    with _hotline(db_url, tmp_path / "server") as server:
        assert server.proc is not None
        first, sent = _huge_body(server.port)  # warm-up: the first request imports things
        cpu_before = _worker_cpu_seconds(server.proc.pid)
        refusals = 10
        for _ in range(refusals):
            first, sent = _huge_body(server.port)
            assert first.startswith(b"HTTP/1.1 413"), first
            assert sent < TEN_MB, f"the whole body was sent ({sent} bytes) before the answer"
        cpu = _worker_cpu_seconds(server.proc.pid) - cpu_before
    # clock ticks are 10 ms: over 10 refusals, at most 10 ms of worker CPU each
    assert cpu <= 0.010 * refusals, f"{cpu * 1000:.0f} ms of worker CPU for {refusals} refusals"


# --- behind nginx (deploy/nginx-ivr12333.conf) ------------------------------------------------


@pytest.fixture
def behind_nginx(db_url: str, tmp_path: Path, nginx_in_front: Any) -> Any:  # noqa: F811
    server = _hotline(db_url, tmp_path / "server")
    nginx: NginxServer = nginx_in_front(server.port)
    server.extra_env["IVR_PUBLIC_URL"] = nginx.base_url  # what Twilio would call
    with server:
        yield server, nginx


def test_a_signed_call_through_nginx_reaches_the_balance(behind_nginx: Any) -> None:
    _server, nginx = behind_nginx

    def simulator(auth_token: str | None = TOKEN) -> Simulator:
        return Simulator(HttpTransport(timeout=10.0), f"{nginx.base_url}/voice",
                         auth_token=auth_token, status_callback=f"{nginx.base_url}/status")

    result = run_script(CALLS / "balance_by_id.yaml", simulator, prompts=HotlinePrompts.load())
    assert result.passed, result.report()
    assert "一千二百三十四元五角六分" in result.transcript_text


def test_nginx_refuses_a_10_mb_body_without_the_app(behind_nginx: Any) -> None:
    server, nginx = behind_nginx
    first, sent = _huge_body(nginx.port)
    assert first.startswith(b"HTTP/1.1 413"), first
    assert sent < TEN_MB
    time.sleep(0.3)
    assert "POST /voice" not in server.access_log()  # never reached the app
    assert '"POST /voice HTTP/1.1" 413' in nginx.access_log()


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_slow_clients_against_nginx_do_not_stall_calls(behind_nginx: Any, mode: str) -> None:
    _server, nginx = behind_nginx
    result = measure(nginx.base_url, TOKEN, slow=50, mode=mode, seconds=4.0, interval=0.5,
                     public_url=nginx.base_url)
    _assert_calls_answered(result, within_ms=1000)



def test_sighup_replaces_the_worker_and_calls_go_on(db_url: str, tmp_path: Path) -> None:
    """A graceful restart: SIGHUP to the main process starts a new worker (which reads the
    PIN key file again) and retires the old one; signed calls are answered before and after."""
    server = HotlineServer(db_url, tmp_path / "server", workers=1, auth_token=TOKEN)
    with server:
        assert server.proc is not None
        before = measure(server.base_url, TOKEN, slow=0, seconds=2.0, warmup=0.0)
        first = re.findall(r"Booting worker with pid: (\d+)", server.error_log())
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(
                re.findall(r"Booting worker with pid: (\d+)", server.error_log())) < 2:
            time.sleep(0.1)
        time.sleep(1.0)
        after = measure(server.base_url, TOKEN, slow=0, seconds=2.0, warmup=0.0)
        pids = re.findall(r"Booting worker with pid: (\d+)", server.error_log())
        assert server.proc.poll() is None
    assert len(first) == 1 and len(pids) == 2 and pids[1] != pids[0], server.error_log()
    for result in (before, after):
        assert result["failed"] == 0, result
        assert isinstance(result["answered"], int) and result["answered"] >= 1, result
