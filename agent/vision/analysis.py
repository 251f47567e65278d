"""One frame through the stages: face finding -> FER-framed crops -> one classifier batch.

``Analyzer`` loads every model once (``Analyzer(...)``, as insightface's ``prepare()``). ``analyze(frame)`` per
frame of a session follows the faces over time (``fer_agent.vision.watch``) and returns a :class:`FrameAnalysis`: one
:class:`Observation` per participant's place, with or without a face, and whether the frame was observed at all.
``find(image)`` analyses one picture on its own (a screenshot, an image of a dataset).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from fer_agent.labels import EMOTIONS
from fer_agent.naming import same_name
from fer_agent.resource import Resource
from fer_agent.types import Face, Frame, FrameAnalysis, Observation
from fer_agent.vision.classifier import EmotionClassifier
from fer_agent.vision.crop import crop_face
from fer_agent.vision.detector import FaceDetector
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model, resolve_text_models
from fer_agent.vision.discovery import FaceDiscovery
from fer_agent.vision.finder import FaceFinder, look_of, place_tile
from fer_agent.vision.names import NameReader, label_look
from fer_agent.vision.ocr import TextLine, TextReader
from fer_agent.vision.watch import Place, Watcher

# How far the nose tip stands in front of the eyes, as a fraction of the distance between the eyes (adult faces:
# about 35-40 mm in front of the eye plane, 60-65 mm between the pupils). A head turned by yaw θ moves the nose tip
# sideways by NOSE_DEPTH * sin θ while the eyes close up to cos θ of their distance.
NOSE_DEPTH = 0.6
# A place whose tile showed no name is read again after this long (its label may appear, or scroll into view).
NAME_RETRY_SECONDS = 60.0
# A name label whose look changed by this many grey levels (mean) is read again.
LABEL_CHANGE = 12.0


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


class Analyzer(Resource):
    """Every model loaded once; ``analyze(frame)`` per frame of a session, ``find(image)`` for one picture.
    ``live=True`` for a live screen or camera: periodic discoveries run beside the frames
    (``fer_agent.vision.watch``)."""

    def __init__(self, detector_model: Path, discovery_model: Path, emotion_model: Path, threads: int = 1,
                 live: bool = False, names: NameReader | None = None) -> None:
        self.classifier = EmotionClassifier(emotion_model, threads)
        self.detector = FaceDetector(detector_model)
        self.discovery = FaceDiscovery(discovery_model, threads)
        self.finder = FaceFinder(self.detector, self.discovery)
        self.live = live
        self.watcher = Watcher(self.finder, background=live)
        self.names = names
        self._names_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="names") if names and live else None
        self._names_job: Future | None = None

    @classmethod
    def from_options(cls, detector_model: str | Path | None, discovery_model: str | Path | None,
                     emotion_model: str | Path, threads: int = 1, live: bool = False, names: bool = False,
                     text_models: tuple[str | Path | None, str | Path | None] = (None, None)) -> Analyzer:
        """The analyzer the command-line options describe: the face and text models given (None: the cached or
        fetched ones, ``fer_agent.vision.detector_model``), the names read only with ``names``."""
        reader = NameReader(TextReader(*resolve_text_models(*text_models), threads)) if names else None
        return cls(resolve_detector_model(detector_model), resolve_discovery_model(discovery_model),
                   Path(emotion_model), threads, live, reader)

    def start_over(self) -> None:
        """Forget every place followed so far (another recording, or another chunk of one); the models stay
        loaded."""
        self.watcher.close()
        self.watcher = Watcher(self.finder, background=self.live)
        self._names_job = None

    def analyze(self, frame: Frame) -> FrameAnalysis:
        image = frame.image
        watch = self.watcher.hide(frame.hidden) if frame.hidden else self.watcher.update(image, frame.time)
        started = time.perf_counter()
        places = watch.places if watch.observed else []
        fresh = [(place, place.face) for place in places
                 if place.face is not None and (place.fresh or place.probabilities is None)]
        for (place, _face), probabilities in zip(fresh, self._classify(image, [face for _place, face in fresh])):
            place.probabilities = probabilities
        classified = time.perf_counter()
        self._read_names(image, places, frame.time)
        observations = []
        for index, place in enumerate(places):
            tile = place_tile(index, place.box, image.shape)
            if place.face is None:
                observations.append(Observation(tile, place.look, place=place.key, name=place.name))
            else:
                observations.append(Observation(tile, place.look, place.face, place.probabilities,
                                                head_yaw(place.face), place.key, place.name))
        milliseconds = {**watch.milliseconds, "classify": (classified - started) * 1000}
        if self.names is not None:
            milliseconds["names"] = (time.perf_counter() - classified) * 1000
        return FrameAnalysis(frame, observations, watch.observed, watch.event, watch.discovered, milliseconds)

    def _read_names(self, image: np.ndarray, places: list[Place], now: float) -> None:
        """Names for the places (``--names``): a new place's at once; a place without a label again after
        :data:`NAME_RETRY_SECONDS`; and a named place's again when its label's pixels changed (a reordered gallery
        keeps faces where faces were, so a face that looks alike may now be someone else's: a place whose name
        changed is renewed, and matched to whoever it is). Names are read only when labels change, not every
        frame. On a live source the reading runs beside the session, on a thread of its own (the first reading of a
        large gallery takes seconds): its names join the places on the first frame after it ends."""
        if self.names is None:
            return
        if self._names_job is not None:
            if not self._names_job.done():
                return
            picture, keys, found = self._names_job.result()
            self._names_job = None
            by_key = {place.key: place for place in places}
            for index, label in found.items():
                if keys[index] in by_key:
                    self._name(by_key[keys[index]], label, picture)
        unnamed = [index for index, place in enumerate(places) if place.name is None]
        changed = [index for index, place in enumerate(places) if place.name_box is not None
                   and place.name_look is not None
                   and float(np.abs(label_look(image, place.name_box) - place.name_look).mean()) > LABEL_CHANGE]
        due = any(place.name_tried is None or now - place.name_tried >= NAME_RETRY_SECONDS
                  for place in places if place.name is None)
        if not changed and not due:
            return
        # The whole picture is read in any case: every place without a name takes part.
        wanting = sorted(set(changed) | set(unnamed))
        boxes, keys = [place.box for place in places], [place.key for place in places]
        for index in wanting:
            places[index].name_tried = now
        if self._names_pool is not None:
            reader, picture = self.names, image.copy()
            self._names_job = self._names_pool.submit(lambda: (picture, keys, reader.read(picture, boxes, wanting)))
            return
        for index, label in self.names.read(image, boxes, wanting).items():
            self._name(places[index], label, image)

    def _name(self, place: Place, label: TextLine | None, picture: np.ndarray) -> None:
        """The label read for ``place`` on ``picture``: its name, and what the label looks like. A place whose name
        changed, or whose label changed into one that cannot be read, may show someone else: it is renewed, without
        a name, to be matched to whoever it is."""
        if label is not None:
            if place.name and not same_name(label.text, place.name):
                self.watcher.renew(place)
            place.name, place.name_box = label.text, label.box
            place.name_look = label_look(picture, label.box)
        elif place.name is not None:
            self.watcher.renew(place)
            place.name = place.name_box = place.name_look = None

    def find(self, image: np.ndarray) -> list[Observation]:
        """Every face of one RGB picture, classified (and named, with ``names``), in reading order; nothing is kept
        between calls."""
        faces = self.finder.find(image)
        labels = self.names.read(image, [face.box for face in faces]) if self.names is not None and faces else {}
        observations = []
        for index, (face, probabilities) in enumerate(zip(faces, self._classify(image, faces))):
            look = look_of(image, face.box)
            observations.append(Observation(place_tile(index, face.box, image.shape), look, face, probabilities,
                                            head_yaw(face), name=found.text if (found := labels.get(index)) else None))
        return observations

    def _classify(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        size = self.classifier.input_size
        return self.classifier.predict(np.stack([crop_face(grey, face, size) for face in faces]))

    def close(self) -> None:
        self.watcher.close()
        if self._names_pool is not None:
            self._names_pool.shutdown()
        self.detector.close()
