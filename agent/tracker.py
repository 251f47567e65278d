"""Participant identity across frames: ``tracker.update(observations, time)`` gives each tile a participant.

Call apps reorder the gallery when someone joins or leaves, or starts to speak, so a tile's place does not identify its
participant; its look does: the participant's room (the tile's colours on a coarse grid, ``tile_signature``), which
stays when the tile moves or changes size. Each participant keeps the few looks they were seen with (camera on,
camera off), and each frame's tiles are matched to participants by the closest look, cheapest pairs first. A tile in
the same place as a participant's last tile, in a gallery of the same size, matches them even when its look changed
(a camera switched off or on, a light switched on). Tiles that match no one are new participants, numbered P1, P2, ...
in order of first appearance. Participants are never forgotten within a session: someone who leaves and comes back
with the same room is the same participant.

Limits: two camera-off tiles look alike (a name on a flat tile), so when camera-off tiles move they are told apart only
by their place, and someone whose camera comes back on in a moved tile becomes a new participant; with ``--names``
the tile's name label would settle both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from agent.analysis import Observation
from agent.labels import EMOTIONS

# Mean absolute difference (grey levels, per signature cell and channel) under which two looks are the same tile.
MATCH_THRESHOLD = 24.0
# The cost of a tile in the same place as the participant's last tile, when the gallery kept its size.
SAME_PLACE_COST = 12.0
# Looks kept per participant (for example camera on, camera off).
MAX_LOOKS = 3
LOOK_UPDATE = 0.2


@dataclass
class Participant:
    number: int
    first_seen: float
    last_seen: float
    box: tuple[int, int, int, int]
    looks: list[np.ndarray] = field(default_factory=list)
    mood: np.ndarray | None = None
    mood_time: float = 0.0

    @property
    def label(self) -> str:
        return f"P{self.number}"

    def remember(self, signature: np.ndarray) -> None:
        distances = [float(np.abs(look - signature).mean()) for look in self.looks]
        closest = int(np.argmin(distances))
        if distances[closest] <= MATCH_THRESHOLD / 2:
            self.looks[closest] = (1 - LOOK_UPDATE) * self.looks[closest] + LOOK_UPDATE * signature
        else:
            self.looks = (self.looks + [signature])[-MAX_LOOKS:]


@dataclass(frozen=True)
class Tracked:
    """An observation with its participant and the participant's smoothed expression (None until a face was seen)."""

    observation: Observation
    participant: Participant
    smoothed: str | None


class Tracker:
    """``update(observations, time)`` -> one :class:`Tracked` per observation, in the same order.

    ``smoothing_seconds``: time constant of the exponential average of each participant's expression probabilities
    behind the smoothed label (time-based, so it does not depend on the frame rate).
    """

    def __init__(self, smoothing_seconds: float = 5.0) -> None:
        self.smoothing_seconds = smoothing_seconds
        self.participants: list[Participant] = []
        self._last_tile_count = -1
        self._last_time: float | None = None

    def update(self, observations: list[Observation], time: float) -> list[Tracked]:
        same_layout = len(observations) == self._last_tile_count
        self._last_tile_count = len(observations)
        pairs = []
        if self.participants and observations:
            costs = self._look_distances(observations)
            for index, observation in enumerate(observations):
                for column, participant in enumerate(self.participants):
                    cost = costs[index, column]
                    if same_layout and participant.last_seen == self._last_time and _same_place(
                            participant.box, observation.tile.box):
                        cost = min(cost, SAME_PLACE_COST)
                    if cost <= MATCH_THRESHOLD:
                        pairs.append((cost, index, participant.number))
        assigned: dict[int, Participant] = {}
        taken: set[int] = set()
        by_number = {participant.number: participant for participant in self.participants}
        for _cost, index, number in sorted(pairs):
            if index not in assigned and number not in taken:
                assigned[index] = by_number[number]
                taken.add(number)
        tracked = []
        for index, observation in enumerate(observations):
            participant = assigned.get(index)
            if participant is None:
                participant = Participant(len(self.participants) + 1, time, time, observation.tile.box,
                                          [observation.signature])
                self.participants.append(participant)
            else:
                participant.remember(observation.signature)
            participant.last_seen = time
            participant.box = observation.tile.box
            tracked.append(Tracked(observation, participant, self._smooth(participant, observation, time)))
        self._last_time = time
        return tracked

    def _look_distances(self, observations: list[Observation]) -> np.ndarray:
        """[observations, participants]: each tile's distance to the closest look of each participant."""
        signatures = np.stack([o.signature.ravel() for o in observations])
        looks = np.stack([look.ravel() for p in self.participants for look in p.looks])
        owners = np.repeat(np.arange(len(self.participants)), [len(p.looks) for p in self.participants])
        distances = np.abs(signatures[:, None, :] - looks[None, :, :]).mean(axis=2)
        result = np.full((len(observations), len(self.participants)), np.inf)
        np.minimum.at(result.T, owners, distances.T)
        return result

    def _smooth(self, participant: Participant, observation: Observation, time: float) -> str | None:
        if observation.probabilities is not None:
            if participant.mood is None:
                participant.mood = observation.probabilities.astype(np.float64)
            else:
                weight = 1.0 - math.exp(-max(time - participant.mood_time, 0.0) / self.smoothing_seconds)
                participant.mood = (1 - weight) * participant.mood + weight * observation.probabilities
            participant.mood_time = time
        return None if participant.mood is None else EMOTIONS[int(participant.mood.argmax())]


def _same_place(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> bool:
    """Boxes equal within 5% of the tile's size (video compression and the speaker's border move edges a little)."""
    tolerance = max(3.0, 0.05 * min(box[2], box[3]))
    return all(abs(a - b) <= tolerance for a, b in zip(box, other))
