"""The report's charts, drawn by matplotlib as SVG and inlined into the HTML.

SVG keeps the report one small file that needs no script, scales to any screen and prints sharp. Text stays text
(``svg.fonttype: none``, set in the report's style), and the XML prolog and namespace declarations, which HTML does not
need, are taken out, so the file holds no URL at all.
"""

from __future__ import annotations

import io
import re

import numpy as np
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from agent.labels import EMOTIONS
from reports.metrics import KeyMoment, Timeline, clock

COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "sad": "#1f77b4", "surprise": "#ff7f0e",
           "happy": "#2ca02c", "neutral": "#c9c9c9"}
# Negative expressions at the bottom of the stack, where a rise is easiest to see.
STACK_ORDER = ("angry", "disgust", "fear", "sad", "surprise", "happy", "neutral")
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "fer-agent", "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False}
_WIDTH = 9.0
# Fixed margins (inches), so the time axes of all charts line up on the page.
_LEFT, _RIGHT, _BOTTOM, _TOP = 0.75, 1.6, 0.55, 0.25


def _figure(height: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(_WIDTH, height))
    figure.subplots_adjust(left=_LEFT / _WIDTH, right=1 - _RIGHT / _WIDTH, bottom=_BOTTOM / height,
                           top=1 - _TOP / height)
    return figure, figure.add_subplot()


def _svg(figure: Figure, css_class: str) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\s(?:xmlns(?::xlink)?|width|height|version)="[^"]*"', "", text[:text.index(">") + 1]) \
        + text[text.index(">") + 1:]
    return Markup(text.replace("<svg", f'<svg class="{css_class}" role="img"', 1))


def _time_axis(axes, line: Timeline) -> None:
    end = float(line.ends[-1]) / 60
    axes.set_xlim(0, end)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda minutes, _pos: clock(minutes * 60)))
    axes.set_xlabel("time from the start of the lecture")


def _mark_moments(axes, moments: list[KeyMoment]) -> None:
    for number, moment in enumerate(moments, 1):
        axes.axvspan(moment.start / 60, moment.end / 60, color="#ffd54f", alpha=0.35, linewidth=0)
        axes.annotate(str(number), ((moment.start + moment.end) / 120, 1.0), xycoords=("data", "axes fraction"),
                      ha="center", va="bottom", fontsize=8, fontweight="bold")


def _centres(line: Timeline) -> np.ndarray:
    return (line.starts + line.interval / 2) / 60


def mood_chart(line: Timeline, moments: list[KeyMoment]) -> Markup:
    """Stacked area of the class's mean expression probabilities per interval."""
    with rc_context(STYLE):
        figure, axes = _figure(3.2)
        # Steps over whole intervals: each interval's mean holds from its start to its end.
        edges = np.append(line.starts, line.ends[-1]) / 60
        layers = [np.append(line.mood[:, EMOTIONS.index(name)], line.mood[-1, EMOTIONS.index(name)])
                  for name in STACK_ORDER]
        axes.stackplot(edges, layers, labels=STACK_ORDER, colors=[COLOURS[n] for n in STACK_ORDER], linewidth=0,
                       step="post")
        axes.set_ylim(0, 1)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("mean probability")
        _time_axis(axes, line)
        _mark_moments(axes, moments)
        handles, labels = axes.get_legend_handles_labels()
        axes.legend(handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        return _svg(figure, "chart mood")


def attention_chart(line: Timeline, moments: list[KeyMoment]) -> Markup:
    """Shares of participants with a visible face and facing the screen, per interval."""
    with rc_context(STYLE):
        figure, axes = _figure(2.6)
        axes.plot(_centres(line), line.visible, color="#1f77b4", label="face visible", marker=".", markersize=3)
        axes.plot(_centres(line), line.facing, color="#ff7f0e", label="facing screen", marker=".",
                  markersize=3)
        axes.set_ylim(0, 1.02)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("share of participants")
        _time_axis(axes, line)
        _mark_moments(axes, moments)
        axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        return _svg(figure, "chart attention")


def engagement_chart(line: Timeline, moments: list[KeyMoment]) -> Markup:
    """The class's engagement index per interval (0-100)."""
    with rc_context(STYLE):
        figure, axes = _figure(2.4)
        axes.plot(_centres(line), line.engagement * 100, color="#2e7d32", marker=".", markersize=3)
        axes.set_ylim(0, 100)
        axes.set_ylabel("engagement index")
        _time_axis(axes, line)
        _mark_moments(axes, moments)
        return _svg(figure, "chart engagement")


class Sparklines:
    """Small engagement trend lines, one per participant, drawn on one reused figure (50 of them take about a
    second instead of several)."""

    def __init__(self, line: Timeline) -> None:
        with rc_context(STYLE):
            self._figure = Figure(figsize=(1.8, 0.32))
            self._figure.subplots_adjust(0, 0.06, 1, 0.94)
            self._axes = self._figure.add_subplot()
        self._axes.set_axis_off()
        self._axes.set_xlim(0, float(line.ends[-1]) / 60)
        self._axes.set_ylim(0, 1)
        (self._line,) = self._axes.plot(_centres(line), np.full(len(line.starts), np.nan), color="#2e7d32",
                                        linewidth=1.1)

    def draw(self, trend: np.ndarray) -> Markup:
        self._line.set_ydata(trend)
        with rc_context(STYLE):
            return _svg(self._figure, "sparkline")
