"""The live class summary in the terminal (rich): whether the agent sees the class, mood, attention, trend, the
participants, stage timings; and one line per minute for logs and pipes.

``Dashboard.update(analysis, tracked, ...)`` after each frame. ``Dashboard.render()`` is a renderable that lays itself
out for the terminal it is drawn on, at every redraw (so a resized window is redrawn to fit): every line is cut at a
whole item, never in the middle of a number or a word. From 80x24 up, the participants are a grid of short cells
(label, expression, a mark when the face is turned away or not found); the ones who need a look come first (not
found, turned away, or a negative expression for a while), and when the grid does not fit, the rest are counted. With
room to spare (100 columns, 30 lines and more) the mood gets bars and the trend its sparklines. ``minute_line()`` is
the one-line summary of a minute for ``--plain`` and ``--quiet``.
"""

from __future__ import annotations

import datetime
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from fer_agent.labels import EMOTIONS, NEGATIVE, negative_share
from fer_agent.types import FrameAnalysis, Tracked

SPARK = "▁▂▃▄▅▆▇█"
TREND_MINUTES = 10
COLOURS = {"angry": "red", "disgust": "green", "fear": "magenta", "happy": "yellow", "sad": "blue",
           "surprise": "cyan", "neutral": "white"}
CELL_WIDTH = 19
# Sizes from which the detailed parts are drawn.
DETAIL_WIDTH, DETAIL_HEIGHT = 100, 30


@dataclass
class _Minute:
    """Sums over the observed frames of one minute of the session."""

    frames: int = 0
    tiles: int = 0
    faces: int = 0
    facing: int = 0
    negative: float = 0.0
    happy: float = 0.0


def sparkline(values: list[float | None], top: float = 1.0) -> str:
    """One block character per value (0..top); a space where there is no value."""
    return "".join(
        " " if value is None else SPARK[min(int(value / top * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)]
        for value in values
    )


def fit(parts: Sequence[str | Text], width: int, separator: str = "  ") -> Text:
    """The parts on one line, as many whole parts as fit in ``width`` (never a part cut in two)."""
    line = Text(no_wrap=True, overflow="crop")
    for part in parts:
        piece = part if isinstance(part, Text) else Text(part)
        extra = (len(separator) if line.cell_len else 0) + piece.cell_len
        if line.cell_len + extra > width:
            break
        if line.cell_len:
            line.append(separator)
        line.append_text(piece)
    return line


class Dashboard:
    def __init__(self, source: str, database: str, session_id: int, expected_frames: int | None = None) -> None:
        self.source = source
        self.database = database
        self.session_id = session_id
        self.expected_frames = expected_frames
        self.started = time.monotonic()
        self.frames = 0
        self.dropped = 0
        self.latest: FrameAnalysis | None = None
        self.tracked: list[Tracked] = []
        self.milliseconds: dict[str, float] = {}
        self.minutes: dict[int, _Minute] = {}
        self.frame_times: deque[float] = deque(maxlen=30)
        self.events: deque[str] = deque(maxlen=3)
        self.view_lost_since: str | None = None
        self.view_lost_cause = ""

    def update(self, analysis: FrameAnalysis, tracked: list[Tracked], milliseconds: dict[str, float],
               dropped: int) -> None:
        self.frames += 1
        self.dropped += dropped
        self.latest = analysis
        self.tracked = tracked
        self.milliseconds = milliseconds
        self.frame_times.append(time.monotonic())
        if not analysis.observed:
            return
        minute = self.minutes.setdefault(int(analysis.frame.time // 60), _Minute())
        minute.frames += 1
        minute.tiles += len(analysis.observations)
        for observation in analysis.observations:
            if observation.probabilities is not None:
                minute.faces += 1
                minute.facing += int(bool(observation.facing))
                minute.negative += float(negative_share(observation.probabilities))
                minute.happy += float(observation.probabilities[EMOTIONS.index("happy")])

    def note(self, text: str) -> None:
        self.events.append(text)

    def view_event(self, time_s: float, kind: str, detail: str) -> None:
        """The view was lost, came back, or changed layout (``fer_agent.vision.watch``); the header shows a lost view
        until it comes back, with the wall-clock time it was lost at."""
        if kind == "view_lost":
            self.view_lost_since = datetime.datetime.now().strftime("%H:%M")
            self.view_lost_cause = detail
        elif kind == "view_back":
            self.view_lost_since = None
        self.note(f"{time_s:.0f} s: {kind.replace('_', ' ')}: {detail}")

    def frame_rate(self) -> float:
        if len(self.frame_times) < 2:
            return 0.0
        return (len(self.frame_times) - 1) / max(self.frame_times[-1] - self.frame_times[0], 1e-9)

    def render(self) -> Dashboard:
        return self

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or console.size.height
        lines = self._header(width)
        lines += self._mood(width, detailed=width >= DETAIL_WIDTH and height >= DETAIL_HEIGHT)
        lines.append(self._attention(width))
        if height >= DETAIL_HEIGHT:
            lines += self._trend(width)
        lines += self._events(width, 3 if height >= DETAIL_HEIGHT else 1)
        named = any(item.participant.name for item in self.tracked)
        lines.append(Text(f"participants{'' if named else ' (pseudonymous)'}, those who need a look first",
                          style="bold"))
        lines += self._participants(width, max(height - len(lines) - 1, 1))
        yield from lines[:max(height - 1, 1)]

    def _header(self, width: int) -> list[Text]:
        progress = f"{self.frames}" + (f"/{self.expected_frames}" if self.expected_frames else "")
        running = int(time.monotonic() - self.started)
        first = fit([Text("fer-agent", style="bold"), f"session {self.session_id}", f"source {self.source}",
                     f"running {running // 60}:{running % 60:02d}", f"frames {progress}", f"dropped {self.dropped}",
                     f"{self.frame_rate():.2f} frames/s"], width)
        if self.view_lost_since:
            sight = fit([Text(f"view lost since {self.view_lost_since}: check the call window", style="bold red"),
                         Text("(not counted)", style="red")], width)
        elif self.latest is None:
            sight = Text("starting: looking for faces", style="yellow")
        else:
            faces = self.latest.faces
            sight = fit([Text(f"sees the class: {faces} face{'s' if faces != 1 else ''}", style="green"),
                         Text("ms per frame " + " ".join(f"{stage} {value:.0f}"
                                                         for stage, value in self.milliseconds.items()),
                              style="dim")], width)
        data = f"data: {self.database}"
        if len(data) > width:
            data = "data: ..." + self.database[-(width - 9):]
        return [first, sight, Text(data, style="dim", no_wrap=True, overflow="crop")]

    def _observed(self) -> list:
        return self.latest.observations if self.latest is not None and self.latest.observed else []

    def _mood(self, width: int, detailed: bool) -> list[Text]:
        faces = [o.probabilities for o in self._observed() if o.probabilities is not None]
        if not faces:
            return [Text("class mood: no faces in the last frame", style="dim")]
        mean = np.mean(faces, axis=0)
        order = np.argsort(mean)[::-1]
        if not detailed:
            return [fit([Text(f"mood ({len(faces)} faces)", style="bold")]
                        + [Text(f"{EMOTIONS[i]} {mean[i]:.0%}", style=COLOURS[EMOTIONS[i]]) for i in order], width)]
        lines = [Text(f"class mood ({len(faces)} faces)", style="bold")]
        bar_width = max(min(width - 20, 40), 5)
        for emotion, value in zip(EMOTIONS, mean):
            line = Text(f"{emotion:<9}", no_wrap=True)
            line.append("█" * int(round(value * bar_width)), style=COLOURS[emotion])
            line.append(f" {value * 100:.0f}%")
            lines.append(line)
        return lines

    def _attention(self, width: int) -> Text:
        if self.latest is not None and not self.latest.observed:
            return Text("attention: not observed, the agent cannot see the class", style="red")
        observations = self._observed()
        faces = [o for o in observations if o.face is not None]
        facing = sum(bool(o.facing) for o in faces)
        places = len(observations)
        people = len({t.participant.number for t in self.tracked})
        found = f" ({len(faces) / places:.0%})" if places else ""
        turned = f" ({facing / len(faces):.0%})" if faces else ""
        full: list[str | Text] = [
            Text("attention", style="bold"), f"faces found {len(faces)} of {places} places{found}",
            f"facing screen {facing} of {len(faces)} faces{turned}", f"participants {people} now"]
        if sum(len(str(part)) + 2 for part in full) <= width:
            return fit(full, width)
        return fit([Text("attention", style="bold"), f"faces {len(faces)}/{places}{found}",
                    f"facing {facing}/{len(faces)}{turned}",
                    f"{people} participant{'s' if people != 1 else ''}"], width)

    def _trend(self, width: int) -> list[Text]:
        if not self.minutes:
            return [Text("trend: no frames yet", style="dim")]
        last = max(self.minutes)
        keys = range(max(last - TREND_MINUTES + 1, 0), last + 1)
        rows: dict[str, list[float | None]] = {"faces/places": [], "negative": [], "happy": []}
        for key in keys:
            minute = self.minutes.get(key)
            rows["faces/places"].append(minute.faces / minute.tiles if minute and minute.tiles else None)
            rows["negative"].append(minute.negative / minute.faces if minute and minute.faces else None)
            rows["happy"].append(minute.happy / minute.faces if minute and minute.faces else None)
        lines = [Text(f"trend, last {len(keys)} min (one bar per minute)", style="bold")]
        for name, values in rows.items():
            latest = next((v for v in reversed(values) if v is not None), None)
            lines.append(fit([f"{name:<13}", Text(sparkline(values), style="cyan"),
                              "" if latest is None else f"{latest:.0%}"], width, separator=" "))
        return lines

    def _events(self, width: int, count: int) -> list[Text]:
        return [fit([Text(event, style="yellow")], width) for event in list(self.events)[-count:]
                if len(event) <= width] if self.events else []

    def _participants(self, width: int, rows: int) -> list[Text]:
        columns = max(width // CELL_WIDTH, 1)
        cells = sorted(self.tracked, key=lambda t: (_need(t), t.participant.number))
        capacity = columns * rows
        shown = cells if len(cells) <= capacity else cells[:capacity - 1]
        rest = len(cells) - len(shown)
        lines = []
        items = [_cell(item) for item in shown]
        if rest:
            items.append(Text(f"+{rest} more", style="dim"))
        for start in range(0, len(items), columns):
            line = Text(no_wrap=True, overflow="crop")
            for cell in items[start:start + columns]:
                cell.truncate(CELL_WIDTH - 1, pad=True)
                line.append_text(cell)
                line.append(" ")
            lines.append(line)
        return lines or [Text("no participants yet", style="dim")]

    def minute_line(self, minute: int) -> str:
        """One line for the minute ``minute`` of the session (``--plain``, ``--quiet``)."""
        stamp = datetime.datetime.now().strftime("%H:%M")
        if self.view_lost_since:
            return f"{stamp} minute {minute + 1}: view lost since {self.view_lost_since}: check the call window"
        summary = self.minutes.get(minute)
        if summary is None or not summary.frames:
            return f"{stamp} minute {minute + 1}: not observed"
        parts = [f"{stamp} minute {minute + 1}: {summary.frames} frames observed",
                 f"faces {summary.faces / summary.frames:.1f} of {summary.tiles / summary.frames:.1f} places"]
        if summary.faces:
            parts += [f"facing {summary.facing / summary.faces:.0%}",
                      f"negative {summary.negative / summary.faces:.0%}", f"happy {summary.happy / summary.faces:.0%}"]
        return ", ".join(parts)


def _need(item: Tracked) -> int:
    """0: no face found, 1: turned away, 2: a negative expression for a while (the smoothed one), 3: fine."""
    observation = item.observation
    if observation.face is None:
        return 0
    if not observation.facing:
        return 1
    if item.smoothed in NEGATIVE:
        return 2
    return 3


def _cell(item: Tracked) -> Text:
    """The participant's label (with --names, their label and name, cut with an ellipsis to leave the state its
    room) and state, in a cell."""
    observation = item.observation
    if observation.face is None:
        state, style = "not found", "bold red"
    elif not observation.facing:
        state, style = f"{observation.emotion} away", "yellow"
    else:
        state = item.smoothed or observation.emotion or ""
        style = "magenta" if state in NEGATIVE else COLOURS.get(state, "")
    name = item.participant.name
    if name:
        cell = Text(f"{item.participant.label} {name}", no_wrap=True)
        cell.truncate(max(CELL_WIDTH - 2 - cell_len(state), len(item.participant.label)), overflow="ellipsis")
        cell.append(" ")
    else:
        cell = Text(f"{item.participant.label:>4} ", no_wrap=True)
    cell.append(state, style=style)
    return cell
