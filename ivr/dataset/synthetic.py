"""Synthetic datasets of any size (`ivr12333 demo --people N`), for load tests and benchmarks.

Everything about person `i` is a pure function of (seed, i): the ID number, card, name,
scheme, account, bindings, transactions and the plain password. So a load generator can call
as person `i` without reading the file (`person(i, seed).password`), and the same seed always
writes the same bytes. Big datasets are written streaming, one record a line.

Passwords: SYNTHETIC DATA ONLY. Each person gets a `password_hash` (the import takes it
instead of `password`) from a small pool of hashes computed once: `pool_size` passwords derived
from the seed, each hashed under the given keyring's current key with a salt derived from the
seed (so the same seed and key write the same bytes, and the file imports only where that key
is in the keyring). Many people share a password and a salt, and anyone with the seed can
derive every person's password: never do this with real people.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from ivr.domain import passwords
from ivr.domain.identity import IdNumber, synthetic_id_number
from ivr.domain.pinkeys import Keyring
from ivr.domain.policy import POOL_RELATIONS, implausible

#: The synthetic region's own number: its people's calls reach it beside other regions (the
#: demo's) in one database (docs/call-flow.md §1a); the load generator dials it.
NUMBER = "+867719912333"
#: The line's region: the demo's policy under a code of its own.
REGION: dict[str, Any] = {
    "code": "450199",
    "name": "合成市",
    "name_en": "Synthetic City",
    "numbers": [NUMBER],
    "pool_relations": "close_relatives",
    "max_members": 7,
    "multiple_funders": True,
    "commercial_insurance": True,
    "lockout_after": 3,
    "agent_number": "+867711234567",
    "agent_hours": [["mon-fri", "09:00-12:00"], ["mon-fri", "13:00-17:00"]],
    "timezone": "Asia/Shanghai",
}
#: Address codes of the synthetic people (none is used by the bundled demo people).
DISTRICTS = ("450122", "450123", "450124", "450125", "450126", "450127", "450181", "450199")
FIRST_BIRTH = date(1940, 1, 1)
BIRTH_DAYS = (date(2020, 1, 1) - FIRST_BIRTH).days
#: How many distinct people the ID scheme can name (district x birth day x sequence).
CAPACITY = len(DISTRICTS) * BIRTH_DAYS * 1000
AS_OF = date(2026, 11, 21)
CARD_LETTERS = "STUVWXYZ"  # the demo's cards start with A, B, D or a digit: never the same card
POOL_SIZE = 16
FUNDER_EVERY = 6  # person i with i % 6 == 0 may fund i+1 .. i+3: each member has one funder
MAX_MEMBERS = 3

_ID_STRIDE = 73_048_001  # coprime with CAPACITY (a bijection); the next person ~25 years on,
# so a funder's neighbours (their members) can be a generation apart
_CARD_STRIDE = 7_654_321  # coprime with 10**8: index -> card digits is a bijection
_MASK = (1 << 64) - 1
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国文辉鹏玲红燕宇浩晨雪梅林海波"
_SPENDS = ("outpatient", "pharmacy", "inpatient")


def _mix(seed: int, index: int, salt: int) -> int:
    """A 64-bit hash of (seed, index, salt) (splitmix64): the generator's only randomness."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB
         + 0x2545F4914F6CDD1D) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _money(fen: int) -> str:
    """Integer fen -> an exact decimal string ("-12.05"), never through a float."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """Person `index` of the dataset of `seed`, with the plain password a load test presses."""

    index: int
    id_number: str
    card_number: str | None
    name: str
    scheme: str
    status: str
    retired: bool
    password: str

    @property
    def id_keys(self) -> str:
        """The ID number as keyed on a phone pad (* for X)."""
        return self.id_number.replace("X", "*")

    @property
    def funds(self) -> bool:
        """Can this person fund family members (an active employee-scheme account)?"""
        return self.scheme == "employee" and self.status == "active"


@lru_cache(maxsize=8)
def password_pool(seed: int, size: int = POOL_SIZE) -> tuple[str, ...]:
    """The pool's plain 6-digit passwords for `seed` (synthetic data only)."""
    return tuple(f"{_mix(seed, k, 11) % 1_000_000:06d}" for k in range(size))


@lru_cache(maxsize=8)
def hash_pool(seed: int, size: int, keyring: Keyring) -> tuple[str, ...]:
    """Hashes of the pool's passwords under the current key, salted from the seed so output is
    reproducible."""
    return tuple(
        passwords.hash_password(plain, keyring, salt=hashlib.sha256(
            f"ivr12333 synthetic {seed} {k}".encode()).digest()[:16])
        for k, plain in enumerate(password_pool(seed, size)))


def _id_number(index: int, seed: int) -> str:
    slot = (index * _ID_STRIDE + _mix(seed, 0, 1)) % CAPACITY
    slot, district = divmod(slot, len(DISTRICTS))
    day, sequence = divmod(slot, 1000)
    return synthetic_id_number(DISTRICTS[district], FIRST_BIRTH + timedelta(days=day), sequence,
                               "male" if sequence % 2 else "female")


def person(index: int, seed: int = 0, pool_size: int = POOL_SIZE) -> SyntheticPerson:
    """Person `index` (0-based) of the dataset of `seed`: pure, so any process can derive it."""
    if not 0 <= index < CAPACITY:
        raise ValueError(f"a synthetic dataset has at most {CAPACITY} people")
    h = _mix(seed, index, 2)
    id_number = _id_number(index, seed)
    card = None
    if h % 100 < 85:
        digits = (index * _CARD_STRIDE + _mix(seed, 0, 3)) % 10**8
        card = f"{CARD_LETTERS[(h >> 8) % len(CARD_LETTERS)]}{digits:08d}"
    name = _SURNAMES[(h >> 16) % len(_SURNAMES)] + _GIVEN[(h >> 24) % len(_GIVEN)]
    if (h >> 32) % 3:
        name += _GIVEN[(h >> 40) % len(_GIVEN)]
    scheme = "employee" if (h >> 48) % 100 < 65 else "resident"
    status = "suspended" if (h >> 56) % 50 == 0 else "active"
    retired = int(id_number[6:10]) < 1966
    password = password_pool(seed, pool_size)[_mix(seed, index, 4) % pool_size]
    return SyntheticPerson(index, id_number, card, name, scheme, status, retired, password)


def _record(p: SyntheticPerson, seed: int, pool_size: int, keyring: Keyring) -> dict[str, Any]:
    slot = _mix(seed, p.index, 4) % pool_size
    record: dict[str, Any] = {"id_number": p.id_number}
    if p.card_number:
        record["card_number"] = p.card_number
    record.update(name=p.name, scheme=p.scheme, status=p.status, retired=p.retired,
                  password_hash=hash_pool(seed, pool_size, keyring)[slot])
    if p.scheme == "employee":
        h = _mix(seed, p.index, 5)
        record["account"] = {"balance": _money(h % 2_000_000),
                             "monthly_credit": _money((h >> 24) % 30_000),
                             "as_of": AS_OF.isoformat()}
    return record


def _members(funder: SyntheticPerson, n: int, seed: int) -> list[int]:
    """Indices of the people `funder` funds (possibly none)."""
    i = funder.index
    if i % FUNDER_EVERY or not funder.funds:
        return []
    count = _mix(seed, i, 6) % (MAX_MEMBERS + 1)
    return [m for m in range(i + 1, i + 1 + count) if m < n]


def _plausible(relationship: str, funder: IdNumber, member: IdNumber) -> bool:
    return implausible(relationship, funder.birth_date, funder.sex, member.birth_date,
                       member.sex) is None


def _bindings(p: SyntheticPerson, n: int, seed: int) -> list[dict[str, Any]]:
    relations = POOL_RELATIONS[str(REGION["pool_relations"])]
    out = []
    funder = IdNumber(p.id_number)
    for m in _members(p, n, seed):
        h = _mix(seed, m, 7)
        member = IdNumber(_id_number(m, seed))
        # only what the importer finds plausible: parents at least 12 years older, children 12
        # younger, grandparents 24, a spouse of the other sex (a sibling always fits)
        fits = [r for r in relations if _plausible(r, funder, member)]
        out.append({"funder": p.id_number, "member": member.value,
                    "relationship": fits[h % len(fits)],
                    "since": (AS_OF - timedelta(days=30 + (h >> 16) % 2000)).isoformat()})
    return out


def _transactions(p: SyntheticPerson, n: int, seed: int) -> list[dict[str, Any]]:
    if p.scheme != "employee":
        return []
    h = _mix(seed, p.index, 8)
    out: list[dict[str, Any]] = []
    for k in range(h % 5):
        t = _mix(seed, p.index, 100 + k)
        day = (AS_OF - timedelta(days=t % 90)).isoformat()
        if k == 0:
            out.append({"id_number": p.id_number, "date": day, "kind": "credit",
                        "amount": _money(1000 + (t >> 8) % 30_000)})
        else:
            out.append({"id_number": p.id_number, "date": day,
                        "kind": _SPENDS[(t >> 8) % len(_SPENDS)],
                        "amount": _money(-(100 + (t >> 16) % 200_000))})
    members = _members(p, n, seed)
    if members:
        t = _mix(seed, p.index, 9)
        out.append({"id_number": p.id_number, "date": (AS_OF - timedelta(days=t % 60)).isoformat(),
                    "kind": "pool_payment", "amount": _money(-(100 + (t >> 8) % 50_000)),
                    "for": _id_number(members[0], seed)})
    return out


@dataclass
class Summary:
    """What a generated dataset holds (what its import must report)."""

    people: int = 0
    bindings: int = 0
    transactions: int = 0


def write_dataset(out: IO[str], n: int, seed: int = 0, *, keyring: Keyring,
                  pool_size: int = POOL_SIZE,
                  progress: Callable[[int], None] | None = None) -> Summary:
    """Write the dataset of `n` people as JSON, one record a line (streaming: any size).

    One pass over the people; bindings and transactions wait in temporary files meanwhile.
    `progress` is called with the number of people written since its previous call.
    """
    if not 0 <= n <= CAPACITY:
        raise ValueError(f"people must be between 0 and {CAPACITY}")
    if not 1 <= pool_size <= 1000:
        raise ValueError("pool_size must be between 1 and 1000")
    summary = Summary(people=n)
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    out.write('{"region": ' + json.dumps(REGION, ensure_ascii=False) + ',\n"people": [\n')
    with tempfile.TemporaryFile("w+", encoding="utf-8") as held_b, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as held_t:
        for i in range(n):
            p = person(i, seed, pool_size)
            out.write(("" if i == 0 else ",\n") + dumps(_record(p, seed, pool_size, keyring)))
            if i % FUNDER_EVERY == 0 and p.funds:
                for item in _bindings(p, n, seed):
                    held_b.write(("" if summary.bindings == 0 else ",\n") + dumps(item))
                    summary.bindings += 1
            for item in _transactions(p, n, seed):
                held_t.write(("" if summary.transactions == 0 else ",\n") + dumps(item))
                summary.transactions += 1
            if progress is not None and (i + 1) % 10_000 == 0:
                progress(10_000)
        if progress is not None and n % 10_000:
            progress(n % 10_000)
        for key, held in (("bindings", held_b), ("transactions", held_t)):
            out.write(f'\n],\n"{key}": [\n')
            held.seek(0)
            shutil.copyfileobj(held, out, 1 << 20)
    out.write("\n]}\n")
    return summary


def write_file(path: Path, n: int, seed: int = 0, *, keyring: Keyring,
               pool_size: int = POOL_SIZE,
               progress: Callable[[int], None] | None = None) -> Summary:
    """write_dataset into a file (UTF-8)."""
    with open(path, "w", encoding="utf-8") as fh:
        return write_dataset(fh, n, seed, keyring=keyring, pool_size=pool_size,
                             progress=progress)


def dataset(n: int, seed: int = 0, *, keyring: Keyring,
            pool_size: int = POOL_SIZE) -> dict[str, Any]:
    """The dataset of `n` people in memory (small n), as `import_dataset` takes it."""
    import io

    buf = io.StringIO()
    write_dataset(buf, n, seed, keyring=keyring, pool_size=pool_size)
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data


def people(n: int, seed: int = 0, pool_size: int = POOL_SIZE) -> Iterator[SyntheticPerson]:
    """Persons 0..n-1 of the dataset of `seed`."""
    for i in range(n):
        yield person(i, seed, pool_size)
