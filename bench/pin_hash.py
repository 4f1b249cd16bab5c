"""CPU per password check: the HMAC-SHA256 PIN hash against the former scrypt n=2**14, and what
a brute force of one person's 10**6 passwords costs someone holding the database AND the key.

    .venv/bin/python bench/pin_hash.py

CPU time (time.process_time), best of 5 rounds, so other processes on the machine count little.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.domain import (
    passwords,  # noqa: E402
    pinkeys,  # noqa: E402
)


def cpu_per_call(fn: Callable[[], object], calls: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - started) / calls)
    return best


def main() -> int:
    keyring = pinkeys.Keyring.of(pinkeys.new_key())
    stored = passwords.hash_password("135790", keyring)
    former = passwords.scrypt_hash("135790", n=2**14)
    hmac_check = cpu_per_call(lambda: passwords.verify_password("135790", stored, keyring),
                              20_000)
    hmac_hash = cpu_per_call(lambda: passwords.hash_password("135790", keyring), 20_000)
    scrypt_check = cpu_per_call(lambda: passwords.verify_password("135790", former, keyring),
                                10)
    key, salt = keyring.current_key, os.urandom(16)
    started = time.process_time()
    for pin in range(1_000_000):
        hmac.new(key, salt + b"%06d" % pin, hashlib.sha256).digest()
    search = time.process_time() - started
    print(f"check, hmac-sha256 (parse, HMAC, compare): {hmac_check * 1e6:.1f} µs")
    print(f"hash, hmac-sha256 (an upgrade or an import): {hmac_hash * 1e6:.1f} µs")
    print(f"check, scrypt n=2^14 (the former form): {scrypt_check * 1e3:.1f} ms "
          f"({scrypt_check / hmac_check:,.0f}x)")
    print(f"10^6 passwords of one person, database and key, one core in Python: {search:.1f} s")
    print(f"10^6 passwords of one person, scrypt n=2^14, one core: "
          f"{scrypt_check * 1e6 / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
