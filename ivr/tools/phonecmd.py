"""`ivr12333 phone`: the web phone — the text phone's line, heard and drawn in a browser."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from ivr.domain.pinkeys import Keyring
from ivr.settings import Settings
from ivr.tools.callcmd import region_zone
from ivr.tools.synth import HOW_TO_GET, Synthesiser
from ivr.tools.webphone import WebLine


def flow_svg(flow: Any) -> str | None:
    """The hotline's call-flow diagram as SVG, None without graphviz (the page lists states)."""
    from ivr.tools.diagram import dot_source, render

    try:
        return render(dot_source(flow), "svg").decode("utf-8")
    except RuntimeError:
        return None


def documents_svg(answer: dict[str, Any]) -> str | None:
    """Another app: the documents it served, in order, as a graph growing with the call."""
    import graphviz

    from ivr.tools.diagram import render

    graph = graphviz.Digraph(graph_attr={"rankdir": "TB", "fontname": "sans-serif"},
                             node_attr={"shape": "box", "style": "rounded,filled",
                                        "fillcolor": "#ffffff", "fontname": "sans-serif",
                                        "fontsize": "11"},
                             edge_attr={"fontsize": "9", "fontname": "sans-serif"})
    docs = answer.get("documents") or []
    seen: dict[str, str] = {}
    previous = None
    for n, (digits, url) in enumerate(docs):
        if url not in seen:
            seen[url] = f"d{len(seen)}"
            graph.node(seen[url], url)
        if previous is not None:
            graph.edge(previous, seen[url], label=f" {digits or '(go on)'} ",
                       color="#1565c0", penwidth="2" if n == len(docs) - 1 else "1")
        previous = seen[url]
    if previous is not None:
        graph.node(previous, fillcolor="#ffd54f", color="#d32f2f", penwidth="3")
    try:
        return render(graph.source, "svg").decode("utf-8")
    except RuntimeError:
        return None


@contextlib.contextmanager
def _line_for(settings: Settings, *, database: str | None, keyring: Keyring | None,
              url: str | None, at: datetime | None, auth_token: str | None, from_: str | None,
              folder: Path, synth: Synthesiser, audio_url: Callable[[str], str],
              fetch_play: Callable[[str], str | None]) -> Iterator[tuple[WebLine, dict[str, Any]]]:
    """The line and what the page is told first: the same simulator the text phone uses,
    on the demo people (default), a given database, or a server at `url`."""
    from ivr.domain.pinkeys import new_key
    from ivr.tools.callcmd import LOCAL_STATUS_URL, LOCAL_URL, _Lines
    from simulator import DirectTransport, HttpTransport

    line_ref: list[WebLine] = []
    lines = _Lines(settings, keyring=keyring or Keyring.of(new_key(), source="this phone"),
                   url=url, live=True, auth_token=auth_token, from_=from_,
                   status_callback=None, dial_status="completed",
                   observe=lambda s, t, d: line_ref[0].observe(s, t, d))
    try:
        hello: dict[str, Any] = {"hotline": url is None, "svg": None}
        if url is not None:
            transport: Any = HttpTransport()
            zone = at.tzinfo if at is not None and at.tzinfo else datetime.now().astimezone(
            ).tzinfo
            assert zone is not None

            def make(clock: Any) -> Any:
                return lines.simulator(transport, url, clock)
            hello["where"] = f"calling {url}"
            app = None
        else:
            if database is None:
                db = folder / "demo.sqlite3"
                shutil.copyfile(lines._template("demo"), db)
                database = f"sqlite:///{db}"
                hello["where"] = "the hotline, in-process, on the bundled demo people"
            else:
                hello["where"] = "the hotline, in-process, on the given database"
            zone = region_zone(database)

            def now() -> datetime:
                call = line_ref[0].call if line_ref else None
                return call.clock.moment if call is not None else datetime.now(zone)
            app = lines._app(database, now)
            lines.status_callback = LOCAL_STATUS_URL

            def make(clock: Any) -> Any:
                return lines.simulator(DirectTransport(app), LOCAL_URL, clock)
            hello["svg"] = flow_svg(lines.flow)
        line = WebLine(make, synth, zone=zone, at=at, audio_url=audio_url,
                       fetch_play=fetch_play)
        line_ref.append(line)
        hello["zone"] = str(zone)
        yield line, hello
    finally:
        if line_ref and line_ref[0].call is not None:
            line_ref[0].call.close()
        if app is not None:
            app.extensions["ivr12333"].db.dispose()
        lines.close()


def run_web_phone(settings: Settings, *, database: str | None, keyring: Keyring | None,
                  url: str | None, at: datetime | None, auth_token: str | None,
                  from_: str | None, port: int, speed: float, open_browser: bool,
                  console: Console, ready: Callable[[str], None] | None = None) -> int:
    """Serve the web phone until Ctrl-C; `ready` gets its URL once it listens (tests)."""
    from ivr.tools.phoneserver import PhoneServer, PlayFetcher
    from simulator.sounds import real_durations

    logging.getLogger("ivr.web").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="ivr12333-phone-"))  # 0700: calls' audio is personal
    audio = folder / "audio"
    audio.mkdir(mode=0o700)
    synth = Synthesiser(audio)
    try:
        with _line_for(settings, database=database, keyring=keyring, url=url, at=at,
                       auth_token=auth_token, from_=from_, folder=folder, synth=synth,
                       audio_url=lambda name: f"audio/{name}",
                       fetch_play=PlayFetcher(audio)) as (line, hello), \
                real_durations(lambda text, _voice, language: synth.seconds(text, language)):
            hello["speed"] = speed
            hello["speech"] = {"available": synth.available, "how": HOW_TO_GET}
            server = PhoneServer(port, line, audio, hello,
                                 documents_svg if url is not None else None)
            console.print(f"[bold]web phone:[/] {server.url}", highlight=False)
            console.print("[dim]open it in a browser on this machine (the token in it is the "
                          "key: keep it to yourself) · Ctrl-C stops[/dim]", highlight=False)
            if not synth.available:
                console.print(f"no voice: the page shows what is said as text. To hear it: "
                              f"{HOW_TO_GET}", highlight=False, markup=False)
            if open_browser:
                import webbrowser

                webbrowser.open(server.url)
            if ready is not None:
                ready(server.url)
            try:
                server.serve_forever(poll_interval=0.2)
            except KeyboardInterrupt:
                console.print()
            finally:
                server.server_close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
