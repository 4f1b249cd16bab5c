"""What no Twilio request can be, refused from the raw bytes before the form is parsed and
before its signature is computed (twilio's validator concatenates every name and value, so a
form of thousands of fields cost tens of ms before its 403).

A Twilio voice webhook is a form of some 15 to 45 fields (the call's, the caller's and the
called number's geography, a Gather's, a Dial's or a queue's outcome, a status callback's
timing), named in Twilio's way (letters and digits, `SipHeader_X-...` for SIP headers), each
value short: the longest, CallToken, is under 2 KB. The limits below are far above that and
far below what costs.
"""

from __future__ import annotations

import re

#: fields of the form (and, apart, of the query string): Twilio sends at most about 45
MAX_FIELDS = 100
#: one value, as sent (percent-encoded)
MAX_VALUE_BYTES = 4096
#: a field name as Twilio writes it: a letter, then letters, digits, '_', '-' or '.'
_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
FORM_TYPE = "application/x-www-form-urlencoded"


def problem(encoded: bytes) -> str | None:
    """Why `encoded` (a urlencoded form or query string) is no Twilio request, or None."""
    if not encoded:
        return None
    if encoded.count(b"&") >= MAX_FIELDS:  # counted before anything is split
        return f"more than {MAX_FIELDS} fields"
    for pair in encoded.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not _NAME.fullmatch(name):
            return "a field name not of Twilio's form"
        if len(value) > MAX_VALUE_BYTES:
            return f"a value over {MAX_VALUE_BYTES} bytes"
    return None
