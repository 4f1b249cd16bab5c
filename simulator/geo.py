"""Where a phone number is: Twilio's geographic request parameters (FromCity, ToState, …).

Twilio derives them from the numbers and sends them on every voice request, empty when it
does not know. Here: the country from the calling code, and city/state/zip for the area codes
of a small table; a script sets any of them (`geo:`).
"""

from __future__ import annotations

from collections.abc import Mapping

FIELDS = ("City", "State", "Zip", "Country")

#: calling code -> ISO country (longest prefix wins)
COUNTRIES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "30": "GR", "31": "NL", "32": "BE",
    "33": "FR", "34": "ES", "39": "IT", "41": "CH", "43": "AT", "44": "GB", "45": "DK",
    "46": "SE", "47": "NO", "48": "PL", "49": "DE", "52": "MX", "55": "BR", "60": "MY",
    "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG", "66": "TH", "81": "JP",
    "82": "KR", "84": "VN", "86": "CN", "90": "TR", "91": "IN", "852": "HK", "853": "MO",
    "886": "TW", "971": "AE",
}
#: E.164 prefix (after +) -> (city, state, zip), as Twilio writes them (capitals)
PLACES = {
    "1415": ("SAN FRANCISCO", "CA", "94103"),
    "1212": ("NEW YORK", "NY", "10001"),
    "1312": ("CHICAGO", "IL", "60601"),
    "1206": ("SEATTLE", "WA", "98101"),
    "1512": ("AUSTIN", "TX", "78701"),
    "1617": ("BOSTON", "MA", "02108"),
    "1555": ("", "", ""),  # fictional numbers
    "8610": ("BEIJING", "BEIJING", "100000"),
    "8621": ("SHANGHAI", "SHANGHAI", "200000"),
    "8620": ("GUANGZHOU", "GUANGDONG", "510000"),
    "86755": ("SHENZHEN", "GUANGDONG", "518000"),
    "86771": ("NANNING", "GUANGXI", "530000"),
    "86773": ("GUILIN", "GUANGXI", "541000"),
    "86772": ("LIUZHOU", "GUANGXI", "545000"),
}


def place(number: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """{"City", "State", "Zip", "Country"} for `number` ("" where unknown), then `overrides`
    (keys city/state/zip/country, any case)."""
    digits = number[1:] if number.startswith("+") else ""
    found = {"City": "", "State": "", "Zip": "", "Country": ""}
    if digits.isdigit():
        for length in (3, 2, 1):
            if digits[:length] in COUNTRIES:
                found["Country"] = COUNTRIES[digits[:length]]
                break
        for length in range(min(len(digits), 6), 0, -1):
            if digits[:length] in PLACES:
                found["City"], found["State"], found["Zip"] = PLACES[digits[:length]]
                break
    for key, value in (overrides or {}).items():
        found[key.capitalize()] = value
    return found


def geo_params(from_: str, to: str, overrides: Mapping[str, Mapping[str, str]] | None = None
               ) -> dict[str, str]:
    """FromCity … ToCountry and their Caller…/Called… twins, as Twilio sends them."""
    overrides = overrides or {}
    params: dict[str, str] = {}
    for side, number, twin in (("From", from_, "Caller"), ("To", to, "Called")):
        where = place(number, overrides.get(side.lower()))
        for name in FIELDS:
            params[f"{side}{name}"] = where[name]
            params[f"{twin}{name}"] = where[name]
    return params
