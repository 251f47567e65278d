"""Live-agent benchmark: milliseconds per frame and CPU at 1 frame per second of a session, per scenario, and the
peak memory of a real ``fer-agent start``.

    python benchmarks/agent_pipeline.py --data ../shared/datasets/fer2013 --galleries ../shared/datasets/galleries

Every frame goes through what the session loop (``fer_agent.session.run_session``) runs: ``Analyzer.analyze`` (face
finding over time: discovery and following, ``fer_agent.vision.watch``; crops; one classifier batch), ``Tracker.update``
and ``Store.write_frame`` into a real SQLite file, with frame ``i`` at ``i`` seconds of session time. Each scenario
starts a fresh session (a new ``Watcher`` and ``Tracker``); the first ``--warmup`` frames (the first discovery among
them) are left out of the per-frame numbers and shown on their own as the first frame.

Scenarios:

- **synthetic galleries** (1920x1080, ``tests.synthetic``: PrivateTest faces, camera-off tiles, a highlighted
  speaker, name bars, pictures on the wall, Gaussian camera noise of 2 grey levels on every frame), 3x3, 5x5, 7x7:
  *still class*: each second 20% of the participants (chosen at random) show a new face image and move by up to 4
  pixels, the others sit still; *worst case*: every participant shows a new face image in every frame (same places).
- **screens without faces** (1920x1080, as a screen grab gives them: no noise): a shared slide (white, text, shapes;
  the page turns every 15 s, the mouse pointer moves every second), the desktop (a flat colour with icons and a
  window; the pointer moves every second), a black screen.
- **real screenshots** (``--galleries``): each screenshot as a still mp4 (mp4v, 1 frame per second, cropped to even
  sides), decoded by the agent's own video source, so the compression noise is there.

Per scenario: milliseconds per frame (analysis + tracker + store; wall time), CPU at 1 frame/s = process CPU seconds
(``time.process_time`` around each frame's work) / seconds of session time, the frames that ran discovery, and the
mean milliseconds per frame of each stage (``FrameAnalysis.milliseconds``: discover, follow, classify; then track and
store). Paced runs (``--paced-seconds``, 7x7 still class and worst case at a real 1 frame/s wall clock) run as
``fer-agent start`` on a live screen does, the periodic discoveries on a thread of their own
(``Watcher(background=True)``): the whole process's CPU share, idle time included, and each frame's milliseconds.
The screen grab (mss) is timed on $DISPLAY when there is one (``xvfb-run -s "-screen 0 1920x1080x24"``).
Peak RSS: ``fer-agent start --source VIDEO --quiet`` on a ``--rss-seconds`` 7x7 still-class mp4, and (with $DISPLAY
and feh) ``fer-agent start --duration N --quiet`` on the live screen showing a 7x7 gallery, read with
``getrusage(RUSAGE_CHILDREN)`` in a small launcher process (a child started straight from this process would report
this process's own peak: Linux carries the parent's memory high-water mark into a vforked child's); then a fresh
process runs the same models on the same video and prints its peak memory after each step (imports, models loaded,
first discovery, second discovery, all frames).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from common import footer_line, header_line, table

import fer_agent  # noqa: F401  (before onnxruntime: it turns onnxruntime's telemetry off)
from fer_agent.capture.sources import Paced, VideoSource
from fer_agent.paths import default_emotion_model
from fer_agent.store.writer import Store
from fer_agent.tracking.tracker import Tracker
from fer_agent.training.data import load_fer
from fer_agent.types import Frame
from fer_agent.vision.analysis import Analyzer
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model
from fer_agent.vision.watch import Watcher
from tests.synthetic import participants_from_faces, render_gallery, tile_boxes

WIDTH, HEIGHT = 1920, 1080
STAGES = ("discover", "follow", "classify", "track", "store")
STILL_SHARE = 0.2
MOVE_PIXELS = 4
NOISE_LEVELS = 2.0


@dataclass
class Result:
    name: str
    screen: str
    shown: int | None
    first_ms: float = 0.0
    first_discovered: bool = False
    ms: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    faces: list[int] = field(default_factory=list)
    discoveries: int = 0
    events: list[str] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    @property
    def cpu_share(self) -> float:
        """Percent of one core at 1 frame per second: CPU seconds per second of session time."""
        return 100 * sum(self.cpu) / len(self.cpu)


# -- scenarios ---------------------------------------------------------------------------------------------------

def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image + rng.normal(0, NOISE_LEVELS, image.shape).astype(np.float32), 0, 255).astype(np.uint8)


def gallery_frames(faces: np.ndarray, count: int, frames: int, share: float, seed: int = 0) -> Iterator[np.ndarray]:
    """``frames`` screenshots of a ``count``-participant gallery; each frame, ``share`` of the participants (chosen
    at random; 1.0: all) show a new face image, and where ``share`` < 1 they also move by up to MOVE_PIXELS."""
    rng = np.random.default_rng(seed)
    people = participants_from_faces(faces, count, seed=count, camera_off=max(count // 10, 1), pictures=count // 5)
    tile_width = tile_boxes(count, WIDTH, HEIGHT)[0][2]
    next_face = count
    for index in range(frames):
        if index:
            changing = range(count) if share >= 1 else rng.choice(count, int(round(share * count)), replace=False)
            for number in changing:
                person = people[number]
                person.face = faces[next_face % len(faces)]
                next_face += 1
                if share < 1:
                    shift = int(rng.integers(-MOVE_PIXELS, MOVE_PIXELS + 1)) / tile_width
                    person.face_offset = float(np.clip(person.face_offset + shift, -0.15, 0.15))
        yield noisy(render_gallery(people, WIDTH, HEIGHT).image.astype(np.float32), rng)


def faces_shown(count: int) -> int:
    return count - max(count // 10, 1)


def pointer(image: np.ndarray, x: int, y: int) -> None:
    """A mouse pointer (black arrow with a white edge) with its tip at (x, y)."""
    arrow = np.array([[0, 0], [0, 17], [4, 13], [7, 20], [10, 19], [7, 12], [12, 12]]) + [x, y]
    cv2.fillPoly(image, [arrow], (0, 0, 0), cv2.LINE_AA)
    cv2.polylines(image, [arrow], True, (255, 255, 255), 1, cv2.LINE_AA)


def slide_page(page: int) -> np.ndarray:
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    cv2.rectangle(image, (0, 0), (WIDTH, 120), (40, 70, 140), -1)
    cv2.putText(image, f"Lecture 7: Gradient descent ({page + 1}/4)", (80, 82), cv2.FONT_HERSHEY_SIMPLEX, 2.0,
                (255, 255, 255), 4, cv2.LINE_AA)
    for line in range(6):
        cv2.circle(image, (110, 250 + line * 90), 10, (40, 70, 140), -1)
        cv2.putText(image, f"Point {page * 6 + line + 1}: the step size and the curvature of the loss",
                    (140, 262 + line * 90), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 2, cv2.LINE_AA)
    cv2.rectangle(image, (1250, 220), (1800, 760), (90, 90, 90), 2)
    for bar in range(6):
        height = 60 + ((bar * 37 + page * 53) % 400)
        cv2.rectangle(image, (1290 + bar * 85, 740 - height), (1350 + bar * 85, 740), (60, 140, 220), -1)
    cv2.ellipse(image, (1525, 900), (200, 90), 0, 0, 360, (200, 80, 60), 3, cv2.LINE_AA)
    cv2.putText(image, "university of somewhere", (80, 1040), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (120, 120, 120), 2,
                cv2.LINE_AA)
    return image


def desktop_picture() -> np.ndarray:
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = (30, 90, 140)
    for row in range(7):
        colour = ((row * 70) % 255, 160, 255 - row * 30)
        cv2.rectangle(image, (30, 30 + row * 120), (110, 110 + row * 120), colour, -1)
        cv2.putText(image, f"file {row + 1}.pdf", (25, 135 + row * 120), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    cv2.rectangle(image, (500, 200), (1500, 800), (235, 235, 235), -1)
    cv2.rectangle(image, (500, 200), (1500, 240), (70, 70, 70), -1)
    cv2.putText(image, "Documents", (520, 230), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.rectangle(image, (0, HEIGHT - 48), (WIDTH, HEIGHT), (20, 20, 20), -1)
    for icon in range(8):
        cv2.rectangle(image, (20 + icon * 56, HEIGHT - 40), (52 + icon * 56, HEIGHT - 8), (90 + icon * 15, 120, 200),
                      -1)
    return image


def screen_frames(kind: str, frames: int, seed: int = 0) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    pages = [slide_page(page) for page in range(4)] if kind == "slide" else None
    desktop = desktop_picture() if kind == "desktop" else None
    x, y = WIDTH // 2, HEIGHT // 2
    for index in range(frames):
        if kind == "black":
            yield np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            continue
        image = (pages[(index // 15) % len(pages)] if pages is not None else desktop).copy()
        if index:
            x = int(np.clip(x + rng.integers(-150, 151), 0, WIDTH - 20))
            y = int(np.clip(y + rng.integers(-100, 101), 0, HEIGHT - 25))
        pointer(image, x, y)
        yield image


def even(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return image[:height - height % 2, :width - width % 2]


def write_video(images: Iterable[np.ndarray], path: Path, fps: float = 1.0) -> None:
    """RGB pictures as an mp4 (mp4v) at ``fps``."""
    writer = None
    for image in images:
        image = even(image)
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0]))
            if not writer.isOpened():
                raise SystemExit(f"{path}: OpenCV cannot write mp4v here")
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if writer is not None:
        writer.release()


def decoded(path: Path) -> Iterator[np.ndarray]:
    source = VideoSource(path, 1.0)
    try:
        for frame in source.frames():
            yield frame.image
    finally:
        source.close()


# -- measuring ---------------------------------------------------------------------------------------------------

def run(analyzer: Analyzer, store: Store, result: Result, images: Iterable[np.ndarray], warmup: int) -> Result:
    """The session loop's work on each picture at 1 frame per second of session time, fresh face finding and
    tracking; frames from ``warmup`` on are recorded."""
    analyzer.watcher = Watcher(analyzer.finder)
    tracker = Tracker()
    session = store.start_session(result.name, 1.0, "benchmark", None, "centerface + blazeface")
    for index, image in enumerate(images):
        frame = Frame(image, float(index), result.name)
        cpu_started, started = time.process_time(), time.perf_counter()
        analysis = analyzer.analyze(frame)
        tracked_at = time.perf_counter()
        tracked = tracker.update(analysis.observations, frame.time)
        stored_at = time.perf_counter()
        milliseconds = {**analysis.milliseconds, "track": (stored_at - tracked_at) * 1000}
        if analysis.event:
            store.event(session, frame.time, *analysis.event)
            result.events.append(f"{frame.time:.0f} s {analysis.event[0]}")
        store.write_frame(session, frame.time, frame.name, tracked, 0, analysis.observed, milliseconds)
        done, cpu_done = time.perf_counter(), time.process_time()
        if index < warmup:
            if index == 0:
                result.first_ms, result.first_discovered = (done - started) * 1000, analysis.discovered
            continue
        result.ms.append((done - started) * 1000)
        result.cpu.append(cpu_done - cpu_started)
        result.faces.append(analysis.faces)
        result.discoveries += analysis.discovered
        for stage in ("discover", "follow", "classify"):
            result.stages[stage].append(analysis.milliseconds.get(stage, 0.0))
        result.stages["track"].append(milliseconds["track"])
        result.stages["store"].append((done - stored_at) * 1000)
    store.finish_session(session, "finished")
    return result


def paced_share(analyzer: Analyzer, store: Store, make: Callable[[], Iterator[np.ndarray]], seconds: int,
                ) -> tuple[float, list[float]]:
    """As on a live screen (periodic discoveries on their own thread, ``Watcher(background=True)``): percent of one
    core over ``seconds`` of real time at 1 frame per second (whole process, both threads, idle time included;
    making the pictures is measured apart and taken out), and each frame's milliseconds (analysis, tracker, store)."""
    analyzer.watcher = Watcher(analyzer.finder, background=True)
    tracker = Tracker()
    session = store.start_session("paced", 1.0, "benchmark", None, "centerface + blazeface")
    images = make()
    image = next(images)
    pace = Paced(1.0)
    pace.wait()
    cpu_started, wall_started = time.process_time(), time.monotonic()
    making = 0.0
    frame_ms = []
    for index in range(seconds):
        frame = Frame(image, float(index), "paced")
        started = time.perf_counter()
        analysis = analyzer.analyze(frame)
        tracked = tracker.update(analysis.observations, frame.time)
        store.write_frame(session, frame.time, frame.name, tracked, 0, analysis.observed, analysis.milliseconds)
        frame_ms.append((time.perf_counter() - started) * 1000)
        before = time.process_time()
        image = next(images, image)
        making += time.process_time() - before
        pace.wait()
    cpu = time.process_time() - cpu_started - making
    wall = time.monotonic() - wall_started
    store.finish_session(session, "finished")
    analyzer.watcher.close()
    return 100 * cpu / wall, frame_ms[1:]


# A small process that runs the command and reports its children's peak RSS; started from this (large) process, the
# command's own ru_maxrss would start from this process's high-water mark.
LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "returncode": done.returncode,
                  "stdout": done.stdout, "stderr": done.stderr, "seconds": time.monotonic() - started}))
"""


def agent_peak_rss(source: list[str], database: Path) -> tuple[float, float, str]:
    """Peak RSS (MB) and wall seconds of ``fer-agent start SOURCE... --quiet``, and its first output line."""
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "fer_agent", "start", *source,
                               "--quiet", "--db", str(database)], capture_output=True, text=True, check=True)
    report = json.loads(launched.stdout)
    if report["returncode"] != 0:
        raise SystemExit(f"fer-agent start failed ({report['returncode']}):\n{report['stderr']}")
    return report["maxrss_kb"] / 1024, report["seconds"], report["stdout"].splitlines()[0]


def screen_peak_rss(gallery: np.ndarray, folder: Path, seconds: int) -> tuple[float, float, str] | None:
    """Peak RSS of ``fer-agent start --duration SECONDS --quiet`` on the live screen ($DISPLAY), with a 7x7 gallery
    shown full screen by the Debian image viewer feh; None without a display or feh."""
    if not os.environ.get("DISPLAY") or shutil.which("feh") is None:
        return None
    picture = folder / "gallery.png"
    cv2.imwrite(str(picture), gallery[:, :, ::-1])
    viewer = subprocess.Popen(["feh", "--fullscreen", "--borderless", "--hide-pointer", str(picture)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        return agent_peak_rss(["--duration", str(seconds)], folder / "screen.db")
    finally:
        viewer.terminate()
        viewer.wait(timeout=10)


# Where the memory goes: the same models and video in a fresh process, its peak resident memory (VmHWM, MB) after
# each step.
MEMORY_STEPS = """
import sys
from pathlib import Path


def peak():
    status = open("/proc/self/status").read()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) // 1024


steps = []
import fer_agent
from fer_agent.vision.analysis import Analyzer
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model
from fer_agent.paths import default_emotion_model
from fer_agent.capture.sources import VideoSource
steps.append(("imports", peak()))
analyzer = Analyzer(resolve_detector_model(), resolve_discovery_model(), default_emotion_model(), 1)
steps.append(("models loaded", peak()))
source = VideoSource(Path(sys.argv[1]), 1.0)
discoveries = 0
for index, frame in enumerate(source.frames()):
    analysis = analyzer.analyze(frame)
    discoveries += analysis.discovered
    if index == 0:
        steps.append(("first frame (discovery)", peak()))
    elif analysis.discovered and discoveries == 2:
        steps.append(("second discovery", peak()))
steps.append((f"all {index + 1} frames", peak()))
print("; ".join(f"{name} {mb} MB" for name, mb in steps))
"""


def memory_steps(video: Path) -> str:
    done = subprocess.run([sys.executable, "-c", MEMORY_STEPS, str(video)], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def screen_grab_ms(rounds: int = 20) -> tuple[str, float] | None:
    if not os.environ.get("DISPLAY"):
        return None
    from fer_agent.capture.sources import ScreenSource

    source = ScreenSource(1)
    try:
        source.grab()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            source.grab()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        source.close()
    return f"{source.area['width']}x{source.area['height']}", statistics.median(times)


# -- printing ----------------------------------------------------------------------------------------------------


def row(result: Result) -> list[object]:
    found = statistics.median(result.faces)
    return [result.name, result.screen, "-" if result.shown is None else result.shown, f"{found:g}",
            f"{result.first_ms:.0f}" + ("" if result.first_discovered else " (no discovery)"),
            len(result.ms), result.discoveries, per_discovery(result), f"{statistics.mean(result.ms):.1f}",
            f"{statistics.median(result.ms):.1f}", f"{max(result.ms):.1f}", f"{result.cpu_share:.1f}",
            *(f"{statistics.mean(result.stages[stage]):.1f}" for stage in STAGES)]


def per_discovery(result: Result) -> str:
    """Mean milliseconds of discovery in the frames that ran it."""
    spent = [ms for ms in result.stages["discover"] if ms > 0]
    return f"{statistics.mean(spent):.0f}" if spent else "-"


HEADER = ["scenario", "screen", "faces shown", "faces found (median)", "first frame ms", "frames measured",
          "frames with discovery", "discover ms per discovery", "ms/frame mean", "median", "max",
          "CPU % of one core at 1 fps",
          *(f"{stage} ms (mean)" for stage in STAGES)]


def verdict(value: float, limit: float, unit: str, what: str = "") -> str:
    what = f"{what} " if what else ""
    if value <= limit:
        return f"{what}met ({value:.1f} {unit} <= {limit:g})"
    return (f"{what}**not met**: {value:.1f} {unit} > {limit:g} (+{value - limit:.1f}, "
            f"{100 * (value / limit - 1):.0f}% over)")


def frame_verdict(result: Result, limit: float) -> str:
    return "; ".join(verdict(value, limit, "ms", what) for what, value in (
        ("mean", statistics.mean(result.ms)), ("median", statistics.median(result.ms)), ("max", max(result.ms))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER-2013 folder (fer2013.csv.gz)")
    parser.add_argument("--galleries", type=Path, help="real call screenshots (shared/datasets/galleries)")
    parser.add_argument("--frames", type=int, default=60, help="frames measured per synthetic scenario (seconds)")
    parser.add_argument("--real-frames", type=int, default=30, help="frames measured per real screenshot")
    parser.add_argument("--warmup", type=int, default=5, help="frames run before measuring, per scenario")
    parser.add_argument("--paced-seconds", type=int, default=60, help="length of the paced 1 frame/s check (0: skip)")
    parser.add_argument("--rss-seconds", type=int, default=60, help="length of the video for the peak RSS run")
    args = parser.parse_args()
    total = args.warmup + args.frames

    faces = load_fer(args.data).split("PrivateTest").pixels[:1500]
    first, fingerprint = header_line("models on 1 thread (the CLI's default)")
    print(first + "\n")
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as temporary, \
            Analyzer(resolve_detector_model(), resolve_discovery_model(), default_emotion_model(), 1) as analyzer, \
            Store(Path(temporary) / "benchmark.db") as store:
        folder = Path(temporary)
        for side in (3, 5, 7):
            count = side * side
            for scenario, share in (("still class", STILL_SHARE), ("worst case", 1.0)):
                result = Result(f"{side}x{side} {scenario}", f"{WIDTH}x{HEIGHT}", faces_shown(count))
                results.append(run(analyzer, store, result, gallery_frames(faces, count, total, share), args.warmup))
                print(f"  {result.name}: {statistics.median(result.ms):.1f} ms", file=sys.stderr)
        for kind, label in (("slide", "shared slide"), ("desktop", "desktop"), ("black", "black screen")):
            result = Result(f"no faces: {label}", f"{WIDTH}x{HEIGHT}", 0)
            results.append(run(analyzer, store, result, screen_frames(kind, total), args.warmup))
            print(f"  {result.name}: {statistics.median(result.ms):.1f} ms", file=sys.stderr)
        real: list[Result] = []
        if args.galleries:
            gt = {name: entry for name, entry in json.loads((args.galleries / "gt.json").read_text()).items()
                  if not name.startswith("_")}
            for name, entry in gt.items():
                image = cv2.cvtColor(cv2.imread(str(args.galleries / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                video = folder / "still.mp4"
                write_video((image for _ in range(args.warmup + args.real_frames)), video)
                height, width = even(image).shape[:2]
                result = Result(f"`{name}`", f"{width}x{height}", len(entry["faces"]))
                real.append(run(analyzer, store, result, decoded(video), args.warmup))
                print(f"  {name}: {statistics.median(result.ms):.1f} ms", file=sys.stderr)
        paced = {}
        if args.paced_seconds:
            for scenario, share in (("still class", STILL_SHARE), ("worst case", 1.0)):
                paced[scenario] = paced_share(analyzer, store, lambda: gallery_frames(
                    faces, 49, args.paced_seconds + 1, share, seed=1), args.paced_seconds)
        grab = screen_grab_ms()
        video = folder / "rss.mp4"
        write_video(gallery_frames(faces, 49, args.rss_seconds, STILL_SHARE, seed=2), video)
        rss, rss_seconds, rss_line = agent_peak_rss(["--source", str(video)], folder / "rss.db")
        screen_rss = screen_peak_rss(next(gallery_frames(faces, 49, 1, STILL_SHARE, seed=2)), folder,
                                     args.rss_seconds)
        steps = memory_steps(video)

    print(f"### Synthetic galleries and screens without faces ({args.frames} frames at 1 frame/s of session time "
          f"after {args.warmup} warm-up frames)\n")
    print(table(HEADER, [row(result) for result in results]))
    events = [f"{result.name}: {', '.join(result.events)}" for result in results + real if result.events]
    if events:
        print("\nview events: " + "; ".join(events))
    if real:
        print(f"\n### Real screenshots as still mp4 videos ({args.real_frames} frames at 1 frame/s after "
              f"{args.warmup} warm-up frames; 'faces shown' = required faces of gt.json)\n")
        print(table(HEADER, [row(result) for result in real]))
        everything = [value for result in real for value in result.ms]
        print(f"\nall {len(real)} screenshots: {statistics.mean(everything):.1f} ms per frame on average, max "
              f"{max(everything):.1f} ms; CPU {statistics.mean(r.cpu_share for r in real):.1f}% of one core on "
              f"average (max {max(r.cpu_share for r in real):.1f}%); first frame (discovery) "
              f"{statistics.median(r.first_ms for r in real):.0f} ms median, max {max(r.first_ms for r in real):.0f}")
    print()
    if grab:
        print(f"screen grab (mss, {grab[0]}): {grab[1]:.1f} ms per frame (not in the numbers above)")
    else:
        print("screen grab: not measured (no $DISPLAY)")
    for scenario, (share, frame_ms) in paced.items():
        print(f"live screen, 7x7 {scenario} at a real 1 frame/s for {args.paced_seconds} s, periodic discoveries "
              f"beside the frames as `fer-agent start` on a screen runs them (whole process, both threads, idle time "
              f"included): {share:.1f}% of one core; per frame after the first: mean {statistics.mean(frame_ms):.0f} "
              f"ms, median {statistics.median(frame_ms):.0f} ms, max {max(frame_ms):.0f} ms")
    print(f"peak RSS of `fer-agent start --source <{args.rss_seconds} s 7x7 still-class mp4, 1 fps> --quiet`: "
          f"{rss:.0f} MB ({rss_seconds:.0f} s wall; {rss_line})")
    if screen_rss:
        print(f"peak RSS of `fer-agent start --duration {args.rss_seconds} --quiet` on the live screen (a 7x7 gallery "
              f"shown by feh on $DISPLAY): {screen_rss[0]:.0f} MB ({screen_rss[2]})")
    else:
        print("peak RSS on the live screen: not measured (no $DISPLAY or no feh)")
    print(f"peak resident memory of a process doing the same step by step (VmHWM): {steps}")

    by_name = {result.name: result for result in results}
    still, worst = by_name["7x7 still class"], by_name["7x7 worst case"]
    no_face = max((result for result in results if result.name.startswith("no faces")), key=lambda r: r.cpu_share)
    print(footer_line(fingerprint))
    print("\n### Targets\n")
    rows = [
        ["7x7 still class, frames in order (as for a video): ms per frame <= 100",
         f"mean {statistics.mean(still.ms):.1f}, median {statistics.median(still.ms):.1f}, max {max(still.ms):.1f}",
         frame_verdict(still, 100)],
        ["7x7 still class, frames in order: CPU at 1 fps <= 15% of one core", f"{still.cpu_share:.1f}%",
         verdict(still.cpu_share, 15, "%")],
        ["7x7 worst case, frames in order: ms per frame <= 200", f"mean {statistics.mean(worst.ms):.1f}, median "
         f"{statistics.median(worst.ms):.1f}, max {max(worst.ms):.1f}", frame_verdict(worst, 200)],
    ]
    for scenario, limit in (("still class", 100), ("worst case", 200)):
        if scenario in paced:
            share, frame_ms = paced[scenario]
            rows.append([f"7x7 {scenario}, live screen at 1 frame/s: ms per frame <= {limit}",
                         f"mean {statistics.mean(frame_ms):.0f}, max {max(frame_ms):.0f}",
                         verdict(max(frame_ms), limit, "ms")])
            rows.append([f"7x7 {scenario}, live screen at 1 frame/s: CPU <= 15% of one core", f"{share:.1f}%",
                         verdict(share, 15, "%")])
    rows.append(["screen without faces: CPU at 1 fps <= 15% of one core", f"{no_face.cpu_share:.1f}% ({no_face.name})",
                 verdict(no_face.cpu_share, 15, "%")])
    rows.append(["peak RSS of `fer-agent start` on a 1080p video <= 400 MB", f"{rss:.0f} MB", verdict(rss, 400, "MB")])
    if screen_rss:
        rows.append(["peak RSS of `fer-agent start` on the live screen <= 400 MB", f"{screen_rss[0]:.0f} MB",
                     verdict(screen_rss[0], 400, "MB")])
    print(table(["target", "measured", "verdict"], rows))

if __name__ == "__main__":
    main()
