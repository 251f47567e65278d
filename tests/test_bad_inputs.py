"""Inputs that must never damage a user's data or pass for good ones: a video cut short, an unreadable or truncated
file in a folder of screenshots, a picture far larger than a screen. Real files made here, real ``fer-agent``
processes where the outcome is an exit code, a line on stderr or the session database."""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from fer_agent.capture.sources import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageSource,
    VideoSource,
    load_image,
    open_source,
)
from fer_agent.errors import CaptureError, UnreadableImageError
from fer_agent.types import Frame

ROOT = Path(__file__).resolve().parents[1]
GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
# Three real call screenshots, and the one pasted into the huge picture (its 7 faces are found at its own size).
SCREENSHOTS = ("gommy15_screenshot_29e2.jpg", "josehermosillaa_grupo.jpg", "qiyunlab_Zoom_2021.jpg")


def gallery(name: str) -> Path:
    path = GALLERIES / name
    if not path.is_file():
        pytest.skip(f"the real call screenshots are not at {GALLERIES} (a checkout with ../shared beside it has them)")
    return path


def agent(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_agent", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchall()


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed command (exit code 1, no traceback)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def write_avi(path: Path, seconds: int, fps: int = 1, size=(640, 360)) -> None:
    """An MJPG AVI of a real call screenshot, moving a little every frame."""
    shot = cv2.resize(cv2.imread(str(gallery("josehermosillaa_grupo.jpg"))), size, interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for index in range(seconds * fps):
        writer.write(np.roll(shot, 4 * index, axis=1))
    writer.release()


def cut_after_frames(path: Path, keep: int) -> None:
    """Cut an AVI right after its ``keep``-th frame, as a copy or a recording stopped there leaves it: its header
    still declares every frame (the index at the end is gone)."""
    data = path.read_bytes()
    offset, frames = data.index(b"movi") + 4, 0
    while frames < keep:
        chunk, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        frames += chunk.endswith(b"dc")
        offset += 8 + size + (size & 1)
    path.write_bytes(data[:offset])


def truncated_copy(source: Path, target: Path, share: float = 0.6) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * share)])
    return target


# 6. A video that ends early


@pytest.mark.e2e
def test_video_cut_short_ends_the_session_failed_with_its_frames_kept(detector_env: dict, tmp_path: Path) -> None:
    video = tmp_path / "short.avi"
    write_avi(video, seconds=14)
    cut_after_frames(video, keep=5)
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 14  # it still declares 14 s
    capture.release()
    database = tmp_path / "x.db"
    result = agent("start", "--source", str(video), "--db", str(database), "--quiet", env=detector_env)
    line = error_line(result)
    assert "short.avi: the video stopped at 0:04 of its 0:14: the file is damaged or cut short" in line, line
    assert "the 5 frames before it are kept" in line
    [(status, message)] = rows(database, "SELECT status, message FROM sessions")
    assert status == "failed" and "stopped at 0:04 of its 0:14" in message
    assert rows(database, "SELECT COUNT(*), MAX(time) FROM frames") == [(5, 4.0)]
    assert rows(database, "SELECT COUNT(*) FROM observations WHERE face = 1")[0][0] > 0
    [(kind, detail)] = rows(database, "SELECT kind, detail FROM events")
    assert kind == "capture_error" and "stopped at 0:04 of its 0:14" in detail


@pytest.mark.e2e
def test_analyze_of_a_video_cut_short_prints_its_frames_then_one_error_line(detector_env: dict,
                                                                            tmp_path: Path) -> None:
    video = tmp_path / "lecture.avi"
    write_avi(video, seconds=14)
    cut_after_frames(video, keep=5)
    result = agent("analyze", str(video), "--json", env=detector_env)
    assert "lecture.avi: the video stopped at 0:04 of its 0:14" in error_line(result)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"].rsplit("@", 1)[1] for line in lines] == ["0.00s", "1.00s", "2.00s", "3.00s", "4.00s"]
    assert all(line["faces"] for line in lines)
    table = agent("analyze", str(video), env={**detector_env, "COLUMNS": "400"})
    assert "lecture.avi: the video stopped at 0:04" in error_line(table)
    # The table of what it got comes first.
    assert [f"lecture.avi@{second}.00s" in table.stdout for second in range(6)] == [True] * 5 + [False]


def test_a_frame_count_off_by_up_to_a_second_is_not_a_damaged_video(tmp_path: Path) -> None:
    # Some containers only estimate their frame count: up to max(1 s, 2% of the length) missing is normal.
    for keep, damaged in ((14, False), (13, False), (12, True)):
        video = tmp_path / f"kept{keep}.avi"
        write_avi(video, seconds=14, size=(160, 90))
        cut_after_frames(video, keep)
        source = open_source(str(video), fps=1)
        assert isinstance(source, VideoSource) and source.duration == 14
        frames = []
        try:
            if damaged:
                with pytest.raises(CaptureError, match=r"stopped at 0:11 of its 0:14: the file is damaged or cut"):
                    frames.extend(source.frames())
            else:
                frames.extend(source.frames())
        finally:
            source.close()
        assert len(frames) == keep


# 7. One bad file stops a whole folder


@pytest.fixture
def folder_with_a_text_file(tmp_path: Path) -> Path:
    """Three real call screenshots, and a text file named b.jpg sorted between them."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for target, name in zip(("a.jpg", "c.jpg", "d.jpg"), SCREENSHOTS):
        shutil.copy(gallery(name), folder / target)
    (folder / "b.jpg").write_text("meeting notes, not a picture\n")
    return folder


@pytest.mark.e2e
def test_an_unreadable_file_in_a_folder_is_skipped_and_recorded(folder_with_a_text_file: Path, detector_env: dict,
                                                                 tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    result = agent("start", "--source", str(folder_with_a_text_file), "--db", str(database), "--plain",
                   env=detector_env)
    assert result.returncode == 0, result.stderr
    assert "session 1 finished: 3 frames" in result.stdout
    # Said when it happens, like the other events, and listed at the end.
    assert "1 s: unreadable file skipped:" in result.stdout and "b.jpg" in result.stdout
    assert "skipped 1 unreadable file: b.jpg (not an image" in result.stderr, result.stderr
    assert rows(database, "SELECT status FROM sessions") == [("finished",)]
    assert rows(database, "SELECT COUNT(*) FROM frames") == [(3,)]
    assert rows(database, "SELECT time FROM frames ORDER BY time") == [(0.0,), (2.0,), (3.0,)]
    # (Three different screenshots: the view's changes between them are events too.)
    [(time, detail)] = rows(database, "SELECT time, detail FROM events WHERE kind = 'unreadable_file'")
    assert time == 1.0
    assert detail.startswith(str(folder_with_a_text_file / "b.jpg") + ": not an image")


@pytest.mark.e2e
def test_analyze_skips_an_unreadable_file_in_a_folder(folder_with_a_text_file: Path, detector_env: dict) -> None:
    result = agent("analyze", str(folder_with_a_text_file), "--json", env=detector_env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(line["source"]).name for line in lines] == ["a.jpg", "c.jpg", "d.jpg"]
    assert all(line["faces"] for line in lines)
    stderr = result.stderr.splitlines()
    assert f"warning: skipped {folder_with_a_text_file / 'b.jpg'}: not an image" in stderr[0], stderr
    assert stderr[-1].startswith("skipped 1 unreadable file: b.jpg (not an image"), stderr
    assert "Traceback" not in result.stderr and not any(line.startswith("error:") for line in stderr)


@pytest.mark.e2e
def test_a_folder_where_no_file_can_be_read_is_an_error(detector_env: dict, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "b.jpg").write_text("not a picture")
    result = agent("analyze", str(tmp_path), "--json", env=detector_env)
    assert "none of its 2 images can be read" in error_line(result)
    assert result.stdout == "" and "skipped 2 unreadable files: a.png (" in result.stderr


# 8. A truncated JPEG analysed as if whole


@pytest.mark.e2e
def test_a_truncated_screenshot_is_skipped_in_a_folder_and_an_error_alone(detector_env: dict, tmp_path: Path) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(gallery(SCREENSHOTS[0]), folder / "a.jpg")
    cut = truncated_copy(gallery(SCREENSHOTS[1]), folder / "b.jpg")
    cut_png = truncated_copy(gallery("slavabzb_13.png"), folder / "c.png")
    result = agent("analyze", str(folder), "--json", env=detector_env)
    assert result.returncode == 0, result.stderr
    assert [Path(json.loads(line)["source"]).name for line in result.stdout.splitlines()] == ["a.jpg"]
    assert f"warning: skipped {cut}: the file is truncated" in result.stderr
    assert f"warning: skipped {cut_png}: the file is truncated" in result.stderr
    assert "skipped 2 unreadable files: b.jpg (the file is truncated" in result.stderr
    alone = agent("analyze", str(cut), env=detector_env)
    assert f"{cut}: cannot read this image (the file is truncated" in error_line(alone)
    assert alone.stdout == ""


def test_still_image_formats_read_as_opencv_reads_them(tmp_path: Path) -> None:
    shot = Image.open(gallery(SCREENSHOTS[0])).convert("RGB")
    pixels = np.asarray(shot)
    folder = tmp_path / "shots"
    folder.mkdir()
    shot.save(folder / "a.TIF")
    shot.save(folder / "b.webp", lossless=True)
    shot.convert("L").save(folder / "c.pgm")
    shot.save(folder / "d.JPG", quality=95)
    exif = shot.getexif()
    exif[0x0112] = 6  # orientation: the camera was turned, shown rotated 90 degrees clockwise
    shot.save(folder / "e.jpeg", quality=95, exif=exif)
    deep = np.linspace(0, 65535, 60 * 256).reshape(60, 256).astype(np.uint16)
    cv2.imwrite(str(folder / "f.png"), deep)  # 16-bit grey
    shot.quantize(64).save(folder / "g.gif")
    (folder / "notes.txt").write_text("not listed")
    assert {".tif", ".tiff", ".pgm", ".gif", ".bmp", ".webp", ".png", ".jpg"} <= set(IMAGE_SUFFIXES)
    assert not {".mpg", ".mpeg", ".mp4", ".avi"} & set(IMAGE_SUFFIXES)
    source = open_source(str(folder))
    assert isinstance(source, ImageSource)
    frames = {Path(frame.name).name: frame for frame in source.frames()}
    assert list(frames) == ["a.TIF", "b.webp", "c.pgm", "d.JPG", "e.jpeg", "f.png", "g.gif"]
    assert source.take_skipped() == []
    assert np.array_equal(frames["a.TIF"].image, pixels) and np.array_equal(frames["b.webp"].image, pixels)
    for name in ("d.JPG", "e.jpeg"):
        expected = cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(frames[name].image, expected), name
    assert frames["e.jpeg"].image.shape == (pixels.shape[1], pixels.shape[0], 3)
    # 16-bit grey is scaled to 8 bit as OpenCV does (to within rounding), not clipped to white.
    opencv = cv2.imread(str(folder / "f.png")).astype(int)
    assert np.abs(frames["f.png"].image.astype(int) - opencv).max() <= 1
    assert frames["f.png"].image.max() == 255 and len(np.unique(frames["f.png"].image)) == 256
    assert abs(float(frames["g.gif"].image.mean()) - float(pixels.mean())) < 5
    assert all(frame.scale == 1.0 and frame.image.flags.writeable for frame in frames.values())


# 11. A 20000x20000 picture


@pytest.mark.e2e
def test_a_20000x20000_jpeg_is_analysed_scaled_down_with_boxes_in_its_pixels(detector_env: dict,
                                                                             tmp_path: Path) -> None:
    shot = Image.open(gallery(SCREENSHOTS[0])).convert("RGB")
    folder = tmp_path / "shots"
    folder.mkdir()
    shot.save(folder / "a.png")
    left, top, zoom = 9000, 11000, 4
    canvas = Image.new("RGB", (20000, 20000), (40, 44, 52))
    canvas.paste(shot.resize((shot.width * zoom, shot.height * zoom), Image.BICUBIC), (left, top))
    canvas.save(folder / "b.jpg", quality=85)
    del canvas
    result = agent("analyze", str(folder), "--json", env=detector_env, timeout=120)
    assert result.returncode == 0, result.stderr
    small, huge = (json.loads(line)["faces"] for line in result.stdout.splitlines())
    # The screenshot fills a quarter of the huge picture's width: its smallest faces (under 60 px in the screenshot)
    # may be missed there, as in any picture where they are that small against the whole.
    assert len(small) >= 5 and len(huge) >= sum(face["box"][2] >= 60 for face in small) >= 4
    # The huge picture's faces are where the screenshot was pasted, in its own pixels: each is one of the
    # screenshot's faces, moved and zoomed as it was pasted.
    for face in huge:
        x, y, w, h = face["box"]
        assert left <= x and x + w <= left + shot.width * zoom and top <= y and y + h <= top + shot.height * zoom
        centre = np.array([x + w / 2, y + h / 2])
        distances = [np.hypot(*(centre - [left + zoom * (sx + sw / 2), top + zoom * (sy + sh / 2)])) / (zoom * sw)
                     for sx, sy, sw, sh in (other["box"] for other in small)]
        match = int(np.argmin(distances))
        assert distances[match] < 0.25 and 0.7 < w / (zoom * small[match]["box"][2]) < 1.4, (face, small[match])
    check = agent("check", "--source", str(folder / "b.jpg"), env=detector_env, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "20000x20000 pixels (scaled down to 5000x5000 for analysis)" in check.stdout, check.stdout
    assert "more pixels than 8K" in check.stdout
    assert f"{huge[0]['box'][0]}, {huge[0]['box'][1]}" in check.stdout  # P1's position, in the picture's pixels


def write_png_bomb(path: Path, width: int, height: int) -> None:
    """A valid grey PNG of width x height black pixels: about a megabyte on disk, 400 M pixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\x00" * (width + 1)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.e2e
def test_an_image_too_large_to_decode_is_refused(detector_env: dict, tmp_path: Path) -> None:
    bomb = tmp_path / "shots" / "a.png"
    bomb.parent.mkdir()
    write_png_bomb(bomb, 20000, 20000)
    shutil.copy(gallery(SCREENSHOTS[0]), tmp_path / "shots" / "b.jpg")
    with pytest.raises(UnreadableImageError, match=r"20000x20000 pixels, too large to read") as refused:
        load_image(bomb)
    assert "20000x20000 pixels" in refused.value.reason
    source = open_source(str(bomb.parent))
    assert [Path(frame.name).name for frame in source.frames()] == ["b.jpg"]
    [skipped] = source.take_skipped()
    assert skipped.name == str(bomb) and "too large" in skipped.reason
    alone = agent("analyze", str(bomb), env=detector_env)
    assert "a.png: cannot read this image (20000x20000 pixels, too large to read" in error_line(alone)


@pytest.mark.e2e
def test_video_frames_above_8k_are_scaled_down(tmp_path: Path) -> None:
    video = tmp_path / "wide.avi"
    size = (9600, 5400)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 1, size)
    for level in (60, 120):
        writer.write(np.full((size[1], size[0], 3), level, np.uint8))
    writer.release()
    source = open_source(str(video))
    frames = list(source.frames())
    source.close()
    assert len(frames) == 2
    for frame in frames:
        height, width = frame.image.shape[:2]
        assert width * height <= MAX_PIXELS and abs(width / height - 16 / 9) < 0.01
        assert frame.scale == pytest.approx(9600 / width) and frame.original_box([100, 50, 10, 10])[0] == round(
            100 * 9600 / width)


def test_frame_scale_is_validated() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    assert Frame(image, 0.0, "x").scale == 1.0
    for scale in (0.5, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            Frame(image, 0.0, "x", scale=scale)
