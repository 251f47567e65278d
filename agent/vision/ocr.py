"""Text lines of a picture, read with PaddleOCR's PP-OCRv4 models (detection, then recognition) on onnxruntime.

The two ONNX files are RapidOCR's (Apache-2.0), provisioned at run time from its wheel like the face detectors
(:mod:`fer_agent.vision.detector_model`). RapidOCR itself is not a dependency: its wheel requires ``opencv-python``,
which, installed beside the ``opencv-contrib-python`` that MediaPipe requires, leaves one ``cv2`` made of two
packages' files. This module does what RapidOCR does with the two models for horizontal text (a name label):

- the picture, BGR, enlarged (at most :data:`MAX_ENLARGE` times) towards :data:`READ_SIDE` pixels on its longer side
  when it is smaller: a call's name labels are 10 to 15 pixels high, and the models read them better larger;
- detection (DB, differentiable binarisation): the picture scaled so its sides are multiples of 32 (and its longer
  side at most :data:`READ_SIDE`), normalised to -1..1; the text probability map is thresholded at
  :data:`TEXT_THRESHOLD`, dilated by 2x2, and each region whose mean probability reaches :data:`BOX_THRESHOLD`
  becomes a box, grown by the DB rule (its area x :data:`UNCLIP_RATIO` / its perimeter on each side);
- recognition (CRNN with CTC): each box cut out, scaled to 48 pixels high, normalised to -1..1, padded to the
  widest of its batch; the most likely character at each step, repeats and blanks removed, against the character
  list the model carries in its metadata; the line's score is its characters' mean probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_agent.errors import ModelError
from fer_agent.runtime import quiet_session_options

READ_SIDE = 2560
MAX_ENLARGE = 2.0
TEXT_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
MIN_SIDE = 3
LINE_HEIGHT = 48
BATCH = 8
# Lines read with a lower mean character probability are left out (RapidOCR's default).
MIN_SCORE = 0.5


@dataclass(frozen=True)
class TextLine:
    """One line of text read: its box (x, y, w, h) in the picture's pixels, its text, its score 0..1."""

    box: tuple[int, int, int, int]
    text: str
    score: float


class TextReader:
    """``lines(image)``: the text lines of an RGB picture."""

    def __init__(self, detector_path: str | Path, recognizer_path: str | Path, threads: int = 1) -> None:
        import onnxruntime

        sessions = []
        for path in (detector_path, recognizer_path):
            if not Path(path).is_file():
                raise ModelError(f"{path}: text model file not found")
            try:
                sessions.append(onnxruntime.InferenceSession(str(path), quiet_session_options(threads),
                                                             providers=["CPUExecutionProvider"]))
            except Exception as error:
                raise ModelError(f"{path}: not a usable ONNX text model ({error})") from None
        self._detector, self._recognizer = sessions
        characters = self._recognizer.get_modelmeta().custom_metadata_map.get("character")
        if not characters:
            raise ModelError(f"{recognizer_path}: the recognition model carries no character list")
        self.characters = ["", *characters.splitlines(), " "]

    def lines(self, image: np.ndarray) -> list[TextLine]:
        """The horizontal text lines of an RGB picture, top to bottom, with their boxes in its pixels."""
        picture = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        factor = min(MAX_ENLARGE, max(1.0, READ_SIDE / max(picture.shape[:2])))
        if factor > 1.0:
            picture = cv2.resize(picture, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        boxes = self.detect(picture)
        texts = self.recognise([picture[y:y + h, x:x + w] for x, y, w, h in boxes])
        return [TextLine((int(x / factor), int(y / factor), max(int(w / factor), 1), max(int(h / factor), 1)), text,
                         score)
                for (x, y, w, h), (text, score) in zip(boxes, texts) if text and score >= MIN_SCORE]

    def detect(self, picture: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes (x, y, w, h) of the text lines of a BGR picture, top to bottom."""
        height, width = picture.shape[:2]
        ratio = min(1.0, READ_SIDE / max(height, width))
        size = (max(32, round(width * ratio / 32) * 32), max(32, round(height * ratio / 32) * 32))
        scaled = cv2.resize(picture, size).astype(np.float32) / 127.5 - 1.0
        probability = self._detector.run(None, {self._detector.get_inputs()[0].name:
                                                scaled.transpose(2, 0, 1)[np.newaxis]})[0][0, 0]
        mask = cv2.dilate((probability > TEXT_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = width / size[0], height / size[1]
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if min(w, h) < MIN_SIDE:
                continue
            region = np.zeros((h, w), np.uint8)
            cv2.fillPoly(region, [contour - np.array([x, y])], 1)
            if cv2.mean(probability[y:y + h, x:x + w], region)[0] < BOX_THRESHOLD:
                continue
            grow = w * h * UNCLIP_RATIO / (2 * (w + h))
            left, top = max(math.floor((x - grow) * sx), 0), max(math.floor((y - grow) * sy), 0)
            right = min(math.ceil((x + w + grow) * sx), width)
            bottom = min(math.ceil((y + h + grow) * sy), height)
            if right - left > MIN_SIDE and bottom - top > MIN_SIDE:
                boxes.append((left, top, right - left, bottom - top))
        return sorted(boxes, key=lambda box: (box[1], box[0]))

    def recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """The text of each BGR line picture and its score (the mean probability of its characters)."""
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
        name = self._recognizer.get_inputs()[0].name
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            widest = max(320, max(math.ceil(LINE_HEIGHT * crops[i].shape[1] / crops[i].shape[0]) for i in batch))
            tensor = np.zeros((len(batch), 3, LINE_HEIGHT, widest), np.float32)
            for row, index in enumerate(batch):
                crop = crops[index]
                width = min(widest, math.ceil(LINE_HEIGHT * crop.shape[1] / crop.shape[0]))
                line = cv2.resize(crop, (width, LINE_HEIGHT)).astype(np.float32) / 127.5 - 1.0
                tensor[row, :, :, :width] = line.transpose(2, 0, 1)
            probabilities = self._recognizer.run(None, {name: tensor})[0]
            for row, index in enumerate(batch):
                steps = probabilities[row].argmax(axis=1)
                kept = np.ones(len(steps), bool)
                kept[1:] = steps[1:] != steps[:-1]
                kept &= steps != 0
                text = "".join(self.characters[step] for step in steps[kept])
                score = float(probabilities[row][kept, steps[kept]].mean()) if kept.any() else 0.0
                results[index] = (text, score)
        return results
