"""The report's charts, drawn by matplotlib as SVG and inlined into the HTML.

SVG keeps the report one small file that needs no script, scales to any screen and prints sharp. Text stays text
(``svg.fonttype: none``, set in the report's style), and the XML prolog and namespace declarations, which HTML does not
need, are taken out, so the file holds no URL at all.

Time that was not observed (the view of the call was lost) is a hatched grey span, drawn over the data and named
"not observed" in the legend: its intervals are NaN, which breaks the lines and the stacked areas, and the span hides
the part of an interval the view was lost for. Each span is an SVG group with the id ``not-observed-N``.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from fer_agent.clock import clock
from fer_agent.labels import EMOTIONS
from fer_agent.reports.metrics import Gap, KeyMoment, Timeline

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "sad": "#1f77b4", "surprise": "#ff7f0e",
           "happy": "#2ca02c", "neutral": "#c9c9c9"}
# Negative expressions at the bottom of the stack, where a rise is easiest to see.
STACK_ORDER = ("angry", "disgust", "fear", "sad", "surprise", "happy", "neutral")
STYLE: dict[RcKeyType, Any] = {"svg.fonttype": "none", "svg.hashsalt": "fer-agent", "font.size": 9,
                               "axes.spines.top": False, "axes.spines.right": False}
GAP_STYLE: dict[str, Any] = {"facecolor": "#ececec", "edgecolor": "#a0a0a0", "hatch": "///", "linewidth": 0}
GAP_LABEL = "not observed"
_WIDTH = 9.0
# Fixed margins (inches), so the time axes of all charts line up on the page.
_LEFT, _RIGHT, _BOTTOM, _TOP = 0.75, 1.6, 0.55, 0.25


def _figure(height: float) -> tuple[Figure, Axes]:
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


def _time_axis(axes: Axes, line: Timeline) -> None:
    end = float(line.ends[-1]) / 60
    axes.set_xlim(0, end)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda minutes, _pos: clock(minutes * 60)))
    axes.set_xlabel("time from the start of the lecture")


def _mark_moments(axes: Axes, moments: list[KeyMoment]) -> None:
    for number, moment in enumerate(moments, 1):
        axes.axvspan(moment.start / 60, moment.end / 60, color="#ffd54f", alpha=0.35, linewidth=0)
        axes.annotate(str(number), ((moment.start + moment.end) / 120, 1.0), xycoords=("data", "axes fraction"),
                      ha="center", va="bottom", fontsize=8, fontweight="bold")


def _mark_gaps(axes: Axes, gaps: list[Gap], style: dict[str, Any] = GAP_STYLE) -> None:
    # Above the data (zorder 3), so a partly observed interval's value does not reach into the time it was not seen.
    for number, gap in enumerate(gaps, 1):
        axes.axvspan(gap.start / 60, gap.end / 60, zorder=3, gid=f"not-observed-{number}", **style)


def _legend(axes: Axes, handles: list, labels: list[str], gaps: list[Gap]) -> None:
    if gaps:
        handles, labels = [*handles, Patch(**GAP_STYLE)], [*labels, GAP_LABEL]
    if handles:
        axes.legend(handles, labels, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def _centres(line: Timeline) -> np.ndarray:
    return (line.starts + line.interval / 2) / 60


def _lone_steps(line: Timeline, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each interval with a value but none on either side (the only interval of a short session, or one between gaps)
    as a step across its whole width, so it shows: a line through one point is a lone marker, not a line. Pieces
    are kept apart by NaN."""
    seen = ~np.isnan(values)
    lone = seen & ~np.concatenate([[False], seen[:-1]]) & ~np.concatenate([seen[1:], [False]])
    x = np.column_stack([line.starts, line.ends, line.ends]).ravel() / 60
    y = np.repeat(np.where(lone, values, np.nan), 3)
    y[2::3] = np.nan
    return x, y


def _plot(axes: Axes, line: Timeline, values: np.ndarray, **style: Any) -> None:
    """A line through the intervals' centres, and the lone intervals as steps of their width in the same colour."""
    axes.plot(_centres(line), values, marker=".", markersize=3, **style)
    x, y = _lone_steps(line, values)
    if not np.isnan(y).all():
        axes.plot(x, y, color=style["color"], linewidth=2, solid_capstyle="butt")


def _shares_over_time(axes: Axes, line: Timeline, moments: list[KeyMoment], gaps: list[Gap], label: str,
                      top: float) -> None:
    """The frame both charts share: shares from 0 to ``top`` in percent, the lecture's time, the key moments and the
    time not observed."""
    axes.set_ylim(0, top)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel(label)
    _time_axis(axes, line)
    _mark_moments(axes, moments)
    _mark_gaps(axes, gaps)


def mood_chart(line: Timeline, moments: list[KeyMoment], gaps: list[Gap]) -> Markup:
    """Stacked area of the class's mean expression probabilities per interval."""
    with rc_context(STYLE):
        figure, axes = _figure(3.2)
        # Steps over whole intervals: each interval's mean holds from its start to its end, drawn as two points. (With
        # step="post", matplotlib ends an area at the start of the last interval before a NaN, a gap, not at its end.)
        edges = np.column_stack([line.starts, line.ends]).ravel() / 60
        layers = [np.repeat(line.mood[:, EMOTIONS.index(name)], 2) for name in STACK_ORDER]
        axes.stackplot(edges, layers, labels=STACK_ORDER, colors=[COLOURS[n] for n in STACK_ORDER], linewidth=0)
        _shares_over_time(axes, line, moments, gaps, "mean probability", top=1)
        handles, labels = axes.get_legend_handles_labels()
        _legend(axes, handles[::-1], labels[::-1], gaps)
        return _svg(figure, "chart mood")


def attention_chart(line: Timeline, moments: list[KeyMoment], gaps: list[Gap]) -> Markup:
    """Shares of participants with a visible face and facing the screen, per interval."""
    with rc_context(STYLE):
        figure, axes = _figure(2.6)
        _plot(axes, line, line.visible, color="#1f77b4", label="face visible")
        _plot(axes, line, line.facing, color="#ff7f0e", label="facing screen")
        _shares_over_time(axes, line, moments, gaps, "share of participants", top=1.02)
        _legend(axes, *axes.get_legend_handles_labels(), gaps)
        return _svg(figure, "chart attention")


def engagement_chart(line: Timeline, moments: list[KeyMoment], gaps: list[Gap]) -> Markup:
    """The class's engagement index per interval (0-100)."""
    with rc_context(STYLE):
        figure, axes = _figure(2.4)
        _plot(axes, line, line.engagement * 100, color="#2e7d32")
        axes.set_ylim(0, 100)
        axes.set_ylabel("engagement index")
        _time_axis(axes, line)
        _mark_moments(axes, moments)
        _mark_gaps(axes, gaps)
        _legend(axes, [], [], gaps)
        return _svg(figure, "chart engagement")


class Sparklines:
    """Small engagement trend lines, one per participant, drawn on one reused figure (50 of them take about a
    second instead of several), with the time not observed shaded as on the charts."""

    def __init__(self, line: Timeline, gaps: list[Gap]) -> None:
        with rc_context(STYLE):
            self._figure = Figure(figsize=(1.8, 0.32))
            self._figure.subplots_adjust(0, 0.06, 1, 0.94)
            self._axes = self._figure.add_subplot()
        self._axes.set_axis_off()
        self._axes.set_xlim(0, float(line.ends[-1]) / 60)
        self._axes.set_ylim(0, 1)
        # Plain grey: at this size a hatch reads as noise, and each sparkline would carry its own hatch pattern.
        _mark_gaps(self._axes, gaps, {**GAP_STYLE, "hatch": None})
        self._timeline = line
        (self._line,) = self._axes.plot(_centres(line), np.full(len(line.starts), np.nan), color="#2e7d32",
                                        linewidth=1.1)
        x, y = _lone_steps(line, np.full(len(line.starts), np.nan))
        (self._steps,) = self._axes.plot(x, y, color="#2e7d32", linewidth=1.6, solid_capstyle="butt")

    def draw(self, trend: np.ndarray) -> Markup:
        self._line.set_ydata(trend)
        self._steps.set_ydata(_lone_steps(self._timeline, trend)[1])
        with rc_context(STYLE):
            return _svg(self._figure, "sparkline")
