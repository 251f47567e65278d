"""Sources of frames: the screen (mss), a video file, an image or a folder of screenshots, a webcam.

``open_source(spec, fps, region)`` turns the ``--source`` text into a source; ``source.frames()`` yields
:class:`Frame` objects. Live sources (screen, webcam) are paced at ``fps`` against the clock: when the consumer takes
longer than a frame's interval, the ticks it missed are skipped (never queued) and counted in the next frame's
``dropped``, so the agent never falls behind. File sources yield as fast as they are consumed, video frames sampled
at ``fps`` of video time.

Bad input never passes for good: a video whose decoding stops short of the length it declares ends with a
CaptureError; still images are read with Pillow, so a truncated one is an error (not half a grey picture); a folder
skips the files it cannot read (``take_skipped()``) and goes on. Every frame larger than 8K is scaled down to it, its
``scale`` kept so that boxes can be given in the original's pixels.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_agent.clock import clock
from fer_agent.errors import CaptureError, UnreadableImageError
from fer_agent.types import Frame, SkippedFile

log = logging.getLogger(__name__)
T = TypeVar("T")

# Frames above 8K (7680x4320) pixels are scaled down to it before analysis (a 20000x20000 screenshot otherwise takes
# gigabytes and tens of seconds); an image that would need more than MAX_DECODED_PIXELS decoded (200 MB; after a
# JPEG's reduced-scale decoding) is refused as unreadable.
MAX_PIXELS = 7680 * 4320
MAX_DECODED_PIXELS = 2 * MAX_PIXELS
# The still-image formats taken (any case): those of screenshots and of face datasets (JAFFE's .tiff, .pgm), which
# Pillow decodes itself (not .eps and the like, which it hands to other programs).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".gif", ".pgm",
                  ".ppm", ".pbm", ".pnm")
# The video files a folder is searched for (``fer-agent batch``); a video named on the command line may be anything
# OpenCV reads.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".mts",
                  ".m2ts", ".3gp", ".ogv")
# Rows of a picture converted to an array at a time.
STRIP_ROWS = 512


class Source:
    """What the sources share, as :class:`fer_agent.types.FrameSource` asks: by default a source is read as fast as
    it is consumed, says nothing of how many frames it has, and skips nothing."""

    name: str
    fps: float
    live = False

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        raise NotImplementedError

    def expected_frames(self) -> int | None:
        return None

    def take_skipped(self) -> list[SkippedFile]:
        return []

    def close(self) -> None:
        pass


def bounded(image: np.ndarray) -> tuple[np.ndarray, float]:
    """``image`` scaled down (INTER_AREA) to at most :data:`MAX_PIXELS` pixels when it is larger, and the original's
    pixels per pixel of the result (1.0 when it was not scaled)."""
    height, width = image.shape[:2]
    if height * width <= MAX_PIXELS:
        return image, 1.0
    factor = math.sqrt(height * width / MAX_PIXELS)
    size = (max(1, int(width / factor)), max(1, int(height / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), max(width, height) / max(size)


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
    """Ticks at ``fps`` on the clock ``now`` (the monotonic clock by default); ``wait()`` sleeps until the next tick
    with ``sleep`` and returns how many ticks were missed since the last call. ``sleep`` may return early, when a stop
    is asked for: the tick is then taken at once."""

    def __init__(self, fps: float, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if fps <= 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.interval = 1.0 / fps
        self.next_tick: float | None = None
        self.now = now
        self.sleep = sleep

    def wait(self) -> int:
        now = self.now()
        if self.next_tick is None:
            self.next_tick = now + self.interval
            return 0
        missed = 0
        if now > self.next_tick:
            missed = int((now - self.next_tick) / self.interval) + 1
            self.next_tick += missed * self.interval
        self.sleep(max(self.next_tick - self.now(), 0.0))
        self.next_tick += self.interval
        return missed


def paced_frames(name: str, fps: float, grab: Callable[[], np.ndarray], hidden: Callable[[], str] = lambda: "",
                 sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
    """Frames of a live source: ``grab()`` at each tick of ``fps`` (waited for with ``sleep``), with the ticks missed
    before it counted; when ``hidden()`` gives a reason the picture cannot show the call (a window minimised), a frame
    that holds only that reason instead."""
    pace = Paced(fps, sleep=sleep)
    start = time.monotonic()
    while True:
        missed = pace.wait()
        grab_started = time.perf_counter()
        reason = hidden()
        if reason:
            yield Frame(np.zeros((1, 1, 3), np.uint8), time.monotonic() - start, name, missed, _since(grab_started),
                        hidden=reason)
            continue
        image, scale = bounded(grab())
        yield Frame(image, time.monotonic() - start, name, missed, _since(grab_started), scale)


# An X server refuses a connection now and then while it is busy (seen with Xvfb under load): a connection that
# could not be established is tried again after these pauses (seconds) before the display counts as unreachable.
CONNECT_RETRIES = (0.05, 0.2, 0.5)


def _connect(connect: Callable[[], T], error: type[Exception]) -> T:
    """``connect()``, tried again after each pause of :data:`CONNECT_RETRIES` while it fails with ``error`` saying
    the connection could not be established (a display that does not exist is tried as often: under a second)."""
    for pause in CONNECT_RETRIES:
        try:
            return connect()
        except error as failure:
            if "could not be established" not in str(failure):
                raise
            time.sleep(pause)
    return connect()


class ScreenSource(Source):
    """The screen through mss: monitor ``monitor`` (1 = the primary), or a ``region`` (x, y, w, h) of it."""

    live = True

    def __init__(self, monitor: int = 1, region: tuple[int, int, int, int] | None = None, fps: float = 1.0) -> None:
        import mss
        from mss.exception import ScreenShotError

        self._error = ScreenShotError
        try:
            self._mss = _connect(mss.MSS, ScreenShotError)
        except ScreenShotError as error:
            raise CaptureError(
                f"no display to capture ({error}); on a machine without a screen, analyse a recording or screenshots "
                "with --source VIDEO|IMAGE|FOLDER, or a camera with --source webcam:N"
            ) from None
        monitors = self._mss.monitors
        if not 1 <= monitor < len(monitors):
            self._mss.close()
            raise CaptureError(f"screen:{monitor}: no such monitor; this display has monitors 1 to {len(monitors) - 1}")
        # All the monitors together: what a window can be captured from.
        self.desktop = {key: monitors[0][key] for key in ("left", "top", "width", "height")}
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

    def grab(self, area: dict[str, int] | None = None) -> np.ndarray:
        """The pixels of ``area`` ({left, top, width, height} on the virtual screen; default: the source's)."""
        try:
            shot = self._mss.grab(area or self.area)
        # mss's X11 backend fails with a bare AssertionError when the display's connection is gone mid-read.
        except (self._error, AssertionError, OSError) as error:
            reason = str(error) or "the connection to the display was lost"
            raise CaptureError(f"{self.name}: screen capture failed ({reason}); was the monitor "
                               "disconnected?") from None
        return np.ascontiguousarray(np.asarray(shot)[:, :, 2::-1])

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        return paced_frames(self.name, self.fps, self.grab, sleep=sleep)

    def close(self) -> None:
        try:
            self._mss.close()
        except self._error:
            log.debug("screen connection already gone at close")


class WebcamSource(Source):
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

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        return paced_frames(self.name, self.fps, self.grab, sleep=sleep)

    def close(self) -> None:
        self._capture.release()


class VideoSource(Source):
    """A video file (anything OpenCV reads), sampled at ``fps`` frames per second of video time: the first frame at or
    after each multiple of 1/fps. ``start`` and ``end`` (seconds; multiples of 1/fps) read only that part, a chunk:
    the chunks of a video together give exactly the frames of the whole."""

    def __init__(self, path: Path, fps: float = 1.0, start: float = 0.0, end: float | None = None) -> None:
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
        # The length the file declares (None when it declares none).
        self.duration = frame_count / self.video_fps if self.video_fps > 0 and frame_count > 0 else None
        self.start, self.end = start, end

    def expected_frames(self) -> int | None:
        if self.duration is None:
            return None
        end = self.duration if self.end is None else min(self.end, self.duration)
        return max(math.ceil(end * self.fps - 1e-6) - math.ceil(self.start * self.fps - 1e-6), 0)

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        """The sampled frames, as fast as they are read (``sleep`` is not used); a video whose decoding stops clearly
        short of the length it declares (damaged, or cut short: a recording that was still being written or copied)
        ends with a CaptureError after its last frame."""
        interval = 1.0 / self.fps
        next_time = math.ceil(self.start * self.fps - 1e-6) * interval
        index = 0
        if self.start > 0 and self.video_fps > 0:
            # A frame at or before the chunk's first sample time; OpenCV decodes from the key frame before it. Where
            # the container cannot seek to that frame exactly (some MPEG-TS files), it is decoded from the start.
            index = int(self.start * self.video_fps)
            if not self._capture.set(cv2.CAP_PROP_POS_FRAMES, index) \
                    or int(self._capture.get(cv2.CAP_PROP_POS_FRAMES)) != index:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                index = 0
        timestamp = 0.0
        read_started = time.perf_counter()
        while self._capture.grab():
            timestamp = max(timestamp, self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
            position = index / self.video_fps if self.video_fps > 0 else timestamp
            index += 1
            if self.end is not None and position + 1e-6 >= self.end:
                return
            if position + 1e-6 < next_time:
                continue
            ok, image = self._capture.retrieve()
            if not ok:
                raise CaptureError(f"{self.path}: cannot decode the frame at {position:.1f} s (corrupt video?)")
            next_time += interval * (int((position - next_time) / interval) + 1)
            image, scale = bounded(image)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            yield Frame(image, position, f"{self.path}@{position:.2f}s", capture_ms=_since(read_started), scale=scale)
            read_started = time.perf_counter()
        self._check_complete(index, timestamp)

    def _check_complete(self, decoded: int, timestamp: float) -> None:
        """Raise when decoding stopped clearly short of the declared length: neither the ``decoded`` frames nor the
        last frame's ``timestamp`` reach it. Some containers only estimate their frame count (from the duration and a
        frame rate: a variable-rate recording decodes fewer frames, its timestamps reaching the end), so up to
        max(1 s, 2% of it) missing is normal."""
        if self.duration is None or self.video_fps <= 0:
            return
        reached = max(decoded / self.video_fps, timestamp)
        if self.duration - reached > max(1.0, 0.02 * self.duration):
            stopped = max(max(decoded - 1, 0) / self.video_fps, timestamp)
            raise CaptureError(f"{self.path}: the video stopped at {clock(stopped)} of its {clock(self.duration)}: "
                               "the file is damaged or cut short")

    def close(self) -> None:
        self._capture.release()


class ImageSource(Source):
    """One image file, or every image in a folder (sorted by name), one frame each, ``time`` = their order / fps.

    In a folder, a file that cannot be read (not an image, truncated, too large) is skipped: ``take_skipped()`` hands
    it over, and the next one is read; only a folder where no image at all can be read is an error. A single image that
    cannot be read is an error."""

    def __init__(self, path: Path, fps: float = 1.0) -> None:
        self.folder = path.is_dir()
        if self.folder:
            self.paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not self.paths:
                raise CaptureError(f"{path}: no images in this folder (png, jpg, bmp, webp, tif, gif, ...)")
        elif path.is_file():
            self.paths = [path]
        else:
            raise CaptureError(f"{path}: no such file or folder")
        self.name = str(path)
        self.fps = fps
        self._skipped: list[SkippedFile] = []

    def expected_frames(self) -> int:
        return len(self.paths)

    def take_skipped(self) -> list[SkippedFile]:
        """The files skipped since the last call, oldest first."""
        taken, self._skipped = self._skipped, []
        return taken

    def frames(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Frame]:
        read = 0
        for index, path in enumerate(self.paths):
            read_started = time.perf_counter()
            try:
                image, scale = load_image(path)
            except UnreadableImageError as error:
                if not self.folder:
                    raise
                log.debug("skipped %s: %s", path, error.reason)
                self._skipped.append(SkippedFile(str(path), error.reason, index / self.fps))
                continue
            read += 1
            yield Frame(image, index / self.fps, str(path), capture_ms=_since(read_started), scale=scale)
        if self.folder and not read:
            raise CaptureError(f"{self.name}: none of its {len(self.paths)} images can be read")


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3], scaled down to :data:`MAX_PIXELS` when it is larger (see
    :func:`load_image`)."""
    return load_image(path)[0]


def load_image(path: Path) -> tuple[np.ndarray, float]:
    """An image file as RGB uint8 [H, W, 3] (EXIF orientation applied; 16-bit grey scaled to 8 bit; the first frame
    of an animation), and the original's pixels per pixel of it: a picture larger than :data:`MAX_PIXELS` is scaled
    down to it, a JPEG decoded at a reduced scale (1/2, 1/4, 1/8) first. Raises :class:`UnreadableImageError` for a
    file that is not an image Pillow can read, a truncated one, and one that would need more than
    :data:`MAX_DECODED_PIXELS` decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow's warnings (odd palettes, EXIF quirks) are not the user's concern; errors are.
            warnings.simplefilter("ignore")
            decoded, original = _decode(path)
    except UnidentifiedImageError:
        raise _unreadable(path, "not an image, or a format fer-agent cannot read") from None
    except Image.DecompressionBombError as error:
        raise _unreadable(path, f"too large to read ({error})") from None
    except MemoryError:
        raise _unreadable(path, "not enough memory to decode it") from None
    except OSError as error:
        text = str(error)
        if "truncated" in text.lower():
            reason = "the file is truncated: an incomplete copy or download?"
        else:
            reason = error.strerror or text or type(error).__name__
        raise _unreadable(path, reason) from None
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        # Pillow's plugins report malformed files with these too.
        raise _unreadable(path, f"corrupt ({str(error) or type(error).__name__})") from None
    image, _ = bounded(decoded)
    # From the size the file declares, so that a JPEG decoded at a reduced scale counts too; the longer sides, as EXIF
    # orientation may have turned the picture.
    return image, max(1.0, max(original) / max(image.shape[:2]))


def _unreadable(path: Path, reason: str) -> UnreadableImageError:
    return UnreadableImageError(f"{path}: cannot read this image ({reason})", path=str(path), reason=reason)


def _decode(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Pillow's decoding of ``path``: the RGB uint8 array, and the picture's size as the file declares it."""
    # Pillow's own decompression-bomb check refuses (or warns about) pictures over ~90 M pixels before anything is
    # decoded; a JPEG that large is fine here (decoded at a reduced scale), so the size is checked below instead.
    # Set for this call only: nothing else in the agent opens images on another thread meanwhile.
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        picture = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    with picture:
        original = picture.size
        width, height = original
        if width * height > MAX_DECODED_PIXELS:
            # JPEG only (a no-op for other formats): decode at the mildest of 1/2, 1/4, 1/8 that fits within
            # MAX_DECODED_PIXELS (Pillow's draft picks the strongest reduction still at least the size asked for).
            reduction = next((r for r in (2, 4, 8) if width * height / r ** 2 <= MAX_DECODED_PIXELS), 8)
            picture.draft(None, (max(1, math.ceil(width / reduction)), max(1, math.ceil(height / reduction))))
        decoded_width, decoded_height = picture.size
        if decoded_width * decoded_height > MAX_DECODED_PIXELS:
            raise _unreadable(path, f"{width}x{height} pixels, too large to read: scale it down to at most "
                                    f"{MAX_DECODED_PIXELS / 1e6:.0f} million pixels")
        picture.load()
        ImageOps.exif_transpose(picture, in_place=True)
        return _rgb(picture), original


def _rgb(picture: Image.Image) -> np.ndarray:
    """A loaded Pillow picture as RGB uint8 [H, W, 3]. Deeper greys are scaled to 8 bit, not clipped: 16-bit ones
    (PNG, TIFF) by 1/257 as OpenCV's imread does, others (32-bit integers, floats) from their own range."""
    if picture.mode.startswith("I") or picture.mode == "F":
        grey = np.asarray(picture).astype(np.float64)
        low, high = (float(grey.min()), float(grey.max())) if grey.size else (0.0, 0.0)
        if picture.mode.startswith("I;16") or (picture.mode == "I" and low >= 0 and 255 < high <= 65535):
            grey = grey / 257.0
        elif picture.mode == "F" and low >= 0 and high <= 1:
            grey = grey * 255.0
        elif low < 0 or high > 255:
            grey = (grey - low) * (255.0 / (high - low))
        grey = np.rint(grey).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    # Strip by strip: a large picture is then held once more (as the array), not two or three times (Pillow's copy of
    # it in another mode, and the bytes numpy's conversion goes through).
    width, height = picture.size
    array = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, STRIP_ROWS):
        strip = picture.crop((0, top, width, min(top + STRIP_ROWS, height)))
        array[top:top + strip.height] = np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))
    return array


def open_source(spec: str, fps: float = 1.0, region: str | None = None, window: str | None = None) -> Source:
    """The source that ``--source`` names: ``screen``, ``screen:N``, ``webcam:N``, or a path to a video, an image or
    a folder of images; on the screen, only a ``region`` of it, or the ``window`` whose title contains that text."""
    if fps <= 0:
        raise CaptureError(f"--fps {fps}: must be > 0")
    if region is not None and not spec.startswith("screen"):
        raise CaptureError("--region applies to --source screen only")
    if window is not None:
        if region is not None:
            raise CaptureError("--window and --region: give one of them (--window follows the window wherever it is)")
        if spec != "screen":
            raise CaptureError("--window applies to the screen, on whichever monitor the window is: leave out --source")
        from fer_agent.capture.windows import WindowSource

        return WindowSource(window, fps)
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
