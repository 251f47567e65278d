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
import resource
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


def galleries(faces: np.ndarray, count: int, frames: int) -> list[np.ndarray]:
    camera_off = max(count // 10, 1)
    return [render_gallery(participants_from_faces(np.roll(faces, -index * count, axis=0), count, seed=count,
                                                   camera_off=camera_off, pictures=count // 5)).image
            for index in range(frames)]


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
    for index in range(seconds):
        dropped += pace.wait()
        frame = Frame(images[index % len(images)], float(index), "benchmark")
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


def agent_peak_rss(images: list[np.ndarray], folder: Path) -> float:
    """Peak resident memory (MB) of a real ``fer-agent start`` process analysing these screenshots: measured in
    its own process, so this script's dataset does not count."""
    import subprocess
    import sys

    import cv2

    shots = folder / "screenshots"
    shots.mkdir()
    for index, image in enumerate(images):
        cv2.imwrite(str(shots / f"{index:03d}.png"), image[:, :, ::-1])
    subprocess.run([sys.executable, "-m", "agent", "start", "--source", str(shots), "--quiet",
                    "--db", str(folder / "rss.db")], check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER-2013 folder (fer2013.csv.gz and fer2013new.csv)")
    parser.add_argument("--frames", type=int, default=10, help="frames measured per gallery size")
    parser.add_argument("--cpu-seconds", type=int, default=30, help="length of the 1 frame/s CPU measurement")
    args = parser.parse_args()

    faces = load_fer(args.data).split("PrivateTest").pixels[:1000]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"emotion model on 1 thread; median of {args.frames} frames")
    with tempfile.TemporaryDirectory() as folder, \
            Analyzer(resolve_detector_model(), default_emotion_model()) as analyzer, \
            Store(Path(folder) / "benchmark.db") as store:
        analyzer.analyze(Frame(galleries(faces, 9, 1)[0], 0.0, "warm-up"))
        header = f"{'gallery':<8}{'tiles':>6}{'faces':>6}" + "".join(f"{s:>10}" for s in STAGES) + f"{'total':>10}"
        print(header)
        print("-" * len(header))
        sevens = None
        for side in (3, 5, 7):
            count = side * side
            images = galleries(faces, count, args.frames)
            timings = measure(analyzer, store, images)
            row = f"{side}x{side:<6}{count:>6}{statistics.median(timings['faces']):>6.0f}"
            row += "".join(f"{statistics.median(timings[s]):>10.1f}" for s in STAGES)
            row += f"{statistics.median(timings['total']):>10.1f}"
            print(row)
            if side == 7:
                sevens = images
        grab = screen_grab_ms()
        if grab:
            print(f"screen grab (mss) {grab[0]}: {grab[1]:.1f} ms")
        else:
            print("screen grab: not measured (no $DISPLAY)")
        share, dropped = cpu_at_one_fps(analyzer, store, sevens, args.cpu_seconds)
        print(f"CPU at 1 frame/s, 7x7 gallery, {args.cpu_seconds} s: {share * 100:.1f}% of one core, "
              f"{dropped} frames dropped")
        peak = agent_peak_rss(sevens, Path(folder))
    print(f"peak RSS of `fer-agent start` on {len(sevens)} 7x7 screenshots: {peak:.0f} MB")


if __name__ == "__main__":
    main()
