"""One frame through layout, detection, crops and the classifier, with the real models; head-turn estimate."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.labels import EMOTIONS
from fer_agent.types import KEYPOINTS, Face, Frame, Observation, Tile
from fer_agent.vision.analysis import Analyzer, head_yaw
from tests.conftest import SHIPPED_MODEL
from tests.synthetic import participants_from_faces, render_gallery


def face_turned(degrees: float, eye_distance: float = 40.0) -> Face:
    """Keypoints of a head turned by ``degrees`` about a vertical axis through the eyes (nose 0.6 eye distances in
    front of them)."""
    theta = math.radians(degrees)
    half = eye_distance / 2
    points = {
        "right_eye": (100 - half * math.cos(theta), 100), "left_eye": (100 + half * math.cos(theta), 100),
        "nose_tip": (100 + 0.6 * eye_distance * math.sin(theta), 120), "mouth": (100, 140),
    }
    return Face((60, 70, 80, 90), 0.9, np.array([points[name] for name in KEYPOINTS], np.float32))


@pytest.mark.parametrize("degrees", [0, 15, -20, 45, -60])
def test_head_yaw_recovers_the_turn(degrees: float) -> None:
    assert head_yaw(face_turned(degrees)) == pytest.approx(degrees, abs=0.5)


def test_facing_means_turned_at_most_30_degrees() -> None:
    tile = Tile(0, (0, 0, 200, 200))
    signature = np.zeros((6, 8, 3), np.float32)
    probabilities = np.full(7, 1 / 7, np.float32)
    for degrees, facing in ((10, True), (-29, True), (35, False), (-70, False)):
        observation = Observation(tile, signature, face_turned(degrees), probabilities, head_yaw(face_turned(degrees)))
        assert observation.facing is facing


def test_observation_needs_face_probabilities_and_yaw_together() -> None:
    with pytest.raises(ValueError, match="all three or none"):
        Observation(Tile(0, (0, 0, 10, 10)), np.zeros((6, 8, 3), np.float32), probabilities=np.ones(7))


@pytest.fixture(scope="module")
def analyzer(detector_model_path: Path, discovery_model_path: Path):
    with Analyzer(detector_model_path, discovery_model_path, SHIPPED_MODEL) as analyzer:
        yield analyzer


def test_gallery_picture_is_classified_in_one_batch(analyzer: Analyzer, test_faces) -> None:
    faces, majority = test_faces
    happy = faces[majority == EMOTIONS.index("happy")][:16]
    gallery = render_gallery(participants_from_faces(happy, 16, seed=4, camera_off=2), chat_panel=True)
    found = analyzer.find(gallery.image)
    assert 12 <= len(found) <= 14
    assert sum(o.emotion == "happy" for o in found) >= 0.75 * len(found)
    for observation in found:
        assert abs(observation.probabilities.sum() - 1) < 1e-4
        x, y, w, h = observation.face.box
        tx, ty, tw, th = observation.tile.box
        assert tx <= x and ty <= y and x + w <= tx + tw and y + h <= ty + th


def test_a_photo_like_frame_and_a_webcam_frame(analyzer: Analyzer, test_faces) -> None:
    faces, _ = test_faces
    # A photo-like frame (a smooth colour gradient, no flat background, no tiles).
    across, down = np.linspace(0, 1, 1280)[None, :, None], np.linspace(0, 1, 720)[:, None, None]
    image = (np.array([180, 120, 60]) * across + np.array([30, 90, 160]) * down).astype(np.uint8)
    image[150:390, 300:540] = cv2.resize(faces[1], (240, 240), interpolation=cv2.INTER_CUBIC)[:, :, None]
    image[300:460, 900:1060] = cv2.resize(faces[2], (160, 160), interpolation=cv2.INTER_CUBIC)[:, :, None]
    assert len(analyzer.find(image)) == 2
    # The webcam mode: one person filling a 640x480 camera frame.
    across = np.linspace(0, 1, 640)[None, :, None]
    webcam = (np.array([120, 140, 90]) * across + 60).astype(np.uint8).repeat(480, axis=0)
    webcam[100:380, 180:460] = cv2.resize(faces[3], (280, 280), interpolation=cv2.INTER_CUBIC)[:, :, None]
    analysis = analyzer.analyze(Frame(webcam, 0.0, "webcam:0"))
    assert analysis.observed and analysis.faces == 1 and analysis.discovered
    assert set(analysis.milliseconds) == {"discover", "follow", "classify"}
