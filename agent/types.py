"""The data types every stage speaks, in the order of the data flow: a source's :class:`Frame` (and the
:class:`SkippedFile` it could not read), a detector's :class:`Face`, a participant's place (:class:`Tile`), the
classifier's :class:`Observation` of it, a frame's :class:`FrameAnalysis`, and the tracker's :class:`Tracked`
observation; and :class:`FrameSource`, what every source of frames is. Each validates itself when it is made, with
an error that names what was expected and what was given. Stages import their types from here, never from each
other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fer_agent.labels import EMOTIONS


@dataclass(frozen=True)
class Frame:
    """One RGB uint8 [H, W, 3] frame; ``time`` in seconds from the start of the source (video time for videos);
    ``dropped``: frames skipped just before this one because the agent was busy; ``name``: where it came from;
    ``capture_ms``: how long reading it took (screen grab, decoding); ``scale``: the original picture's pixels per
    pixel of ``image`` (above 1 when a picture larger than 8K was scaled down to :data:`MAX_PIXELS`); ``hidden``: why
    the call could not be seen at this frame's time (its window minimised, covered, closed), when it could not: the
    frame then holds no picture (one black pixel) and is not observed."""

    image: np.ndarray
    time: float
    name: str
    dropped: int = 0
    capture_ms: float = 0.0
    scale: float = 1.0
    hidden: str = ""

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image: expected uint8 [H, W, 3], got {self.image.dtype} {self.image.shape}")
        if self.dropped < 0:
            raise ValueError(f"dropped: expected >= 0, got {self.dropped}")
        if not (math.isfinite(self.scale) and self.scale >= 1.0):
            raise ValueError(f"scale: expected a finite number >= 1 (pictures are only scaled down), got {self.scale}")

    def original_box(self, box) -> list[int]:
        """A box [x, y, w, h] in this frame's pixels, in the original picture's pixels."""
        return [round(value * self.scale) for value in box]


@dataclass(frozen=True)
class SkippedFile:
    """A file of a folder that could not be read, and was skipped: ``name`` (its path), ``reason`` (a few words),
    ``time`` (where its frame would have been, in seconds from the start of the source)."""

    name: str
    reason: str
    time: float


# The face keypoints both detectors give (BlazeFace's first four, in MediaPipe's order; CenterFace's eyes and nose,
# and the middle of its mouth corners): the person's right eye comes first, it is on the image's left.
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth")


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h) and keypoints [6, 2] in the pixel coordinates of the detected image."""

    box: tuple[int, int, int, int]
    score: float
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"box: expected (x, y, w, h) with w, h > 0, got {self.box}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score: expected 0..1, got {self.score}")
        if self.keypoints.shape != (len(KEYPOINTS), 2):
            raise ValueError(f"keypoints: expected shape ({len(KEYPOINTS)}, 2), got {self.keypoints.shape}")

    def keypoint(self, name: str) -> np.ndarray:
        return self.keypoints[KEYPOINTS.index(name)]

    def shifted(self, dx: int, dy: int) -> Face:
        """The same face in a larger image whose origin lies (dx, dy) before this one's."""
        x, y, w, h = self.box
        return Face((x + dx, y + dy, w, h), self.score, self.keypoints + np.array([dx, dy], dtype=np.float32))


@dataclass(frozen=True)
class Tile:
    """The place where a participant is watched: their face's box grown to twice its size (hair, shoulders, the room
    right behind them: ``place_tile``), clipped to the frame, as (x, y, w, h) in screenshot pixels, and its index in
    reading order. It is what stays when the face turns away or the camera goes off for a while."""

    index: int
    box: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"box: expected (x, y, w, h) with w, h > 0, got {self.box}")

    def crop(self, image: np.ndarray) -> np.ndarray:
        x, y, w, h = self.box
        return image[y:y + h, x:x + w]


# Facing the screen: head turned by at most this many degrees.
FACING_LIMIT_DEGREES = 30.0


@dataclass(frozen=True)
class Observation:
    """One participant's place in one frame: the place (``tile``), its look (``signature``, for telling
    participants apart), the place's key while it is followed (``place``), and the face in it with the classifier's
    view of it, or no face (turned away, camera off, left): then ``face``, ``probabilities`` and ``yaw`` are None.
    ``name``: the name read off the place's tile (``--names`` only; None where none was read)."""

    tile: Tile
    signature: np.ndarray
    face: Face | None = None
    probabilities: np.ndarray | None = None
    yaw: float | None = None
    place: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.face is None) != (self.probabilities is None) or (self.face is None) != (self.yaw is None):
            raise ValueError("face, probabilities and yaw: expected all three or none")
        if self.probabilities is not None and self.probabilities.shape != (len(EMOTIONS),):
            raise ValueError(f"probabilities: expected shape ({len(EMOTIONS)},), got {self.probabilities.shape}")

    @property
    def emotion(self) -> str | None:
        return None if self.probabilities is None else EMOTIONS[int(self.probabilities.argmax())]

    @property
    def facing(self) -> bool | None:
        return None if self.yaw is None else abs(self.yaw) <= FACING_LIMIT_DEGREES

    def to_dict(self, frame: Frame, with_name: bool = False) -> dict:
        """The face as JSON takes it (``fer-agent analyze --json``): its box [x, y, w, h] in the pixels of ``frame``'s
        original picture, detector score, expression and its 7 scores; and its ``name`` (None where none was read)
        when names were read."""
        if self.face is None or self.probabilities is None:
            raise ValueError("to_dict: expected an observation with a face, got one without")
        return {"box": frame.original_box(self.face.box), "score": round(self.face.score, 4),
                "emotion": self.emotion,
                "scores": {label: round(float(p), 4) for label, p in zip(EMOTIONS, self.probabilities)},
                **({"name": self.name} if with_name else {})}


@dataclass(frozen=True)
class FrameAnalysis:
    """The observations of one frame; ``observed`` is False when the agent could not see the class (the view was
    lost: no observations); ``event`` is the view's change in this frame (kind, detail), if any; ``discovered`` says
    that the whole screen was searched; ``milliseconds`` per stage (discover, follow, classify)."""

    frame: Frame
    observations: list[Observation]
    observed: bool = True
    event: tuple[str, str] | None = None
    discovered: bool = False
    milliseconds: dict[str, float] = field(default_factory=dict)

    @property
    def faces(self) -> int:
        return sum(observation.face is not None for observation in self.observations)


class Identity(Protocol):
    """Who a tracked observation is: the participant's number, pseudonymous label (P1, P2, ...), and name when one
    was read off their tile (``--names`` only)."""

    @property
    def number(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def name(self) -> str | None: ...


@dataclass(frozen=True)
class Tracked:
    """An observation with its participant and the participant's smoothed expression (None until a face was seen)."""

    observation: Observation
    participant: Identity
    smoothed: str | None


class FrameSource(Protocol):
    """What every source of frames is (``fer_agent.capture``): ``name`` (as the session records it), ``fps``
    (frames per second of the clock, or of video time), ``live`` (paced against the clock, as a screen or a camera,
    rather than read as fast as it is consumed, as a file). ``frames(sleep)`` yields the frames (a live source waits
    for each frame's time with ``sleep``, which may return early: a stop asked for); ``expected_frames()`` is how many
    a file will give (None for a live source, or a file that does not say); ``take_skipped()`` hands over the files
    skipped since the last call (a folder's unreadable images); ``close()`` frees the device or file."""

    name: str
    fps: float
    live: bool

    def frames(self, sleep: Callable[[float], None] = ...) -> Iterator[Frame]: ...

    def expected_frames(self) -> int | None: ...

    def take_skipped(self) -> list[SkippedFile]: ...

    def close(self) -> None: ...
