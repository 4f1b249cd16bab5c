"""The PIN keyring: the secret keys that query passwords are hashed with, kept out of the database.

A stolen database alone then reveals no password: each stored hash is an HMAC under a key that
only the key file (or ``IVR_PIN_KEY``) holds. The file is text, one key a line, oldest first;
the LAST line is the current key (new hashes), the others still verify (rotation)::

    # ivr12333 PIN keys
    3f9c2a1b:8J3mQ...base64 of 32 random bytes...=

Each line is ``KEY_ID:KEY`` (the key in standard base64, at least 32 bytes); ``#`` comments and
blank lines are ignored. ``IVR_PIN_KEY`` takes the same text, its entries separated by line
breaks, spaces or commas. A key id is derived from its key (see `key_id`), so a line cannot
name the wrong key and a stored hash names its key without revealing anything of it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import PinKeyError
from ivr.settings import Settings, env_name

KEY_BYTES = 32
ID_DIGITS = 8
HEADER = ("# ivr12333 PIN keys: one KEY_ID:KEY (base64) a line, oldest first; the last is the\n"
          "# current key. Keep this file out of the database and its backups; never share it.\n")
NO_KEY = ("no PIN key: run `ivr12333 key generate` or set IVR_PIN_KEY_FILE "
          "(a file holding the keys)")
#: how long a key command waits for another one to finish with the key file before refusing
LOCK_WAIT_SECONDS = 10.0
_ENTRY = re.compile(rf"^([0-9a-f]{{{ID_DIGITS}}}):([A-Za-z0-9+/]+={{0,2}})$")


def key_id(key: bytes) -> str:
    """The key's public name: HMAC-SHA256(key, a fixed label), its first 8 hex digits."""
    return hmac.new(key, b"ivr12333 PIN key id", hashlib.sha256).hexdigest()[:ID_DIGITS]


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys by id, oldest first; the last one is current. Its repr shows ids only."""

    keys: tuple[tuple[str, bytes], ...]
    #: where the keys came from (a path or a variable's name), for messages
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise PinKeyError(f"{self.source or 'PIN keyring'}: holds no key")
        seen = set()
        for kid, key in self.keys:
            if len(key) < KEY_BYTES:
                raise PinKeyError(f"{self.source}: key {kid} is shorter than {KEY_BYTES} bytes")
            if kid != key_id(key):
                raise PinKeyError(f"{self.source}: {kid} is not the id of the key it names "
                                  f"(that key's id is {key_id(key)})")
            if kid in seen:
                raise PinKeyError(f"{self.source}: key {kid} is listed twice")
            seen.add(kid)

    @classmethod
    def of(cls, *keys: bytes, source: str = "") -> Keyring:
        """A keyring of these keys (the last one current)."""
        return cls(tuple((key_id(k), k) for k in keys), source)

    @property
    def current_id(self) -> str:
        return self.keys[-1][0]

    @property
    def current_key(self) -> bytes:
        return self.keys[-1][1]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self.keys)

    def key(self, kid: str) -> bytes | None:
        for known, key in self.keys:
            if known == kid:
                return key
        return None

    def without(self, kid: str) -> Keyring:
        """This keyring without key `kid` (the current one stays the last one left)."""
        return Keyring(tuple((k, key) for k, key in self.keys if k != kid), self.source)

    def with_new_key(self, key: bytes | None = None) -> Keyring:
        """This keyring with a new current key; the others keep verifying."""
        return Keyring.of(*(k for _, k in self.keys), key or new_key(), source=self.source)

    def text(self) -> str:
        """The keyring as its file holds it."""
        return HEADER + "".join(f"{kid}:{base64.b64encode(key).decode('ascii')}\n"
                                for kid, key in self.keys)

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self.ids)!r}, current={self.current_id!r})"

    __str__ = __repr__


def parse(text: str, source: str) -> Keyring:
    """The keyring in `text` (the file's format); errors name the line, never the key."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for item in re.split(r"[\s,]+", line.strip()):
            if not item:
                continue
            match = _ENTRY.match(item)
            key = None
            if match:
                try:
                    key = base64.b64decode(match[2], validate=True)
                except (binascii.Error, ValueError):
                    key = None
            if match is None or key is None:
                raise PinKeyError(f"{source}: line {number} is not KEY_ID:KEY (8 hex digits, "
                                  f"a colon, the key in base64)")
            entries.append((match[1], key))
    if not entries:
        raise PinKeyError(f"{source}: holds no key; {NO_KEY}")
    return Keyring(tuple(entries), source)


log = logging.getLogger("ivr.pinkeys")


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def _unsafe(path: Path, info: os.stat_result) -> list[str]:
    """What makes a key file untrustworthy, as ssh judges its keys: the file open to its
    group or others, the file or its folder owned by another user than this one or root, the
    folder writable by its group or others (anyone could swap the file)."""
    found = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        found.append(f"the file is open to its group or others (mode {mode:04o}): run "
                     f"`chmod 600 {path}`")
    if not _trusted_owner(info.st_uid):
        found.append(f"the file is owned by uid {info.st_uid}, not by this user "
                     f"(uid {os.geteuid()}) or root")
    folder = path.resolve().parent
    try:
        where = folder.stat()
    except OSError as exc:
        return [*found, f"its folder {folder} cannot be examined ({exc.__class__.__name__})"]
    folder_mode = stat.S_IMODE(where.st_mode)
    if not _trusted_owner(where.st_uid):
        found.append(f"its folder {folder} is owned by uid {where.st_uid}, not by this user "
                     f"(uid {os.geteuid()}) or root")
    if folder_mode & 0o022:
        found.append(f"its folder {folder} is writable by its group or others (mode "
                     f"{folder_mode:04o}): run `chmod go-w {folder}`")
    return found


def read_file(path: Path, *, permissive: bool = False) -> Keyring:
    """The keyring in `path`; refused when it is missing, not a regular file, or unsafe
    (`_unsafe`): with `permissive`, an unsafe file is accepted with a warning in the log."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise PinKeyError(f"{NO_KEY}; looked for {path}") from None
    except OSError as exc:
        raise PinKeyError(f"{path}: cannot read the PIN key file "
                          f"({exc.__class__.__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise PinKeyError(f"{path}: the PIN key file is not a regular file")
    unsafe = _unsafe(path, info)
    if unsafe and not permissive:
        raise PinKeyError(f"{path}: the PIN key file is not safe: {'; '.join(unsafe)}. Set "
                          f"{env_name('pin_key_permissive')}=1 only if it must be so")
    if unsafe:
        log.warning("INSECURE PIN key file accepted (%s=1): %s: %s",
                    env_name("pin_key_permissive"), path, "; ".join(unsafe))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PinKeyError(f"{path}: cannot read the PIN key file "
                          f"({exc.__class__.__name__})") from None
    return parse(text, str(path))


def load(settings: Settings) -> Keyring:
    """The keyring the settings name: IVR_PIN_KEY's text or the key file (never both)."""
    if settings.pin_key is not None and settings.pin_key_file is not None:
        raise PinKeyError(f"both {env_name('pin_key')} and {env_name('pin_key_file')} are set: "
                          "keep one of them")
    if settings.pin_key is not None:
        return parse(settings.pin_key, env_name("pin_key"))
    if settings.pin_key_file is None:
        raise PinKeyError(NO_KEY)
    return read_file(settings.pin_key_file, permissive=settings.pin_key_permissive)


def _private_folder(folder: Path) -> None:
    """Create `folder` and any missing parent 0700 (existing ones are left as they are)."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    for parent in reversed(missing):
        try:
            parent.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(parent, 0o700)


def write(path: Path, keyring: Keyring, *, replace: bool) -> None:
    """Write the keyring to `path` 0600 (its new folders 0700), whatever the umask: whole or
    not at all. Without `replace`, an existing file is left alone (FileExistsError)."""
    _private_folder(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(keyring.text())
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # fails if `path` exists: never overwrites
    finally:
        temp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(path: Path, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the key file's lock (a lock file beside it, 0600) for a read-modify-write: key
    commands run one after the other; after `wait` seconds a command is refused."""
    _private_folder(path.parent)
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PinKeyError(f"{path}: another key command holds the key file (its "
                                      f"lock {lock_path}): nothing changed; try again") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


def generate(path: Path, *, force: bool = False) -> Keyring:
    """A new key file holding one new key; an existing file is refused unless `force`."""
    keyring = Keyring.of(new_key(), source=str(path))
    try:
        with locked(path):
            write(path, keyring, replace=force)
    except FileExistsError:
        raise PinKeyError(f"{path} exists: it may hold the keys of stored passwords. "
                          "`ivr12333 key rotate` adds a key to it; --force replaces it "
                          "(every password hashed under its keys stops verifying)") from None
    return keyring


def rotate(path: Path, *, permissive: bool = False) -> Keyring:
    """Add a new current key to the key file; the older keys keep verifying. Concurrent
    rotations run one after the other (the file's lock): each key lands."""
    with locked(path):
        keyring = read_file(path, permissive=permissive).with_new_key()
        write(path, keyring, replace=True)
    return keyring


def drop(path: Path, kid: str, in_use: int, *, force: bool = False,
         permissive: bool = False) -> Keyring:
    """Remove key `kid` from the key file. Refused for the current key, a key the file lacks,
    and, unless `force`, while `in_use` stored hashes name it (they would stop verifying)."""
    with locked(path):
        keyring = read_file(path, permissive=permissive)
        if keyring.key(kid) is None:
            raise PinKeyError(f"{path} holds no key {kid} (it holds {', '.join(keyring.ids)})")
        if kid == keyring.current_id:
            raise PinKeyError(f"{kid} is the current key: new hashes are made under it. "
                              "`ivr12333 key rotate` first, and drop it once no hash uses it")
        if in_use and not force:
            raise PinKeyError(f"{in_use} stored hash(es) still use key {kid}: dropped, they "
                              "could never verify again (those people and agents could not "
                              "log in). Wait until `ivr12333 key status` counts none under "
                              "it; --force drops it anyway")
        remaining = keyring.without(kid)
        write(path, remaining, replace=True)
    return remaining
