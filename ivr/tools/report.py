"""`ivr12333 report`: one self-contained HTML file (plots as inline SVG, no network) of the
measures of a date range, and a CSV of the call records for the operator's own tools.

The figures come from ivr/domain/measures.py; this module only lays them out and draws.
"""

from __future__ import annotations

import csv
import html
import io
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.domain.measures import (
    TASKS,
    AgentFigures,
    Figures,
    Report,
    per_agent,
    percent,
    quantiles,
    seconds,
)

#: the CSV's columns: the summary row of each call, times in the region's zone (ISO 8601)
CSV_COLUMNS = ("call_sid", "line", "started", "ended", "lang", "region", "outcome", "detail",
               "ended_by", "verification", "task_seconds", "queue_wait", "queue_result",
               "talk_seconds", "logged_in_seconds", "repeat", "called_back", "withheld")
#: with --agents (supervisors only), then: the agent's id
AGENT_COLUMN = "agent_id"

OUTCOMES = ("self_served", "transferred", "abandoned_menu", "abandoned_queue", "line_busy",
            "verification_failed", "verification_locked", "line_ended", "error")

DEFINITIONS = """
<dl>
<dt>Calls offered</dt><dd>calls to the callers' line that started in the interval (agents'
calls are not counted).</dd>
<dt>Containment</dt><dd>calls served without an agent (a balance, a pool, transactions or a
policy heard, never taken by an agent) and with no call back from the same number within
24 hours, ÷ calls offered; calls from withheld numbers are left out of both (Dialogflow CX's
"contained, no call back within 24 h").</dd>
<dt>Queue offered / answered / abandoned</dt><dd>calls that entered the agent queue; taken by an
agent; the caller hung up while waiting (Amazon Connect, Genesys Cloud). Short abandons (under
{short} s) are shown apart and left out of the service level.</dd>
<dt>Service level</dt><dd><b>Genesys Cloud's treatment</b>: calls answered within {target} s
÷ (answered + abandoned + timed out at the longest wait), short abandons left out; an abandon
never counts as met (Amazon Connect counts a quick abandon as met). Target: {goal} within
{target} s.</dd>
<dt>Average speed of answer (ASA)</dt><dd>mean queue wait of the answered calls only (Amazon
Connect "average queue answer time").</dd>
<dt>Longest wait</dt><dd>the longest time any call of the interval spent in the queue.</dd>
<dt>Average handle time (AHT)</dt><dd>mean time connected to an agent of the answered calls;
after-call work is not seen by the line.</dd>
<dt>Occupancy</dt><dd>agents' time connected to callers ÷ their time logged in on the agents'
line (Amazon Connect: handle ÷ (handle + idle)).</dd>
<dt>Time-to-task</dt><dd>seconds from the start of the call to the first result heard
(self-served calls) or to entering the queue.</dd>
</dl>
<p>Sources: docs/reports.md. Every call counts in the half hour it started, in {zone}.</p>
"""


def write_csv(path: Path, report: Report, agents: bool = False) -> int:
    """The records of the report's calls, one row per call; how many rows. With `agents`
    (for supervisors), the agent's id too, and the file is private (0600)."""
    zone = ZoneInfo(report.zone)
    columns = (*CSV_COLUMNS, AGENT_COLUMN) if agents else CSV_COLUMNS
    with _open(path, agents) as f:
        out = csv.writer(f)
        out.writerow(columns)
        for row in report.rows:
            values = {**row, "started": _iso(row["started_at"], zone),
                      "ended": _iso(row["ended_at"], zone)}
            out.writerow(["" if values[c] is None else values[c] for c in columns])
    return len(report.rows)


def _open(path: Path, private: bool) -> io.TextIOWrapper:
    """`path` for writing; `private`: created 0600 and made 0600 if it was not (agents' ids are
    the agents' personal data), whatever the umask."""
    if not private:
        return path.open("w", encoding="utf-8", newline="")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


def _iso(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def write_html(path: Path, report: Report, agents: bool = False) -> None:
    """The report; with `agents` (for supervisors) the per-agent figures too, in a private
    (0600) file."""
    with _open(path, agents) as f:
        f.write(render_html(report, agents))


def _whose(report: Report) -> str:
    return (f"Region {report.region}" if report.region is not None
            else "All regions (one line, many regions: --region CODE reports one)")


def render_html(report: Report, agents: bool = False) -> str:
    """The report's page; agents' ids only with `agents`."""
    d = report.definitions
    t = report.total
    last_day = (report.end - timedelta(days=1)).date()
    title = f"ivr12333 report, {report.start.date().isoformat()} to {last_day.isoformat()}"
    if agents:
        title += ", for supervisors"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(_whose(report))}; region time zone {html.escape(report.zone)}; "
        f"{t.offered} calls offered.</p>",
        "<h2>Totals</h2>", _figures_table([t], "range", total=True),
        "<h2>Calls per half hour, with the queue wait</h2>", _calls_plot(report.half_hours),
        "<h2>Service level per half hour</h2>", _service_plot(report.half_hours, d),
        "<h2>The menu funnel</h2>", _funnel_plot(report.funnel),
        _table(("state", "calls reaching it"), [(s, str(n)) for s, n in report.funnel],
               "funnel"),
        "<h3>Abandoned in the menus, by state</h3>",
        _table(("state", "calls"), sorted(((s, str(n)) for s, n in report.drop_off.items()),
                                          key=lambda p: -int(p[1])), "drop-off"),
        "<h2>Time-to-task</h2>", _task_plot(report.time_to_task),
        _table(("task", "calls", "median", "90th percentile", "longest"),
               [(task, str(len(v)), *(seconds(x) for x in quantiles(v) or (None,) * 3))
                for task, v in report.time_to_task.items()], "time-to-task"),
        "<h2>Outcomes</h2>",
        _table(("outcome", "calls"), [(o, str(t.outcomes[o])) for o in OUTCOMES], "outcomes"),
        "<h2>Per day</h2>", _figures_table(report.days, "day"),
        "<h2>Per half hour</h2>",
        _figures_table([h for h in report.half_hours if h.offered or h.agent_logged_in],
                       "half hour"),
        *(_agents_section(report) if agents else ()),
        "<h2>Definitions</h2>",
        DEFINITIONS.format(short=_num(d.short_abandon_seconds), target=_num(d.service_seconds),
                           goal=percent(d.service_target), zone=html.escape(report.zone)),
        "</body></html>",
    ]
    return "\n".join(parts)


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;text-align:right}"
        "th{background:#eee}td:first-child{text-align:left}dt{font-weight:bold}")

_COLUMNS = ("offered", "self-served", "containment", "queue offered", "answered", "abandoned",
            "short abandons", "timed out", "service level", "ASA", "longest wait", "AHT",
            "occupancy")


def _row(f: Figures) -> list[str]:
    return [str(f.offered), str(f.self_served), percent(f.containment), str(f.queue_offered),
            str(f.answered), str(f.abandoned), str(f.short_abandons), str(f.timed_out),
            percent(f.service_level), seconds(f.asa), seconds(f.longest_wait), seconds(f.aht),
            percent(f.occupancy)]


def _figures_table(figures: Sequence[Figures], first: str, total: bool = False) -> str:
    def label(f: Figures) -> str:
        if total:
            return "all"
        return f.start.strftime("%Y-%m-%d" if first == "day" else "%Y-%m-%d %H:%M")
    return _table((first, *_COLUMNS), [(label(f), *_row(f)) for f in figures], first)


_AGENT_COLUMNS = ("agent", "calls answered", "AHT", "average talk", "logged in", "occupancy")


def _agent_row(f: AgentFigures) -> list[str]:
    return [f.agent_id, str(f.answered), seconds(f.aht), seconds(f.average_talk),
            seconds(f.logged_in), percent(f.occupancy)]


def _agents_section(report: Report) -> list[str]:
    """Per agent, over the range and per day: for supervisors only."""
    figures = per_agent(report.rows, ZoneInfo(report.zone))
    total = [f for f in figures if f.start is None]
    days = [f for f in figures if f.start is not None]
    return [
        "<h2>Per agent (for supervisors: agents' ids are their personal data)</h2>",
        "<p>AHT: the agent's time on calls (the summary of the caller the agent hears, then the "
        "call) ÷ calls answered; average talk: the callers' time with the agent; occupancy: "
        "time on calls ÷ time logged in on the agents' line.</p>",
        _table(_AGENT_COLUMNS, [_agent_row(f) for f in total], "agents"),
        "<h3>Per agent and day</h3>",
        _table(("day", *_AGENT_COLUMNS),
               [(f"{f.start:%Y-%m-%d}", *_agent_row(f)) for f in days], "agents-per-day"),
    ]


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], name: str) -> str:
    out = [f"<table data-table='{html.escape(name)}'><tr>"
           + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _num(value: float) -> str:
    return f"{value:g}"


# ---- plots: matplotlib, drawn to inline SVG ---------------------------------------------------

def _figure(width: float = 9.0, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text (small, searchable)
    matplotlib.rcParams["svg.hashsalt"] = "ivr12333"  # the same figures, the same file
    from matplotlib import pyplot

    return pyplot.subplots(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    from matplotlib import pyplot

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    pyplot.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _labels(halves: Sequence[Figures]) -> list[str]:
    return [h.start.strftime("%H:%M") for h in halves]


def _calls_plot(halves: Sequence[Figures]) -> str:
    if not halves:
        return "<p>No calls in this range.</p>"
    fig, ax = _figure()
    x = range(len(halves))
    ax.bar(x, [h.offered for h in halves], color="#8fb3d9", label="calls offered")
    ax.set_ylabel("calls")
    ax.set_xticks(list(x), _labels(halves), rotation=90, fontsize=7)
    wait = ax.twinx()
    wait.plot(x, [h.asa or 0 for h in halves], color="#c0392b", marker="o", label="ASA (s)")
    wait.plot(x, [h.longest_wait or 0 for h in halves], color="#e67e22", linestyle="--",
              label="longest wait (s)")
    wait.set_ylabel("queue wait (s)")
    fig.legend(loc="outside upper right", fontsize=7)
    return _svg(fig)


def _service_plot(halves: Sequence[Figures], definitions: Any) -> str:
    measured = [(i, h.service_level) for i, h in enumerate(halves) if h.service_level is not None]
    if not measured:
        return "<p>No call entered the queue in this range.</p>"
    fig, ax = _figure()
    ax.bar([i for i, _ in measured], [v * 100 for _, v in measured], color="#7dbb8a",
           label="service level")
    ax.axhline(definitions.service_target * 100, color="#333", linestyle=":",
               label=f"target {percent(definitions.service_target)}")
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"% answered within {_num(definitions.service_seconds)} s")
    ax.set_xticks(range(len(halves)), _labels(halves), rotation=90, fontsize=7)
    fig.legend(loc="outside upper right", fontsize=7)
    return _svg(fig)


def _funnel_plot(funnel: Sequence[tuple[str, int]]) -> str:
    fig, ax = _figure(height=3.6)
    names = [s for s, _ in funnel][::-1]
    ax.barh(names, [n for _, n in funnel][::-1], color="#9b8fd9")
    ax.set_xlabel("calls reaching the state")
    return _svg(fig)


def _task_plot(tasks: dict[str, list[float]]) -> str:
    if not tasks:
        return "<p>No call reached a result or the queue in this range.</p>"
    fig, ax = _figure()
    names = [t for t in TASKS if t in tasks]
    ax.boxplot([tasks[t] for t in names], tick_labels=names, orientation="horizontal")
    ax.set_xlabel("seconds from the start of the call")
    return _svg(fig)
