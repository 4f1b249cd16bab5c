"""The live wallboard: operators' credentials only (never a Twilio signature), off the webhook
paths, off by default; read in headless Chromium as the queue grows and shrinks."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import FixedClock
from servers import free_port
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

TOKEN = "operators-token-0123456789"
AUTH_TOKEN = "twilio-auth-token-for-tests"


class Line:
    """Calls driven webhook by webhook (the test client), as Twilio would send them."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.steps: dict[str, int] = {}

    def start(self, sid: str, from_: str, path: str = "/voice") -> None:
        assert self.client.post(path, data={"CallSid": sid, "From": from_}).status_code == 200
        self.steps[sid] = 1

    def press(self, sid: str, digits: str) -> None:
        step = self.steps[sid]
        response = self.client.post(f"/voice/step?s={step}", data={"CallSid": sid,
                                                                   "Digits": digits})
        assert response.status_code == 200
        self.steps[sid] = step + 1

    def hang_up_in_queue(self, sid: str) -> None:
        step = self.steps[sid]
        self.client.post(f"/voice/step?s={step}&e=queued",
                         data={"CallSid": sid, "QueueResult": "hangup"})
        self.client.post("/status", data={"CallSid": sid, "CallStatus": "completed"})


def sid(n: int) -> str:
    return f"CA{n:032x}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium + chromium-driver, headless, offline (explicit driver path)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(app_factory: Callable[..., Any]) -> Iterator[tuple[Any, str]]:
    """The app with an operator token, served on a loopback port for the browser."""
    app = app_factory(operator_token=TOKEN)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://operator:{TOKEN}@127.0.0.1:{port}/ops/wallboard"
    finally:
        server.shutdown()
        thread.join(5)


def _tiles(browser: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {t.get_attribute("id"): t.find_element(By.CLASS_NAME, "value").text
            for t in browser.find_elements(By.CLASS_NAME, "tile")}


def test_the_wallboard_shows_the_queue_grow_and_shrink(served: tuple[Any, str], browser: Any,
                                                       clock: FixedClock) -> None:
    app, url = served
    line = Line(app.test_client())
    start = clock.now
    # earlier today: a caller hung up after 30 s in the queue
    line.start(sid(1), "+8613900000001")
    line.press(sid(1), "1")
    line.press(sid(1), "0")
    clock.now = start + timedelta(seconds=30)
    line.hang_up_in_queue(sid(1))
    # now: an agent logs in (nobody waits: free), a caller in the menus, one in the queue
    line.start(sid(2), "+867711230001", "/agent")
    line.press(sid(2), "1001")
    line.press(sid(2), "246810")
    line.start(sid(3), "+8613900000003")
    line.press(sid(3), "1")
    line.start(sid(4), "+8613900000004")
    line.press(sid(4), "1")
    line.press(sid(4), "0")
    clock.now += timedelta(seconds=45)
    browser.get(url)
    assert _tiles(browser) == {
        "in_menus": "1", "in_queue": "1", "longest_wait_now": "45 s",
        "agents_logged_in": "1", "agents_on_call": "0", "agents_free": "1",
        "answered_today": "0", "abandoned_today": "1", "service_level_today": "0.0 %",
        "asa_today": "-"}
    # the queue grows: the caller in the menus asks for an agent
    line.press(sid(3), "0")
    browser.refresh()
    tiles = _tiles(browser)
    assert (tiles["in_menus"], tiles["in_queue"], tiles["longest_wait_now"]) == ("0", "2", "45 s")
    # and shrinks: the first one waiting hangs up
    clock.now += timedelta(seconds=15)
    line.hang_up_in_queue(sid(4))
    browser.refresh()
    tiles = _tiles(browser)
    assert (tiles["in_queue"], tiles["longest_wait_now"], tiles["abandoned_today"]) == (
        "1", "15 s", "2")


def test_only_an_operators_credentials_open_it(app_factory: Callable[..., Any]) -> None:
    app = app_factory(operator_token=TOKEN, auth_token=AUTH_TOKEN)
    client = app.test_client()
    url = "http://localhost/ops/wallboard.json"
    signed = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    assert client.get(url).status_code == 401  # nothing
    assert client.get(url, headers={"X-Twilio-Signature": signed}).status_code == 401
    assert client.get(url, auth=("operator", "wrong-token-0123456789")).status_code == 401
    response = client.get(url, auth=("anyone", TOKEN))
    assert response.status_code == 200
    assert response.get_json()["in_queue"] == 0
    assert response.headers["Cache-Control"] == "no-store"
    # the webhooks do not take the operator's credentials instead of a signature
    assert client.post("/voice", data={"CallSid": sid(9)}, auth=("x", TOKEN)).status_code == 403


def test_without_an_operator_token_there_is_no_wallboard(app: Any) -> None:
    client = app.test_client()
    assert client.get("/ops/wallboard", auth=("operator", TOKEN)).status_code == 404
    assert client.get("/ops/wallboard.json").status_code == 404
