"""The post-class report: one self-contained HTML file (inline CSS, inline SVG charts, no script, no URL).

The page is a Jinja2 template with autoescaping on, so every text that comes from the database (sources, messages,
event details, labels) is HTML-escaped; only the SVG charts matplotlib drew are marked safe.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from fer_agent import installed_version
from fer_agent.clock import clock, local_time
from fer_agent.errors import FerAgentError
from fer_agent.labels import EMOTIONS, NEGATIVE
from fer_agent.reports import charts
from fer_agent.reports.metrics import (
    AWAY_GAZE_WEIGHT,
    BASELINE_INTERVALS,
    EMOTION_WEIGHTS,
    ENGAGEMENT_SCALE,
    FACING_GAZE_WEIGHT,
    MIN_CHANGE,
    KeyMoment,
    default_interval,
    engagement,
    key_moments,
    not_observed,
    observed_share,
    participants,
    plural,
    timeline,
)
from fer_agent.store.reader import SessionData

MAX_EVENTS = 50


@dataclass(frozen=True)
class Report:
    """The page, its key moments, and ``summary``: what the page holds in a few words, for the line `fer-agent report`
    prints ("16 participants, 1 key moment")."""

    html: str
    moments: list[KeyMoment]
    summary: str = ""


def _percent(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{value * 100:.0f}%"


def _share_of_time(value: float) -> str:
    """A share of the session as a whole percentage that never rounds a gap away: 99.6% observed is "99%", not
    "100%", and 0.3% is "1%", not "0%"."""
    if np.isnan(value):
        return "-"
    percent = round(value * 100)
    if 0 < value < 1:
        percent = min(max(percent, 1), 99)
    return f"{percent}%"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("fer_agent.reports", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
    environment.filters.update(clock=clock, percent=_percent, share_of_time=_share_of_time, local_time=local_time,
                               plural=plural)
    return environment


def render_report(data: SessionData, interval: float | None = None,
                  step: Callable[[str], None] = lambda _what: None, pseudonymous: bool = False) -> Report:
    """The report's HTML and its key moments; ``step`` is called with what comes next (for a progress display). The
    participants' names are shown when the session recorded them (``--names``), unless ``pseudonymous``."""
    info = data.info
    interval = interval or default_interval(info.duration, info.fps)
    step("aggregating")
    line = timeline(data, interval)
    people = participants(data, interval)
    moments = key_moments(line)
    gaps = not_observed(data)
    has_faces = bool(data.face.any())
    figures = {}
    if has_faces:
        step("drawing charts")
        figures = {"mood": charts.mood_chart(line, moments, gaps),
                   "attention": charts.attention_chart(line, moments, gaps),
                   "engagement": charts.engagement_chart(line, moments, gaps)}
    step("drawing participants' trends")
    sparklines = charts.Sparklines(line, gaps) if len(line.starts) else None
    rows = [{"summary": person, "sparkline": sparklines.draw(person.trend) if sparklines and person.faces else ""}
            for person in people]
    faces = data.face
    overall = {}
    if has_faces:
        overall = {"visible": faces.mean(), "facing": data.facing.mean(),
                   "engagement": engagement(data.probabilities[faces], data.facing[faces]).mean(),
                   "mood": dict(zip(EMOTIONS, data.probabilities[faces].mean(axis=0)))}
    step("writing the page")
    html = _environment().get_template("report.html.j2").render(
        info=info, interval=interval, moments=moments, gaps=gaps, observed=observed_share(data, gaps),
        lost=sum(gap.duration for gap in gaps), rows=rows, figures=figures, has_faces=has_faces,
        show_names=not pseudonymous and any(data.names),
        overall=overall, events=data.events[:MAX_EVENTS], event_count=len(data.events), baseline=BASELINE_INTERVALS,
        min_change=MIN_CHANGE, emotions=EMOTIONS, weights=EMOTION_WEIGHTS, negative=NEGATIVE,
        facing_weight=FACING_GAZE_WEIGHT, away_weight=AWAY_GAZE_WEIGHT, scale=ENGAGEMENT_SCALE,
        colours=charts.COLOURS, version=installed_version(),
        generated=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    return Report(html, moments, f"{plural(len(data.labels), 'participant')}, {plural(len(moments), 'key moment')}")


def write_report(report: Report, path: str | Path) -> int:
    """Write the page atomically (a crash leaves the old file or none, never half a page); returns its size."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as handle:
            temporary = Path(handle.name)
            handle.write(report.html)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise FerAgentError(f"{path}: cannot write the report ({error.strerror or error})") from None
    return path.stat().st_size
