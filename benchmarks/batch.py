"""Throughput of ``fer-agent batch``: hours of video analysed per hour of wall time, with 1 and 2 local workers and
on a loopback cluster (a ``dask scheduler`` and two ``dask worker`` processes), and the engine's own overhead.

    python benchmarks/batch.py [--lectures 4] [--minutes 2] [--chunk 1]

The recordings are made from the real call screenshots in ../shared/datasets/galleries: each lecture shows real
galleries in turn (30 s each), and every frame is shifted by up to 2 pixels, as a screen recording of a call jitters,
so that the faces are searched again rather than kept as still. Sampled at --fps 1 (the default of ``start``).
The overhead is the batch's wall time with one worker less the time the same chunks take when analysed in this
process (models loaded beforehand): the cluster's start, the worker's model loading, scheduling, the results' transfer
and the cache.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import ROOT, footer_line, header_line, table

from fer_agent.batch import Settings, analyse_chunk, find_recordings, plan_chunks, run_batch
from fer_agent.paths import default_emotion_model
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model
from tests.galleries import on_canvas

GALLERIES = ROOT.parent / "shared" / "datasets" / "galleries"
SCENES = ["EVOCATION-ITN_2nd_Workshop_7.png", "gommy15_zoom4.PNG", "slavabzb_13.png", "FugiTech_screenshot.png",
          "gregoryfdel_zoom_call.png", "hwheeler01_lab-spring-2021.jpg", "josehermosillaa_grupo.jpg",
          "slavabzb_7.png"]
SIZE = (1280, 720)


def write_lectures(folder: Path, lectures: int, minutes: float, fps: int = 2) -> None:
    random = np.random.default_rng(0)
    pictures = [on_canvas(cv2.imread(str(GALLERIES / name)), SIZE) for name in SCENES]
    for lecture in range(lectures):
        writer = cv2.VideoWriter(str(folder / f"lecture-{lecture + 1}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                 SIZE)
        for index in range(int(minutes * 60 * fps)):
            picture = pictures[(lecture + index // (30 * fps)) % len(pictures)]
            dx, dy = random.integers(-2, 3, size=2)
            writer.write(cv2.warpAffine(picture, np.float32([[1, 0, dx], [0, 1, dy]]), SIZE,
                                        borderMode=cv2.BORDER_REPLICATE))
        writer.release()


def cluster(workers: int) -> tuple[list[subprocess.Popen], str]:
    dask = Path(sys.executable).with_name("dask")
    scheduler_file = Path(tempfile.mkdtemp()) / "scheduler.json"
    processes = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                                   str(scheduler_file), "--no-dashboard"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    while not scheduler_file.is_file():
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    processes += [subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--no-dashboard"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    from distributed import Client

    with Client(address) as client:
        client.wait_for_workers(workers, timeout=120)
    return processes, address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lectures", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--chunk", type=float, default=1.0, help="minutes of video per task")
    args = parser.parse_args()
    first, fingerprint = header_line(f"fer-agent batch, {args.lectures} lectures of {args.minutes:g} min from the "
                                     f"real screenshots, --fps 1, --chunk {args.chunk:g}")
    print(first + "\n")
    work = Path(tempfile.mkdtemp(prefix="fer-agent-batch-"))
    try:
        write_lectures(work, args.lectures, args.minutes)
        settings = Settings(fps=1.0, emotion_model=str(default_emotion_model()),
                            detector_model=str(resolve_detector_model()),
                            discovery_model=str(resolve_discovery_model()))
        recordings, _ = find_recordings([str(work)])
        hours = sum(recording.duration for recording in recordings) / 3600
        chunks = [chunk for recording in recordings for chunk in plan_chunks(recording, 1.0, args.chunk * 60)]

        analyse_chunk(chunks[0], settings)
        started = time.perf_counter()
        frames = sum(len(analyse_chunk(chunk, settings).frames) for chunk in chunks)
        direct = time.perf_counter() - started

        rows = [["in this process, no engine (models loaded)", 1, f"{direct:.1f}", f"{hours / (direct / 3600):.1f}",
                 f"{direct / frames * 1000:.0f}", ""]]
        runs = {}
        for label, workers, address in (("local cluster", 1, None), ("local cluster", 2, None),
                                        ("loopback cluster (dask scheduler + workers)", 2, "cluster")):
            processes: list[subprocess.Popen] = []
            if address:
                processes, address = cluster(workers)
            try:
                started = time.perf_counter()
                summary = run_batch([str(work)], settings, work / f"{len(runs)}.db", cluster=address, workers=workers,
                                    chunk_seconds=args.chunk * 60, cache=work / f"cache-{len(runs)}")
                seconds = time.perf_counter() - started
            finally:
                for process in processes:
                    process.terminate()
                    process.wait()
            assert all(outcome.status == "analysed" for outcome in summary.outcomes), summary.outcomes
            runs[(label, workers)] = seconds
            rows.append([label, workers, f"{seconds:.1f}", f"{hours / (seconds / 3600):.1f}",
                         f"{seconds / frames * 1000:.0f}", f"{len(summary.analyzers)}"])
        print(table(["engine", "workers", "wall s", "h of video per h", "wall ms per frame", "analyzers loaded"],
                    rows))
        one = runs[("local cluster", 1)]
        two = runs[("local cluster", 2)]
        print(f"\n{len(recordings)} recordings, {hours * 60:.0f} min of video, {frames} frames, {len(chunks)} chunks; "
              f"2 workers / 1 worker: {one / two:.2f}x; engine overhead with 1 worker: {one - direct:.1f} s in all, "
              f"{(one - direct) / len(recordings):.1f} s per video")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
