"""ivr.passwords: salted scrypt hashes that carry their own parameters."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.domain.passwords import (
    DEFAULT_N,
    DUMMY_HASH,
    hash_password,
    is_password_hash,
    verify_password,
)

N = 2**4


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


SALT, DIGEST = b64(b"0123456789abcdef"), b64(b"d" * 32)


def test_hash_format() -> None:
    stored = hash_password("135790", n=N)
    parts = stored.split("$")
    assert parts[:4] == ["scrypt", "16", "8", "1"]
    assert len(parts) == 6
    assert len(base64.b64decode(parts[4], validate=True)) == 16
    assert len(base64.b64decode(parts[5], validate=True)) == 32
    assert "135790" not in stored


def test_default_cost() -> None:
    assert DEFAULT_N == 2**14
    assert DUMMY_HASH.startswith(f"scrypt${DEFAULT_N}$8$1$")
    assert verify_password("000000", DUMMY_HASH) is True


def test_salted_two_hashes_differ() -> None:
    a, b = hash_password("135790", n=N), hash_password("135790", n=N)
    assert a != b
    assert a.split("$")[4] != b.split("$")[4]
    assert verify_password("135790", a) and verify_password("135790", b)


def test_verify_true_and_false() -> None:
    stored = hash_password("246802", n=N)
    assert verify_password("246802", stored) is True
    assert verify_password("246803", stored) is False
    assert verify_password("", stored) is False
    assert verify_password("2468020", stored) is False


def test_known_vector_matches_hashlib() -> None:
    import hashlib

    salt = b"fixed-salt-16byt"
    digest = hashlib.scrypt(b"123456", salt=salt, n=N, r=8, p=1, dklen=32)
    stored = f"scrypt$16$8$1${b64(salt)}${b64(digest)}"
    assert is_password_hash(stored) is True
    assert verify_password("123456", stored) is True
    assert verify_password("654321", stored) is False


@settings(max_examples=25, deadline=None)
@given(st.from_regex(r"\A\d{6}\Z"), st.from_regex(r"\A\d{6}\Z"))
def test_round_trip(password: str, other: str) -> None:
    stored = hash_password(password, n=N)
    assert is_password_hash(stored)
    assert verify_password(password, stored) is True
    assert verify_password(other, stored) is (other == password)


@pytest.mark.parametrize("garbage", [
    "",
    "123456",
    "scrypt",
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
])
def test_is_password_hash_refuses_garbage(garbage: str) -> None:
    assert is_password_hash(garbage) is False
    with pytest.raises(ValueError):
        verify_password("123456", garbage)


def test_accepted_hash_can_be_verified_without_error() -> None:
    """is_password_hash decides what an import may store, so an accepted hash must verify.

    Bug: n=2**20 (r=8) passes _parse but needs 1 GiB, over verify's 256 MiB maxmem, so
    verify_password raises ValueError("memory limit exceeded") on every call for that person.
    Suggested fix: in _parse refuse 128 * r * n (+ 128 * r * p) above maxmem (or cap n, e.g.
    at 2**17 for r=8).
    """
    huge = f"scrypt${2**20}$8$1${SALT}${DIGEST}"
    if is_password_hash(huge):
        assert verify_password("123456", huge) is False
