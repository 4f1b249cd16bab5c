"""PIN keys: the key file (0600, refused when others may read it), `ivr12333 key generate /
rotate / status`, the commands that refuse to run without a key, the upgrade of former
(scrypt) hashes and of hashes under an older key at the next right password, and keys that
never reach an output or a log."""

from __future__ import annotations

import base64
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import prompt_pattern
from servers import keyring_of_tests
from sqlalchemy import Engine, select, update

from ivr.dataset.importer import import_dataset, load_file
from ivr.domain import passwords, pinkeys
from ivr.domain.accounts import PasswordCheck, check_password
from ivr.domain.pinkeys import Keyring
from ivr.errors import PinKeyError
from ivr.resources import demo_dataset
from ivr.store.schema import ensure_schema, make_engine, people
from ivr.tools.cli import main as cli

KEYS = keyring_of_tests()
LI, LI_PASSWORD = "450102197503150013", "135790"
CHEN, CHEN_PASSWORD = "450102197806200022", "246802"
NO_KEY = "no PIN key: run `ivr12333 key generate` or set IVR_PIN_KEY_FILE"
BALANCE = prompt_pattern("balance_employee")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def keys_in(path: Path) -> list[str]:
    """The keys of a key file, in base64 as the file holds them (what must never be shown)."""
    return [base64.b64encode(key).decode() for _, key in pinkeys.read_file(path).keys]


def flat(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.sqlite3'}"


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    ensure_schema(eng)
    import_dataset(eng, load_file(demo_dataset()), keyring=KEYS)
    yield eng
    eng.dispose()


def stored_hash(engine: Engine, id_number: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(people.c.password_hash)
                                .where(people.c.id_number == id_number)).scalar_one())


def set_hash(engine: Engine, id_number: str, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(people).where(people.c.id_number == id_number)
                     .values(password_hash=value))


def attempts(engine: Engine, id_number: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(people.c.failed_attempts)
                                .where(people.c.id_number == id_number)).scalar_one())


# ---- the key file ------------------------------------------------------------------------------

def test_generate_writes_0600_in_new_0700_folders_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "ivr" / "pin-keys"
    ring = pinkeys.generate(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert pinkeys.read_file(path) == ring and len(ring.keys) == 1
    assert len(ring.current_key) == 32
    before = path.read_bytes()
    with pytest.raises(PinKeyError, match="exists"):
        pinkeys.generate(path)
    assert path.read_bytes() == before
    assert pinkeys.generate(path, force=True) != ring
    # no temporary file left; the lock file beside it is private too
    assert sorted(p.name for p in path.parent.iterdir()) == [".pin-keys.lock", "pin-keys"]
    assert mode(path.with_name(".pin-keys.lock")) == 0o600


def test_generate_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        path = tmp_path / "k" / "pin-keys"
        pinkeys.generate(path)
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_rotate_adds_a_current_key_and_keeps_the_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "pin-keys"
    first = pinkeys.generate(path)
    second = pinkeys.rotate(path)
    assert second.ids[0] == first.current_id and second.current_id != first.current_id
    assert pinkeys.read_file(path) == second and mode(path) == 0o600
    assert pinkeys.rotate(path).ids[:2] == second.ids


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_may_read_is_refused_unless_permitted(tmp_path: Path,
                                                                bits: int) -> None:
    path = tmp_path / "pin-keys"
    ring = pinkeys.generate(path)
    path.chmod(bits)
    with pytest.raises(PinKeyError, match=f"mode {bits:04o}.*chmod 600.*IVR_PIN_KEY_PERMISSIVE"):
        pinkeys.read_file(path)
    assert pinkeys.read_file(path, permissive=True) == ring


@pytest.mark.parametrize(("text", "complaint"), [
    ("", "holds no key"),
    ("# only a comment\n", "holds no key"),
    ("not a key\n", "line 1 is not KEY_ID:KEY"),
    ("0123abcd:not*base64\n", "line 1 is not KEY_ID:KEY"),
    (f"{'0' * 8}:{base64.b64encode(b'k' * 32).decode()}\n", "is not the id of the key"),
    (f"{pinkeys.key_id(b's' * 16)}:{base64.b64encode(b's' * 16).decode()}\n", "shorter than 32"),
])
def test_a_broken_key_file_names_the_line_never_the_key(tmp_path: Path, text: str,
                                                        complaint: str) -> None:
    path = tmp_path / "pin-keys"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(PinKeyError, match=complaint) as raised:
        pinkeys.read_file(path)
    assert "base64" not in text or base64.b64encode(b"k" * 32).decode() not in str(raised.value)


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(PinKeyError, match="twice"):
        pinkeys.parse(f"{pinkeys.key_id(b'k' * 32)}:{key}\n" * 2, "x")


def test_ivr_pin_key_holds_the_same_text() -> None:
    a, b = Keyring.of(b"a" * 32), Keyring.of(b"b" * 32)
    text = ",".join(line for line in a.with_new_key(b"b" * 32).text().splitlines()
                    if not line.startswith("#"))
    assert pinkeys.parse(text, "IVR_PIN_KEY").ids == (a.current_id, b.current_id)


# ---- the commands ------------------------------------------------------------------------------

def test_key_generate_prints_where_and_the_id_never_the_key(tmp_path: Path) -> None:
    path = tmp_path / "new" / "pin-keys"
    result = CliRunner().invoke(cli, ["key", "generate", "--file", str(path)])
    assert result.exit_code == 0, result.output
    (key,) = keys_in(path)
    assert key not in result.output
    assert str(path) in flat(result) and pinkeys.read_file(path).current_id in result.output
    assert mode(path) == 0o600 and mode(path.parent) == 0o700

    again = CliRunner().invoke(cli, ["key", "generate", "--file", str(path)])
    assert again.exit_code == 1 and "exists" in again.output
    assert isinstance(again.exception, SystemExit) and keys_in(path) == [key]
    forced = CliRunner().invoke(cli, ["key", "generate", "--file", str(path), "--force"])
    assert forced.exit_code == 0 and keys_in(path) != [key]


def test_key_generate_uses_ivr_pin_key_file(tmp_path: Path) -> None:
    path = tmp_path / "pin-keys"
    result = CliRunner().invoke(cli, ["key", "generate"], env={"IVR_PIN_KEY_FILE": str(path)})
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o600


def test_key_rotate_and_status_count_the_hashes_of_each_key(tmp_path: Path) -> None:
    path, url = tmp_path / "pin-keys", f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = {"IVR_PIN_KEY_FILE": str(path)}
    runner = CliRunner(env=env)
    assert runner.invoke(cli, ["key", "generate"]).exit_code == 0
    first = pinkeys.read_file(path)
    assert runner.invoke(cli, ["--database-url", url, "demo"]).exit_code == 0
    rotated = runner.invoke(cli, ["key", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    second = pinkeys.read_file(path)
    assert second.ids[0] == first.current_id
    assert "Restart every server" in rotated.output
    assert all(k not in rotated.output for k in keys_in(path))

    # one person signs in under the new key; one person's hash is of the former form
    engine = make_engine(url)
    set_hash(engine, CHEN, passwords.scrypt_hash(CHEN_PASSWORD, n=16))
    assert check_password(engine, LI, LI_PASSWORD, 3, second) is PasswordCheck.OK
    engine.dispose()
    status = runner.invoke(cli, ["key", "status", "--database-url", url])
    assert status.exit_code == 0, status.output
    lines = [" ".join(line.split()) for line in status.output.splitlines()]
    assert f"{second.current_id} current 1 password hash, 0 agent PINs" in lines
    assert f"{first.current_id} older 7 password hashes, 2 agent PINs" in lines
    assert any(line.startswith("scrypt") and line.endswith(": 1 password hash, 0 agent PINs")
               for line in lines)
    assert all(k not in status.output for k in keys_in(path))


def test_key_status_says_when_hashes_name_a_key_the_keyring_lacks(tmp_path: Path,
                                                                   url: str,
                                                                   engine: Engine) -> None:
    path = tmp_path / "other-keys"
    pinkeys.generate(path)
    result = CliRunner().invoke(cli, ["key", "status", "--database-url", url],
                                env={"IVR_PIN_KEY_FILE": str(path)})
    assert result.exit_code == 1
    assert (f"under key {KEYS.current_id}, NOT in the keyring: 9 password hashes, 2 agent PINs"
            in flat(result))


@pytest.fixture(autouse=True)
def _serve_never_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` must stop before its server starts: a broken refusal fails, never hangs."""
    def started(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("serve started its server")

    monkeypatch.setattr("ivr.web.serve.serve", started)


@pytest.mark.parametrize("args", [
    ["serve", "--insecure"],
    ["call", "--script", "tests/calls/balance_by_id.yaml"],
    ["load", "--calls", "1"],
    ["import", str(demo_dataset())],
    ["key", "status"],
])
def test_without_a_key_the_commands_refuse_clearly(tmp_path: Path, url: str,
                                                   args: list[str]) -> None:
    missing = tmp_path / "nowhere" / "pin-keys"
    result = CliRunner().invoke(cli, ["--database-url", url, *args],
                                env={"IVR_PIN_KEY_FILE": str(missing)})
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # an answer, not a traceback
    assert NO_KEY in flat(result) and str(missing) in flat(result)
    assert "Traceback" not in result.output
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("args", [["serve", "--insecure"], ["import", str(demo_dataset())]])
def test_a_key_file_others_may_read_stops_the_commands(tmp_path: Path, url: str,
                                                       args: list[str]) -> None:
    path = tmp_path / "pin-keys"
    pinkeys.generate(path)
    path.chmod(0o644)
    result = CliRunner().invoke(cli, ["--database-url", url, *args],
                                env={"IVR_PIN_KEY_FILE": str(path)})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "open to its group or others (mode 0644)" in flat(result)
    allowed = CliRunner().invoke(cli, ["--database-url", url, "import", str(demo_dataset())],
                                 env={"IVR_PIN_KEY_FILE": str(path),
                                      "IVR_PIN_KEY_PERMISSIVE": "1"})
    assert allowed.exit_code == 0, allowed.output


def test_ivr_pin_key_instead_of_a_file_and_never_both(tmp_path: Path, url: str) -> None:
    text = Keyring.of(b"z" * 32).text()
    ok = CliRunner().invoke(cli, ["--database-url", url, "import", str(demo_dataset())],
                            env={"IVR_PIN_KEY_FILE": None, "IVR_PIN_KEY": text})
    assert ok.exit_code == 0, ok.output
    both = CliRunner().invoke(cli, ["--database-url", url, "import", str(demo_dataset())],
                              env={"IVR_PIN_KEY": text})
    assert both.exit_code == 2 and "keep one of them" in flat(both)
    bad = CliRunner().invoke(cli, ["--database-url", url, "import", str(demo_dataset())],
                             env={"IVR_PIN_KEY_FILE": None, "IVR_PIN_KEY": "secret-but-wrong"})
    assert bad.exit_code == 2 and "IVR_PIN_KEY: line 1 is not KEY_ID:KEY" in flat(bad)
    assert "secret-but-wrong" not in bad.output


def test_demo_creates_its_key_0600_and_says_where(tmp_path: Path) -> None:
    config, url = tmp_path / "config", f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    env = {"IVR_PIN_KEY_FILE": None, "XDG_CONFIG_HOME": str(config)}
    result = CliRunner().invoke(cli, ["--database-url", url, "demo"], env=env)
    assert result.exit_code == 0, result.output
    path = config / "ivr12333" / "pin-keys"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert f"created the PIN key file {path} (mode 0600" in flat(result)
    (key,) = keys_in(path)
    assert key not in result.output
    again = CliRunner().invoke(cli, ["--database-url", url, "demo"], env=env)
    assert again.exit_code == 0 and "created" not in again.output
    assert keys_in(path) == [key]  # the same key: the hashes stored first still verify
    engine = make_engine(url)
    assert check_password(engine, LI, LI_PASSWORD, 3, pinkeys.read_file(path)) \
        is PasswordCheck.OK
    engine.dispose()


def test_a_dataset_written_under_one_key_is_refused_where_another_is_held(
    tmp_path: Path, url: str
) -> None:
    out = tmp_path / "people.json"
    written = CliRunner().invoke(cli, ["demo", "--people", "5", "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert f"where PIN key {KEYS.current_id} is in the keyring" in flat(written)
    elsewhere = tmp_path / "elsewhere-keys"
    pinkeys.generate(elsewhere)
    refused = CliRunner().invoke(cli, ["--database-url", url, "import", str(out)],
                                 env={"IVR_PIN_KEY_FILE": str(elsewhere)})
    assert refused.exit_code == 1
    assert f"is hashed under PIN key {KEYS.current_id}, which this hotline's keyring" \
        in flat(refused)


# ---- upgrades at the next right password ---------------------------------------------------

def test_a_former_scrypt_hash_is_hashed_anew_on_success_not_on_failure(engine: Engine) -> None:
    former = passwords.scrypt_hash(LI_PASSWORD, n=16)
    set_hash(engine, LI, former)
    assert check_password(engine, LI, "000000", 3, KEYS) is PasswordCheck.WRONG
    assert stored_hash(engine, LI) == former
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.OK
    upgraded = stored_hash(engine, LI)
    assert upgraded.startswith(f"hmac-sha256${KEYS.current_id}$")
    assert passwords.verify_password(LI_PASSWORD, upgraded, KEYS)
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.OK
    assert stored_hash(engine, LI) == upgraded  # current: left as it is


def test_a_hash_under_an_older_key_verifies_and_moves_to_the_current_key(engine: Engine) -> None:
    rotated = KEYS.with_new_key()
    before = stored_hash(engine, LI)
    assert check_password(engine, LI, "000000", 3, rotated) is PasswordCheck.WRONG
    assert stored_hash(engine, LI) == before
    assert check_password(engine, LI, LI_PASSWORD, 3, rotated) is PasswordCheck.OK
    after = stored_hash(engine, LI)
    assert passwords.key_id_of(after) == rotated.current_id != KEYS.current_id
    # the old keyring cannot check it any more; the rotated one still checks the others
    assert check_password(engine, CHEN, CHEN_PASSWORD, 3, rotated) is PasswordCheck.OK


def test_a_locked_password_is_not_upgraded(engine: Engine) -> None:
    former = passwords.scrypt_hash(LI_PASSWORD, n=16)
    set_hash(engine, LI, former)
    for _ in range(3):
        check_password(engine, LI, "000000", 3, KEYS)
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.LOCKED
    assert stored_hash(engine, LI) == former


def test_the_upgrade_never_overwrites_a_hash_changed_meanwhile(engine: Engine,
                                                               monkeypatch: Any) -> None:
    """Between the check and the upgrade, an import gives the person a new password: the
    upgrade writes only over the hash it checked."""
    set_hash(engine, LI, passwords.scrypt_hash(LI_PASSWORD, n=16))
    reimported = passwords.hash_password("999000", KEYS)
    real_verify = passwords.verify_password

    def verify_then_reimport(password: str, stored: str, keyring: Keyring) -> bool:
        result = real_verify(password, stored, keyring)
        set_hash(engine, LI, reimported)
        return result

    monkeypatch.setattr(passwords, "verify_password", verify_then_reimport)
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.OK
    assert stored_hash(engine, LI) == reimported


def test_concurrent_right_passwords_upgrade_once_and_corrupt_nothing(url: str,
                                                                     engine: Engine) -> None:
    set_hash(engine, LI, passwords.scrypt_hash(LI_PASSWORD, n=2**10))
    barrier = threading.Barrier(8, timeout=30)
    results: list[PasswordCheck] = []

    def sign_in() -> None:
        own = make_engine(url)
        try:
            barrier.wait()
            # a limit of 8: every one of the 8 gets a check (3 would leave 5 "no check left")
            results.append(check_password(own, LI, LI_PASSWORD, 8, KEYS))
        finally:
            own.dispose()

    threads = [threading.Thread(target=sign_in) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [PasswordCheck.OK] * 8
    final = stored_hash(engine, LI)
    assert passwords.key_id_of(final) == KEYS.current_id
    assert passwords.verify_password(LI_PASSWORD, final, KEYS)
    assert attempts(engine, LI) == 0
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.OK


def test_a_hash_under_a_missing_key_is_an_error_that_counts_no_attempt(engine: Engine) -> None:
    """The key was lost (or a server runs without the new key of a rotation): the check is
    not made, not counted as a failure, and the error names the key id."""
    other = Keyring.of(b"q" * 32)
    with pytest.raises(passwords.UnknownPinKey, match=KEYS.current_id):
        check_password(engine, LI, LI_PASSWORD, 3, other)
    assert attempts(engine, LI) == 0
    assert check_password(engine, LI, LI_PASSWORD, 3, KEYS) is PasswordCheck.OK


def test_unknown_locked_and_wrong_each_cost_one_hmac_under_the_current_key(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same work whatever the answer: one verification, of a hash of the current form and
    key (the dummy when there is no hash to check), so no answer is quicker than another."""
    checked: list[str] = []
    real_verify = passwords.verify_password

    def counting(password: str, stored: str, keyring: Keyring) -> bool:
        checked.append(stored)
        return real_verify(password, stored, keyring)

    monkeypatch.setattr(passwords, "verify_password", counting)
    for _ in range(3):
        check_password(engine, CHEN, "000000", 3, KEYS)  # locks 陈丽
    outcomes = {}
    for kind, id_number in (("unknown", "11010519800101001X"), ("locked", CHEN),
                            ("wrong", LI), ("none", None)):
        checked.clear()
        outcomes[kind] = check_password(engine, id_number, "000000", 3, KEYS)
        assert len(checked) == 1, kind
        assert passwords.key_id_of(checked[0]) == KEYS.current_id, kind
    assert outcomes == {"unknown": PasswordCheck.UNKNOWN, "locked": PasswordCheck.LOCKED,
                        "wrong": PasswordCheck.WRONG, "none": PasswordCheck.UNKNOWN}


def test_stolen_database_alone_reveals_no_password(engine: Engine) -> None:
    """With the database and any key but the hotline's, no stored hash checks, whatever the
    password (the key id names a key the thief lacks)."""
    thief = Keyring.of(b"t" * 32)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(select(people.c.password_hash))]
    assert stored and all(passwords.key_id_of(h) == KEYS.current_id for h in stored)
    for value in stored:
        with pytest.raises(passwords.UnknownPinKey):
            passwords.verify_password(LI_PASSWORD, value, thief)
        # relabelled with the thief's key id, it is still no hash of any demo password
        forged = value.replace(KEYS.current_id, thief.current_id, 1)
        assert not any(passwords.verify_password(p, forged, thief)
                       for p in ("135790", "246802", "111222", "222333", "666777", "555666"))


# ---- through the phone ------------------------------------------------------------------------

def test_a_caller_with_a_former_hash_hears_the_balance_and_is_upgraded(
    caller: Any, app: Any
) -> None:
    hotline = app.extensions["ivr12333"]
    former = passwords.scrypt_hash(LI_PASSWORD, n=16)
    set_hash(hotline.db, LI, former)
    caller.dial().press("1").press("1").press("1").press(LI + "#").press("1")
    assert stored_hash(hotline.db, LI) == former
    caller.press(LI_PASSWORD + "#")
    assert BALANCE.search(caller.heard), caller.heard
    assert passwords.key_id_of(stored_hash(hotline.db, LI)) == KEYS.current_id


def test_keys_reach_no_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG while keys are made, rotated, loaded, used by an import and a
    scripted call: neither the keys nor the file's text reach a log record or the output."""
    path, url = tmp_path / "pin-keys", f"sqlite:///{tmp_path / 'db.sqlite3'}"
    runner = CliRunner(env={"IVR_PIN_KEY_FILE": str(path)})
    outputs = []
    with caplog.at_level(logging.DEBUG):
        for name in ("sqlalchemy", "sqlalchemy.engine", "ivr", "ivr.web", "ivr.engine"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            for args in (["key", "generate"], ["key", "rotate"], ["--database-url", url, "demo"],
                         ["--database-url", url, "key", "status"],
                         ["--database-url", url, "call", "--live", "--script",
                          "tests/calls/balance_by_id.yaml"]):
                result = runner.invoke(cli, args)
                assert result.exit_code == 0, (args, result.output)
                outputs.append(result.output)
        finally:
            for name in ("sqlalchemy", "sqlalchemy.engine", "ivr", "ivr.web", "ivr.engine"):
                logging.getLogger(name).setLevel(logging.NOTSET)
    keys = keys_in(path)
    assert len(keys) == 2
    raw = [key for _, key in pinkeys.read_file(path).keys]
    logged = "\n".join([r.getMessage() for r in caplog.records]
                       + [repr(r.args) for r in caplog.records] + outputs)
    for key, rawkey in zip(keys, raw, strict=True):
        assert key not in logged
        assert rawkey.hex() not in logged and repr(rawkey) not in logged
