"""Synthetic gallery screenshots built from real face images, for the tests and the benchmarks.

A screenshot looks like a video-call gallery: a dark background, a grid of 16:9 tiles with gaps (the last row partly
filled and centred), each tile a "room" (a smooth colour gradient, sometimes a framed picture of a face on the wall)
with one participant's face, a name bar in the tile's corner, camera-off tiles (a name on a flat tile), the active
speaker's highlight border, and optionally a chat panel at the side. The ground truth (tile boxes, participant face
boxes) comes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

BACKGROUND = (26, 26, 26)
CAMERA_OFF = (48, 48, 52)
HIGHLIGHT = (35, 200, 60)
CHAT_PANEL = (245, 245, 245)
GAP = 6
CHAT_WIDTH = 360


@dataclass
class Participant:
    """Who sits in a tile: a face image (grey 48x48 or larger), a name, a room colour, camera on or off."""

    face: np.ndarray
    name: str
    room: tuple[int, int, int]
    camera_on: bool = True
    face_scale: float = 0.65
    face_offset: float = 0.0
    picture_on_wall: np.ndarray | None = None


@dataclass
class Gallery:
    """A rendered screenshot with its ground truth: one tile box per participant (grid order) and the box of each
    visible participant face (the square the face image was drawn into; None where the camera is off)."""

    image: np.ndarray
    tiles: list[tuple[int, int, int, int]]
    faces: list[tuple[int, int, int, int] | None]
    names: list[str] = field(default_factory=list)


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of the smallest near-square grid that holds ``count`` tiles, as call apps lay them out."""
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    return rows, columns


def tile_boxes(count: int, width: int, height: int, gap: int = GAP, aspect: float = 16 / 9,
               ) -> list[tuple[int, int, int, int]]:
    """Boxes of ``count`` equal tiles of the given aspect, gaps between them, centred in a width x height area; the
    last row is centred when partly filled."""
    rows, columns = grid_shape(count)
    tile_w = min((width - gap * (columns + 1)) / columns, (height - gap * (rows + 1)) / rows * aspect)
    tile_w, tile_h = int(tile_w), int(tile_w / aspect)
    grid_h = rows * tile_h + (rows - 1) * gap
    top = (height - grid_h) // 2
    boxes = []
    for row in range(rows):
        in_row = min(columns, count - row * columns)
        row_w = in_row * tile_w + (in_row - 1) * gap
        left = (width - row_w) // 2
        for column in range(in_row):
            boxes.append((left + column * (tile_w + gap), top + row * (tile_h + gap), tile_w, tile_h))
    return boxes


def render_gallery(participants: list[Participant], width: int = 1920, height: int = 1080, speaker: int | None = 0,
                   chat_panel: bool = False, gap: int = GAP) -> Gallery:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    area_w = width - CHAT_WIDTH if chat_panel else width
    if chat_panel:
        _draw_chat_panel(image, area_w)
    boxes = tile_boxes(len(participants), area_w, height, gap)
    faces: list[tuple[int, int, int, int] | None] = []
    for index, (participant, box) in enumerate(zip(participants, boxes)):
        faces.append(_draw_tile(image, box, participant))
        if index == speaker:
            x, y, w, h = box
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), HIGHLIGHT, max(2, h // 50))
    return Gallery(image, boxes, faces, [p.name for p in participants])


def _draw_tile(image: np.ndarray, box: tuple[int, int, int, int], participant: Participant,
               ) -> tuple[int, int, int, int] | None:
    x, y, w, h = box
    tile = image[y:y + h, x:x + w]
    face_box = None
    if participant.camera_on:
        top = np.array(participant.room, np.float32)
        bottom = top * 0.55
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        tile[:] = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
        if participant.picture_on_wall is not None:
            side = max(h // 5, 8)
            picture = cv2.resize(participant.picture_on_wall, (side, side), interpolation=cv2.INTER_CUBIC)
            px, py = w // 12, h // 10
            tile[py:py + side, px:px + side] = picture[:, :, None]
            cv2.rectangle(tile, (px - 2, py - 2), (px + side + 1, py + side + 1), (90, 60, 30), 2)
        side = int(h * participant.face_scale)
        face = cv2.resize(participant.face, (side, side), interpolation=cv2.INTER_CUBIC)
        fx = int((w - side) / 2 + participant.face_offset * w)
        fx = min(max(fx, 0), w - side)
        fy = max((h - side) // 2 - h // 20, 0)
        tile[fy:fy + side, fx:fx + side] = face[:, :, None]
        face_box = (x + fx, y + fy, side, side)
    else:
        tile[:] = CAMERA_OFF
        _put_text(tile, participant.name, (w // 2, h // 2), h / 300, centred=True)
    bar_h = max(h // 9, 12)
    bar_w = min(w // 2, int(len(participant.name) * bar_h * 0.55) + bar_h)
    bar = tile[h - bar_h - 4:h - 4, 4:4 + bar_w]
    bar[:] = (bar.astype(np.float32) * 0.35).astype(np.uint8)
    _put_text(tile, participant.name, (4 + bar_h // 3, h - 4 - bar_h // 3), bar_h / 40, centred=False)
    return face_box


def _put_text(image: np.ndarray, text: str, at: tuple[int, int], scale: float, centred: bool) -> None:
    scale = max(scale, 0.3)
    thickness = max(1, int(scale * 2))
    (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = at
    if centred:
        x -= text_w // 2
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), thickness, cv2.LINE_AA)


def _draw_chat_panel(image: np.ndarray, left: int) -> None:
    height = image.shape[0]
    image[:, left:] = CHAT_PANEL
    cv2.putText(image, "Chat", (left + 20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (30, 30, 30), 2, cv2.LINE_AA)
    for line, y in enumerate(range(90, height - 120, 46)):
        cv2.putText(image, f"Student {line % 9 + 1}: question about slide {line + 3}?", (left + 16, y),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(image, (left + 12, height - 80), (image.shape[1] - 12, height - 30), (200, 200, 200), 2)


def participants_from_faces(faces: np.ndarray, count: int, seed: int = 0, camera_off: int = 0,
                            pictures: int = 0) -> list[Participant]:
    """``count`` participants with the first ``count`` faces, random rooms, face sizes and offsets; the last
    ``camera_off`` of them have their camera off and ``pictures`` of them have a face picture on the wall."""
    rng = np.random.default_rng(seed)
    people = []
    for index in range(count):
        room = tuple(int(v) for v in rng.integers(70, 230, 3))
        people.append(Participant(
            face=faces[index % len(faces)],
            name=f"Student {index + 1}",
            room=room,
            camera_on=index < count - camera_off,
            face_scale=float(rng.uniform(0.4, 0.8)),
            face_offset=float(rng.uniform(-0.12, 0.12)),
            picture_on_wall=faces[(index + count) % len(faces)] if index < pictures else None,
        ))
    return people
