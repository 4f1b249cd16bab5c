"""The live wallboard: operators' credentials only (never a Twilio signature), off the webhook
paths, off by default; read in headless Chromium as the queue grows and shrinks. Each agent's
state and figures only with the supervisors' credentials."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import CALLS, FixedClock, play_script
from servers import free_port
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

TOKEN = "operators-token-0123456789"
SUPERVISOR = "supervisors-token-0123456789"
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
    with serving(app) as base:
        yield app, f"http://operator:{TOKEN}@{base}/ops/wallboard"


class serving:  # noqa: N801  (a context manager, read as a verb)
    """`app` on a loopback port: its host:port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


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


def test_supervisors_see_each_agent_and_operators_no_agent_id(
        app_factory: Callable[..., Any], browser: Any) -> None:
    """Two agents each took one caller (the agent bridge scenario) and hung up; then 1001
    logs in again and waits. A supervisor sees both agents; an operator, the same counts and
    no agent's id."""
    from selenium.webdriver.common.by import By

    apps: list[Any] = []

    def factory(**overrides: Any) -> Any:
        apps.append(app_factory(operator_token=TOKEN, supervisor_token=SUPERVISOR,
                                **overrides))
        return apps[-1]

    result = play_script(factory, CALLS / "agent_bridge_two_agents.yaml")
    assert result.passed, result.report()
    app = apps[0]
    line = Line(app.test_client())
    line.start(sid(7), "+867711230007", "/agent")
    line.press(sid(7), "1001")
    line.press(sid(7), "246810")
    now = app.extensions["ivr12333"].now()
    with serving(app) as base:
        browser.get(f"http://supervisor:{SUPERVISOR}@{base}/ops/wallboard")
        rows = {r.get_attribute("data-agent"): [c.text for c in
                                                r.find_elements(By.TAG_NAME, "td")]
                for r in browser.find_elements(By.CSS_SELECTOR, "#agents tr.agent")}
        supervised = _tiles(browser)
        browser.get(f"http://operator:{TOKEN}@{base}/ops/wallboard")
        operated = _tiles(browser)
        page = browser.page_source
        assert browser.find_elements(By.ID, "agents") == []
    # 1001 is free since logging in now, 1002 gone; one caller each today: the agent who heard
    # the verified caller's summary (the longer one) has the longer handle time
    assert sorted(rows) == ["1001", "1002"]
    assert rows["1001"][:3] == ["1001", "free", now.astimezone(
        rows_zone(app)).strftime("%H:%M:%S")]
    assert rows["1002"][:3] == ["1002", "logged out", "-"]
    assert sorted(r[3:] for r in rows.values()) == [["1", "127 s", "100.0 %"],
                                                    ["1", "129 s", "100.0 %"]]
    assert supervised == operated and operated["answered_today"] == "2"
    assert operated["agents_logged_in"] == "1" and operated["agents_free"] == "1"
    assert not re.search(r"(?<![0-9A-Za-z.])100[12](?![0-9A-Za-z])", page), page
    # the same over JSON
    client = app.test_client()
    board = client.get("/ops/wallboard.json", auth=("s", SUPERVISOR)).get_json()
    assert [(a["agent_id"], a["state"], a["answered_today"]) for a in board["agents"]] == [
        ("1001", "free", 1), ("1002", "logged out", 1)]
    plain = client.get("/ops/wallboard.json", auth=("o", TOKEN))
    assert "agents" not in plain.get_json() and b"1001" not in plain.data
    # only the supervisors' token: the operators' pages are open to them alone
    alone = app_factory(supervisor_token=SUPERVISOR).test_client()
    assert alone.get("/ops/wallboard.json", auth=("o", TOKEN)).status_code == 401
    assert "agents" in alone.get("/ops/wallboard.json", auth=("s", SUPERVISOR)).get_json()


def rows_zone(app: Any) -> Any:
    from ivr.domain.accounts import region_for

    with app.extensions["ivr12333"].db.connect() as conn:
        return region_for(conn).zone
