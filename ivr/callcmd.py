"""`ivr12333 call`: the interactive text phone and the scripted-call runner, with flow coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from .config import Settings

LOCAL_URL = "http://localhost/voice"


def run_call(settings: Settings, *, scripts: tuple[Path, ...], url: str | None,
             auth_token: str | None, transcript: Path | None, from_: str | None,
             status_callback: str | None, dial_status: str, coverage: bool,
             console: Console) -> int:
    """Place the call(s); returns the exit status (0: every expectation held)."""
    from simulator import (
        HttpTransport,
        Simulator,
        WsgiTransport,
        run_phone,
        run_scripts,
        summary,
        write_transcripts,
    )

    app: Any = None
    if url is None:
        import logging

        from .web import create_app

        # in-process nothing listens on a network: the unsigned-webhooks warning is moot here
        logging.getLogger("ivr.web").setLevel(logging.ERROR)

        app = create_app({"DATABASE_URL": settings.database_url,
                          "TWILIO_AUTH_TOKEN": auth_token})
        transport: Any = WsgiTransport(app)
        voice_url = LOCAL_URL
        status_callback = status_callback or "http://localhost/status"
    else:
        if coverage:
            console.print("[red]--coverage needs the in-process app (leave out --url)[/]")
            return 2
        transport, voice_url = HttpTransport(), url

    seen: set[tuple[str, str, str]] = set()
    if app is not None and coverage:
        app.extensions["ivr12333"].flow.observer = lambda s, t, d: seen.add((s, t, d))

    def factory() -> Simulator:
        kwargs: dict[str, Any] = {"auth_token": auth_token, "status_callback": status_callback,
                                  "dial_status": dial_status}
        if from_:
            kwargs["from_"] = from_
        return Simulator(transport, voice_url, **kwargs)

    try:
        if not scripts:
            call = run_phone(factory(), console=console)
            if transcript:
                transcript.mkdir(parents=True, exist_ok=True)
                (transcript / "interactive.txt").write_text(call.transcript_text(),
                                                            encoding="utf-8")
            call.close()
            return 0
        results = run_scripts(list(scripts), factory)
        for result in results:
            if not result.passed:
                console.print(result.report(), markup=False, highlight=False)
        if transcript:
            write_transcripts(results, transcript)
        if coverage and app is not None:
            _report_coverage(app.extensions["ivr12333"].flow, seen, console)
        console.print(summary(results), markup=False, highlight=False)
        return 0 if all(r.passed for r in results) else 1
    finally:
        if app is not None:
            app.extensions["ivr12333"].db.dispose()


def coverage_gaps(flow: Any, seen: set[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """States and transitions (source --trigger--> dest) the calls never reached."""
    reached = {d for _, _, d in seen} | {s for s, _, _ in seen if s}
    states = [s for s in flow.states if s not in reached]
    edges = sorted(set(flow.edges()) - {(s, t, d) for s, t, d in seen})
    return states, [f"{s} --{t}--> {d}" for s, t, d in edges]


def _report_coverage(flow: Any, seen: set[tuple[str, str, str]], console: Console) -> None:
    states, edges = coverage_gaps(flow, seen)
    total_edges = len(set(flow.edges()))
    console.print(f"flow coverage: {len(flow.states) - len(states)}/{len(flow.states)} states, "
                  f"{total_edges - len(edges)}/{total_edges} transitions", highlight=False)
    for s in states:
        console.print(f"  state never reached: {s}", highlight=False)
    for e in edges:
        console.print(f"  transition never taken: {e}", highlight=False)
