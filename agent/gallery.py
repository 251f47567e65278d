"""Gallery layout: find the participant tiles of a video-call screenshot, and the one face in each tile.

Call apps draw their gallery as rectangles of video on a flat background, with gaps between them. So the background
colour is the most common colour on the screenshot's outer edge, everything that differs from it forms connected
regions, and the tiles are the regions shaped like video tiles (between 1:2 and 5:2, at least ``min_tile`` pixels
high). Name bars and the speaker's highlight lie inside a tile; a camera-off tile is a flat region of its own colour
(a name, no face); side panels (chat, participant lists) are too tall and narrow, toolbars too flat to be tiles.

BlazeFace finds faces only when they fill about 0.3 of its square input (see ``agent.windows``), so a wide tile is not
given to it whole: the square of the tile's height at the tile's centre, where a webcam frames its user, is searched
first, then the squares at the tile's two ends. A tile holds one participant: of several faces found in it, the
largest is kept (a picture on the wall behind someone is smaller than their face), and faces smaller than
``min_face_fraction`` of the tile's height are not participants.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.detector import Face, FaceDetector
from agent.windows import detect_in_windows

# Colours within this many levels (per channel) of the background belong to it: video compression moves a flat
# background by up to about 12 levels near tile edges (measured on mp4v-encoded galleries).
BACKGROUND_TOLERANCE = 16
MIN_ASPECT, MAX_ASPECT = 0.5, 2.5
# A tile this flat (standard deviation of its grey levels on a 64x36 thumbnail) shows no video: camera off.
FLAT_TILE_STD = 6.0
THUMBNAIL = (64, 36)


@dataclass(frozen=True)
class Tile:
    """One participant tile: box (x, y, w, h) in screenshot pixels, and its index in reading order."""

    index: int
    box: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"box: expected (x, y, w, h) with w, h > 0, got {self.box}")

    def crop(self, image: np.ndarray) -> np.ndarray:
        x, y, w, h = self.box
        return image[y:y + h, x:x + w]


def background_colour(image: np.ndarray) -> np.ndarray:
    """The most common colour on the image's outer edge (one pixel wide), as uint8 [3]: the median of the edge
    pixels in the most common coarse colour bin, so that compression noise does not split it into many colours."""
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).reshape(-1, 3)
    bins = (edge // 16).astype(np.int32) @ np.array([256, 16, 1])
    common = np.bincount(bins).argmax()
    return np.median(edge[bins == common], axis=0).astype(np.uint8)


class GalleryLayout:
    """``tiles(image)``: the participant tiles of an RGB screenshot in reading order; [] when it shows no gallery."""

    def __init__(self, min_tile: int = 48) -> None:
        self.min_tile = min_tile

    def tiles(self, image: np.ndarray) -> list[Tile]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image: expected uint8 [H, W, 3], got {image.dtype} {image.shape}")
        background = background_colour(image).astype(np.int16)
        near = cv2.inRange(image, np.clip(background - BACKGROUND_TOLERANCE, 0, 255).astype(np.uint8),
                           np.clip(background + BACKGROUND_TOLERANCE, 0, 255).astype(np.uint8))
        differs = (near == 0).astype(np.uint8)
        # Opening removes specks of compression noise in the gaps, which would otherwise join neighbouring tiles.
        differs = cv2.morphologyEx(differs, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(differs, connectivity=4)
        height, width = image.shape[:2]
        boxes = [
            box for box in (tuple(int(v) for v in stats[label, :4]) for label in range(1, count))
            if box[3] >= self.min_tile and box[2] >= self.min_tile and not (box[2] >= width - 2 and box[3] >= height - 2)
        ]
        candidates = _split_merged(boxes, [box for box in boxes if MIN_ASPECT <= box[2] / box[3] <= MAX_ASPECT])
        boxes = [box for box in candidates if not any(_inside(box, other) for other in candidates if other != box)]
        ordered = sorted(boxes, key=lambda box: (_row_key(box, boxes), box[0]))
        return [Tile(index, box) for index, box in enumerate(ordered)]


def _split_merged(boxes: list[tuple[int, int, int, int]], tile_like: list[tuple[int, int, int, int]],
                  ) -> list[tuple[int, int, int, int]]:
    """The tile-like boxes, with regions that are several tiles run together split into them.

    Compression can blur a bright border (the speaker's highlight) across a narrow gap and join two tiles into one
    region. A region that is k x m tiles of the gallery's usual size with gaps of up to 10% of a tile between them
    (give or take 5% for the blur) is taken to be those tiles.
    """
    if len(tile_like) < 2:
        return tile_like
    tile_w = int(np.median([box[2] for box in tile_like]))
    tile_h = int(np.median([box[3] for box in tile_like]))
    result = []
    for box in boxes:
        x, y, w, h = box
        across, down = max(round(w / tile_w), 1), max(round(h / tile_h), 1)
        fits = all(
            -0.05 * size <= extent - count * size <= (count - 1) * 0.1 * size + 0.05 * size
            for extent, count, size in ((w, across, tile_w), (h, down, tile_h))
        )
        if fits and across * down > 1:
            step_x = (w - tile_w) / (across - 1) if across > 1 else 0
            step_y = (h - tile_h) / (down - 1) if down > 1 else 0
            result.extend((int(x + i * step_x), int(y + j * step_y), min(tile_w, w), min(tile_h, h))
                          for j in range(down) for i in range(across))
        elif box in tile_like:
            result.append(box)
    return result


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh and (w, h) != (ow, oh)


def _row_key(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> int:
    """The top of the highest tile that shares a row with ``box`` (tiles whose vertical centres are within half a
    tile's height), so that tiles sort row by row even when their tops differ by a pixel."""
    centre = box[1] + box[3] / 2
    return min(other[1] for other in boxes if abs(other[1] + other[3] / 2 - centre) < box[3] / 2)


def tile_thumbnail(image: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile shrunk to 64x36 (RGB uint8, area-averaged): enough to tell whether it changed or is flat."""
    return cv2.resize(tile.crop(image), THUMBNAIL, interpolation=cv2.INTER_AREA)


@dataclass
class _TileMemory:
    """What a tile showed when it was last searched: a small grey thumbnail, the face found (or None), and how many
    frames ago the detector last ran on it."""

    thumbnail: np.ndarray
    face: Face | None
    age: int = 0


class TileFaceFinder:
    """``find(image, tiles)``: the participant's face in each tile (None where there is none), in screenshot pixels.

    The detector costs about 4.5 ms of CPU per call, so a tile whose picture has not changed since it was last
    searched (a participant sitting still: mean difference of its grey thumbnail under ``still_levels``) keeps its
    face box from then, for at most ``refresh_frames`` frames; the classifier still sees the current pixels in that
    box. A tile that moved or changed size is searched afresh. ``refresh_frames=0`` searches every tile every frame.
    Frames without tiles (a screenshot with no gallery) are searched whole, with windows.
    """

    def __init__(self, detector: FaceDetector, min_face_fraction: float = 0.2, min_face: int = 40,
                 refresh_frames: int = 5, still_levels: float = 3.0) -> None:
        self.detector = detector
        self.min_face_fraction = min_face_fraction
        self.min_face = min_face
        self.refresh_frames = refresh_frames
        self.still_levels = still_levels
        self.detections = 0
        self.reused = 0
        self._memory: dict[tuple[int, int, int, int], _TileMemory] = {}

    def find(self, image: np.ndarray, tiles: list[Tile], thumbnails: list[np.ndarray] | None = None,
             ) -> list[Face | None]:
        """``thumbnails``: the tiles' :func:`tile_thumbnail` when the caller has them already."""
        if thumbnails is None:
            thumbnails = [tile_thumbnail(image, tile) for tile in tiles]
        previous, self._memory = self._memory, {}
        return [self._find_remembering(image, tile, thumbnail, previous.get(tile.box))
                for tile, thumbnail in zip(tiles, thumbnails)]

    def _find_remembering(self, image: np.ndarray, tile: Tile, colour: np.ndarray, memory: _TileMemory | None,
                          ) -> Face | None:
        thumbnail = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY).astype(np.float32)
        if thumbnail.std() < FLAT_TILE_STD:
            return None
        if (memory is not None and memory.age < self.refresh_frames
                and float(np.abs(thumbnail - memory.thumbnail).mean()) < self.still_levels):
            self._memory[tile.box] = _TileMemory(memory.thumbnail, memory.face, memory.age + 1)
            self.reused += 1
            return memory.face
        face = self.find_in_tile(image, tile)
        self._memory[tile.box] = _TileMemory(thumbnail, face)
        return face

    def find_in_tile(self, image: np.ndarray, tile: Tile) -> Face | None:
        """Search one tile now: the centre square first, then the end squares; the largest face large enough."""
        x, y, w, h = tile.box
        pixels = tile.crop(image)
        minimum = max(self.min_face_fraction * min(w, h), 1)
        for sx, sy, side_w, side_h in _squares(w, h):
            faces = [
                face for face in self._detect(pixels[sy:sy + side_h, sx:sx + side_w])
                if face.box[3] >= minimum
            ]
            if faces:
                best = max(faces, key=lambda face: face.box[2] * face.box[3])
                return best.shifted(x + sx, y + sy)
        return None

    def find_anywhere(self, image: np.ndarray) -> list[Face]:
        """Every face in a frame without a gallery grid."""
        return detect_in_windows(self.detector, image, self.min_face)

    def _detect(self, image: np.ndarray) -> list[Face]:
        self.detections += 1
        return self.detector.detect(image)


def _squares(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The tile's centre square, then its two end squares (x, y, w, h), for a tile wider than high; else the
    centre square of a tall tile, then its upper and lower squares."""
    if width >= height:
        side, span = height, width
    else:
        side, span = width, height
    centre, last = (span - side) // 2, span - side
    starts = [centre] + ([0, last] if last > 0 else [])
    if width >= height:
        return [(start, 0, side, side) for start in starts]
    return [(0, start, side, side) for start in starts]
