"""`ivr12333 key`: create, rotate, count and drop the PIN keys (docs/deploy.md "The PIN keys")."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from ivr.errors import PinKeyError
from ivr.settings import Settings, env_name
from ivr.tools.cli import _engine, _keyring, _settings, database_url_option, err, out

#: how `key status` names each kind of stored secret (accounts.HASHED_SECRETS)
_KINDS = {"password": ("password hash", "password hashes"),
          "agent PIN": ("agent PIN", "agent PINs")}


@click.group()
def key() -> None:
    """The PIN keys query passwords and agents' PINs are hashed with, kept out of the database.

    A file, one key a line, the last one current (IVR_PIN_KEY_FILE, default
    ~/.config/ivr12333/pin-keys; or IVR_PIN_KEY holding its text). A stolen database without
    it reveals no password.
    """


_key_file_option = click.option(
    "--file", "file", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="the key file (default: $IVR_PIN_KEY_FILE, else ~/.config/ivr12333/pin-keys)")


def _key_file(settings: Settings, file: Path | None) -> Path:
    path = file or settings.pin_key_file
    if path is None:
        err.print(f"[red]error:[/] {env_name('pin_key')} holds the keys, not a file: give "
                  "--file PATH", highlight=False)
        sys.exit(2)
    return path


def _fail(exc: Exception, code: int = 1) -> None:
    err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _counts(settings: Settings) -> dict[str, dict[str, int]]:
    """The stored hashes of each kind by form (accounts.hash_forms); a database error ends
    the command (exit 2)."""
    from ivr.domain.accounts import hash_forms

    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            return hash_forms(conn)
    except SQLAlchemyError as exc:
        err.print(f"[red]error:[/] database error: {exc.__class__.__name__}", highlight=False)
        sys.exit(2)
    finally:
        engine.dispose()


def _described(counts: dict[str, dict[str, int]], form: str) -> tuple[int, str]:
    """How many hashes of every kind use `form`, and in words: "3 password hashes, 1 agent
    PIN"."""
    parts, total = [], 0
    for kind, (one, many) in _KINDS.items():
        n = counts.get(kind, {}).get(form, 0)
        total += n
        parts.append(f"{n} {one if n == 1 else many}")
    return total, ", ".join(parts)


@key.command("generate")
@_key_file_option
@click.option("--force", is_flag=True,
              help="replace an existing key file: every password hashed under its keys stops "
                   "verifying")
@click.pass_context
def key_generate(ctx: click.Context, file: Path | None, force: bool) -> None:
    """Create a key file holding one new key (0600, its new folders 0700)."""
    from ivr.domain import pinkeys

    settings = _settings(ctx)
    path = _key_file(settings, file)
    try:
        keyring = pinkeys.generate(path, force=force)
    except (PinKeyError, OSError) as exc:
        _fail(exc)
    out.print(f"wrote PIN key {keyring.current_id} to {path} (mode 0600). Back it up apart "
              "from the database: without it no stored password verifies.", highlight=False,
              markup=False)
    if file is not None and file != settings.pin_key_file:
        out.print(f"point the hotline at it: {env_name('pin_key_file')}={path}",
                  highlight=False, markup=False)


@key.command("rotate")
@_key_file_option
@click.pass_context
def key_rotate(ctx: click.Context, file: Path | None) -> None:
    """Add a new current key; the older keys keep verifying, and each password or agent PIN
    is hashed anew under the new key at its owner's next right entry."""
    from ivr.domain import pinkeys

    settings = _settings(ctx)
    path = _key_file(settings, file)
    try:
        keyring = pinkeys.rotate(path, permissive=settings.pin_key_permissive)
    except (PinKeyError, OSError) as exc:
        _fail(exc)
    older = ", ".join(keyring.ids[:-1])
    out.print(f"added PIN key {keyring.current_id} to {path}, now current (older, still "
              f"verifying: {older}). Restart every server (all of them): until then they hash "
              f"under the old key and cannot check a hash under {keyring.current_id}.",
              highlight=False, markup=False)


@key.command("status")
@database_url_option
@click.pass_context
def key_status(ctx: click.Context) -> None:
    """The keys' ids, and how many stored password hashes and agent PINs use each (counts).

    Exits 1 when some hashes name a key the keyring lacks (those secrets cannot verify).
    """
    settings = _settings(ctx)
    keyring = _keyring(settings)
    counts = _counts(settings)
    forms = {form for by_form in counts.values() for form in by_form}
    out.print(f"PIN keys ({keyring.source}):", highlight=False, markup=False)
    for kid in reversed(keyring.ids):
        mark = "current" if kid == keyring.current_id else "older  "
        out.print(f"  {kid}  {mark}  {_described(counts, kid)[1]}", highlight=False,
                  markup=False)
    out.print(f"scrypt (the former form; hashed anew at the next right entry): "
              f"{_described(counts, 'scrypt')[1]}", highlight=False, markup=False)
    unreadable = _described(counts, "other")
    if unreadable[0]:
        out.print(f"unreadable: {unreadable[1]}", highlight=False, markup=False)
    missing = sorted(forms - set(keyring.ids) - {"scrypt", "other"})
    for kid in missing:
        out.print(f"under key {kid}, NOT in the keyring: {_described(counts, kid)[1]} (they "
                  "cannot verify: put that key back)", highlight=False, markup=False)
    sys.exit(1 if missing or unreadable[0] else 0)


@key.command("drop")
@_key_file_option
@database_url_option
@click.argument("key_id")
@click.option("--force", is_flag=True,
              help="drop it even though stored hashes use it: those passwords and agent PINs "
                   "never verify again")
@click.pass_context
def key_drop(ctx: click.Context, file: Path | None, key_id: str, force: bool) -> None:
    """Remove an older key from the key file, once no stored hash uses it.

    Refused while any password hash or agent PIN in the database names it (`key status`
    counts them), and for the current key. Restart every server afterwards.
    """
    from ivr.domain import pinkeys

    settings = _settings(ctx)
    path = _key_file(settings, file)
    in_use, described = _described(_counts(settings), key_id)
    try:
        keyring = pinkeys.drop(path, key_id, in_use, force=force,
                               permissive=settings.pin_key_permissive)
    except (PinKeyError, OSError) as exc:
        _fail(exc)
    if in_use:
        err.print(f"[bold red]DROPPED A KEY IN USE:[/] {escape(described)} under {key_id} "
                  "can never verify again: those people need a new password (an import with "
                  "`password`), those agents a new PIN.", highlight=False, soft_wrap=True)
    out.print(f"dropped PIN key {key_id} from {path} (left: {', '.join(keyring.ids)}; current "
              f"{keyring.current_id}). Restart every server.", highlight=False, markup=False)
