"""The real call screenshots of ``shared/datasets/galleries``, their scoring rule and the names on their tiles, for the
tests and the benchmarks.

The rule is the datasets' own (its README; its ``score.py`` applies it): for each required face in turn, the nearest
detection not yet used is a hit when its centre lies within 0.5 x w of the face's centre; a remaining detection near
an optional face (0.5 x max(w, 20)) or inside an ignore rectangle is neither right nor wrong; every other one is a
false face. *Duplicates*: detections beyond the first whose centres lie within that radius of one annotated face
(required or optional), that is one face reported twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Score:
    required: int
    found: int
    false: int
    duplicates: int
    detections: int


def load_truth(galleries: Path) -> dict[str, dict]:
    """``gt.json``'s annotations per screenshot name."""
    return {name: entry for name, entry in json.loads((galleries / "gt.json").read_text()).items()
            if not name.startswith("_")}


def score(truth: dict, boxes: Sequence[Sequence[float]]) -> Score:
    """The detections ``boxes`` ([x, y, w, h]) of one screenshot against its annotations ``truth``."""
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in boxes]
    used: set[int] = set()
    found = 0
    for cx, cy, w in truth["faces"]:
        best = min(((i, (x - cx) ** 2 + (y - cy) ** 2) for i, (x, y) in enumerate(centres) if i not in used),
                   key=lambda pair: pair[1], default=None)
        if best and math.sqrt(best[1]) <= 0.5 * w:
            used.add(best[0])
            found += 1
    false = 0
    for i, (x, y) in enumerate(centres):
        if i in used:
            continue
        if any(math.hypot(x - cx, y - cy) <= 0.5 * max(w, 20) for cx, cy, w in truth["optional"]):
            continue
        if any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in truth["ignore"]):
            continue
        false += 1
    regions = [(cx, cy, 0.5 * w) for cx, cy, w in truth["faces"]]
    regions += [(cx, cy, 0.5 * max(w, 20)) for cx, cy, w in truth["optional"]]
    duplicates = sum(max(sum(math.hypot(x - cx, y - cy) <= radius for x, y in centres) - 1, 0)
                     for cx, cy, radius in regions)
    return Score(len(truth["faces"]), found, false, duplicates, len(boxes))


# For each required face of gt.json, the digest of the name on its tile as read by eye, or null (see ``digest``).
NAMES_TRUTH = Path(__file__).with_name("names_truth.json")


def digest(name: str) -> str:
    """The names truth's hash of a name: SHA-256 of its letters and digits, casefolded, without accents (fixed here,
    so that the truth stays valid whatever the product's own rules become). The truth keeps no name itself."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    key = unicodedata.normalize("NFC", "".join(char for char in decomposed if char.isalnum()))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_names() -> dict[str, list[dict]]:
    """Per screenshot, its required faces in gt.json's order: ``{"face": [cx, cy, w], "name": digest or None}``."""
    return json.loads(NAMES_TRUTH.read_text())


def on_canvas(image, size: tuple[int, int] = (1280, 720)):
    """A screenshot (an image array [H, W, 3]) centred on a dark canvas of ``size`` (width, height), scaled down to
    fit: one frame size for a video made of several calls' screenshots."""
    import cv2
    import numpy as np

    scale = min(size[0] / image.shape[1], size[1] / image.shape[0], 1.0)
    image = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((size[1], size[0], 3), 24, np.uint8)
    top, left = (size[1] - image.shape[0]) // 2, (size[0] - image.shape[1]) // 2
    canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
    return canvas
