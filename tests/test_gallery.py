"""Gallery layout and per-tile face finding on synthetic gallery screenshots built from real FER-2013 faces, with
real MediaPipe."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.detector import FaceDetector
from agent.gallery import GalleryLayout, TileFaceFinder, background_colour
from agent.synthetic import participants_from_faces, render_gallery, tile_boxes

# (participants, camera off, pictures on the wall, chat panel): 2x2 to 7x7 grids, partly filled last rows.
SCREENSHOTS = [
    (4, 1, 1, False), (6, 1, 2, True), (9, 2, 2, False), (12, 2, 3, True), (16, 3, 4, False), (20, 2, 4, True),
    (25, 4, 5, False), (30, 3, 5, True), (36, 5, 6, False), (42, 4, 6, True), (49, 6, 8, False), (49, 5, 8, True),
]


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(min(ax + aw, bx + bw) - max(ax, bx), 0)
    h = max(min(ay + ah, by + bh) - max(ay, by), 0)
    return w * h / (aw * ah + bw * bh - w * h)


def centre_in(face_box, square) -> bool:
    x, y, w, h = face_box
    sx, sy, side, _ = square
    return sx <= x + w / 2 <= sx + side and sy <= y + h / 2 <= sy + side


def test_tile_boxes_fill_a_partial_last_row_centred() -> None:
    boxes = tile_boxes(7, 1920, 1080)
    assert len(boxes) == 7
    last_row = [box for box in boxes if box[1] == boxes[-1][1]]
    assert len(last_row) == 1 and abs(last_row[0][0] + last_row[0][2] / 2 - 960) <= 1


@pytest.mark.parametrize("count, camera_off, pictures, chat", SCREENSHOTS)
def test_layout_finds_every_tile(test_faces, count, camera_off, pictures, chat) -> None:
    faces, _ = test_faces
    gallery = render_gallery(participants_from_faces(faces, count, seed=count, camera_off=camera_off,
                                                     pictures=pictures), chat_panel=chat)
    tiles = GalleryLayout().tiles(gallery.image)
    assert len(tiles) == count
    # Reading order, and each found tile is a drawn tile (the speaker's border may add a pixel).
    for tile, truth in zip(tiles, gallery.tiles):
        assert iou(tile.box, truth) > 0.95, (tile, truth)


def test_faces_found_per_tile_recall_and_false_faces(test_faces, detector_model_path: Path) -> None:
    faces, _ = test_faces
    layout = GalleryLayout()
    total = found = 0
    smallest = 10_000
    with FaceDetector(detector_model_path) as detector:
        finder = TileFaceFinder(detector)
        for count, camera_off, pictures, chat in SCREENSHOTS:
            gallery = render_gallery(
                participants_from_faces(faces[count * 7:], count, seed=count, camera_off=camera_off,
                                        pictures=pictures), chat_panel=chat)
            results = finder.find(gallery.image, layout.tiles(gallery.image))
            truths = [square for square in gallery.faces if square is not None]
            detected = [face for face in results if face is not None]
            hits = sum(any(centre_in(face.box, square) for face in detected) for square in truths)
            false = sum(not any(centre_in(face.box, square) for square in truths) for face in detected)
            assert false <= 1, (count, false)
            smallest = min([smallest] + [square[3] for square in truths])
            total += len(truths)
            found += hits
    assert found / total >= 0.95, (found, total)
    # The set holds faces down to the size the agent must find: a 48-pixel FER-2013 square holds a ~42-pixel face.
    assert smallest <= 50


def test_camera_off_tiles_have_no_face_and_pictures_on_the_wall_are_not_participants(
        test_faces, detector_model_path: Path) -> None:
    faces, _ = test_faces
    people = participants_from_faces(faces, 9, seed=3, camera_off=3, pictures=6)
    gallery = render_gallery(people)
    with FaceDetector(detector_model_path) as detector:
        results = TileFaceFinder(detector).find(gallery.image, GalleryLayout().tiles(gallery.image))
    assert results[-3:] == [None, None, None]
    for face, square in zip(results[:6], gallery.faces[:6]):
        assert face is None or centre_in(face.box, square)


def test_layout_survives_video_compression(test_faces, tmp_path: Path) -> None:
    """An mp4 (MPEG-4) encoded gallery: the flat background gets noisy and the speaker's green border bleeds across
    the gap into the next tile; the tiles are still found."""
    faces, _ = test_faces
    gallery = render_gallery(participants_from_faces(faces, 9, seed=1, camera_off=1), speaker=0)
    path = tmp_path / "gallery.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (1920, 1080))
    for _ in range(3):
        writer.write(gallery.image[:, :, ::-1])
    writer.release()
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    tiles = GalleryLayout().tiles(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert len(tiles) == 9
    for tile, truth in zip(tiles, gallery.tiles):
        assert iou(tile.box, truth) > 0.9, (tile, truth)


def test_a_frame_without_a_gallery_has_no_tiles(test_faces) -> None:
    faces, _ = test_faces
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    frame[200:400, 500:700] = cv2.resize(faces[0], (200, 200))[:, :, None]
    assert GalleryLayout().tiles(frame) == []


def test_background_colour_is_the_edges_common_colour() -> None:
    image = np.full((100, 200, 3), 26, np.uint8)
    image[:, 150:] = 240
    assert background_colour(image).tolist() == [26, 26, 26]


def test_layout_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        GalleryLayout().tiles(np.zeros((10, 10), np.uint8))


def test_still_tiles_keep_their_face_until_refresh_and_changed_tiles_are_searched(
        test_faces, detector_model_path: Path) -> None:
    faces, _ = test_faces
    people = participants_from_faces(faces, 4, seed=6)
    still = render_gallery(people).image
    tiles = GalleryLayout().tiles(still)
    with FaceDetector(detector_model_path) as detector:
        finder = TileFaceFinder(detector, refresh_frames=2)
        first = finder.find(still, tiles)
        calls = finder.detections
        noisy = np.clip(still + np.random.default_rng(0).normal(0, 2, still.shape), 0, 255).astype(np.uint8)
        assert finder.find(noisy, tiles) == first and finder.detections == calls and finder.reused == 4
        # Participant 0 moves (a new face in their tile): only that tile is searched again.
        people[0].face = faces[100]
        moved = render_gallery(people).image
        again = finder.find(moved, tiles)
        assert finder.detections > calls and again[1:] == first[1:] and finder.reused == 7
        # After refresh_frames frames of reuse, every tile is searched again.
        calls = finder.detections
        finder.find(moved, tiles)
        assert finder.detections - calls >= 3
