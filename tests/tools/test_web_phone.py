"""The web phone in a real browser: `ivr12333 phone` started as a subprocess, its page driven
in headless Chromium (Debian's chromium + chromium-driver, Selenium, offline) like a person
keying a balance call on the dial pad."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from servers import _clean_environment, _stop_group, ivr12333_command

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = ("the browser tests need Debian's chromium and chromium-driver "
           "(make system-deps, or: sudo apt-get install chromium chromium-driver)")
AT = "2026-11-23T10:00:00+08:00"  # a Monday, 10:00 in the demo region (Asia/Shanghai)
ID_NUMBER, PASSWORD = "450102197503150013", "135790"  # the demo's first person
BALANCE = "一千二百三十四元五角六分"
SPEED = 8  # the page plays the line 8x faster: the same audio, pauses and timeouts, scaled


@pytest.fixture(scope="module")
def phone_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ivr12333 phone` on the bundled demo, at a fixed time; its printed URL."""
    log = tmp_path_factory.mktemp("phone") / "phone.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*ivr12333_command(), "phone", "--at", AT, "--speed",
                                 str(SPEED)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=_clean_environment({"COLUMNS": "300"}))
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            found = re.search(r"http://127\.0\.0\.1:\d+/[\w-]+/", log.read_text())
        assert found, f"no URL printed: {log.read_text()}"
        yield found[0]
    finally:
        _stop_group(proc, signal.SIGINT, 10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(MISSING, pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1500,900",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: str, timeout: float = 30.0) -> Any:
    """Poll a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({condition});")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never true within {timeout} s: {condition}\n"
                         f"transcript:\n{transcript(driver)}")


def transcript(driver: Any) -> str:
    return str(driver.execute_script(
        "return [...document.querySelectorAll('#transcript tr')]"
        ".map(r => r.innerText.replace('\\t', ' ')).join('\\n');"))


def state(driver: Any) -> str:
    return str(driver.execute_script(
        "const n = document.querySelector('#flow g.node.current title');"
        "return n ? n.textContent : '';"))


def tap(driver: Any, keys: str) -> None:
    for key in keys:
        driver.find_element("css selector", f'.key[data-key="{key}"]').click()


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(driver, "document.body.dataset.ready === '1'")


def call(driver: Any) -> None:
    driver.find_element("id", "call").click()
    wait_for(driver, "document.querySelector('#flow').dataset.state === 'welcome'")


def at_menu(driver: Any, name: str) -> None:
    """Wait until the flow is in `name` and the page listens there."""
    wait_for(driver, f"document.querySelector('#flow').dataset.state === '{name}'")
    wait_for(driver, "['listening', 'prompt'].includes(document.body.dataset.phase)")


def test_a_balance_call_keyed_on_the_dial_pad(browser: Any, phone_url: str,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    open_page(browser, phone_url)
    call(browser)
    assert state(browser) == "welcome"
    # the greeting plays to its end before the first key (Mandarin, then English)
    wait_for(browser, "document.body.dataset.phase === 'listening'")
    moved = []
    for keys, where in (("1", "main"), ("1", "verify_method"), ("1", "id_entry"),
                        (ID_NUMBER + "#", "id_confirm"), ("1", "password"),
                        (PASSWORD + "#", "balance")):
        tap(browser, keys)  # during the prompt: barge-in cuts it
        at_menu(browser, where)
        moved.append(state(browser))
    assert moved == ["main", "verify_method", "id_entry", "id_confirm", "password", "balance"]
    wait_for(browser, f"document.querySelector('#transcript').innerText.includes('{BALANCE}')")
    lines = transcript(browser)
    assert re.search(rf"^\d\d:\d\d:\d\d .*{BALANCE}", lines, re.M), lines
    assert lines.startswith("10:00:00 "), lines  # the region's time, as --at says
    # the path is drawn: every state passed through is marked, and the arrows taken
    visited = browser.execute_script(
        "return [...document.querySelectorAll('#flow g.node.visited title')]"
        ".map(t => t.textContent).sort();")
    assert {"welcome", "main", "verify_method", "id_entry", "id_confirm", "password",
            "balance"} <= set(visited)
    assert browser.execute_script("return document.querySelectorAll('#flow g.edge.taken')"
                                  ".length;") >= 4
    # the balance sentence is played to its end, as audio rendered on the server
    ended = wait_for(browser, f"[...document.querySelectorAll('#audio audio[data-ended]')]"
                              f".filter(a => a.dataset.text.includes('{BALANCE}')).length")
    assert ended == 1
    shots = tmp_path_factory.mktemp("screenshots")
    browser.save_screenshot(str(shots / "web-phone-balance.png"))
    assert (shots / "web-phone-balance.png").stat().st_size > 10_000
    played = browser.execute_script(
        "return [...document.querySelectorAll('#audio audio')].map(a => ["
        "a.dataset.text, !!a.dataset.ended, !!a.dataset.cut]);")
    # the greeting was heard to its end; the prompts keys cut short were cut, not finished
    assert played[0][1] is True and played[1][1] is True, played[:2]
    assert any(cut and not ended for _, ended, cut in played), played
    browser.find_element("id", "hangup").click()
    wait_for(browser, "document.body.dataset.phase === 'ended'")


def test_silence_at_a_menu_is_no_input_and_a_second_call_starts_afresh(
        browser: Any, phone_url: str) -> None:
    open_page(browser, phone_url)
    call(browser)
    wait_for(browser, "document.body.dataset.phase === 'listening'")
    tap(browser, "1")
    at_menu(browser, "main")
    # nobody presses anything: after the Gather's timeout the line says so and asks again
    wait_for(browser, "[...document.querySelectorAll('#transcript tr')]"
                      ".some(r => r.dataset.kind === 'silence')", timeout=30)
    lines = transcript(browser)
    assert "(silence) the caller presses nothing for 5 s" in lines, lines
    assert state(browser) == "main"
    path = browser.execute_script(
        "return [...document.querySelectorAll('#path li')].map(l => l.textContent);")
    assert path[-1] == "silence → main", path
    browser.find_element("id", "hangup").click()
    wait_for(browser, "document.body.dataset.phase === 'ended'")
    call(browser)  # no restart: the same server takes the next call
    assert "(silence)" not in transcript(browser)
    with contextlib.suppress(Exception):
        browser.find_element("id", "hangup").click()


def test_the_page_refuses_a_wrong_token(browser: Any, phone_url: str) -> None:
    wrong = re.sub(r"/[\w-]+/$", "/not-the-token/", phone_url)
    browser.get(wrong + "api/hello")
    assert "not found" in browser.page_source


def test_another_apps_documents_grow_into_a_graph() -> None:
    """--url: the line is any app's; the page gets the documents it served, drawn in order."""
    from twiml_app import create_app

    from ivr.tools.phonecmd import documents_svg
    from ivr.tools.synth import Synthesiser
    from ivr.tools.webphone import WebLine
    from simulator import Simulator, WsgiTransport

    app = create_app()
    line = WebLine(lambda clock: Simulator(WsgiTransport(app), "http://pizza.test/voice",
                                           clock=clock),
                   Synthesiser(Path("/nonexistent"), program=None), zone=ZoneInfo("UTC"),
                   at=None, audio_url=lambda name: f"audio/{name}")
    first = line.dial()
    assert [url for _, url in first["documents"]] == ["/voice"]
    assert first["items"][0]["text"] == "Welcome to Pizza Line." and first["items"][0]["audio"] \
        is None  # no voice: the page shows the text
    assert first["gather"]["num_digits"] == 1
    answer = line.press("1", "listening")
    assert answer["new"] and answer["documents"][-1][0] == "1"
    assert len(answer["documents"]) == 2
    svg = documents_svg(answer)
    assert svg is not None and "/voice" in svg and answer["documents"][-1][1] in svg
    not_heard = line.press("7", "before")  # while what comes before the Gather plays
    assert not not_heard["new"] and not_heard["lines"][0]["kind"] == "not heard"


@pytest.fixture(scope="module")
def voiceless_phone_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The phone on a machine without espeak-ng (nor graphviz): a PATH with neither."""
    log = tmp_path_factory.mktemp("voiceless") / "phone.log"
    command = ivr12333_command()
    with log.open("w") as out:
        proc = subprocess.Popen([*command, "phone", "--at", AT, "--speed", str(SPEED)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=_clean_environment(
                                    {"PATH": str(Path(sys.executable).parent)}))
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            found = re.search(r"http://127\.0\.0\.1:\d+/[\w-]+/", log.read_text())
        assert found, f"no URL printed: {log.read_text()}"
        assert "apt-get install espeak-ng" in log.read_text()
        yield found[0]
    finally:
        _stop_group(proc, signal.SIGINT, 10)


def test_without_a_voice_the_page_says_so_and_shows_the_words(browser: Any,
                                                              voiceless_phone_url: str) -> None:
    open_page(browser, voiceless_phone_url)
    notice = browser.find_element("id", "novoice")
    assert notice.is_displayed() and "apt-get install espeak-ng" in notice.text
    browser.find_element("id", "call").click()
    wait_for(browser, "document.querySelector('#now').textContent.includes('欢迎致电')")
    wait_for(browser, "document.body.dataset.phase === 'listening'")
    assert browser.execute_script("return document.querySelectorAll('#audio audio').length;") == 0
    assert "欢迎致电" in transcript(browser)
    tap(browser, "1")
    wait_for(browser, "document.querySelector('#path').innerText.includes('main')")
    browser.find_element("id", "hangup").click()
    wait_for(browser, "document.body.dataset.phase === 'ended'")


def test_a_given_database_is_called_live(tmp_path: Path) -> None:
    """--database-url: the hotline in-process on that database, its region's clock, and what
    the calls do there stays (a wrong password is counted)."""
    from servers import keyring_of_tests, run_cli
    from sqlalchemy import create_engine, text

    from ivr.settings import Settings
    from ivr.tools.phonecmd import _line_for
    from ivr.tools.synth import Synthesiser

    url = f"sqlite:///{tmp_path}/live.sqlite3"
    assert run_cli("--database-url", url, "demo").returncode == 0
    settings = Settings.from_env(database_url=url)
    with _line_for(settings, database=url, keyring=keyring_of_tests(), url=None,
                   at=datetime.fromisoformat("2026-11-23T02:00:00+00:00"), auth_token=None,
                   from_=None, folder=tmp_path, synth=Synthesiser(tmp_path, program=None),
                   audio_url=str, fetch_play=lambda _: None) as (line, hello):
        assert hello["hotline"] and hello["zone"] == "Asia/Shanghai" and hello["svg"]
        answer = line.dial()
        assert answer["state"] == "welcome" and answer["lines"][0]["clock"] == "10:00:00"
        for key in "111" + ID_NUMBER + "#1" + "000000#":
            answer = line.press(key, "listening")
        assert [d for _, _, d in answer["path"][-3:]] == ["password_check", "password_wrong",
                                                          "password"], answer["path"]
    engine = create_engine(url)
    with engine.connect() as conn:
        failed = conn.execute(text("SELECT failed_attempts FROM people")).scalars().all()
    engine.dispose()
    assert sorted(failed)[-1] == 1
