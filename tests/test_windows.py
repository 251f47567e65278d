"""Windowed detection over a whole frame (the fallback when no gallery grid is found), with real MediaPipe."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from agent.detector import FaceDetector
from agent.windows import detect_in_windows, window_sides, windows
from training.data import load_fer2013_csv


def test_windows_cover_the_frame_with_half_overlap() -> None:
    sides = window_sides(1920, 1080, min_face=40)
    assert sides[0] == 133 and sides[-1] == 1080 and sides == sorted(sides)
    for side in sides:
        tiles = windows(1920, 1080, side)
        covered = np.zeros((1080, 1920), dtype=bool)
        for x, y, w, h in tiles:
            assert x + w <= 1920 and y + h <= 1080
            covered[y:y + h, x:x + w] = True
        assert covered.all()


def test_faces_of_many_sizes_in_a_1080p_frame(detector_model_path: Path, shared_fer: Path) -> None:
    faces = load_fer2013_csv(shared_fer / "fer2013.csv.gz", limit=12).pixels
    frame = np.full((1080, 1920, 3), 40, dtype=np.uint8)
    placed = []
    for index, (face, size) in enumerate(zip(faces, (48, 60, 80, 100, 130, 160, 200, 240, 56, 72, 90, 300))):
        x, y = 40 + (index % 6) * 310, 60 + (index // 6) * 500
        frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)[:, :, None]
        placed.append((x, y, size))
    with FaceDetector(detector_model_path) as detector:
        found = detect_in_windows(detector, frame, min_face=40)
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in (face.box for face in found)]
    matched = sum(any(px <= cx <= px + s and py <= cy <= py + s for cx, cy in centres) for px, py, s in placed)
    false = sum(not any(px <= cx <= px + s and py <= cy <= py + s for px, py, s in placed) for cx, cy in centres)
    assert matched >= 11 and false == 0 and len(found) == matched, (matched, false, len(found))
