"""The live class summary in the terminal (rich): mood, attention, trend, participants, stage timings.

``Dashboard.update(analysis, tracked, ...)`` after each frame, ``Dashboard.render()`` for the renderable; the session
loop shows it in a ``rich.live.Live`` refreshed about once a second.
"""

from __future__ import annotations

import datetime
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent.analysis import FrameAnalysis
from agent.labels import EMOTIONS
from agent.tracker import Tracked

NEGATIVE = ("angry", "disgust", "fear", "sad")
SPARK = "▁▂▃▄▅▆▇█"
TREND_MINUTES = 10
COLOURS = {"angry": "red", "disgust": "green", "fear": "magenta", "happy": "yellow", "sad": "blue",
           "surprise": "cyan", "neutral": "white"}


@dataclass
class _Minute:
    """Sums over the frames of one minute of the session."""

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
                minute.negative += float(sum(observation.probabilities[EMOTIONS.index(e)] for e in NEGATIVE))
                minute.happy += float(observation.probabilities[EMOTIONS.index("happy")])

    def note(self, text: str) -> None:
        self.events.append(text)

    def view_event(self, time_s: float, kind: str, detail: str) -> None:
        """The view was lost, came back, or changed layout (``agent.watch``); the header shows a lost view until it
        comes back, with the wall-clock time it was lost at."""
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

    def render(self) -> Group:
        return Group(self._header(), self._mood_and_attention(), self._trend(), self._participants())

    def _header(self) -> Panel:
        progress = f"{self.frames}" + (f"/{self.expected_frames}" if self.expected_frames else "")
        timings = "  ".join(f"{stage} {value:.0f}" for stage, value in self.milliseconds.items())
        text = Text.assemble(
            ("fer-agent ", "bold"), f"session {self.session_id}  source {self.source}\n",
            f"frames {progress}  dropped {self.dropped}  {self.frame_rate():.2f} frames/s  "
            f"running {int(time.monotonic() - self.started)} s\n",
            ("ms per frame: ", "dim"), timings, "\n",
            ("database ", "dim"), self.database,
        )
        if self.view_lost_since:
            text.append(f"\nview lost since {self.view_lost_since}: check the call window "
                        "(this time is not counted)", style="bold red")
        for event in self.events:
            text.append(f"\n{event}", style="yellow")
        return Panel(text, title="fer-agent", border_style="red" if self.view_lost_since else "blue")

    def _mood_and_attention(self) -> Table:
        grid = Table.grid(expand=True, padding=(0, 2))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(self._mood(), self._attention())
        return grid

    def _mood(self) -> Panel:
        faces = [o.probabilities for o in (self.latest.observations if self.latest else []) if o.probabilities is not None]
        table = Table.grid(padding=(0, 1))
        if not faces:
            return Panel(Text("no faces in the last frame", style="dim"), title="class mood")
        mean = np.mean(faces, axis=0)
        for emotion, value in zip(EMOTIONS, mean):
            bar = "█" * int(round(value * 30))
            table.add_row(emotion, Text(bar, style=COLOURS[emotion]), f"{value * 100:4.0f}%")
        return Panel(table, title=f"class mood ({len(faces)} faces)")

    def _attention(self) -> Panel:
        observations = self.latest.observations if self.latest else []
        tiles = len(observations)
        faces = [o for o in observations if o.face is not None]
        facing = sum(bool(o.facing) for o in faces)
        lines = Text()
        if self.latest is not None and not self.latest.observed:
            return Panel(Text("not observed: the agent cannot see the class", style="red"), title="attention")
        lines.append(f"faces found    {len(faces)} of {tiles} places"
                     + (f" ({len(faces) / tiles:.0%})" if tiles else ""))
        lines.append(f"\nfacing screen  {facing} of {len(faces)} faces" + (f" ({facing / len(faces):.0%})" if faces else ""))
        lines.append(f"\nparticipants   {len({t.participant.number for t in self.tracked})} now")
        return Panel(lines, title="attention")

    def _trend(self) -> Panel:
        if not self.minutes:
            return Panel(Text("no frames yet", style="dim"), title="trend")
        last = max(self.minutes)
        keys = range(max(last - TREND_MINUTES + 1, 0), last + 1)
        rows = {"faces/places": [], "negative": [], "happy": []}
        for key in keys:
            minute = self.minutes.get(key)
            rows["faces/places"].append(minute.faces / minute.tiles if minute and minute.tiles else None)
            rows["negative"].append(minute.negative / minute.faces if minute and minute.faces else None)
            rows["happy"].append(minute.happy / minute.faces if minute and minute.faces else None)
        table = Table.grid(padding=(0, 1))
        for name, values in rows.items():
            latest = next((v for v in reversed(values) if v is not None), None)
            table.add_row(name, Text(sparkline(values), style="cyan"), "" if latest is None else f"{latest:.0%}")
        return Panel(table, title=f"trend, last {len(keys)} min (one bar per minute)")

    def _participants(self) -> Panel:
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for column in ("who", "place", "expression", "smoothed", "facing"):
            table.add_column(column)
        for item in sorted(self.tracked, key=lambda t: t.participant.number):
            observation = item.observation
            table.add_row(
                item.participant.label, str(observation.tile.index + 1),
                observation.emotion or Text("no face", style="dim"), item.smoothed or "-",
                "-" if observation.facing is None else ("yes" if observation.facing else "turned away"),
            )
        return Panel(table, title="participants (pseudonymous)")
