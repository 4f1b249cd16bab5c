"""An import killed halfway leaves the previous data intact and usable.

`ivr12333 import BIG.json` (a few thousand valid people) runs in a subprocess on a copy of
the demo database and is SIGKILLed while it holds SQLite's write lock, i.e. inside its one
write transaction (a probe connection sees BEGIN IMMEDIATE refused), or after fixed delays
that land anywhere from start-up to commit. Afterwards the database opens, passes
`PRAGMA integrity_check`, holds either all of the file or none of it, still has every demo
person with their balance, answers a full call up to the balance, and takes the same import
again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from servers import key_file_of_tests

from ivr.domain.identity import synthetic_id_number
from ivr.resources import demo_dataset
from ivr.settings import Settings
from ivr.web import create_app
from simulator import Simulator, WsgiTransport

N_PEOPLE = 3000
TX_PER_PERSON = 5
DEMO: dict[str, Any] = json.loads(demo_dataset().read_text(encoding="utf-8"))
DEMO_PEOPLE = len(DEMO["people"])
DEMO_TX = len(DEMO["transactions"])
IMPORT = Path(sys.executable).with_name("ivr12333")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid dataset: the demo's region, N_PEOPLE new employees, three entries each."""
    people, entries = [], []
    for i in range(N_PEOPLE):
        birth = date(1950, 1, 1) + timedelta(days=i // 1000 * 7 + 1)
        id_number = synthetic_id_number("450199", birth, i % 1000, "male" if i % 2 else "female")
        people.append({
            "id_number": id_number, "card_number": f"{700000000 + i}", "name": f"测试{i}",
            "scheme": "employee", "status": "active", "retired": False,
            "password": f"{i:06d}",
            "account": {"balance": f"{i}.{i % 100:02d}", "monthly_credit": "100.00",
                        "as_of": "2026-11-01"},
        })
        entries += [{"id_number": id_number, "date": f"2026-10-{k + 1:02d}", "kind": "pharmacy",
                     "amount": f"-{k + 1}.50"} for k in range(TX_PER_PERSON)]
    path = tmp_path_factory.mktemp("big") / "BIG.json"
    path.write_text(json.dumps({"region": DEMO["region"], "people": people,
                                "transactions": entries}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def _path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def _start_import(db_url: str, big: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IVR_DATABASE_URL": db_url}
    with open(log, "ab") as out:
        return subprocess.Popen([str(IMPORT), "import", str(big)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)


def _writer_active(db: Path) -> bool:
    """True while another connection holds the write lock (is inside a write transaction)."""
    with closing(sqlite3.connect(db, timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        conn.execute("ROLLBACK")
        return False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:  # running, stopped or exited unreaped: SIGKILL is safe
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def _state(db: Path) -> dict[str, Any]:
    """What a fresh connection sees: integrity, counts, the demo people's accounts."""
    with closing(sqlite3.connect(db)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        people = conn.execute("SELECT count(*) FROM people").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        big = conn.execute("SELECT count(*) FROM people WHERE id_number LIKE '450199%'"
                           ).fetchone()[0]
        demo = {row[0]: row[1:] for row in conn.execute(
            "SELECT id_number, name, balance_fen, card_number FROM people "
            "WHERE id_number NOT LIKE '450199%'")}
    return {"integrity": integrity, "people": people, "transactions": entries, "big": big,
            "demo": demo}


def _assert_all_or_nothing(db: Path) -> bool:
    """The database is sound and holds the demo plus all or none of BIG; True when all."""
    state = _state(db)
    assert state["integrity"] == [("ok",)]
    assert (state["people"], state["transactions"], state["big"]) in (
        (DEMO_PEOPLE, DEMO_TX, 0),
        (DEMO_PEOPLE + N_PEOPLE, DEMO_TX + N_PEOPLE * TX_PER_PERSON, N_PEOPLE),
    ), {k: v for k, v in state.items() if k != "demo"}
    expected = {
        p["id_number"]: (p["name"],
                         int(Decimal(p["account"]["balance"]) * 100) if "account" in p else None,
                         p.get("card_number"))
        for p in DEMO["people"]
    }
    assert state["demo"] == expected  # every demo person, with their balance and card
    return bool(state["big"])


def _call_reaches_balance(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, pin_key_file=key_file_of_tests()),
                     now=lambda: datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    try:
        call = Simulator(WsgiTransport(app), "http://localhost/voice",
                         status_callback="http://localhost/status").dial()
        try:
            for keys in ("1", "1", "1", "450102197503150013#", "1", "135790#"):
                call.press(keys)
            assert "一千二百三十四元五角六分" in call.heard, call.heard
            assert call.error is None
        finally:
            call.close()
    finally:
        app.extensions["ivr12333"].db.dispose()


def _reimport_succeeds(db_url: str, big: Path, log: Path) -> None:
    proc = _start_import(db_url, big, log)
    assert proc.wait(120) == 0, log.read_text(encoding="utf-8", errors="replace")
    assert _assert_all_or_nothing(_path(db_url)) is True


def test_big_file_imports_in_one_go(db_url: str, big_file: Path, tmp_path: Path) -> None:
    """The control: left alone, the same import succeeds (so a kill is what we test)."""
    _reimport_succeeds(db_url, big_file, tmp_path / "import.log")
    _call_reaches_balance(db_url)


def _wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    try:
        return wal.stat().st_size
    except FileNotFoundError:
        return 0


#: More than a few pages in the WAL: the importer is writing its transaction's frames.
WAL_WRITING = 32 * 1024


def _wait_for_write_lock(proc: subprocess.Popen[bytes], db: Path) -> bool:
    """Poll until the importer holds the write lock (True) or has ended (False)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if _writer_active(db):
            return True
        time.sleep(0.002)
    return False


def _step_until_wal_grows(proc: subprocess.Popen[bytes], db: Path) -> int:
    """Let the importer run in slices of about a millisecond, stopped (SIGSTOP) in between,
    until its WAL holds more than WAL_WRITING bytes; returns the WAL's size, the importer left
    stopped, or -1 when it ended first (its exit status then in proc.returncode).

    Polling a running process misses its commit on a busy machine: writing the frames takes
    a few milliseconds. A stopped process cannot get ahead of the check."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        os.kill(proc.pid, signal.SIGSTOP)
        _pid, status = os.waitpid(proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):  # it ended during its last slice: reaped here
            proc.returncode = os.waitstatus_to_exitcode(status)
            return -1
        size = _wal_size(db)
        if size > WAL_WRITING:
            return size
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.001)
    raise AssertionError("the import neither wrote its WAL nor ended within 60 s")


@pytest.mark.parametrize("moment", ["write_lock", "wal_growing"])
def test_import_killed_inside_its_write_transaction(db_url: str, big_file: Path,
                                                    tmp_path: Path, moment: str) -> None:
    """write_lock: killed as soon as it holds the write lock (its changes still in memory);
    wal_growing: killed while it writes its pages to the WAL, before the commit frame."""
    db, log = _path(db_url), tmp_path / "import.log"
    pristine = tmp_path / "pristine.sqlite3"
    pristine.write_bytes(db.read_bytes())  # the demo, checkpointed: a fresh start per attempt
    caught: list[int] = []
    missed: list[tuple[int | None, int, bool]] = []  # (exit status, WAL bytes, committed)
    for _attempt in range(5):
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        db.write_bytes(pristine.read_bytes())
        proc = _start_import(db_url, big_file, log)
        wal_at_kill = -1
        try:
            if _wait_for_write_lock(proc, db):
                wal_at_kill = (_step_until_wal_grows(proc, db) if moment == "wal_growing"
                               else _wal_size(db))
        finally:
            _kill(proc)
        committed = _assert_all_or_nothing(db)
        if proc.returncode == -signal.SIGKILL and wal_at_kill >= 0 and not committed:
            caught.append(wal_at_kill)
            break
        missed.append((proc.returncode, wal_at_kill, committed))
    assert caught, f"never killed the import inside its write transaction ({moment}): {missed}"
    if moment == "wal_growing":
        assert caught[0] > WAL_WRITING  # uncommitted frames were in the WAL, and were ignored
    _call_reaches_balance(db_url)
    _reimport_succeeds(db_url, big_file, log)
    _call_reaches_balance(db_url)


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.0, 1.4])
def test_import_killed_after_a_delay(db_url: str, big_file: Path, tmp_path: Path,
                                     delay: float) -> None:
    """Killed anywhere from start-up through validation, hashing, writing and commit."""
    log = tmp_path / "import.log"
    proc = _start_import(db_url, big_file, log)
    try:
        time.sleep(delay)
    finally:
        _kill(proc)
    _assert_all_or_nothing(_path(db_url))
    _call_reaches_balance(db_url)
    _reimport_succeeds(db_url, big_file, log)
