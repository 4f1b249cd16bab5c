"""A caller's number as a keyed hash, for the short-lived repeat-call table of the call records.

HMAC-SHA256 under a key derived from the current PIN key (ivr/domain/pinkeys.py): without the
key file the digest of a number cannot be recomputed, so a copy of the table reveals nothing;
a withheld number has no digest at all (it is left out of the repeat-call measure). After a key
rotation the same number gets a new digest: repeat calls across the rotation are not seen,
for at most the table's 24 hours.
"""

from __future__ import annotations

import hashlib
import hmac

from ivr.domain.callers import WITHHELD, caller_class
from ivr.domain.pinkeys import Keyring

_LABEL = b"ivr12333 caller number digest"


def caller_number_digest(keyring: Keyring, number: str) -> str | None:
    """The keyed hash of a calling number (hex), or None when the number is withheld."""
    caller = caller_class(number)
    if caller == WITHHELD:
        return None
    subkey = hmac.new(keyring.current_key, _LABEL, hashlib.sha256).digest()
    return hmac.new(subkey, caller.encode("ascii"), hashlib.sha256).hexdigest()
