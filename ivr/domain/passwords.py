"""Query-password hashes: a keyed HMAC-SHA256 under a key kept out of the database.

A 6-digit password has 10^6 values: no hash cost an answering server can pay makes that slow
to search (scrypt n=2^14 costs ~40 ms a check, yet 10^6 fall in ~11 CPU-hours). What protects
a stolen database is a key it does not hold. Stored form::

    hmac-sha256$KEY_ID$SALT$DIGEST      DIGEST = HMAC-SHA256(key KEY_ID, SALT + password)

(SALT 16 bytes, DIGEST 32, both base64). Older hashes, ``scrypt$N$r$p$SALT$HASH``, still verify;
`needs_rehash` says when a password that just verified should be stored anew (scrypt, or a key
that is no longer current).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from ivr.domain.pinkeys import ID_DIGITS, Keyring
from ivr.errors import PinKeyError

HMAC_PREFIX = "hmac-sha256"
SCRYPT_PREFIX = "scrypt"
SALT_BYTES = 16
_R, _P, _DKLEN = 8, 1, 32
_MAXMEM = 256 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _digest(key: bytes, salt: bytes, password: str) -> bytes:
    return hmac.new(key, salt + password.encode("utf-8"), hashlib.sha256).digest()


def hash_password(password: str, keyring: Keyring, *, salt: bytes | None = None) -> str:
    """Hash under the keyring's current key with a fresh 16-byte salt (or `salt`: synthetic
    data only, where the same seed must give the same file)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _digest(keyring.current_key, salt, password)
    return f"{HMAC_PREFIX}${keyring.current_id}${_b64(salt)}${_b64(digest)}"


class UnknownPinKey(PinKeyError):
    """A stored hash names a key that the keyring does not hold."""

    def __init__(self, kid: str, keyring: Keyring) -> None:
        super().__init__(f"a stored password hash names PIN key {kid}, which the keyring "
                         f"({keyring.source or 'in use'}: {', '.join(keyring.ids)}) lacks: "
                         "put that key back (restart every server after a rotation)")
        self.kid = kid


def _parse_hmac(stored: str) -> tuple[str, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != HMAC_PREFIX:
        raise ValueError("not an hmac-sha256 hash")
    kid = parts[1]
    if len(kid) != ID_DIGITS or any(c not in "0123456789abcdef" for c in kid):
        raise ValueError("bad key id")
    try:
        salt, digest = _unb64(parts[2]), _unb64(parts[3])
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not an hmac-sha256 hash") from exc
    if len(salt) < 8 or len(digest) != 32:
        raise ValueError("bad hmac-sha256 salt or digest")
    return kid, salt, digest


def _parse_scrypt(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCRYPT_PREFIX:
        raise ValueError("not an scrypt hash")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not an scrypt hash") from exc
    if n < 2 or n & (n - 1) or not (1 <= r <= 32 and 1 <= p <= 16) or len(salt) < 8 or not digest:
        raise ValueError("bad scrypt parameters")
    if 128 * r * (n + p + 2) > _MAXMEM:
        raise ValueError("scrypt parameters need more memory than allowed")
    return n, r, p, salt, digest


def key_id_of(stored: str) -> str | None:
    """The key id of an hmac-sha256 hash; None for any other form."""
    try:
        return _parse_hmac(stored)[0]
    except ValueError:
        return None


def is_password_hash(value: str) -> bool:
    """True when `value` has a form this module verifies (hmac-sha256 or scrypt); whether its
    key is in a keyring is `key_id_of`'s question."""
    for parse in (_parse_hmac, _parse_scrypt):
        try:
            parse(value)
        except ValueError:
            continue
        return True
    return False


def verify_password(password: str, stored: str, keyring: Keyring) -> bool:
    """Constant-time comparison of `password` against a stored hash of either form. Raises
    ValueError for a malformed hash and UnknownPinKey for a key the keyring lacks."""
    if stored.startswith(HMAC_PREFIX + "$"):
        kid, salt, digest = _parse_hmac(stored)
        key = keyring.key(kid)
        if key is None:
            raise UnknownPinKey(kid, keyring)
        return hmac.compare_digest(_digest(key, salt, password), digest)
    n, r, p, salt, digest = _parse_scrypt(stored)
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                             maxmem=_MAXMEM, dklen=_DKLEN)
    return hmac.compare_digest(derived, digest)


def needs_rehash(stored: str, keyring: Keyring) -> bool:
    """A hash to replace once its password is known: scrypt, or a key no longer current."""
    return key_id_of(stored) != keyring.current_id


@lru_cache(maxsize=16)
def dummy_hash(keyring: Keyring) -> str:
    """Verified against when there is no real hash to check, so every answer costs one HMAC
    under the current key, as a real check does."""
    return hash_password("000000", keyring)


def scrypt_hash(password: str, *, n: int = 2**14, salt: bytes | None = None) -> str:
    """The former stored form, 'scrypt$n$r$p$salt$hash': only to build old data (tests, the
    benchmarks of the old cost); new hashes are `hash_password`'s."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=_R, p=_P,
                            maxmem=_MAXMEM, dklen=_DKLEN)
    return f"{SCRYPT_PREFIX}${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"
