"""`ivr12333 serve` for real: granian with two workers, signed calls over HTTP, its logs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import say
from servers import key_file_of_tests
from twilio.request_validator import RequestValidator

from ivr.tools.script_prompts import HotlinePrompts
from simulator import Call, HttpTransport, Simulator, run_script

pytestmark = pytest.mark.slow

TOKEN = "test-auth-token-0123456789abcdef"
CALLS = Path(__file__).parent.parent / "calls"
JIANGUO_ID, JIANGUO_PASSWORD = "450102197503150013", "135790"
START_TIMEOUT = 20.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def simulator(self, auth_token: str | None = TOKEN) -> Simulator:
        return Simulator(HttpTransport(timeout=10.0), f"{self.base}/voice", auth_token=auth_token,
                         status_callback=f"{self.base}/status")

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        """The log once it mentions `needle` (workers write their lines a moment later)."""
        deadline = time.monotonic() + timeout
        while needle not in (text := self.log_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the access log line follows the response
        return self.log_text() if needle in text else text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command() -> list[str]:
    script = Path(sys.executable).with_name("ivr12333")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ivr.tools.cli import main; main()"]


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ivr12333 serve exited with {process.returncode}:\n"
                        f"{log.read_text('utf-8', errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"ivr12333 serve did not listen within {START_TIMEOUT:g} s:\n"
                f"{log.read_text('utf-8', errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_db_file: Path) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    db = folder / "ivr.sqlite3"
    shutil.copyfile(demo_db_file, db)
    log = folder / "server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update(TWILIO_AUTH_TOKEN=TOKEN, IVR_DATABASE_URL=f"sqlite:///{db}",
               PYTHONUNBUFFERED="1", IVR_PIN_KEY_FILE=str(key_file_of_tests()))
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=folder,
        )
    try:
        _wait_until_listening(process, port, log)
        yield Server(process, port, log)
    finally:
        _stop(process)


def _press(call: Call, *keys: str) -> None:
    for k in keys:
        call.press(k)


def test_the_example_call_in_mandarin(server: Server) -> None:
    result = run_script(CALLS / "balance_by_id.yaml", server.simulator,
                        prompts=HotlinePrompts.load())
    assert result.passed, result.report()
    assert "一千二百三十四元五角六分" in result.transcript_text
    assert "CallStatus=completed" in result.transcript_text  # the status callback was sent


def test_the_example_call_in_english(server: Server) -> None:
    call = server.simulator().dial()
    try:
        assert say("welcome_english", line="Healthcare Security hotline") in call.heard
        _press(call, "2", "1", "1", JIANGUO_ID + "#")
        assert say("id_readback", "en-US", last4="0 0 1 3") in call.heard
        _press(call, "1", JIANGUO_PASSWORD + "#")
        assert "one thousand two hundred thirty-four yuan and fifty-six fen" in call.heard
        assert "元" not in call.heard
        assert call.error is None
    finally:
        call.close()
    assert call.ended and call.error is None


def _form(call_sid: str = "CA" + "0" * 32) -> dict[str, str]:
    return {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": "+8613800000009",
            "To": "+8612333", "CallStatus": "ringing", "Direction": "inbound",
            "ApiVersion": "2010-04-01"}


def test_unsigned_and_badly_signed_requests_are_refused(server: Server) -> None:
    url = f"{server.base}/voice"
    form = _form()
    with httpx.Client(timeout=10.0) as client:
        unsigned = client.post(url, data=form)
        assert unsigned.status_code == 403
        wrong = RequestValidator("not-the-token").compute_signature(url, form)
        badly = client.post(url, data=form, headers={"X-Twilio-Signature": wrong})
        assert badly.status_code == 403
        tampered_sig = RequestValidator(TOKEN).compute_signature(url, form)
        tampered = client.post(url, data={**form, "From": "+8613999999999"},
                               headers={"X-Twilio-Signature": tampered_sig})
        assert tampered.status_code == 403
        # the same request signed with the right token is answered: the 403s are the signature's
        good = client.post(url, data=form, headers={"X-Twilio-Signature": tampered_sig})
        assert good.status_code == 200
        assert "<Response>" in good.text and say("welcome", line="医保服务热线") in good.text


def test_a_call_signed_with_the_wrong_token_is_an_application_error(server: Server) -> None:
    call = server.simulator(auth_token="not-the-token").dial()
    call.close()
    assert call.ended_by == "error"
    assert "403" in (call.error or "")


def _verified_call(server: Server) -> str:
    """A call that keys the ID number and password; returns its CallSid."""
    call = server.simulator().dial()
    try:
        _press(call, "1", "1", "1", JIANGUO_ID + "#", "1", JIANGUO_PASSWORD + "#")
        assert "一千二百三十四元五角六分" in call.heard
    finally:
        call.close()
    return call.call_sid


def test_logs_never_carry_the_id_number_or_the_password(server: Server) -> None:
    call_sid = _verified_call(server)
    log = server.wait_for_log(call_sid)
    assert "POST /voice/step" in log  # the access log is there (else this test proves nothing)
    assert call_sid in log
    assert JIANGUO_ID not in log
    assert JIANGUO_ID[:-4] not in log  # not even the number without its last four
    assert JIANGUO_PASSWORD not in log
    assert "Traceback" not in log


def test_logs_carry_no_part_of_the_password(server: Server) -> None:
    """A password is 6 digits: logging its last four leaves 100 guesses. The step log says how
    many keys were pressed at most, never which (ivr/web/voice.py `_masked`)."""
    call_sid = _verified_call(server)
    log = server.wait_for_log(call_sid)
    ours = [line for line in log.splitlines() if call_sid in line]
    assert ours
    last4 = re.compile(r"(?<![0-9A-Fa-f])" + JIANGUO_PASSWORD[-4:] + r"(?![0-9A-Fa-f])")
    assert [line for line in ours if last4.search(line)] == []


def test_two_servers_side_by_side_share_no_control_socket(tmp_path: Path,
                                                          demo_db_file: Path) -> None:
    """Bug (under gunicorn >= 25.1): a control socket at one path per user ($XDG_RUNTIME_DIR
    or $HOME): a second `ivr12333 serve` deleted the first one's and took it over. Two servers
    side by side leave no socket there and each answers on its own port."""
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1",
               TWILIO_AUTH_TOKEN=TOKEN, IVR_PIN_KEY_FILE=str(key_file_of_tests()))
    servers: list[Server] = []
    try:
        for n in (1, 2):
            db = tmp_path / f"ivr{n}.sqlite3"
            shutil.copyfile(demo_db_file, db)
            log, port = tmp_path / f"server{n}.log", _free_port()
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [*_command(), "--database-url", f"sqlite:///{db}", "serve", "--host",
                     "127.0.0.1", "--port", str(port), "--workers", "1"],
                    stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
            servers.append(Server(process, port, log))
            _wait_until_listening(process, port, log)
        for server in servers:
            server.wait_for_log("Booting worker with pid")
        sockets = [p for p in (*runtime.rglob("*"), *home.rglob("*"), *tmp_path.glob("*.ctl"))
                   if p.is_socket() or p.suffix == ".ctl"]
        assert sockets == []
        assert "control socket" not in servers[1].log_text().lower()
        with httpx.Client(timeout=10.0) as client:
            for server in servers:
                assert client.post(f"{server.base}/voice", data=_form()).status_code == 403
    finally:
        for server in servers:
            _stop(server.process)
