"""Benchmark helpers: servers as subprocesses, their workers' CPU and memory from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 60.0


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """The direct children of `pid` (the workers, when `pid` is the server's main process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0.0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all processes have used so far, every core (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of one process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Server:
    """A server on a loopback port, started as a subprocess and stopped on exit."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.port, self.log = name, argv, port, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=ROOT, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                if self.workers():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT:.0f} s")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def workers(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)

    def worker_cpu(self) -> float:
        """CPU seconds used so far by all workers."""
        return sum(cpu_seconds(pid) for pid in self.workers())

    def worker_peak_rss(self) -> float:
        """The largest worker's peak resident set, MiB."""
        return max((peak_rss_mib(pid) for pid in self.workers()), default=0.0)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # graceful stop of the server and its workers
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def hotline_server(db_url: str, port: int, workers: int, token: str, log: Path) -> Server:
    """`ivr12333 serve` on `db_url`, signature checks on, no access log."""
    argv = [str(BIN / "ivr12333"), "--database-url", db_url, "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log"]
    return Server("hotline", argv, port, log,
                  {"TWILIO_AUTH_TOKEN": token, "IVR_PUBLIC_URL": ""})


def floor_argv(port: int, workers: int, *, access_log: bool = False) -> list[str]:
    """bench/floor_app.py under the server `ivr12333 serve` runs (ivr/web/serve.py): granian,
    RequestGuard, its threads, limits and options (bench/serve_floor.py)."""
    return [sys.executable, "-m", "bench.serve_floor", "--port", str(port), "--workers",
            str(workers), *(["--access-log"] if access_log else [])]


def floor_server(port: int, workers: int, log: Path) -> Server:
    """The floor under the same server as the hotline (floor_argv)."""
    return Server("floor", floor_argv(port, workers), port, log)
