"""Crop and align a detected face so that it is framed the way FER-2013 faces are.

The framing was measured, not guessed: ``benchmarks/measure_framing.py`` runs the detector on 2,000 upscaled
FER-2013 Training faces and reports where the detector's box lies inside the 48x48 crop. Medians over the 1,871 faces
with one detection: box centre at (0.505, 0.557) of the crop side, box width 0.880 and height 0.844 of it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fer_agent.types import Face

BOX_CENTRE_X = 0.505
BOX_CENTRE_Y = 0.557
BOX_WIDTH = 0.880
BOX_HEIGHT = 0.844


def eye_angle(face: Face) -> float:
    """Angle (radians) of the line from the eye on the image's left to the one on its right; 0 when level."""
    dx, dy = face.keypoint("left_eye") - face.keypoint("right_eye")
    return math.atan2(float(dy), float(dx))


def crop_face(image: np.ndarray, face: Face, size: int = 48, level_eyes: bool = True) -> np.ndarray:
    """The face as a grey uint8 [size, size] crop, eyes levelled, framed as FER-2013 faces are.

    ``image`` is the RGB uint8 [H, W, 3] (or grey [H, W]) image the face was detected in.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    x, y, w, h = face.box
    side = (w / BOX_WIDTH + h / BOX_HEIGHT) / 2
    angle = eye_angle(face) if level_eyes else 0.0
    cos, sin = math.cos(angle), math.sin(angle)
    # The crop's centre, offset from the box centre along the face's own (levelled) axes.
    offset_x, offset_y = (0.5 - BOX_CENTRE_X) * side, (0.5 - BOX_CENTRE_Y) * side
    centre_x = x + w / 2 + cos * offset_x - sin * offset_y
    centre_y = y + h / 2 + sin * offset_x + cos * offset_y
    # Warp to at least `size` pixels, then shrink with area averaging: a direct warp to 48 pixels would alias.
    warped_size = max(size, int(round(side)))
    scale = side / warped_size
    start = (0.5 * scale - side / 2)
    matrix = np.array([
        [cos * scale, -sin * scale, centre_x + cos * start - sin * start],
        [sin * scale, cos * scale, centre_y + sin * start + cos * start],
    ], dtype=np.float64)
    warped = cv2.warpAffine(grey, matrix, (warped_size, warped_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    if warped_size == size:
        return warped
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
