"""``fer-agent check``: what the agent sees on one capture, so that an instructor can confirm before class that it
works and choose ``--source`` / ``--region``: the summary as printed, and the annotated picture, on request."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from fer_agent.types import Face, Frame, Observation
from fer_agent.vision.finder import reading_rows

# Faces smaller than this (pixels wide) are found, but their expressions are read from very few pixels.
SMALL_FACE = 32


@dataclass(frozen=True)
class Sight:
    """One capture's summary: the faces in reading order (P1, P2, ... as a session would number them) with the
    classifier's view of each, the rows they sit in, and advice when something looks wrong."""

    frame: Frame
    observations: list[Observation]
    faces: list[Face]
    rows: list[int]
    advice: list[str]
    names: bool = False

    @property
    def layout(self) -> str:
        if not self.faces:
            return "no faces"
        if len(self.rows) == 1:
            return f"one row of {self.rows[0]}"
        return f"{len(self.rows)} rows of " + ", ".join(str(count) for count in self.rows) + " faces"

    def __rich__(self) -> Group:
        """What ``fer-agent check`` prints: the picture, the faces found (positions and sizes in the picture's own
        pixels), the participants a session would start with, and the advice."""
        height, width = self.frame.image.shape[:2]
        size = f"{width}x{height} pixels"
        if self.frame.scale > 1:
            size = (f"{round(width * self.frame.scale)}x{round(height * self.frame.scale)} pixels (scaled down to "
                    f"{width}x{height} for analysis)")
        parts: list[RenderableType] = [
            f"[bold]{escape(self.frame.name)}[/]: {size}, {len(self.faces)} faces found ({self.layout})"]
        if self.frame.scale > 1:
            parts.append(f"[yellow]note:[/] the picture has more pixels than 8K (7680x4320): it was scaled down "
                         f"{self.frame.scale:.1f} times for analysis; positions and sizes are in the picture's own "
                         "pixels")
        if self.faces:
            table = Table("participant", "face at (x, y)", "size (px)", "expression", "facing",
                          *(["name"] if self.names else []), box=None)
            for number, (observation, face) in enumerate(zip(self.observations, self.faces), start=1):
                x, y, w, h = self.frame.original_box(face.box)
                table.add_row(f"P{number}", f"{x}, {y}", f"{w}x{h}", observation.emotion,
                              "yes" if observation.facing else "turned away",
                              *([escape(observation.name or "-")] if self.names else []))
            parts += [table, f"A session here starts with these {len(self.faces)} participants (P1-P{len(self.faces)}),"
                             " numbered in reading order; each keeps its number while the gallery changes."]
        parts += [f"[yellow]note:[/] {line}" for line in self.advice]
        return Group(*parts)


def describe(frame: Frame, observations: list[Observation], names: bool = False) -> Sight:
    """The sight of ``frame``, whose ``observations`` (the analyzer's, in reading order) all have a face, and a name
    column when ``names`` were read."""
    faces = [observation.face for observation in observations if observation.face is not None]
    if len(faces) != len(observations):
        raise ValueError(f"describe: expected observations with faces, got {len(observations) - len(faces)} without")
    rows = [len(row) for row in reading_rows(faces, lambda face: face.box)]
    advice = []
    if not faces:
        advice.append("no face found: is the call's gallery on this screen, and not covered? Choose another monitor "
                      "(--source screen:N) or the call's window (--region X,Y,W,H)")
    small = [face for face in faces if face.box[2] < SMALL_FACE]
    if small:
        advice.append(f"{len(small)} faces are under {SMALL_FACE} px wide: a larger call window, or fewer tiles per "
                      "page, gives the expression model more to read")
    return Sight(frame, observations, faces, rows, advice, names)


def annotate(sight: Sight) -> np.ndarray:
    """A BGR copy of the sight's picture (as analysed) with every face boxed and labelled P1, P2, ...."""
    image = sight.frame.image
    picture = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    thickness = max(2, round(max(image.shape[:2]) / 800))
    for number, (observation, face) in enumerate(zip(sight.observations, sight.faces), start=1):
        x, y, w, h = face.box
        cv2.rectangle(picture, (x, y), (x + w, y + h), (0, 220, 0), thickness)
        label = f"P{number} {observation.emotion}"
        scale = max(0.4, w / 160)
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y - text_h - base - 2, 0)
        cv2.rectangle(picture, (x, top), (x + text_w + 2, top + text_h + base + 2), (0, 220, 0), cv2.FILLED)
        cv2.putText(picture, label, (x + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return picture
