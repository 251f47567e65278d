"""Face finding on whatever a call screen shows, with no layout assumption.

Two detectors, each for what it does best (both measured on the real call screenshots, see BENCHMARKS.md):

- **Discovery**: CenterFace (``fer_agent.vision.discovery``) takes the whole screen in one pass and finds every face on
it,
  whatever the layout: grids with or without gaps, panels, speaker view, shared screens, several people in a tile.
- **Confirmation and following**: BlazeFace (MediaPipe, ``fer_agent.vision.detector``) on a square around each face,
where the
  face fills ``FOLLOW_FRACTION`` of the square (BlazeFace needs a face to fill about a fifth to a third of its input).
  It gives the box the crops were measured on (``fer_agent.vision.crop``) and the eye and nose keypoints, for about 2.5
  ms of CPU per face: cheap enough to follow every known face each frame, while discovery runs rarely.

``FaceFinder.find(image)``: both in turn, for one screenshot. ``fer_agent.vision.watch`` uses the same two steps over
time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np

from fer_agent.types import Face, Tile
from fer_agent.vision.detector import FaceDetector
from fer_agent.vision.discovery import FaceDiscovery

FOLLOW_FRACTION = 0.3
LOOK_GRID = (8, 6)
# Where BlazeFace's box lies against CenterFace's, measured on the 240 faces both find on the real screenshots
# (medians): centre shifted by (-0.01, +0.077) of the CenterFace box's size, width 1.08 and height 0.82 of it.
BLAZEFACE_FRAMING = (-0.01, 0.077, 1.08, 0.82)


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def square_around(box: tuple[int, int, int, int], shape: tuple[int, ...],
                  fraction: float = FOLLOW_FRACTION) -> tuple[int, int, int]:
    """The square (x, y, side) centred on ``box`` in which the box fills ``fraction`` of the side; it may reach past
    the image's edges (``crop_square`` pads)."""
    cx, cy = centre(box)
    side = max(int(round(max(box[2], box[3]) / fraction)), 16)
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def place_tile(index: int, box: tuple[int, int, int, int], shape: tuple[int, ...]) -> Tile:
    """The tile of a face at ``box``: the box grown by half its size on each side, clipped to the image. It stays
    inside the participant's video tile in the usual galleries (a face is under half a tile's height)."""
    x, y, w, h = box
    height, width = shape[:2]
    x0, y0 = max(x - w // 2, 0), max(y - h // 2, 0)
    return Tile(index, (x0, y0, max(min(x + w + w // 2, width) - x0, 1), max(min(y + h + h // 2, height) - y0, 1)))


def look_of(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A participant's appearance at a glance: the colours of the tile around a face at ``box`` on an 8x6 grid
    (float32), which stay when the face moves a little or the gallery changes size, and differ between people and
    rooms."""
    return cv2.resize(place_tile(0, box, image.shape).crop(image), LOOK_GRID,
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def crop_square(image: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    """The square of ``image`` at (x, y), padded with black where it reaches past the image."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    inside = image[y0:y1, x0:x1]
    if (x0, y0, x1, y1) == (x, y, x + side, y + side):
        return inside
    square = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    if x0 < x1 and y0 < y1:
        square[y0 - y:y1 - y, x0 - x:x1 - x] = inside
    return square


def as_blazeface_framing(face: Face, shape: tuple[int, ...]) -> Face:
    """A CenterFace face with its box moved to where BlazeFace would put it (the crops are framed on BlazeFace's
    boxes); its keypoints stay."""
    dx, dy, scale_w, scale_h = BLAZEFACE_FRAMING
    x, y, w, h = face.box
    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
    new_w, new_h = w * scale_w, h * scale_h
    height, width = shape[:2]
    x0, y0 = max(int(round(cx - new_w / 2)), 0), max(int(round(cy - new_h / 2)), 0)
    x1, y1 = min(int(round(cx + new_w / 2)), width), min(int(round(cy + new_h / 2)), height)
    return Face((x0, y0, max(x1 - x0, 1), max(y1 - y0, 1)), face.score, face.keypoints)


def inside(point: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def one_per_place(faces: list[Face]) -> list[Face]:
    """One face per place: a face whose centre lies inside a larger face's box is the same face found twice."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True):
        cx, cy = centre(face.box)
        if not any(inside((cx, cy), k.box) for k in kept):
            kept.append(face)
    return kept


class FaceFinder:
    """``find(image)``: every participant's face on one screenshot; ``confirm(image, box)``: BlazeFace's view of the
    face expected at ``box`` (None when it finds none there)."""

    def __init__(self, detector: FaceDetector, discovery: FaceDiscovery) -> None:
        self.detector = detector
        self.discovery = discovery

    def centerface(self, image: np.ndarray) -> list[Face]:
        """CenterFace's faces on the whole image, doubles left out. It touches only the CenterFace session, so it may
        run on a thread of its own. A picture of a face on the wall is a face too: no rule on face sizes tells it from
        a participant without also dropping the small faces of a strip beside a speaker's large one (the real
        screenshots' annotations count such posters as neither right nor wrong)."""
        return one_per_place(self.discovery.detect(image))

    def discover(self, image: np.ndarray, centerface: list[Face] | None = None) -> list[Face]:
        """CenterFace's faces (``centerface``, when they were found already), and BlazeFace's on the whole image in
        one call, for a face that fills a good part of the picture (a webcam, a speaker view), where CenterFace found
        none (its box for a face CenterFace also found can be several times too large)."""
        found = self.centerface(image) if centerface is None else centerface
        large = [face for face in self.detector.detect(image)
                 if not any(inside(centre(other.box), face.box) for other in found)]
        return found + large

    def confirm(self, image: np.ndarray, box: tuple[int, int, int, int]) -> Face | None:
        """BlazeFace on the square around ``box``: the face nearest the box's centre, within half its width."""
        x, y, side = square_around(box, image.shape)
        cx, cy = centre(box)
        best, best_distance = None, 0.5 * max(box[2], box[3])
        for face in self.detector.detect(crop_square(image, x, y, side)):
            face = face.shifted(x, y)
            distance = float(np.hypot(*np.subtract(centre(face.box), (cx, cy))))
            if distance <= best_distance:
                best, best_distance = face, distance
        if best is None:
            return None
        height, width = image.shape[:2]
        bx, by, bw, bh = best.box
        x0, y0, x1, y1 = max(bx, 0), max(by, 0), min(bx + bw, width), min(by + bh, height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return Face((x0, y0, x1 - x0, y1 - y0), best.score, best.keypoints)

    def settle(self, image: np.ndarray, discovered: Face) -> Face:
        """A discovered face as the pipeline uses it: BlazeFace's box and keypoints where it confirms the face (it
        confirms all 239 faces CenterFace finds on the real screenshots), else CenterFace's own keypoints with its
        box moved to BlazeFace's framing (a backlit face, at another scale)."""
        confirmed = self.confirm(image, discovered.box)
        return confirmed if confirmed is not None else as_blazeface_framing(discovered, image.shape)

    def find(self, image: np.ndarray) -> list[Face]:
        """Every participant's face on one RGB screenshot, in reading order (top to bottom, then left to right)."""
        return reading_order(one_per_place([self.settle(image, face) for face in self.discover(image)]))


T = TypeVar("T")


def reading_rows(items: list[T], box_of: Callable[[T], tuple[int, int, int, int]]) -> list[list[T]]:
    """Items with face boxes in rows, top to bottom, each row left to right: a face whose centre lies less than the
    height of the row's tallest face below the row's top centre shares the row (faces sit at different heights in
    their tiles; the next row of tiles is at least two face heights further down)."""
    rows: list[list[T]] = []
    top = tallest = 0.0
    for item in sorted(items, key=lambda i: centre(box_of(i))[1]):
        cy, height = centre(box_of(item))[1], box_of(item)[3]
        if rows and cy - top < max(tallest, height):
            rows[-1].append(item)
            tallest = max(tallest, height)
        else:
            rows.append([item])
            top, tallest = cy, height
    return [sorted(row, key=lambda i: box_of(i)[0]) for row in rows]


def reading_order(faces: list[Face]) -> list[Face]:
    """Faces row by row (``reading_rows``), then left to right."""
    return [face for row in reading_rows(faces, lambda f: f.box) for face in row]
