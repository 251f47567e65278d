"""Participants' names, read off the call's tiles (``--names``, off by default): the label a call app draws at the
lower edge of each video tile, read by an OCR engine and given to the face whose tile it is in.

The frame's text lines come from the engine with their boxes. A face's tile is not drawn anywhere the agent can rely
on, so each face gets a cell from the layout of the faces themselves: across, from halfway to its neighbour on the
left to halfway to its neighbour on the right in its row (a lone face: :data:`LONE_CELL` face widths each side);
down, from the face's centre to halfway to the next row (the last row: :data:`LAST_ROW_DEPTH` face heights). A name
label is the lowest text line of the cell that starts left of the face's right edge (labels sit at the tile's
bottom-left; of lines side by side, the one nearest the face); text above the face's centre (a virtual background's
caption) is never a name. The text is made a
name by :func:`fer_agent.naming.normalise`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import cv2
import numpy as np

from fer_agent.naming import normalise
from fer_agent.vision.finder import centre, reading_rows
from fer_agent.vision.ocr import TextLine, TextReader

Box = tuple[int, int, int, int]

# A lone face's cell reaches this many face widths to each side; the last row's cells this many face heights below
# the face's centre.
LONE_CELL = 2.5
LAST_ROW_DEPTH = 2.5
# A face need not sit in the middle of its tile: a cell reaches this share of its width further left.
MARGIN = 0.2
# A name label's look: its box scaled to this size (width, height), grey.
LABEL_LOOK = (48, 8)


def cells(faces: Sequence[Box]) -> list[Box]:
    """Each face's cell (x, y, w, h), in the order of ``faces`` (see the module's text)."""
    rows = reading_rows(list(range(len(faces))), lambda index: faces[index])
    xs = [[centre(faces[i])[0] for i in row] for row in rows]
    ys = [statistics.mean(centre(faces[i])[1] for i in row) for row in rows]
    spacings = [b - a for row in xs for a, b in zip(row[:-1], row[1:])]
    across = statistics.median(spacings) if spacings else None
    downs = [b - a for a, b in zip(ys[:-1], ys[1:])]
    result: list[Box] = [(0, 0, 0, 0)] * len(faces)
    for number, row in enumerate(rows):
        for position, index in enumerate(row):
            _x, _y, w, h = faces[index]
            cx, cy = centre(faces[index])
            half = across / 2 if across else LONE_CELL * w
            left = (xs[number][position - 1] + cx) / 2 if position else cx - half
            right = (xs[number][position + 1] + cx) / 2 if position + 1 < len(row) else cx + half
            # The tile's lower edge: halfway to the next row's faces (the last row: as far as the rows above).
            down = downs[number] if number < len(downs) else (downs[-1] if downs else 2 * LAST_ROW_DEPTH * h)
            bottom = ys[number] + down / 2
            result[index] = (int(left - MARGIN * (right - left)), int(cy), max(int((right - left) * (1 + MARGIN)), 1),
                             max(int(bottom - cy), 1))
    return result


def label(face: Box, cell: Box, lines: Sequence[TextLine]) -> TextLine | None:
    """The name label in a face's cell: its lowest text line that starts left of the face's right edge (of lines
    side by side at that height, the one nearest the face across: another tile's label may reach into the cell),
    with the text normalised to a name; None when the cell holds none."""
    cx, cy, _cw, ch = cell
    middle_x = face[0] + face[2] / 2
    candidates = []
    for line in lines:
        lx, ly, lw, lh = line.box
        name = normalise(line.text)
        if name and cy < ly + lh / 2 <= cy + ch and cx <= lx <= face[0] + face[2]:
            candidates.append((ly + lh / 2, lh, abs(lx + lw / 2 - middle_x), TextLine(line.box, name, line.score)))
    if not candidates:
        return None
    lowest = max(candidates, key=lambda candidate: candidate[0])
    beside = [candidate for candidate in candidates if candidate[0] >= lowest[0] - lowest[1] / 2]
    return min(beside, key=lambda candidate: candidate[2])[3]


def assign(faces: Sequence[Box], lines: Sequence[TextLine]) -> list[str | None]:
    """Each face's name from the text lines of the whole picture (see :func:`label`), or None."""
    labels = [label(face, cell, lines) for face, cell in zip(faces, cells(faces))]
    return [found.text if found else None for found in labels]


class NameReader:
    """Reads the names of the faces of a picture: the picture's text lines, each face given the label in its cell."""

    def __init__(self, reader: TextReader) -> None:
        self.reader = reader

    def read(self, image: np.ndarray, faces: Sequence[Box],
             which: Sequence[int] | None = None) -> dict[int, TextLine | None]:
        """The name label of each face of ``which`` (default: all), by its index in ``faces``: its box and the name
        on it; the layout of all the faces gives each one its cell."""
        lines = self.reader.lines(image)
        return {index: label(faces[index], cell, lines) for index, cell in enumerate(cells(faces))
                if which is None or index in which}


def label_look(image: np.ndarray, box: Box) -> np.ndarray:
    """What a name label looks like, to notice when another name is drawn there: its box, grey, at a fixed size."""
    x, y, w, h = box
    crop = image[max(y, 0):y + h, max(x, 0):x + w]
    if crop.size == 0:
        return np.zeros(LABEL_LOOK[::-1], np.float32)
    return cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), LABEL_LOOK, interpolation=cv2.INTER_AREA).astype(
        np.float32)
