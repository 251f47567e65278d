"""Sources of frames: the screen (mss), a video file, an image or a folder of screenshots, a webcam.

``open_source(spec, fps, region)`` turns the ``--source`` text into a source; ``source.frames()`` yields
:class:`Frame` objects. Live sources (screen, webcam) are paced at ``fps`` against the clock: when the consumer takes
longer than a frame's interval, the ticks it missed are skipped (never queued) and counted in the next frame's
``dropped``, so the agent never falls behind. File sources yield as fast as they are consumed, video frames sampled
at ``fps`` of video time.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from agent.errors import CaptureError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class Frame:
    """One RGB uint8 [H, W, 3] frame; ``time`` in seconds from the start of the source (video time for videos);
    ``dropped``: frames skipped just before this one because the agent was busy; ``name``: where it came from;
    ``capture_ms``: how long reading it took (screen grab, decoding)."""

    image: np.ndarray
    time: float
    name: str
    dropped: int = 0
    capture_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image: expected uint8 [H, W, 3], got {self.image.dtype} {self.image.shape}")
        if self.dropped < 0:
            raise ValueError(f"dropped: expected >= 0, got {self.dropped}")


def parse_region(text: str) -> tuple[int, int, int, int]:
    """``X,Y,W,H`` in pixels of the monitor, W and H positive."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise CaptureError(f"--region {text!r}: expected X,Y,W,H in pixels, for example 0,0,1280,720") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise CaptureError(f"--region {text!r}: X and Y must be >= 0, W and H > 0")
    return x, y, w, h


class Paced:
    """Ticks at ``fps`` on the monotonic clock; ``wait()`` sleeps until the next tick and returns how many ticks were
    missed since the last call."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.interval = 1.0 / fps
        self.next_tick: float | None = None

    def wait(self) -> int:
        now = time.monotonic()
        if self.next_tick is None:
            self.next_tick = now + self.interval
            return 0
        missed = 0
        if now > self.next_tick:
            missed = int((now - self.next_tick) / self.interval) + 1
            self.next_tick += missed * self.interval
        time.sleep(max(self.next_tick - time.monotonic(), 0.0))
        self.next_tick += self.interval
        return missed


def _paced_frames(name: str, fps: float, grab: Callable[[], np.ndarray]) -> Iterator[Frame]:
    """Frames of a live source: ``grab()`` at each tick of ``fps``, with the ticks missed before it counted."""
    pace = Paced(fps)
    start = time.monotonic()
    while True:
        missed = pace.wait()
        grab_started = time.perf_counter()
        image = grab()
        yield Frame(image, time.monotonic() - start, name, missed, _since(grab_started))


class ScreenSource:
    """The screen through mss: monitor ``monitor`` (1 = the primary), or a ``region`` (x, y, w, h) of it."""

    live = True

    def __init__(self, monitor: int = 1, region: tuple[int, int, int, int] | None = None, fps: float = 1.0) -> None:
        import mss
        from mss.exception import ScreenShotError

        self._error = ScreenShotError
        try:
            self._mss = mss.MSS()
        except ScreenShotError as error:
            raise CaptureError(
                f"no display to capture ({error}); on a machine without a screen, analyse a recording or screenshots "
                "with --source VIDEO|IMAGE|FOLDER, or a camera with --source webcam:N"
            ) from None
        monitors = self._mss.monitors
        if not 1 <= monitor < len(monitors):
            self._mss.close()
            raise CaptureError(f"screen:{monitor}: no such monitor; this display has monitors 1 to {len(monitors) - 1}")
        area = monitors[monitor]
        if region is not None:
            x, y, w, h = region
            if x + w > area["width"] or y + h > area["height"]:
                self._mss.close()
                raise CaptureError(
                    f"--region {x},{y},{w},{h} does not fit monitor {monitor} ({area['width']}x{area['height']})")
            area = {"left": area["left"] + x, "top": area["top"] + y, "width": w, "height": h}
        self.area = {key: area[key] for key in ("left", "top", "width", "height")}
        self.name = f"screen:{monitor}" + (f" region {','.join(str(v) for v in region)}" if region else "")
        self.fps = fps

    def grab(self) -> np.ndarray:
        try:
            shot = self._mss.grab(self.area)
        # mss's X11 backend fails with a bare AssertionError when the display's connection is gone mid-read.
        except (self._error, AssertionError, OSError) as error:
            reason = str(error) or "the connection to the display was lost"
            raise CaptureError(f"{self.name}: screen capture failed ({reason}); was the monitor disconnected?") from None
        return np.ascontiguousarray(np.asarray(shot)[:, :, 2::-1])

    def frames(self) -> Iterator[Frame]:
        return _paced_frames(self.name, self.fps, self.grab)

    def close(self) -> None:
        try:
            self._mss.close()
        except self._error:
            log.debug("screen connection already gone at close")


class WebcamSource:
    """Camera ``index`` through OpenCV, paced at ``fps``."""

    live = True

    def __init__(self, index: int, fps: float = 1.0) -> None:
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise CaptureError(f"webcam:{index}: cannot open the camera (is it connected, and free?)")
        self.name = f"webcam:{index}"
        self.fps = fps

    def grab(self) -> np.ndarray:
        # The driver buffers frames; grab the stale one away so the frame read is current.
        self._capture.grab()
        ok, image = self._capture.read()
        if not ok:
            raise CaptureError(f"{self.name}: the camera stopped delivering frames")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def frames(self) -> Iterator[Frame]:
        return _paced_frames(self.name, self.fps, self.grab)

    def close(self) -> None:
        self._capture.release()


class VideoSource:
    """A video file (anything OpenCV reads), sampled at ``fps`` frames per second of video time."""

    live = False

    def __init__(self, path: Path, fps: float = 1.0) -> None:
        if not path.is_file():
            raise CaptureError(f"{path}: no such video file")
        self._capture = cv2.VideoCapture(str(path))
        ok = self._capture.isOpened() and self._capture.grab()
        if not ok:
            self._capture.release()
            raise CaptureError(f"{path}: cannot read this video (corrupt, or a format OpenCV cannot decode)")
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.path = path
        self.name = str(path)
        self.fps = fps
        self.video_fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.duration = frame_count / self.video_fps if self.video_fps > 0 else None

    def expected_frames(self) -> int | None:
        return None if self.duration is None else math.ceil(self.duration * self.fps)

    def frames(self) -> Iterator[Frame]:
        interval = 1.0 / self.fps
        next_time = 0.0
        index = 0
        read_started = time.perf_counter()
        while self._capture.grab():
            position = index / self.video_fps if self.video_fps > 0 else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            index += 1
            if position + 1e-6 < next_time:
                continue
            ok, image = self._capture.retrieve()
            if not ok:
                raise CaptureError(f"{self.path}: cannot decode the frame at {position:.1f} s (corrupt video?)")
            next_time += interval * (int((position - next_time) / interval) + 1)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            yield Frame(image, position, f"{self.path}@{position:.2f}s", capture_ms=_since(read_started))
            read_started = time.perf_counter()

    def close(self) -> None:
        self._capture.release()


class ImageSource:
    """One image file, or every image in a folder (sorted by name), one frame each, ``time`` = their order / fps."""

    live = False

    def __init__(self, path: Path, fps: float = 1.0) -> None:
        if path.is_dir():
            self.paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not self.paths:
                raise CaptureError(f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
        elif path.is_file():
            self.paths = [path]
        else:
            raise CaptureError(f"{path}: no such file or folder")
        self.name = str(path)
        self.fps = fps

    def expected_frames(self) -> int:
        return len(self.paths)

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            read_started = time.perf_counter()
            image = read_image(path)
            yield Frame(image, index / self.fps, str(path), capture_ms=_since(read_started))

    def close(self) -> None:
        pass


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CaptureError(f"{path}: cannot read this image (corrupt, or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_source(spec: str, fps: float = 1.0, region: str | None = None):
    """The source that ``--source`` names: ``screen``, ``screen:N``, ``webcam:N``, or a path to a video, an image or
    a folder of images."""
    if fps <= 0:
        raise CaptureError(f"--fps {fps}: must be > 0")
    if region is not None and not spec.startswith("screen"):
        raise CaptureError("--region applies to --source screen only")
    if spec == "screen" or spec.startswith("screen:"):
        monitor = _index(spec, default=1)
        return ScreenSource(monitor, parse_region(region) if region else None, fps)
    if spec.startswith("webcam:") or spec == "webcam":
        return WebcamSource(_index(spec, default=0), fps)
    path = Path(spec)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, fps)
    return VideoSource(path, fps)


def _index(spec: str, default: int) -> int:
    if ":" not in spec:
        return default
    text = spec.split(":", 1)[1]
    if not text.isdigit():
        raise CaptureError(f"--source {spec!r}: expected a number after ':', for example {spec.split(':')[0]}:1")
    return int(text)
