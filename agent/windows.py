"""Windowed face detection over a whole frame, for frames where no gallery grid is found.

BlazeFace (short range) sees each input at 128x128 and finds faces reliably only when the face fills at least about
0.3 of the image side (measured on upscaled FER-2013 faces: 0 of 100 found at 0.125, 53 at 0.19, 90 at 0.25, 96 at
0.31, 97-99 from 0.375 to 0.94). So the frame is covered by square windows at several sizes, each overlapping its
neighbours by half, and the detections are merged by non-maximum suppression.
"""

from __future__ import annotations

import numpy as np

from agent.detector import Face, FaceDetector

# A face of height f is found in windows of side about f / 0.5 down to f / 0.3, and the half overlap guarantees that
# some window holds the whole face when f <= side / 2.
MIN_FACE_FRACTION = 0.3
SCALE_STEP = 1.6


def window_sides(width: int, height: int, min_face: int) -> list[int]:
    """Window sides from the smallest that still finds ``min_face``-pixel faces up to the frame's shorter side."""
    shorter = min(width, height)
    side = min(int(min_face / MIN_FACE_FRACTION), shorter)
    sides = []
    while side < shorter:
        sides.append(side)
        side = int(side * SCALE_STEP)
    sides.append(shorter)
    return sides


def windows(width: int, height: int, side: int) -> list[tuple[int, int, int, int]]:
    """Square windows (x, y, side, side) covering the frame, each overlapping its neighbours by half."""
    step = max(side // 2, 1)

    def starts(length: int) -> list[int]:
        last = max(length - side, 0)
        positions = list(range(0, last + 1, step))
        if positions[-1] != last:
            positions.append(last)
        return positions

    return [(x, y, min(side, width), min(side, height)) for y in starts(height) for x in starts(width)]


def suppress_overlaps(faces: list[Face], margin: float = 0.25) -> list[Face]:
    """Keep one face per place: the largest, dropping every face whose centre lies in a larger kept face's box
    (grown by ``margin`` of its size on each side).

    Small windows over a large face find parts of it (an eye, the chin) as faces, and a face is found again in the
    neighbouring windows and scales: all of these have their centre on or near the whole face's box.
    """
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True):
        centre_x, centre_y = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        if not any(
            x - margin * w <= centre_x <= x + w * (1 + margin) and y - margin * h <= centre_y <= y + h * (1 + margin)
            for x, y, w, h in (other.box for other in kept)
        ):
            kept.append(face)
    return kept


def detect_in_windows(detector: FaceDetector, image: np.ndarray, min_face: int = 40) -> list[Face]:
    """Faces of at least ``min_face`` pixels anywhere in ``image``, in the image's pixel coordinates."""
    height, width = image.shape[:2]
    found: list[Face] = []
    for side in window_sides(width, height, min_face):
        for x, y, w, h in windows(width, height, side):
            for face in detector.detect(image[y:y + h, x:x + w]):
                if not _cut_by_window(face, x, y, w, h, width, height):
                    found.append(face.shifted(x, y))
    return suppress_overlaps(found)


def _cut_by_window(face: Face, x: int, y: int, w: int, h: int, width: int, height: int) -> bool:
    """Whether the face touches an edge of its window that is not an edge of the frame.

    Such a face is cut, or is a part of a larger face (an eye, a hairline) taken for one; the half overlap of the
    windows means that another window holds it whole.
    """
    fx, fy, fw, fh = face.box
    return ((fx <= 0 < x) or (fy <= 0 < y) or (fx + fw >= w and x + w < width)
            or (fy + fh >= h and y + h < height))
