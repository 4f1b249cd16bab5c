"""No personal data in logs: ID numbers, passwords and card numbers never reach a log line.

Every scripted call of tests/calls and a few calls of our own run with every logger at DEBUG
(the hotline's, werkzeug's, SQLAlchemy's); the captured records, messages, arguments and
tracebacks are searched for every demo ID number (also in its 15-digit legacy form), every
demo password as a whole token and every card number. The CLI's import errors are checked
the same way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SCRIPTS, play_script, prompt_pattern, say

from ivr.domain.identity import check_character
from ivr.resources import demo_dataset

VOICE_URL = "http://localhost/voice"
STATUS_URL = "http://localhost/status"
#: Loggers that would print SQL rows or request lines if they were let through.
THIRD_PARTY = ("werkzeug", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "transitions",
               "twilio", "httpx", "urllib3")

DEMO: dict[str, Any] = json.loads(demo_dataset().read_text(encoding="utf-8"))
PEOPLE: list[dict[str, Any]] = DEMO["people"]


def _legacy(id_number: str) -> str | None:
    """The 15-digit form of an 18-character number born in the 1900s (no century, no check)."""
    if id_number[6:8] != "19":
        return None
    return id_number[:6] + id_number[8:17]


ID_NUMBERS = sorted({p["id_number"] for p in PEOPLE}
                    | {x for p in PEOPLE if (x := _legacy(p["id_number"]))})
PASSWORDS = sorted({p["password"] for p in PEOPLE})
CARDS = sorted({p["card_number"] for p in PEOPLE if p.get("card_number")})
CARD_DIGITS = sorted({c[1:] if c[0].isalpha() else c for c in CARDS})


def _token(value: str) -> re.Pattern[str]:
    """`value` not inside a longer run of letters or digits."""
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")


FORBIDDEN: list[tuple[str, re.Pattern[str]]] = [
    *((f"ID number {v}", re.compile(re.escape(v), re.IGNORECASE)) for v in ID_NUMBERS),
    *((f"ID number {v[:17]}* as typed", re.compile(re.escape(v[:17] + "*")))
      for v in ID_NUMBERS if v.endswith("X")),
    *((f"password {v}", _token(v)) for v in PASSWORDS),
    *((f"card number {v}", re.compile(re.escape(v), re.IGNORECASE)) for v in CARDS),
    *((f"card digits {v}", _token(v)) for v in CARD_DIGITS),
]


def test_the_forbidden_list_is_what_the_demo_holds() -> None:
    """Guards the guard: the demo data has people, legacy forms, passwords and cards."""
    assert len(PEOPLE) >= 5 and "450102197503150013" in ID_NUMBERS
    assert "450102750315001" in ID_NUMBERS  # legacy form of 450102197503150013
    assert "135790" in PASSWORDS and "D58009678" in CARDS and "58009678" in CARD_DIGITS
    assert _token("135790").search("password=135790;")
    assert not _token("135790").search("x1357901")


def leaks(text: str) -> list[str]:
    return [f"{what} in: {line.strip()[:200]}" for line in text.splitlines()
            for what, pattern in FORBIDDEN if pattern.search(line)]


class LogCapture(logging.Handler):
    """Everything logged, formatted as an operator would see it (message, args, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))  # raw arguments, however a formatter renders them
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append(repr(record.exc_info[1]))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogCapture]:
    """Every logger at DEBUG and propagating to the root, which captures them all.

    Existing loggers inherit the root's DEBUG (as under IVR_LOG_LEVEL=DEBUG), even those that
    earlier code in this process quietened (the in-process `ivr12333 call` mutes ivr.web).
    """
    caplog.set_level(logging.DEBUG)
    saved = {}
    names = {*THIRD_PARTY, *(name for name, logger in logging.root.manager.loggerDict.items()
                             if isinstance(logger, logging.Logger))}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.propagate, logger.disabled)
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    for name, (level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def assert_no_pii(logs: LogCapture, caplog: pytest.LogCaptureFixture) -> None:
    found = leaks(logs.text) + leaks(caplog.text)
    assert not found, "personal data in the logs:\n" + "\n".join(found[:20])


# ---- every scripted call --------------------------------------------------------------------

def test_there_are_scripted_calls_to_check() -> None:
    assert len(SCRIPTS) >= 20


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_scripted_call_logs_no_personal_data(app_factory: Any, logs: LogCapture,
                                             caplog: pytest.LogCaptureFixture,
                                             script: Path) -> None:
    result = play_script(app_factory, script)
    assert result.passed, result.report()  # else the call may not have reached the data
    assert "call=" in logs.text  # the webhooks did log (with their call SIDs)
    assert_no_pii(logs, caplog)


# ---- calls of our own -----------------------------------------------------------------------

def _verify(caller: Any, keys: str, password: str) -> str:
    caller.press("1")  # by ID number
    caller.press(keys + "#")
    assert prompt_pattern("id_readback").search(caller.heard), caller.heard
    caller.press("1")
    caller.press(password + "#")
    return str(caller.heard)


def test_own_calls_log_no_personal_data(caller: Any, logs: LogCapture,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # balance by ID number, after two wrong passwords and one of the wrong length
    caller.dial().press("1").press("1")
    assert say("password_wrong", left="两") in _verify(caller, "450102197503150013", "246802")
    caller.press("111222#")
    assert say("password_last_try", lockout="三") in caller.heard
    caller.press("1357900#")
    assert say("password_malformed") in caller.heard
    caller.press("*#")  # another number: the same one, keyed again
    assert "一千二百三十四元五角六分" in _verify(caller, "450102197503150013", "135790")
    caller.press("3")  # not a result-menu key: invalid, replayed
    caller.press("9").press("3")  # transactions, already verified
    caller.hangup()

    # balance by card number (the letter is not typed), then the family pool
    caller.dial().press("1").press("1").press("2")
    caller.press("58009678#")
    assert say("password_entry") in caller.heard
    caller.press("135790#")
    assert "一千二百三十四元五角六分" in caller.heard
    caller.press("9").press("2")
    caller.hangup()

    # an ID number ending in X, typed with *; then a legacy 15-digit number
    caller.dial().press("1").press("1")
    assert "十元五角" in _verify(caller, "11010519491231002*", "666777")
    caller.hangup()
    caller.dial().press("1").press("3")
    assert caller.heard == say("verify_method")  # not verified yet: no password asked
    caller.press("1").press("450102750315001#")  # legacy numbers are accepted
    assert prompt_pattern("id_readback").search(caller.heard), caller.heard
    caller.press("1").press("135790#")
    assert say("tx_count", count="五") in caller.heard  # 3: transactions
    caller.hangup()

    # a card shared by two people, an unknown card, a malformed ID number
    caller.dial().press("1").press("1").press("2").press("12345678#")
    caller.press("450107199009090132#").press("1").press("444555#")
    caller.hangup()
    caller.dial().press("1").press("1").press("2").press("999999999#").press("246802#")
    assert say("password_wrong", left="两") in caller.heard
    caller.press("*#").press("1").press("450102197806200023#")  # wrong check digit
    caller.hangup()

    assert "call=" in logs.text
    assert_no_pii(logs, caplog)


#: a digits webhook's log line, "call=CA… digits -> <state> (<keys>)": ivr/web/voice.py's `_masked`
#: writes the keys as a count only ("6 keys"), never which keys
KEYS_LOGGED = re.compile(r"\bcall=\S+ digits -> \S+ \((?P<keys>[^)\n]*)\)")
COUNT_ONLY = re.compile(r"\d+ keys")


def keys_logged(text: str) -> list[str]:
    """What each digits webhook's log line says of the keys pressed."""
    return [m["keys"] for m in KEYS_LOGGED.finditer(text)]


def keys_beyond_a_count(text: str) -> list[str]:
    """Log lines' keys that say more than how many were pressed."""
    return [keys for keys in keys_logged(text) if not COUNT_ONLY.fullmatch(keys)]


def test_typed_password_digits_are_not_logged(caller: Any, logs: LogCapture) -> None:
    """Not even the tail of a password: four of six digits leave 100 guesses."""
    caller.dial().press("1").press("1")
    _verify(caller, "450102197806200022", "246802")
    caller.hangup()
    typed = keys_logged(logs.text)
    assert "6 keys" in typed, typed  # the password's webhook was logged, with its key count
    assert "18 keys" in typed, typed  # and the ID number's
    assert keys_beyond_a_count(logs.text) == [], typed
    assert not re.search(r"(?<![0-9A-Za-z])6802(?![0-9A-Za-z])", logs.text)


def test_the_detectors_flag_what_they_look_for() -> None:
    """Guards the guards: the checks above fail on a log line that leaks."""
    # the digits log line as the app writes it, and as it wrote it before (the last four)
    assert keys_logged("INFO ivr.web.voice: call=CA01 digits -> balance (6 keys)") == ["6 keys"]
    old = "INFO ivr.web.voice: call=CA01 digits -> balance (6 keys ..6802)"
    assert keys_beyond_a_count(old) == ["6 keys ..6802"]
    assert keys_beyond_a_count("call=CA01 digits -> id_confirm (18 keys)") == []
    # personal data anywhere in a line
    assert leaks("INFO ivr.web.voice: call=CA01 looked up 450102197503150013")
    assert leaks("INFO x: 11010519491231002x")  # any case of the X
    assert leaks("INFO x: legacy 450102750315001")
    assert leaks("DEBUG sqlalchemy.engine: [parameters: ('135790',)]")
    assert leaks("INFO x: card D58009678") and leaks("INFO x: card 58009678")
    assert leaks("INFO x: typed 11010519491231002*")
    assert not leaks("INFO ivr.web.voice: call=CA01 digits -> balance (18 keys)")


# ---- the CLI's import errors ----------------------------------------------------------------

def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
           "COLUMNS": "200", "NO_COLOR": "1"}
    script = Path(sys.executable).with_name("ivr12333")
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def _valid(first17: str) -> str:
    return first17 + check_character(first17)


def _wrong_check(first17: str) -> str:
    right = check_character(first17)
    return first17 + ("1" if right != "1" else "2")


def _broken_dataset() -> dict[str, Any]:
    """The demo with many records broken in ways that name a person (people[9] on)."""
    data = json.loads(json.dumps(DEMO))
    stranger = _valid("45010219900101001")  # in no record of the file
    people = data["people"]
    li, chen = people[0], people[1]
    people.append(dict(li))  # duplicate ID number
    people.append({**chen, "id_number": _wrong_check("45010219780620002")})
    people.append({**chen, "id_number": "450102780620002"})  # legacy form of 陈丽 again
    people.append({**chen, "id_number": _valid("45010219780620003"), "password": "12345"})
    people.append({**li, "id_number": _valid("45010219750315002"),
                   "card_number": li["card_number"]})  # another person's card
    people.append({**li, "id_number": _valid("45010219750315004"), "card_number": "D5800967"})
    people.append({**li, "id_number": _valid("45010219750315005"), "scheme": "resident"})
    people.append({**li, "id_number": _valid("45010220990101001")})  # born in the future
    data["bindings"].append({"funder": "450103200201010032", "member": li["id_number"],
                             "relationship": "child", "since": "2024-01-01"})  # resident funder
    data["bindings"].append({"funder": li["id_number"], "member": li["id_number"],
                             "relationship": "spouse", "since": "2024-01-01"})
    data["bindings"].append({"funder": li["id_number"], "member": stranger,
                             "relationship": "child", "since": "2024-01-01"})  # unknown member
    data["transactions"].append({"id_number": stranger, "date": "2026-01-01",
                                 "kind": "pharmacy", "amount": "-1.00"})
    data["transactions"].append({"id_number": chen["id_number"], "date": "2026-02-30",
                                 "kind": "pharmacy", "amount": "-1.00"})
    data["transactions"].append({"id_number": chen["id_number"], "date": "2026-01-01",
                                 "kind": "pool_payment", "amount": "-1.00",
                                 "for": stranger})
    return data


def test_cli_import_errors_name_no_full_id_number(tmp_path: Path) -> None:
    data = _broken_dataset()
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = _cli(tmp_path, "import", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "nothing changed" in output and "people[9]" in output, output
    assert "Traceback" not in output
    every_id = set(ID_NUMBERS)
    for record in [*data["people"], *data["bindings"], *data["transactions"]]:
        for key in ("id_number", "funder", "member", "for"):
            if isinstance(record.get(key), str):
                every_id.add(record[key])
                if len(record[key]) == 18 and record[key][6:8] == "19":
                    every_id.add(_legacy(record[key]) or "")
    shown = [i for i in every_id if i and i.upper() in output.upper()]
    assert not shown, output
    assert not [c for c in CARDS if c in output], output
    masked = re.findall(r"\*{6,}[0-9X]{4}", output)
    assert masked, output  # the records are still named: by their last four characters


def test_cli_unlock_names_no_full_id_number(tmp_path: Path) -> None:
    for id_number in (_valid("45010219900101001"), "450102197503150014", "45010219900101001"):
        result = _cli(tmp_path, "unlock", id_number)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert id_number not in output and "Traceback" not in output, output
