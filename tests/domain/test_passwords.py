"""ivr.domain.passwords: HMAC-SHA256 under a keyring kept out of the database; scrypt still
verifies (the former form), and either is hashed anew when the key is no longer current."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.domain.passwords import (
    UnknownPinKey,
    dummy_hash,
    hash_password,
    is_password_hash,
    key_id_of,
    needs_rehash,
    scrypt_hash,
    verify_password,
)
from ivr.domain.pinkeys import Keyring, key_id

N = 2**4  # scrypt cost of the former-form hashes these tests build
KEY, OTHER_KEY = b"k" * 32, b"o" * 32
KEYS = Keyring.of(KEY, source="test")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


SALT, DIGEST = b64(b"0123456789abcdef"), b64(b"d" * 32)


def test_hmac_form() -> None:
    stored = hash_password("135790", KEYS)
    parts = stored.split("$")
    assert parts[:2] == ["hmac-sha256", key_id(KEY)] and len(parts) == 4
    assert len(base64.b64decode(parts[2], validate=True)) == 16
    assert len(base64.b64decode(parts[3], validate=True)) == 32
    assert "135790" not in stored and b64(KEY) not in stored
    assert key_id_of(stored) == key_id(KEY)


def test_known_vector_is_hmac_sha256_of_salt_and_password() -> None:
    salt = b"fixed-salt-16byt"
    digest = hmac.new(KEY, salt + b"123456", hashlib.sha256).digest()
    stored = f"hmac-sha256${key_id(KEY)}${b64(salt)}${b64(digest)}"
    assert hash_password("123456", KEYS, salt=salt) == stored
    assert is_password_hash(stored) is True
    assert verify_password("123456", stored, KEYS) is True
    assert verify_password("654321", stored, KEYS) is False


def test_salted_two_hashes_differ() -> None:
    a, b = hash_password("135790", KEYS), hash_password("135790", KEYS)
    assert a != b and a.split("$")[2] != b.split("$")[2]
    assert verify_password("135790", a, KEYS) and verify_password("135790", b, KEYS)


def test_verify_true_and_false() -> None:
    stored = hash_password("246802", KEYS)
    assert verify_password("246802", stored, KEYS) is True
    for other in ("246803", "", "2468020", "24680"):
        assert verify_password(other, stored, KEYS) is False


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"\A\d{6}\Z"), st.from_regex(r"\A\d{6}\Z"))
def test_round_trip(password: str, other: str) -> None:
    stored = hash_password(password, KEYS)
    assert is_password_hash(stored)
    assert verify_password(password, stored, KEYS) is True
    assert verify_password(other, stored, KEYS) is (other == password)


def test_a_stolen_database_alone_verifies_nothing() -> None:
    """Without the key, the stored hash is useless: under any other key (an attacker's guess)
    no password verifies it, the right one included, and its id names no key they hold."""
    stored = hash_password("135790", KEYS)
    guess = OTHER_KEY
    with pytest.raises(UnknownPinKey):
        verify_password("135790", stored, Keyring.of(guess))
    # relabelling another key with the stored id is refused when the keyring is built
    with pytest.raises(Exception, match="not the id"):
        Keyring(((key_id(KEY), guess),), "forged")
    # a brute force under the wrong key finds nothing, the right password included
    salt, digest = (base64.b64decode(part) for part in stored.split("$")[2:])
    assert not any(hmac.compare_digest(
        hmac.new(guess, salt + f"{pin:06d}".encode(), hashlib.sha256).digest(), digest)
        for pin in (*range(0, 1_000_000, 1009), 135790))


def test_older_keys_verify_and_ask_to_be_hashed_anew() -> None:
    old = Keyring.of(OTHER_KEY)
    stored = hash_password("111222", old)
    rotated = old.with_new_key(KEY)
    assert rotated.current_id == key_id(KEY) and rotated.ids == (key_id(OTHER_KEY), key_id(KEY))
    assert verify_password("111222", stored, rotated) is True
    assert verify_password("111223", stored, rotated) is False
    assert needs_rehash(stored, rotated) is True
    assert needs_rehash(hash_password("111222", rotated), rotated) is False
    assert needs_rehash(stored, old) is False


def test_scrypt_still_verifies_and_asks_to_be_hashed_anew() -> None:
    salt = b"fixed-salt-16byt"
    digest = hashlib.scrypt(b"123456", salt=salt, n=N, r=8, p=1, dklen=32)
    stored = f"scrypt$16$8$1${b64(salt)}${b64(digest)}"
    assert scrypt_hash("123456", n=N, salt=salt) == stored
    assert is_password_hash(stored) is True and key_id_of(stored) is None
    assert verify_password("123456", stored, KEYS) is True
    assert verify_password("654321", stored, KEYS) is False
    assert needs_rehash(stored, KEYS) is True


def test_the_dummy_is_an_hmac_under_the_current_key() -> None:
    """Checked when there is no real hash: the same work as a real check."""
    rotated = Keyring.of(OTHER_KEY, KEY)
    assert dummy_hash(rotated).startswith(f"hmac-sha256${key_id(KEY)}$")
    assert verify_password("000000", dummy_hash(rotated), rotated) is True
    assert dummy_hash(rotated) == dummy_hash(rotated)  # computed once per keyring


def test_the_keyring_shows_ids_never_keys() -> None:
    ring = Keyring.of(OTHER_KEY, KEY, source="/etc/keys")
    for shown in (repr(ring), str(ring), f"{ring}", repr([ring])):
        assert b64(KEY) not in shown and b64(OTHER_KEY) not in shown
        assert key_id(KEY) in shown


@pytest.mark.parametrize("garbage", [
    "",
    "123456",
    "scrypt",
    "hmac-sha256",
    "scrypt$16$8$1$" + SALT,  # 5 parts
    f"scrypt$16$8$1${SALT}${DIGEST}$extra",
    f"bcrypt$16$8$1${SALT}${DIGEST}",
    f"scrypt$sixteen$8$1${SALT}${DIGEST}",
    f"scrypt$15$8$1${SALT}${DIGEST}",  # n not a power of two
    f"scrypt$1$8$1${SALT}${DIGEST}",
    f"scrypt$0$8$1${SALT}${DIGEST}",
    f"scrypt$-16$8$1${SALT}${DIGEST}",
    f"scrypt$16$0$1${SALT}${DIGEST}",
    f"scrypt$16$33$1${SALT}${DIGEST}",
    f"scrypt$16$8$0${SALT}${DIGEST}",
    f"scrypt$16$8$17${SALT}${DIGEST}",
    f"scrypt$16$8$1$not-base64!${DIGEST}",
    f"scrypt$16$8$1${b64(b'short')}${DIGEST}",  # salt under 8 bytes
    f"scrypt$16$8$1${SALT}$",  # empty digest
    f"hmac-sha256$0123abcd${SALT}",  # 3 parts
    f"hmac-sha256$0123abcd${SALT}${DIGEST}$extra",
    f"hmac-sha256$0123ABCD${SALT}${DIGEST}",  # ids are lower-case hex
    f"hmac-sha256$0123abc${SALT}${DIGEST}",  # 7 digits
    f"hmac-sha256$0123abcd$not-base64!${DIGEST}",
    f"hmac-sha256$0123abcd${b64(b'short')}${DIGEST}",
    f"hmac-sha256$0123abcd${SALT}${b64(b'd' * 31)}",  # not a SHA-256 digest
    f"hmac-sha1$0123abcd${SALT}${DIGEST}",
])
def test_is_password_hash_refuses_garbage(garbage: str) -> None:
    assert is_password_hash(garbage) is False
    with pytest.raises(ValueError):
        verify_password("123456", garbage, KEYS)


def test_a_hash_under_a_key_not_held_is_an_error_not_a_wrong_password() -> None:
    """A lost key must be loud (the operator puts it back), not lock its owners out."""
    stored = f"hmac-sha256$0123abcd${SALT}${DIGEST}"
    assert is_password_hash(stored) and key_id_of(stored) == "0123abcd"
    with pytest.raises(UnknownPinKey, match="0123abcd"):
        verify_password("123456", stored, KEYS)


def test_accepted_hash_can_be_verified_without_error() -> None:
    """is_password_hash decides what an import may store, so an accepted hash must verify:
    n=2**20 (r=8) needs 1 GiB, over verify's 256 MiB maxmem, and is refused."""
    huge = f"scrypt${2**20}$8$1${SALT}${DIGEST}"
    assert is_password_hash(huge) is False
