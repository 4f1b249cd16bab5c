"""Salted scrypt hashes for query passwords: stored as text that carries its own parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_PREFIX = "scrypt"
DEFAULT_N = 2**14
_R, _P, _DKLEN = 8, 1, 32
_MAXMEM = 256 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN
    )


def hash_password(password: str, *, n: int = DEFAULT_N) -> str:
    """Hash with a fresh 16-byte salt: 'scrypt$n$r$p$salt$hash' (base64)."""
    salt = os.urandom(16)
    digest = _derive(password, salt, n, _R, _P)
    return f"{_PREFIX}${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def is_password_hash(value: str) -> bool:
    """True when `value` is a hash this module can verify (used to accept pre-hashed imports)."""
    try:
        _parse(value)
    except ValueError:
        return False
    return True


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("not an scrypt hash")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(
            parts[5], validate=True
        )
    except (ValueError, TypeError) as exc:
        raise ValueError("not an scrypt hash") from exc
    if n < 2 or n & (n - 1) or not (1 <= r <= 32 and 1 <= p <= 16) or len(salt) < 8 or not digest:
        raise ValueError("bad scrypt parameters")
    if 128 * r * (n + p + 2) > _MAXMEM:
        raise ValueError("scrypt parameters need more memory than allowed")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison of `password` against a stored hash."""
    n, r, p, salt, digest = _parse(stored)
    return hmac.compare_digest(_derive(password, salt, n, r, p), digest)


#: Verified against when the number is unknown, so both answers cost the same time.
DUMMY_HASH = hash_password("000000")
