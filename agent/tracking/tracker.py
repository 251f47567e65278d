"""Participant identity across frames: ``tracker.update(observations, time)`` gives each place a participant.

The face finder follows each face from frame to frame (``fer_agent.vision.watch``), so while a place is followed its
participant is known: the place's key says so. A new place (a face that appeared: someone joined, the gallery
reordered, a page flipped back, the view came back, a camera came back on) is matched to the participants who hold no
place now, by the closest look (the colours around the face on a coarse grid, mostly the participant's room, which
stay when the tile moves or changes size), cheapest pairs first; a new place where an absent participant's last
place was matches them even when the look changed (a camera switched off and on again in place). Places that match
no one are new participants, numbered P1, P2, ... in order of first appearance. A participant holds at most one place
at a time, so one face is always one participant, never two. Participants are never forgotten within a session:
someone who leaves and comes back with the same room is the same participant.

With names read off the tiles (``--names``), a name decides first: a new place whose name is an absent participant's
(:func:`fer_agent.naming.same_name`) is that participant whatever the look (a new background, another page), and a
new place is never given to an absent participant of another name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fer_agent.labels import EMOTIONS
from fer_agent.naming import same_name
from fer_agent.types import Observation, Tracked

# Mean absolute difference (grey levels, per signature cell and channel) under which two looks are the same person.
MATCH_THRESHOLD = 32.0
# A new place where an absent participant's last place was (centres within SAME_PLACE_DISTANCE of the place's side,
# sides within SAME_PLACE_SIZE of each other) costs SAME_PLACE_COST when the looks are not far apart either (within
# SAME_PLACE_LOOK): a camera switched off and on in place. Someone else in that place (another gallery page) looks
# further apart than that.
SAME_PLACE_COST = 12.0
SAME_PLACE_LOOK = 48.0
SAME_PLACE_DISTANCE = 0.25
SAME_PLACE_SIZE = 1.5
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
    name: str | None = None

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


class Tracker:
    """``update(observations, time)`` -> one :class:`Tracked` per observation, in the same order.

    ``smoothing_seconds``: time constant of the exponential average of each participant's expression probabilities
    behind the smoothed label (time-based, so it does not depend on the frame rate).
    """

    def __init__(self, smoothing_seconds: float = 5.0) -> None:
        self.smoothing_seconds = smoothing_seconds
        self.participants: list[Participant] = []
        self._holders: dict[int, Participant] = {}

    def update(self, observations: list[Observation], time: float) -> list[Tracked]:
        keys = [observation.place for observation in observations]
        if len(set(key for key in keys if key is not None)) != len([key for key in keys if key is not None]):
            raise ValueError(f"places: expected each place once per frame, got {keys}")
        holders = {key: self._holders[key] for key in keys if key is not None and key in self._holders}
        newcomers = [index for index, observation in enumerate(observations)
                     if observation.place is None or observation.place not in holders]
        assigned = {index: holders[place] for index, place in enumerate(keys)
                    if index not in newcomers and place is not None}
        absent = [participant for participant in self.participants if participant not in holders.values()]
        pairs = []
        if absent and newcomers:
            costs = self._look_distances([observations[index] for index in newcomers], absent)
            for row, index in enumerate(newcomers):
                name = observations[index].name
                for column, participant in enumerate(absent):
                    if name and participant.name:
                        if same_name(name, participant.name):
                            pairs.append((-1.0, index, participant.number))
                        continue
                    cost = costs[row, column]
                    if cost <= SAME_PLACE_LOOK and _same_place(participant.box, observations[index].tile.box):
                        cost = min(cost, SAME_PLACE_COST)
                    if cost <= MATCH_THRESHOLD:
                        pairs.append((cost, index, participant.number))
        taken: set[int] = set()
        by_number = {participant.number: participant for participant in absent}
        for _cost, index, number in sorted(pairs):
            if index not in assigned and number not in taken:
                assigned[index] = by_number[number]
                taken.add(number)
        tracked = []
        self._holders = {}
        for index, observation in enumerate(observations):
            if index in assigned:
                participant = assigned[index]
                participant.remember(observation.signature)
            else:
                participant = Participant(len(self.participants) + 1, time, time, observation.tile.box,
                                          [observation.signature])
                self.participants.append(participant)
            participant.last_seen = time
            participant.box = observation.tile.box
            if observation.name:
                # The latest reading: a label is read again only when it changed.
                participant.name = observation.name
            if observation.place is not None:
                self._holders[observation.place] = participant
            tracked.append(Tracked(observation, participant, self._smooth(participant, observation, time)))
        return tracked

    @staticmethod
    def _look_distances(observations: list[Observation], participants: list[Participant]) -> np.ndarray:
        """[observations, participants]: each place's distance to the closest look of each participant."""
        signatures = np.stack([o.signature.ravel() for o in observations])
        looks = np.stack([look.ravel() for p in participants for look in p.looks])
        owners = np.repeat(np.arange(len(participants)), [len(p.looks) for p in participants])
        distances = np.abs(signatures[:, None, :] - looks[None, :, :]).mean(axis=2)
        result = np.full((len(observations), len(participants)), np.inf)
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
    """Places whose centres are within SAME_PLACE_DISTANCE of their size, and whose sizes differ by at most
    SAME_PLACE_SIZE (a face back in place after a camera went off and on, or after the view came back)."""
    size, other_size = max(box[2], box[3]), max(other[2], other[3])
    if max(size, other_size) > SAME_PLACE_SIZE * min(size, other_size):
        return False
    distance = math.hypot(box[0] + box[2] / 2 - other[0] - other[2] / 2, box[1] + box[3] / 2 - other[1] - other[3] / 2)
    return distance <= SAME_PLACE_DISTANCE * size
