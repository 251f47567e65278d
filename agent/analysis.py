"""One frame through the stages: gallery layout -> face per tile -> FER-framed crops -> one classifier batch.

``Analyzer`` loads every model once (``Analyzer(...)``, as insightface's ``prepare()``), then ``analyze(frame)`` per
frame returns a :class:`FrameAnalysis`: one :class:`Observation` per tile (per face when the frame shows no gallery),
with the per-stage milliseconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from agent.classifier import EmotionClassifier
from agent.crop import crop_face
from agent.detector import Face, FaceDetector
from agent.gallery import GalleryLayout, Tile, TileFaceFinder, tile_thumbnail
from agent.labels import EMOTIONS
from agent.sources import Frame

# How far the nose tip stands in front of the eyes, as a fraction of the distance between the eyes (adult faces:
# about 35-40 mm in front of the eye plane, 60-65 mm between the pupils). A head turned by yaw θ moves the nose tip
# sideways by NOSE_DEPTH * sin θ while the eyes close up to cos θ of their distance.
NOSE_DEPTH = 0.6
# Facing the screen: head turned by at most this many degrees.
FACING_LIMIT_DEGREES = 30.0
SIGNATURE_SIZE = (8, 6)


def head_yaw(face: Face) -> float:
    """Estimated head turn in degrees from the keypoints: 0 facing the camera, positive turned to the image's right.

    tan θ = (nose offset from the eyes' midpoint) / (NOSE_DEPTH * eye distance), from a head that turns about a
    vertical axis through the eyes.
    """
    right_eye, left_eye, nose = face.keypoint("right_eye"), face.keypoint("left_eye"), face.keypoint("nose_tip")
    eye_axis = left_eye - right_eye
    distance = float(np.hypot(*eye_axis))
    if distance < 1e-6:
        return 90.0
    offset = float(np.dot(nose - (right_eye + left_eye) / 2, eye_axis / distance))
    return math.degrees(math.atan2(offset, NOSE_DEPTH * distance))


def tile_signature(pixels: np.ndarray) -> np.ndarray:
    """A tile's appearance at a glance (its colours on an 8x6 grid, float32), for telling participants apart when
    the gallery reorders: a room's colours stay when its tile moves or changes size. ``pixels``: the tile, or its
    thumbnail."""
    return cv2.resize(pixels, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass(frozen=True)
class Observation:
    """One tile of one frame: the tile, its appearance signature, and the face in it with the classifier's view of
    it, or no face (camera off, or no face found): then ``face``, ``probabilities`` and ``yaw`` are None."""

    tile: Tile
    signature: np.ndarray
    face: Face | None = None
    probabilities: np.ndarray | None = None
    yaw: float | None = None

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


@dataclass(frozen=True)
class FrameAnalysis:
    """The observations of one frame; ``gallery`` is False when no tiles were found and the frame was searched
    whole; ``milliseconds`` per stage (layout, detect, classify)."""

    frame: Frame
    observations: list[Observation]
    gallery: bool
    milliseconds: dict[str, float] = field(default_factory=dict)

    @property
    def faces(self) -> int:
        return sum(observation.face is not None for observation in self.observations)


class Analyzer:
    """Every model loaded once; ``analyze(frame)`` per frame. ``single_view=True`` treats each frame as one tile
    (a webcam)."""

    def __init__(self, detector_model: Path, emotion_model: Path, threads: int = 1, single_view: bool = False,
                 min_face: int = 40) -> None:
        self.classifier = EmotionClassifier(emotion_model, threads)
        self.detector = FaceDetector(detector_model)
        self.layout = GalleryLayout()
        self.finder = TileFaceFinder(self.detector, min_face=min_face)
        self.single_view = single_view

    def analyze(self, frame: Frame) -> FrameAnalysis:
        image = frame.image
        started = time.perf_counter()
        if self.single_view:
            tiles = [Tile(0, (0, 0, image.shape[1], image.shape[0]))]
        else:
            tiles = self.layout.tiles(image)
        laid_out = time.perf_counter()
        gallery = bool(tiles)
        if gallery:
            thumbnails = [tile_thumbnail(image, tile) for tile in tiles]
            faces = self.finder.find(image, tiles, thumbnails)
        else:
            found = self.finder.find_anywhere(image)
            tiles = [Tile(index, _around(face, image.shape)) for index, face in enumerate(found)]
            thumbnails = [tile_thumbnail(image, tile) for tile in tiles]
            faces: list[Face | None] = list(found)
        detected = time.perf_counter()
        present = [face for face in faces if face is not None]
        size = self.classifier.input_size
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if present else None
        crops = np.stack([crop_face(grey, face, size) for face in present]) if present else np.zeros((0, size, size))
        probabilities = iter(self.classifier.predict(crops))
        observations = []
        for tile, face, thumbnail in zip(tiles, faces, thumbnails):
            signature = tile_signature(thumbnail)
            if face is None:
                observations.append(Observation(tile, signature))
            else:
                observations.append(Observation(tile, signature, face, next(probabilities), head_yaw(face)))
        classified = time.perf_counter()
        return FrameAnalysis(frame, observations, gallery, milliseconds={
            "layout": (laid_out - started) * 1000,
            "detect": (detected - laid_out) * 1000,
            "classify": (classified - detected) * 1000,
        })

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _around(face: Face, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A tile-sized box around a face found without a gallery: twice the face's size, within the frame."""
    x, y, w, h = face.box
    height, width = shape[:2]
    x0, y0 = max(x - w // 2, 0), max(y - h // 2, 0)
    x1, y1 = min(x + w + w // 2, width), min(y + h + h // 2, height)
    return x0, y0, x1 - x0, y1 - y0
