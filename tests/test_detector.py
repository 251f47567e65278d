"""The face detector (real MediaPipe, real BlazeFace model fetched from the package index) and its provisioning."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.checksum import sha256_of
from fer_agent.errors import DetectorModelError
from fer_agent.training.data import load_fer2013_csv
from fer_agent.types import KEYPOINTS, Face
from fer_agent.vision import detector_model
from fer_agent.vision.detector import FaceDetector
from fer_agent.vision.detector_model import BLAZEFACE, resolve_detector_model


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(BLAZEFACE.environment_variable, raising=False)
    return tmp_path / "cache" / "fer-agent"


@pytest.mark.e2e
def test_fetch_verifies_and_caches(empty_cache: Path) -> None:
    path = resolve_detector_model()
    assert path == empty_cache / BLAZEFACE.name
    assert sha256_of(path) == BLAZEFACE.sha256
    assert resolve_detector_model(fetch=False) == path


def test_corrupt_cache_is_fetched_again(empty_cache: Path, detector_model_path: Path) -> None:
    empty_cache.mkdir(parents=True)
    cached = empty_cache / BLAZEFACE.name
    cached.write_bytes(detector_model_path.read_bytes()[:1000])
    with pytest.raises(DetectorModelError, match="no face-detector model in"):
        resolve_detector_model(fetch=False)
    assert not cached.exists()
    cached.write_bytes(b"garbage")
    assert sha256_of(resolve_detector_model()) == BLAZEFACE.sha256


def test_explicit_path_and_environment(empty_cache: Path, detector_model_path: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "own.tflite"
    shutil.copy(detector_model_path, own)
    assert resolve_detector_model(own) == own
    monkeypatch.setenv(BLAZEFACE.environment_variable, str(own))
    assert resolve_detector_model() == own
    with pytest.raises(DetectorModelError, match="missing.tflite: face-detector model not found"):
        resolve_detector_model(tmp_path / "missing.tflite")
    assert not empty_cache.exists()


def test_unfetchable_model_says_what_to_do(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detector_model, "BLAZEFACE", dataclasses.replace(BLAZEFACE, wheel="mediapipe==0.0.0"))
    with pytest.raises(DetectorModelError, match="cannot fetch the face-detector model.*--detector-model PATH"):
        resolve_detector_model()


def test_corrupt_model_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a tflite model")
    with pytest.raises(DetectorModelError, match="broken.tflite: cannot load face-detector model"):
        FaceDetector(broken)
    with pytest.raises(DetectorModelError, match="face-detector model not found"):
        FaceDetector(tmp_path / "absent.tflite")


def test_detects_upscaled_fer_faces(detector_model_path: Path, shared_fer: Path) -> None:
    faces = load_fer2013_csv(shared_fer / "fer2013.csv.gz", limit=100).pixels
    found_one = 0
    with FaceDetector(detector_model_path) as detector:
        for face in faces:
            canvas = np.full((320, 400, 3), 60, dtype=np.uint8)
            canvas[50:242, 120:312] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)[:, :, None]
            detected = detector.detect(canvas)
            if len(detected) == 1:
                found_one += 1
                x, y, w, h = detected[0].box
                assert 100 <= x + w / 2 <= 330 and 30 <= y + h / 2 <= 260
                eyes = detected[0].keypoints[:2]
                assert ((eyes[:, 0] >= x) & (eyes[:, 0] <= x + w) & (eyes[:, 1] >= y) & (eyes[:, 1] <= y + h)).all()
                assert detected[0].keypoint("right_eye")[0] < detected[0].keypoint("left_eye")[0]
        assert not detector.detect(np.full((240, 320, 3), 128, dtype=np.uint8))
    assert found_one >= 88


def test_bad_image_and_face_values(detector_model_path: Path) -> None:
    with FaceDetector(detector_model_path) as detector:
        with pytest.raises(ValueError, match=r"expected uint8 \[H, W, 3\] or \[H, W\], got float64"):
            detector.detect(np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match="box: expected"):
        Face((0, 0, 0, 10), 0.9, np.zeros((len(KEYPOINTS), 2), dtype=np.float32))
    with pytest.raises(ValueError, match="keypoints: expected shape"):
        Face((0, 0, 10, 10), 0.9, np.zeros((5, 2), dtype=np.float32))
