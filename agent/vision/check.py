"""``fer-agent check``: what the agent sees on one capture, so that an instructor can confirm before class that it
works and choose ``--source`` / ``--region``; and the annotated picture of it, on request."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_agent.types import Observation
from fer_agent.vision.finder import reading_rows

# Faces smaller than this (pixels wide) are found, but their expressions are read from very few pixels.
SMALL_FACE = 32


@dataclass(frozen=True)
class Sight:
    """One capture's summary: the faces in reading order (P1, P2, ... as a session would number them), the rows they
    sit in, and advice when something looks wrong."""

    faces: list[Observation]
    rows: list[int]
    advice: list[str]

    @property
    def layout(self) -> str:
        if not self.faces:
            return "no faces"
        if len(self.rows) == 1:
            return f"one row of {self.rows[0]}"
        return f"{len(self.rows)} rows of " + ", ".join(str(count) for count in self.rows) + " faces"


def describe(observations: list[Observation]) -> Sight:
    rows = [len(row) for row in reading_rows(observations, lambda o: o.face.box)]
    advice = []
    if not observations:
        advice.append("no face found: is the call's gallery on this screen, and not covered? Choose another monitor "
                      "(--source screen:N) or the call's window (--region X,Y,W,H)")
    small = [o for o in observations if o.face.box[2] < SMALL_FACE]
    if small:
        advice.append(f"{len(small)} faces are under {SMALL_FACE} px wide: a larger call window, or fewer tiles per "
                      "page, gives the expression model more to read")
    return Sight(observations, rows, advice)


def annotate(image: np.ndarray, observations: list[Observation]) -> np.ndarray:
    """A BGR copy of the RGB ``image`` with every face boxed and labelled P1, P2, ... (as in ``describe``)."""
    picture = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    thickness = max(2, round(max(image.shape[:2]) / 800))
    for number, observation in enumerate(observations, start=1):
        x, y, w, h = observation.face.box
        cv2.rectangle(picture, (x, y), (x + w, y + h), (0, 220, 0), thickness)
        label = f"P{number} {observation.emotion}"
        scale = max(0.4, w / 160)
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y - text_h - base - 2, 0)
        cv2.rectangle(picture, (x, top), (x + text_w + 2, top + text_h + base + 2), (0, 220, 0), cv2.FILLED)
        cv2.putText(picture, label, (x + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return picture
