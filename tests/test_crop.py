"""Face crops: eyes levelled, framed like FER-2013, and as good for the classifier as the FER-2013 faces themselves."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.training.data import load_dataset
from fer_agent.types import KEYPOINTS, Face
from fer_agent.vision.classifier import EmotionClassifier
from fer_agent.vision.crop import crop_face, eye_angle
from fer_agent.vision.detector import FaceDetector
from tests.conftest import SHIPPED_MODEL


def tilted_face(angle_degrees: float) -> tuple[np.ndarray, Face]:
    """A black image with two bright 'eyes' 80 px apart, 10 px above the centre (200, 210) of a face tilted by the
    given angle; the face's box is axis-aligned around that centre, as the detector's boxes are."""
    image = np.zeros((400, 400), dtype=np.uint8)
    angle = math.radians(angle_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    eyes = []
    for side in (-1, 1):
        x, y = 200 + side * 40 * cos + 10 * sin, 210 + side * 40 * sin - 10 * cos
        cv2.circle(image, (round(x), round(y)), 6, 255, -1)
        eyes.append((x, y))
    keypoints = np.zeros((len(KEYPOINTS), 2), dtype=np.float32)
    keypoints[KEYPOINTS.index("right_eye")] = eyes[0]
    keypoints[KEYPOINTS.index("left_eye")] = eyes[1]
    return image, Face((120, 130, 160, 160), 0.9, keypoints)


def blob_centres(crop: np.ndarray) -> np.ndarray:
    count, _labels, _stats, centres = cv2.connectedComponentsWithStats((crop > 100).astype(np.uint8))
    assert count == 3, f"expected two eyes in the crop, found {count - 1} blobs"
    return centres[1:][np.argsort(centres[1:, 0])]


def test_eyes_are_levelled() -> None:
    for angle in (-25.0, -8.0, 0.0, 12.0, 30.0):
        image, face = tilted_face(angle)
        assert abs(math.degrees(eye_angle(face)) - angle) < 0.01
        crop = crop_face(image, face, size=96)
        assert crop.shape == (96, 96) and crop.dtype == np.uint8
        left, right = blob_centres(crop)
        assert abs(left[1] - right[1]) <= 1.0, (angle, left, right)
        # Eyes stay where the face's centre line is, whatever the tilt.
        assert abs((left[0] + right[0]) / 2 - 48) <= 1.5
    unlevelled = crop_face(*tilted_face(30.0), size=96, level_eyes=False)
    left, right = blob_centres(unlevelled)
    assert right[1] - left[1] > 15


def test_crop_of_rgb_image_and_size() -> None:
    image, face = tilted_face(0.0)
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(crop_face(rgb, face), crop_face(image, face))
    assert crop_face(image, face, size=64).shape == (64, 64)


@pytest.mark.e2e
def test_runtime_crops_classify_like_fer_faces(detector_model_path: Path, shared_fer: Path) -> None:
    """Upscaled PrivateTest faces placed on a larger canvas, detected and cropped, keep the model's accuracy."""
    private = load_dataset(shared_fer).split("PrivateTest").subset(np.arange(300))
    rng = np.random.default_rng(0)
    crops, kept = [], []
    with FaceDetector(detector_model_path) as detector:
        for index, face in enumerate(private.pixels):
            scale = rng.uniform(2.5, 5.0)
            big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            canvas = np.full((400, 400), 90, dtype=np.uint8)
            top, left = rng.integers(0, 400 - big.shape[0]), rng.integers(0, 400 - big.shape[1])
            canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
            detected = detector.detect(canvas)
            if len(detected) == 1:
                crops.append(crop_face(canvas, detected[0]))
                kept.append(index)
    assert len(kept) >= 0.95 * len(private)
    classifier = EmotionClassifier(SHIPPED_MODEL)
    truth = private.majority_labels()[kept]
    counted = truth >= 0
    on_originals = classifier.predict(private.pixels[kept]).argmax(axis=1)
    on_crops = classifier.predict(np.stack(crops)).argmax(axis=1)
    original_accuracy = (on_originals[counted] == truth[counted]).mean()
    crop_accuracy = (on_crops[counted] == truth[counted]).mean()
    assert crop_accuracy >= original_accuracy - 0.05, (original_accuracy, crop_accuracy)
    assert (on_crops == on_originals).mean() >= 0.8
