"""Key rotation as operators run it: agents' PINs move and are counted like passwords, a key in
use is not dropped, concurrent rotations keep every key, a key file is trusted for its owner
and its folder too (as ssh trusts its keys)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from servers import fresh_pg_url, keyring_of_tests, postgres  # noqa: F401  (fixtures)
from sqlalchemy import Engine, select, update

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import accounts, agents, passwords, pinkeys
from ivr.domain.agents import PinCheck
from ivr.errors import PinKeyError
from ivr.resources import demo_dataset
from ivr.store.schema import agents as agents_table
from ivr.store.schema import ensure_schema, make_engine
from ivr.tools.cli import main as cli

KEYS = keyring_of_tests()
AGENT, AGENT_PIN = "1001", "246810"  # the demo's
OTHER_AGENT = "1002"
LI, LI_PASSWORD = "450102197503150013", "135790"
NOBODY = 65534


def lines(result: Result) -> list[str]:
    return [" ".join(line.split()) for line in result.output.splitlines()]


def pin_hash(engine: Engine, agent_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(agents_table.c.pin_hash)
                                .where(agents_table.c.agent_id == agent_id)).scalar_one())


def region(engine: Engine) -> str:
    with engine.connect() as conn:
        return accounts.region_for(conn).code


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    eng = make_engine(url)
    ensure_schema(eng)
    import_dataset(eng, load_file(demo_dataset()), keyring=KEYS)
    yield eng
    eng.dispose()


# ---- 1. rotation covers the agents ------------------------------------------------------------

def test_an_agents_pin_moves_to_the_current_key_only_after_a_right_pin(engine: Engine) -> None:
    rotated = KEYS.with_new_key()
    code = region(engine)
    before = pin_hash(engine, AGENT)
    assert passwords.key_id_of(before) == KEYS.current_id
    assert agents.check_pin(engine, AGENT, "000000", code, 3, rotated)[0] is PinCheck.WRONG
    assert pin_hash(engine, AGENT) == before  # a wrong PIN moves nothing
    assert agents.check_pin(engine, AGENT, AGENT_PIN, code, 3, rotated)[0] is PinCheck.OK
    after = pin_hash(engine, AGENT)
    assert passwords.key_id_of(after) == rotated.current_id
    assert passwords.verify_password(AGENT_PIN, after, rotated)
    # the other agent did not log in: still under the old key
    assert passwords.key_id_of(pin_hash(engine, OTHER_AGENT)) == KEYS.current_id
    # once moved, it needs only the new key
    assert agents.check_pin(engine, AGENT, AGENT_PIN, code, 3,
                            pinkeys.Keyring.of(rotated.current_key))[0] is PinCheck.OK


def test_an_agents_pin_changed_meanwhile_is_never_overwritten(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new hash is written over the very hash that was checked: a PIN set anew while the
    check was hashing stays."""
    rotated = KEYS.with_new_key()
    replaced = passwords.hash_password("999999", rotated)
    real = passwords.verify_password

    def verify_then_change(pin: str, stored: str, keyring: Any) -> bool:
        right = real(pin, stored, keyring)
        with engine.begin() as conn:  # an import sets a new PIN meanwhile
            conn.execute(update(agents_table).where(agents_table.c.agent_id == AGENT)
                         .values(pin_hash=replaced))
        return right

    monkeypatch.setattr(passwords, "verify_password", verify_then_change)
    assert agents.check_pin(engine, AGENT, AGENT_PIN, region(engine), 3,
                            rotated)[0] is PinCheck.OK
    assert pin_hash(engine, AGENT) == replaced


def test_a_former_scrypt_pin_moves_to_the_current_key(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(agents_table).where(agents_table.c.agent_id == AGENT)
                     .values(pin_hash=passwords.scrypt_hash(AGENT_PIN, n=16)))
    assert agents.check_pin(engine, AGENT, AGENT_PIN, region(engine), 3,
                            KEYS)[0] is PinCheck.OK
    assert passwords.key_id_of(pin_hash(engine, AGENT)) == KEYS.current_id


def test_the_documented_rotation_covers_agents_and_drop_refuses_a_key_in_use(
        tmp_path: Path) -> None:
    """docs/deploy.md: rotate, restart, let people log in, `key status`, drop the old key."""
    path, url = tmp_path / "keys" / "pin-keys", f"sqlite:///{tmp_path / 'db.sqlite3'}"
    runner = CliRunner(env={"IVR_PIN_KEY_FILE": str(path)})
    assert runner.invoke(cli, ["key", "generate"]).exit_code == 0
    first = pinkeys.read_file(path)
    assert runner.invoke(cli, ["--database-url", url, "demo"]).exit_code == 0
    assert runner.invoke(cli, ["key", "rotate"]).exit_code == 0
    second = pinkeys.read_file(path)
    old, new = first.current_id, second.current_id

    status = runner.invoke(cli, ["key", "status", "--database-url", url])
    assert status.exit_code == 0, status.output
    assert f"{new} current 0 password hashes, 0 agent PINs" in lines(status)
    assert f"{old} older 9 password hashes, 2 agent PINs" in lines(status)

    # the old key still holds hashes: dropping it is refused, the file unchanged
    refused = runner.invoke(cli, ["key", "drop", old, "--database-url", url])
    assert refused.exit_code == 1
    assert "11 stored hash(es) still use key " + old in " ".join(refused.output.split())
    assert pinkeys.read_file(path) == second
    # the current key is never dropped
    current = runner.invoke(cli, ["key", "drop", new, "--database-url", url])
    assert current.exit_code == 1 and "is the current key" in current.output
    assert pinkeys.read_file(path) == second

    # one agent logs in under the new key: counted there, and no more under the old one
    engine = make_engine(url)
    assert agents.check_pin(engine, AGENT, AGENT_PIN, region(engine), 3,
                            second)[0] is PinCheck.OK
    assert accounts.check_password(engine, LI, LI_PASSWORD, 3, second) \
        is accounts.PasswordCheck.OK
    engine.dispose()
    status = runner.invoke(cli, ["key", "status", "--database-url", url])
    assert f"{new} current 1 password hash, 1 agent PIN" in lines(status)
    assert f"{old} older 8 password hashes, 1 agent PIN" in lines(status)

    # --force drops it, loudly, naming what stops verifying
    forced = runner.invoke(cli, ["key", "drop", old, "--force", "--database-url", url])
    assert forced.exit_code == 0, forced.output
    assert "DROPPED A KEY IN USE" in forced.output
    assert "8 password hashes, 1 agent PIN under " + old in " ".join(forced.output.split())
    assert pinkeys.read_file(path).ids == (new,)
    status = runner.invoke(cli, ["key", "status", "--database-url", url])
    assert status.exit_code == 1
    assert f"under key {old}, NOT in the keyring: 8 password hashes, 1 agent PIN" in " ".join(
        status.output.split())


def test_a_key_no_hash_uses_is_dropped(tmp_path: Path) -> None:
    path, url = tmp_path / "pin-keys", f"sqlite:///{tmp_path / 'db.sqlite3'}"
    runner = CliRunner(env={"IVR_PIN_KEY_FILE": str(path)})
    assert runner.invoke(cli, ["key", "generate"]).exit_code == 0
    first = pinkeys.read_file(path).current_id
    assert runner.invoke(cli, ["key", "rotate"]).exit_code == 0
    dropped = runner.invoke(cli, ["key", "drop", first, "--database-url", url])
    assert dropped.exit_code == 0, dropped.output
    assert first not in pinkeys.read_file(path).ids and "DROPPED" not in dropped.output
    unknown = runner.invoke(cli, ["key", "drop", "0badbeef", "--database-url", url])
    assert unknown.exit_code == 1 and "holds no key 0badbeef" in unknown.output


# ---- 2. concurrent rotations ------------------------------------------------------------------

ROTATIONS = 40
#: each process starts rotating at the same moment (argv[3]), once its imports are done
_ROTATE_LOOP = """
import sys, time
from pathlib import Path
from ivr.domain import pinkeys
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
for _ in range(int(sys.argv[2])):
    pinkeys.rotate(Path(sys.argv[1]))
"""


def test_concurrent_rotations_in_two_processes_keep_every_key(tmp_path: Path) -> None:
    path = tmp_path / "pin-keys"
    pinkeys.generate(path)
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", _ROTATE_LOOP, str(path), str(ROTATIONS),
                               start], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, errors = proc.communicate(timeout=120)
        assert proc.returncode == 0, errors
    assert len(pinkeys.read_file(path).ids) == 1 + 2 * ROTATIONS
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pin-keys.lock", "pin-keys"]


def test_a_rotation_waits_for_the_lock_then_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pin-keys"
    keyring = pinkeys.generate(path)
    with pinkeys.locked(path), pytest.raises(PinKeyError, match="another key command"):
        _rotate_quickly(path)
    assert pinkeys.read_file(path) == keyring


def _rotate_quickly(path: Path) -> None:
    with pinkeys.locked(path, wait=0.2):
        pinkeys.rotate(path)


# ---- 3. a key file trusted for its owner and folder too -------------------------------------

@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "pin-keys"
    pinkeys.generate(path)
    return path


def test_a_key_file_of_another_user_is_refused(key_file: Path) -> None:
    assert os.geteuid() == 0  # the tests run as root: chown works
    os.chown(key_file, NOBODY, NOBODY)
    with pytest.raises(PinKeyError, match=f"owned by uid {NOBODY}.*IVR_PIN_KEY_PERMISSIVE=1"):
        pinkeys.read_file(key_file)


def test_a_key_file_in_a_folder_of_another_user_is_refused(key_file: Path) -> None:
    os.chown(key_file.parent, NOBODY, NOBODY)
    with pytest.raises(PinKeyError, match=f"its folder .* is owned by uid {NOBODY}"):
        pinkeys.read_file(key_file)


@pytest.mark.parametrize("bits", [0o777, 0o1777, 0o770, 0o720])
def test_a_key_file_in_a_folder_others_may_write_is_refused(key_file: Path, bits: int) -> None:
    key_file.parent.chmod(bits)
    with pytest.raises(PinKeyError, match=f"writable by its group or others \\(mode {bits:04o}"):
        pinkeys.read_file(key_file)
    with pytest.raises(PinKeyError, match="writable by its group or others"):
        pinkeys.rotate(key_file)


def test_the_opt_out_accepts_it_loudly(key_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    os.chown(key_file, NOBODY, NOBODY)
    key_file.parent.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="ivr.pinkeys"):
        keyring = pinkeys.read_file(key_file, permissive=True)
    assert keyring.ids
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "INSECURE PIN key file" in record.getMessage()
    assert f"uid {NOBODY}" in record.getMessage() and "writable" in record.getMessage()


def test_serve_refuses_a_key_file_of_another_user(key_file: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def started(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("serve started gunicorn")

    monkeypatch.setattr("ivr.web.serve.serve", started)
    os.chown(key_file, NOBODY, NOBODY)
    result = CliRunner().invoke(
        cli, ["--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}", "serve", "--insecure"],
        env={"IVR_PIN_KEY_FILE": str(key_file)})
    assert result.exit_code == 2, result.output
    assert f"owned by uid {NOBODY}" in " ".join(result.output.split())
