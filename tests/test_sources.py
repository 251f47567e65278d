"""Frame sources: video sampling, images and folders, pacing, and their errors."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_agent.capture.sources import ImageSource, Paced, VideoSource, open_source, parse_region
from fer_agent.errors import CaptureError
from fer_agent.types import Frame


def write_video(path: Path, frames: int, fps: float, size=(320, 240)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for index in range(frames):
        image = np.full((size[1], size[0], 3), (index * 8) % 256, np.uint8)
        writer.write(image)
    writer.release()


def test_video_is_sampled_at_the_requested_rate(tmp_path: Path) -> None:
    path = tmp_path / "lecture.mp4"
    write_video(path, frames=30, fps=10)
    source = open_source(str(path), fps=2)
    assert isinstance(source, VideoSource) and source.expected_frames() == 6
    frames = list(source.frames())
    source.close()
    assert [round(frame.time, 2) for frame in frames] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    # The frame at 0.5 s is video frame 5, whose grey level the writer set to 40 (mp4v moves it by a level or two).
    assert abs(int(frames[1].image.mean()) - 40) <= 3
    assert all(frame.image.shape == (240, 320, 3) for frame in frames)


def test_chunks_of_a_video_give_exactly_its_frames(tmp_path: Path) -> None:
    path = tmp_path / "lecture.mp4"
    write_video(path, frames=250, fps=25)
    whole = VideoSource(path, fps=3)
    expected = [(frame.time, frame.image) for frame in whole.frames()]
    assert whole.expected_frames() == len(expected) == 30
    chunks = [VideoSource(path, fps=3, start=start, end=end) for start, end in ((0, 3), (3, 7), (7, None))]
    assert [chunk.expected_frames() for chunk in chunks] == [9, 12, 9]
    pieces = [(frame.time, frame.image) for chunk in chunks for frame in chunk.frames()]
    assert [time for time, _ in pieces] == [time for time, _ in expected]
    assert all(np.array_equal(image, other) for (_, image), (_, other) in zip(pieces, expected))


def test_folder_of_screenshots_in_name_order(tmp_path: Path) -> None:
    for name, level in (("b.png", 20), ("a.jpg", 10), ("c.png", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((50, 60, 3), level, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    assert isinstance(source, ImageSource)
    frames = list(source.frames())
    assert [Path(frame.name).name for frame in frames] == ["a.jpg", "b.png", "c.png"]
    assert [int(frame.image.mean()) for frame in frames] == [10, 20, 30]


@pytest.mark.parametrize("content, match", [(b"", "cannot read this video"), (b"\x00garbage" * 100, "cannot read")])
def test_corrupt_video(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=match):
        open_source(str(path))


def test_corrupt_image(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(CaptureError, match="cannot read this image"):
        list(open_source(str(path)).frames())


def test_missing_paths_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(CaptureError, match="no such file or folder"):
        open_source(str(tmp_path / "missing.png"))
    with pytest.raises(CaptureError, match="no images in this folder"):
        open_source(str(tmp_path))


@pytest.mark.parametrize("text, match", [("1,2,3", "expected X,Y,W,H"), ("0,0,0,10", "W and H > 0"),
                                         ("a,b,c,d", "expected X,Y,W,H")])
def test_bad_regions(text: str, match: str) -> None:
    with pytest.raises(CaptureError, match=match):
        parse_region(text)


def test_region_only_for_the_screen(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="--region applies to --source screen only"):
        open_source(str(tmp_path), region="0,0,10,10")
    with pytest.raises(CaptureError, match="expected a number"):
        open_source("screen:two")


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CaptureError, match="no display to capture.*--source"):
        open_source("screen")


class FakeClock:
    """A clock that moves only when slept on or told to (``work``), recording each sleep asked for."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def test_pacing_skips_missed_ticks_instead_of_queueing() -> None:
    clock = FakeClock()
    pace = Paced(fps=20, now=clock, sleep=clock.sleep)
    assert pace.wait() == 0 and clock.sleeps == []
    clock.work(0.01)
    assert pace.wait() == 0
    assert clock.sleeps == [pytest.approx(0.04)] and clock.now == pytest.approx(100.05)
    clock.work(0.26)  # a frame that took five intervals of 50 ms and a bit: those ticks are gone
    assert pace.wait() == 5
    assert clock.sleeps[-1] == pytest.approx(0.04)  # to the next tick on the grid, not five ticks queued
    assert clock.now == pytest.approx(100.35)
    assert pace.wait() == 0
    assert clock.sleeps[-1] == pytest.approx(0.05) and clock.now == pytest.approx(100.40)


def test_frame_validates_its_image() -> None:
    with pytest.raises(ValueError, match=r"expected uint8 \[H, W, 3\]"):
        Frame(np.zeros((4, 4), np.uint8), 0.0, "x")


@pytest.mark.skipif(not os.path.exists("/usr/bin/Xvfb"), reason="Xvfb is not installed (.ci/run installs it)")
def test_monitor_numbers_and_regions_on_a_real_display(xvfb_display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", xvfb_display)
    with pytest.raises(CaptureError, match="screen:3: no such monitor; this display has monitors 1 to 1"):
        open_source("screen:3")
    with pytest.raises(CaptureError, match="does not fit monitor 1"):
        open_source("screen", region="0,0,5000,10")
    source = open_source("screen", fps=5, region="10,20,300,200")
    frame = next(iter(source.frames()))
    source.close()
    assert frame.image.shape == (200, 300, 3) and frame.name == "screen:1 region 10,20,300,200"


def test_missing_webcam_is_a_clear_error() -> None:
    # No camera is attached to the test machines; index 7 is free everywhere we run.
    with pytest.raises(CaptureError, match=r"webcam:7: cannot open the camera"):
        open_source("webcam:7")
