"""The live dashboard renders what the class is doing."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.console import Console

from fer_agent.live.dashboard import Dashboard, sparkline
from fer_agent.tracking.tracker import Tracker
from fer_agent.types import Face, Frame, FrameAnalysis, Observation, Tile


def rendered(dashboard: Dashboard, width: int, height: int) -> str:
    """The dashboard as rich draws it on a terminal of ``width`` x ``height``."""
    console = Console(width=width, height=height, force_terminal=True, color_system=None)
    with console.capture() as capture:
        console.print(dashboard.render())
    return capture.get()


def class_of(count: int, seed: int = 0) -> tuple[FrameAnalysis, list]:
    """A frame of ``count`` participants: every seventh not found, every fifth of the others turned away."""
    rng = np.random.default_rng(seed)
    observations = []
    for index in range(count):
        tile = Tile(index, (index * 10, 0, 50, 50))
        look = np.full((6, 8, 3), index * 5 % 255, np.float32)
        if index % 7 == 3:
            observations.append(Observation(tile, look, place=index + 1))
            continue
        face = Face((0, 0, 10, 10), 0.9, np.zeros((4, 2), np.float32))
        yaw = 50.0 if index % 5 == 1 else 3.0
        observations.append(Observation(tile, look, face, rng.dirichlet(np.ones(7)).astype(np.float32), yaw,
                                        index + 1))
    frame = Frame(np.zeros((10, 10, 3), np.uint8), 65.0, "screen:1")
    analysis = FrameAnalysis(frame, observations, True, milliseconds={"discover": 0.0, "follow": 23.4,
                                                                     "classify": 8.1})
    return analysis, Tracker().update(observations, 65.0)


@pytest.mark.parametrize("width, height", [(80, 24), (100, 30), (160, 50), (250, 70)])
@pytest.mark.parametrize("count", [1, 7, 25, 49])
def test_the_view_fits_the_terminal(width: int, height: int, count: int) -> None:
    """Nothing runs past the terminal's edges, no line is wrapped (so no number is cut in two), every participant is
    shown (or counted), and those who need a look come first."""
    analysis, tracked = class_of(count)
    dashboard = Dashboard("screen:1", "/home/teacher/.local/share/fer-agent/fer-agent.db", 3)
    dashboard.update(analysis, tracked, {"capture": 11.0, "follow": 23.4, "classify": 8.1, "total": 45.2}, 0)
    text = rendered(dashboard, width, height)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) < height and max(len(line) for line in lines) <= width
    assert "sees the class" in text and "data: /home/teacher" in text
    # The attention line whole: in its long form where it fits, its short form where it does not.
    assert (f"faces found {analysis.faces} of {count} places" in text and "facing screen" in text) or (
        f"faces {analysis.faces}/{count}" in text and "facing " in text), text
    labels = re.findall(r"\bP(\d+) ", text)
    shown = [int(label) for label in labels]
    more = re.search(r"\+(\d+) more", text)
    assert len(set(shown)) + (int(more.group(1)) if more else 0) == count
    needing = [t.participant.number for t in tracked if t.observation.face is None or not t.observation.facing]
    assert shown[:len(needing)] == sorted(needing, key=lambda n: (n % 7 != 4, n))[:len(shown)]
    if (width, height) in ((80, 24), (120, 40)) or width >= 100:
        assert not more, (width, height, count)


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
    text = rendered(dashboard, 110, 40)
    for expected in ("session 7", "dropped 2", "happy", "80%", "faces found 2 of 3 places (67%)",
                     "facing screen 1 of 2 faces (50%)", "P1", "P3", "not found", "happy away", "layout 3",
                     "trend, last 2 min"):
        assert expected in text, expected


def test_dashboard_says_when_the_view_is_lost() -> None:
    frame = Frame(np.zeros((60, 320, 3), np.uint8), 12.0, "screen:1")
    dashboard = Dashboard("screen:1", "/tmp/class.db", 7)
    dashboard.view_event(12.0, "view_lost", "9 faces vanished at once")
    dashboard.update(FrameAnalysis(frame, [], observed=False), [], {"total": 5.0}, dropped=0)
    text = rendered(dashboard, 110, 40)
    assert "view lost since" in text and "check the call window" in text and "not observed" in text
    dashboard.view_event(15.0, "view_back", "9 faces")
    assert "view lost since" not in rendered(dashboard, 110, 40)
    assert "minute 1: view lost" not in dashboard.minute_line(0)


def test_a_class_too_large_for_the_terminal_shows_who_needs_a_look_and_counts_the_rest() -> None:
    analysis, tracked = class_of(100)
    dashboard = Dashboard("screen:1", "/tmp/class.db", 3)
    dashboard.update(analysis, tracked, {"total": 45.2}, 0)
    text = rendered(dashboard, 80, 24)
    assert len(text.rstrip("\n").split("\n")) < 24
    shown = [int(label) for label in re.findall(r"\bP(\d+) ", text)]
    more = int(re.search(r"\+(\d+) more", text).group(1))
    assert len(shown) + more == 100 and more > 0
    # Everyone not found, then everyone turned away, before anyone else.
    not_found = sorted(t.participant.number for t in tracked if t.observation.face is None)
    away = sorted(t.participant.number for t in tracked if t.observation.face is not None and not t.observation.facing)
    assert shown[:len(not_found)] == not_found and shown[len(not_found):len(not_found) + len(away)] == away[
        :len(shown) - len(not_found)]


def test_with_names_a_participant_cell_shows_the_start_of_the_name() -> None:
    """A participant whose name was read (--names) shows their label and the start of the name, cut to leave the
    state its room; one without shows the P-label."""
    signature = np.zeros((6, 8, 3), np.float32)
    face = Face((10, 10, 40, 40), 0.9, np.zeros((4, 2), np.float32))
    happy = np.array([0, 0, 0, 0.8, 0, 0, 0.2], np.float32)
    observations = [Observation(Tile(0, (0, 0, 100, 60)), signature, face, happy, 5.0, 1, "Margarethe Lindqvist"),
                    Observation(Tile(1, (110, 0, 100, 60)), signature + 100, face, happy, 5.0, 2)]
    frame = Frame(np.zeros((60, 220, 3), np.uint8), 5.0, "screen:1")
    dashboard = Dashboard("screen:1", "/tmp/class.db", 1)
    dashboard.update(FrameAnalysis(frame, observations, True), Tracker().update(observations, 5.0), {}, dropped=0)
    text = rendered(dashboard, 100, 30)
    assert "P1 Margaret… happy" in text and "P2 happy" in text and "Lindqvist" not in text
    assert "participants, those who need a look first" in text
