"""The commands that make the line heard: `ivr12333 phone` and `ivr12333 prompts`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from ivr.tools.cli import _keyring, _settings, database_url_option, err, main, out


def parse_at(at: str | None) -> datetime | None:
    """--at TIME: a moment with its UTC offset; anything else ends the command (exit 2)."""
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        err.print(f"[red]error:[/] --at takes a time with its UTC offset, e.g. "
                  f"2026-11-23T10:00:00+08:00, not {at!r}", highlight=False)
        sys.exit(2)
    return moment


@main.command()
@database_url_option
@click.option("--url", default=None,
              help="voice URL of a running server (any Twilio app); default: the hotline "
                   "in-process")
@click.option("--at", "at", default=None, metavar="TIME",
              help="when the first call starts, e.g. 2026-11-23T10:00:00+08:00 (in-process: "
                   "the hotline's time too; default: now)")
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="port on 127.0.0.1 (default: a free one)")
@click.option("--speed", default=1.0, type=click.FloatRange(0.25, 8.0), show_default=True,
              help="play the line this many times faster (pauses and timeouts too)")
@click.option("--open", "open_browser", is_flag=True, help="open the page in the browser")
@click.option("--auth-token", default=None,
              help="with --url: sign every request (default: $TWILIO_AUTH_TOKEN)")
@click.option("--from", "from_", default=None, help="caller number (From)")
@click.pass_context
def phone(ctx: click.Context, url: str | None, at: str | None, port: int, speed: float,
          open_browser: bool, auth_token: str | None, from_: str | None) -> None:
    """Call the hotline from a web page: dial pad, spoken prompts, the call flow lit up.

    Serves a page on 127.0.0.1 whose URL (with a secret token) it prints. In-process it
    calls the bundled demo people on a throwaway copy, or the database given with
    --database-url (what calls change there stays).
    """
    from ivr.tools.phonecmd import run_web_phone

    moment = parse_at(at)
    given = (ctx.find_object(dict) or {}).get("database_url")
    settings = _settings(ctx)
    keyring = _keyring(settings) if url is None and given is not None else None
    sys.exit(run_web_phone(settings, database=given, keyring=keyring, url=url, at=moment,
                           auth_token=auth_token or settings.auth_token, from_=from_,
                           port=port, speed=speed, open_browser=open_browser, console=out))


@main.command()
@click.option("--audio", "folder", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="write every prompt of every locale here as WAV, with durations.csv")
@click.pass_context
def prompts(ctx: click.Context, folder: Path) -> None:
    """Every prompt as audio (espeak-ng), a table of durations, and how long a caller takes
    from the answer to each result along the shortest key path."""
    from ivr.tools.prompt_audio import run_prompts_audio

    sys.exit(run_prompts_audio(_settings(ctx), folder, out, err))
