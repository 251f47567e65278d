"""The live dashboard renders what the class is doing."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from agent.analysis import FrameAnalysis, Observation
from agent.detector import Face
from agent.finder import Tile
from agent.live import Dashboard, sparkline
from agent.sources import Frame
from agent.tracker import Tracker


def test_sparkline() -> None:
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▅█ "


def test_dashboard_shows_mood_attention_trend_and_participants() -> None:
    signature = np.zeros((6, 8, 3), np.float32)
    happy = np.array([0, 0, 0, 0.8, 0, 0, 0.2], np.float32)
    face = Face((10, 10, 40, 40), 0.9, np.zeros((4, 2), np.float32))
    observations = [
        Observation(Tile(0, (0, 0, 100, 60)), signature, face, happy, 5.0),
        Observation(Tile(1, (110, 0, 100, 60)), signature + 100, face, happy, 50.0),
        Observation(Tile(2, (220, 0, 100, 60)), signature + 200),
    ]
    frame = Frame(np.zeros((60, 320, 3), np.uint8), 61.0, "screen:1")
    analysis = FrameAnalysis(frame, observations, True, milliseconds={"discover": 3.0, "follow": 20.0, "classify": 2.0})
    dashboard = Dashboard("screen:1", "/tmp/class.db", 7)
    dashboard.update(analysis, Tracker().update(observations, 61.0), {"layout": 3.0, "total": 30.0}, dropped=2)
    console = Console(record=True, width=110)
    console.print(dashboard.render())
    text = console.export_text()
    for expected in ("session 7", "dropped 2", "happy", "80%", "faces found    2 of 3 places (67%)",
                     "facing screen  1 of 2 faces (50%)", "P1", "P3", "no face", "turned away", "layout 3",
                     "trend, last 2 min"):
        assert expected in text, expected


def test_dashboard_says_when_the_view_is_lost() -> None:
    frame = Frame(np.zeros((60, 320, 3), np.uint8), 12.0, "screen:1")
    dashboard = Dashboard("screen:1", "/tmp/class.db", 7)
    dashboard.view_event(12.0, "view_lost", "9 faces vanished at once")
    dashboard.update(FrameAnalysis(frame, [], observed=False), [], {"total": 5.0}, dropped=0)
    console = Console(record=True, width=110)
    console.print(dashboard.render())
    text = console.export_text()
    assert "view lost since" in text and "check the call window" in text and "not observed" in text
    dashboard.view_event(15.0, "view_back", "9 faces")
    console = Console(record=True, width=110)
    console.print(dashboard.render())
    assert "view lost since" not in console.export_text()
