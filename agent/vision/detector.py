"""FaceDetector: MediaPipe Tasks BlazeFace, loaded once, then ``detect(image)`` per tile or window."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from fer_agent.errors import DetectorModelError
from fer_agent.resource import Resource
from fer_agent.types import KEYPOINTS, Face

log = logging.getLogger(__name__)

class FaceDetector(Resource):
    """BlazeFace short-range through the MediaPipe Tasks API. Use as a context manager, or call ``close()``."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        model_path = Path(model_path)
        if not model_path.is_file():
            raise DetectorModelError(f"{model_path}: face-detector model not found")
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
        )
        try:
            with _native_logs_muted():
                self._detector = vision.FaceDetector.create_from_options(options)
        except (RuntimeError, ValueError) as error:
            raise DetectorModelError(f"{model_path}: cannot load face-detector model: {error}") from error
        self.model_path = model_path

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image [H, W, 3] (a grey [H, W] image is expanded to RGB)."""
        import mediapipe as mp

        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image: expected uint8 [H, W, 3] or [H, W], got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        picture = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        # LiteRT writes a native warning about input alignment for each new input size ("Input tensor memory is
        # not aligned"); it is harmless and would land on the user's terminal.
        with _native_logs_muted():
            result = self._detector.detect(picture)
        faces = []
        for detection in result.detections:
            box = detection.bounding_box
            x0, y0 = max(box.origin_x, 0), max(box.origin_y, 0)
            x1, y1 = min(box.origin_x + box.width, width), min(box.origin_y + box.height, height)
            if x1 <= x0 or y1 <= y0:
                continue
            keypoints = np.array([[k.x * width, k.y * height] for k in detection.keypoints[:len(KEYPOINTS)]],
                                 dtype=np.float32)
            score = float(detection.categories[0].score) if detection.categories else 0.0
            faces.append(Face((x0, y0, x1 - x0, y1 - y0), min(max(score, 0.0), 1.0), keypoints))
        return faces

    def close(self) -> None:
        with _native_logs_muted():
            self._detector.close()


@contextlib.contextmanager
def _native_logs_muted():
    """MediaPipe's native runtime (LiteRT) writes INFO lines straight to the process's stderr when a detector is
    created or closed, over the live dashboard; keep them out unless debug logging is on."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
