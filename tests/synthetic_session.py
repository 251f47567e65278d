"""A simulated class written through the store's own API, for the report's tests and its benchmark.

Each participant has a tile in a 1920x1080 gallery, a look (the tile's colours, which the real tracker matches), a
usual expression mix (mostly neutral, some happy), and a time in the class (late joiners, early leavers); some keep
their camera off. Every second, each present participant's face gets probabilities drawn around their usual mix and
a head turn near 0 degrees. Episodes change that for a share of the class over an interval: ``negative`` shifts the
expressions towards sad, angry and fear (a confusing part of the lecture), ``away`` turns heads away from the screen.
The episodes are the ground truth the report's key moments are tested against. During a ``lost`` stretch the agent
cannot see the call (its window covered, minimised, or its layout changed): those frames are written as not observed,
without observations, between a ``view_lost`` event (its detail the cause) and a ``view_back`` event, as the agent
records them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_agent.store.writer import Store
from fer_agent.tracking.tracker import Tracker
from fer_agent.types import KEYPOINTS, Face, Observation, Tile
from tests.synthetic import tile_boxes

USUAL = np.array([0.02, 0.005, 0.02, 0.18, 0.04, 0.035, 0.70])
NEGATIVE = np.array([0.20, 0.05, 0.20, 0.03, 0.37, 0.02, 0.13])
# Dirichlet concentration: how far one second's probabilities stray from the participant's mix.
CONCENTRATION = 30.0
EPISODE_KINDS = ("negative", "away")


@dataclass(frozen=True)
class Episode:
    """From ``start`` to ``end`` seconds, ``share`` of the participants (chosen at random) show ``kind``."""

    kind: str
    start: float
    end: float
    share: float = 0.7

    def __post_init__(self) -> None:
        if self.kind not in EPISODE_KINDS:
            raise ValueError(f"kind: expected one of {EPISODE_KINDS}, got {self.kind!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"start, end: expected 0 <= start < end, got {self.start}, {self.end}")


def record_class(store: Store, minutes: float, participants: int, *, fps: float = 1.0, camera_off: int = 0,
                 late: int = 0, episodes: tuple[Episode, ...] = (), lost: tuple[tuple[float, float, str], ...] = (),
                 seed: int = 0, source: str = "simulated class", finish: bool = True) -> int:
    """Record a session of ``minutes`` with ``participants`` (the last ``camera_off`` with their camera off; the
    first ``late`` join during the first third and leave during the last third), the view lost during each
    ``(start, end, cause)`` of ``lost`` (seconds). Returns the session id."""
    for start, end, cause in lost:
        if not 0 <= start < end or not cause:
            raise ValueError(f"lost: expected (start, end, cause) with 0 <= start < end and a cause, got "
                             f"{(start, end, cause)}")
    rng = np.random.default_rng(seed)
    boxes = tile_boxes(participants, 1920, 1080)
    looks = rng.uniform(0, 255, (participants, 6, 8, 3)).astype(np.float32)
    mixes = np.stack([rng.dirichlet(USUAL * 200) for _ in range(participants)])
    duration = minutes * 60
    arrive = np.zeros(participants)
    leave = np.full(participants, duration)
    arrive[:late] = rng.uniform(0, duration / 3, late)
    leave[:late] = rng.uniform(2 * duration / 3, duration, late)
    affected = [rng.random(participants) < episode.share for episode in episodes]
    tracker = Tracker()
    session = store.start_session(source, fps, "1.0.0", 0.8421, "face_detection_short_range.tflite")
    view_lost = False
    for step in range(int(duration * fps)):
        time = step / fps
        cause = next((text for start, end, text in lost if start <= time < end), None)
        if cause is not None:
            if not view_lost:
                store.event(session, time, "view_lost", cause)
                view_lost = True
            store.write_frame(session, time, source, [], 0, False, {"discover": 40.0, "total": 45.0})
            continue
        present = np.flatnonzero((arrive <= time) & (time < leave))
        mix = mixes[present]
        turned = rng.random(len(present)) < 0.05
        for episode, chosen in zip(episodes, affected):
            if episode.start <= time < episode.end:
                hit = chosen[present]
                if episode.kind == "negative":
                    mix = np.where(hit[:, None], NEGATIVE, mix)
                else:
                    turned |= hit
        draws = rng.gamma(mix * CONCENTRATION + 1e-3)
        probabilities = (draws / draws.sum(axis=1, keepdims=True)).astype(np.float32)
        yaws = np.where(turned, rng.uniform(40, 70, len(present)) * rng.choice([-1, 1], len(present)),
                        rng.normal(0, 8, len(present)))
        observations = []
        for row, index in enumerate(present):
            tile = Tile(int(index), boxes[index])
            if index >= participants - camera_off:
                observations.append(Observation(tile, looks[index]))
                continue
            x, y, w, h = boxes[index]
            side = int(h * 0.6)
            face = Face((x + (w - side) // 2, y + (h - side) // 2, side, side), 0.9,
                        np.zeros((len(KEYPOINTS), 2), np.float32))
            observations.append(Observation(tile, looks[index], face, probabilities[row], float(yaws[row])))
        tracked = tracker.update(observations, time)
        store.write_frame(session, time, source, tracked, 0, True, {"discover": 1.0, "follow": 5.0, "total": 8.0})
        if view_lost:
            store.event(session, time, "view_back", f"{sum(o.face is not None for o in observations)} faces")
            view_lost = False
    if finish:
        store.finish_session(session, "finished")
    return session

