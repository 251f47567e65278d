"""Live-agent benchmark: milliseconds per stage for 3x3, 5x5 and 7x7 galleries at 1920x1080, CPU use at 1 frame per
second, and peak RSS.

    python benchmarks/agent_pipeline.py --data ../shared/datasets/fer2013

Galleries are synthetic screenshots of PrivateTest faces (``agent.synthetic``), with camera-off tiles, a highlighted
speaker and name bars; each measured frame shows different faces. Every stage is the real one: gallery layout,
MediaPipe BlazeFace per tile, crops, one onnxruntime batch, the tracker, and a frame written to a real SQLite file.
The screen grab (mss) is timed on the display named by $DISPLAY when there is one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from agent.analysis import Analyzer
from agent.detector_model import resolve_detector_model
from agent.paths import default_emotion_model
from agent.sources import Frame, Paced
from agent.store import Store
from agent.synthetic import participants_from_faces, render_gallery
from agent.tracker import Tracker
from training.data import load_fer

STAGES = ("layout", "detect", "classify", "track", "store")


def galleries(faces: np.ndarray, count: int, frames: int, moving: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """``frames`` screenshots of one gallery. Each frame, a ``moving`` share of the participants (chosen at random)
    shows a new face, and every tile gets camera noise (Gaussian, 2 grey levels): ``moving=1`` is the worst case,
    every face new in every frame."""
    rng = np.random.default_rng(seed)
    people = participants_from_faces(faces, count, seed=count, camera_off=max(count // 10, 1), pictures=count // 5)
    next_face = count
    images = []
    for _ in range(frames):
        for person in people:
            if rng.random() < moving:
                person.face = faces[next_face % len(faces)]
                next_face += 1
        image = render_gallery(people).image.astype(np.float32)
        images.append(np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8))
    return images


def measure(analyzer: Analyzer, store: Store, images: list[np.ndarray]) -> dict[str, list[float]]:
    session = store.start_session("benchmark", 1.0, "benchmark", None, "blazeface")
    tracker = Tracker()
    timings: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    faces = []
    for index, image in enumerate(images):
        frame = Frame(image, float(index), "benchmark")
        started = time.perf_counter()
        analysis = analyzer.analyze(frame)
        tracked_at = time.perf_counter()
        tracked = tracker.update(analysis.observations, frame.time)
        stored_at = time.perf_counter()
        store.write_frame(session, frame.time, frame.name, tracked, 0, analysis.gallery, analysis.milliseconds)
        done = time.perf_counter()
        for stage, value in analysis.milliseconds.items():
            timings[stage].append(value)
        timings["track"].append((stored_at - tracked_at) * 1000)
        timings["store"].append((done - stored_at) * 1000)
        timings["total"].append((done - started) * 1000)
        faces.append(analysis.faces)
    timings["faces"] = faces
    store.finish_session(session, "finished")
    return timings


def cpu_at_one_fps(analyzer: Analyzer, store: Store, images: list[np.ndarray], seconds: int) -> tuple[float, int]:
    """Share of one core used while analysing one frame per second for ``seconds`` (process CPU time / wall time),
    and the frames dropped."""
    session = store.start_session("benchmark-cpu", 1.0, "benchmark", None, "blazeface")
    tracker = Tracker()
    pace = Paced(1.0)
    dropped = 0
    before = os.times()
    started = time.monotonic()
    for index, image in enumerate(images[:seconds]):
        dropped += pace.wait()
        frame = Frame(image, float(index), "benchmark")
        analysis = analyzer.analyze(frame)
        tracked = tracker.update(analysis.observations, frame.time)
        store.write_frame(session, frame.time, frame.name, tracked, 0, analysis.gallery, analysis.milliseconds)
    pace.wait()
    wall = time.monotonic() - started
    after = os.times()
    store.finish_session(session, "finished")
    cpu = (after.user - before.user) + (after.system - before.system)
    return cpu / wall, dropped


def screen_grab_ms(rounds: int = 20) -> tuple[str, float] | None:
    if not os.environ.get("DISPLAY"):
        return None
    import mss

    with mss.MSS() as screen:
        monitor = screen.monitors[1]
        screen.grab(monitor)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            np.ascontiguousarray(np.asarray(screen.grab(monitor))[:, :, 2::-1])
            times.append((time.perf_counter() - started) * 1000)
    return f"{monitor['width']}x{monitor['height']}", statistics.median(times)


# Runs the real command line in a fresh process and prints that process's peak resident memory (VmHWM, which a new
# program starts afresh, unlike getrusage's ru_maxrss, which would carry this script's own peak into its children).
PEAK_OF_AGENT = """
import sys
from agent.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1], file=sys.stderr)
"""


def agent_peak_rss(images: list[np.ndarray], folder: Path) -> float:
    """Peak resident memory (MB) of a real ``fer-agent start`` process analysing these screenshots (Linux)."""
    import subprocess
    import sys

    import cv2

    shots = folder / "screenshots"
    shots.mkdir()
    for index, image in enumerate(images):
        cv2.imwrite(str(shots / f"{index:03d}.png"), image[:, :, ::-1])
    result = subprocess.run([sys.executable, "-c", PEAK_OF_AGENT, "start", "--source", str(shots), "--quiet",
                             "--db", str(folder / "rss.db")], check=True, capture_output=True, text=True)
    return int(result.stderr.strip().splitlines()[-1]) / 1024


SCENARIOS = {"worst": 1.0, "still": 0.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER-2013 folder (fer2013.csv.gz and fer2013new.csv)")
    parser.add_argument("--frames", type=int, default=15, help="frames measured per gallery size and scenario")
    parser.add_argument("--cpu-seconds", type=int, default=30, help="length of each 1 frame/s CPU measurement")
    args = parser.parse_args()

    faces = load_fer(args.data).split("PrivateTest").pixels[:1500]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; emotion model on 1 "
          f"thread; median of {args.frames} frames after a warm-up frame")
    print("scenarios: worst = every participant shows a new face in every frame (every tile searched); "
          "still = 20% of participants move each second, the rest sit still (camera noise only)")
    with tempfile.TemporaryDirectory() as folder, \
            Analyzer(resolve_detector_model(), default_emotion_model()) as analyzer, \
            Store(Path(folder) / "benchmark.db") as store:
        header = (f"{'gallery':<8}{'scenario':<9}{'tiles':>6}{'faces':>6}{'detector calls':>15}"
                  + "".join(f"{s:>9}" for s in STAGES) + f"{'total ms':>10}")
        print(header)
        print("-" * len(header))
        sevens = {}
        for side in (3, 5, 7):
            count = side * side
            for scenario, moving in SCENARIOS.items():
                images = galleries(faces, count, args.frames + 1, moving)
                calls_before = analyzer.finder.detections
                timings = measure(analyzer, store, images)
                calls = (analyzer.finder.detections - calls_before) / len(images)
                row = f"{side}x{side:<6}{scenario:<9}{count:>6}{statistics.median(timings['faces'][1:]):>6.0f}"
                row += f"{calls:>15.1f}"
                row += "".join(f"{statistics.median(timings[s][1:]):>9.1f}" for s in STAGES)
                row += f"{statistics.median(timings['total'][1:]):>10.1f}"
                print(row)
                if side == 7:
                    sevens[scenario] = images
        grab = screen_grab_ms()
        if grab:
            print(f"screen grab (mss) {grab[0]}: {grab[1]:.1f} ms per frame (not in the totals above)")
        else:
            print("screen grab: not measured (no $DISPLAY)")
        for scenario in SCENARIOS:
            images = galleries(faces, 49, args.cpu_seconds, SCENARIOS[scenario], seed=1)
            share, dropped = cpu_at_one_fps(analyzer, store, images, args.cpu_seconds)
            print(f"CPU at 1 frame/s, 7x7 gallery, {scenario}, {args.cpu_seconds} s: {share * 100:.1f}% of one core, "
                  f"{dropped} frames dropped")
        peak = agent_peak_rss(sevens["worst"], Path(folder))
    print(f"peak RSS of `fer-agent start` on {len(sevens['worst'])} 7x7 screenshots: {peak:.0f} MB")


if __name__ == "__main__":
    main()
