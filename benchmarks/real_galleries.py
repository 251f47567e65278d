"""Face finding on the real video-call screenshots of ``shared/datasets/galleries``: the product's own path, the same
through mp4 compression, and CenterFace alone against CenterFace + BlazeFace.

    python benchmarks/real_galleries.py --galleries ../shared/datasets/galleries [--out DIR]

1. **Screenshots.** ``fer-agent analyze GALLERIES --json`` (the installed command line, run as ``python -m fer_agent``),
   scored with the datasets' own rule (``tests/galleries.py``, from its README; ``score.py`` is run on the same
   results as a check): for each required face in turn, the nearest detection not yet used is a hit when its centre
   lies within 0.5 x w of the face's centre; a remaining detection near an optional face (0.5 x max(w, 20)) or inside
   an ignore rectangle is neither right nor wrong; every other one is a false face. *Duplicates*: detections beyond
   the first whose centres lie within that radius of one annotated face (required or optional), i.e. one face
   reported twice.
2. **mp4.** Each screenshot (cropped by one pixel on the right or bottom where a side is odd) written as a 3-second
   mp4 of the still picture (OpenCV ``mp4v``, 2 frames per second), then ``fer-agent analyze VIDEO --json --fps 2``;
   each decoded frame is scored against the same annotations.
3. **Detectors.** In this process, on every screenshot: CenterFace alone (the whole screen in one pass, pictures
   on the wall and doubles dropped by the finder's own filters); discovery as ``FaceFinder.discover`` runs it;
   discovery followed by BlazeFace on the square around each face for its box and keypoints (``FaceFinder.find``);
   and the product's path (``Analyzer.find``: the same, then the classifier), with the CPU seconds
   (``time.process_time``, median of ``--repeats`` runs per screenshot, after a warm-up) of each.

Tables are printed as Markdown. ``--out`` keeps the JSON results and the mp4 files (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
from common import footer_line, header_line, table

import fer_agent  # noqa: F401  (before onnxruntime: it turns onnxruntime's telemetry off)
from tests.galleries import Score, load_truth, score

VIDEO_FPS = 2
VIDEO_SECONDS = 3


def analyze_json(path: Path, *options: str) -> list[dict]:
    """``fer-agent analyze PATH --json`` in its own process: one object per picture or video frame."""
    result = subprocess.run([sys.executable, "-m", "fer_agent", "analyze", str(path), "--json", *options],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"fer-agent analyze {path} failed ({result.returncode}):\n{result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def boxes_of(item: dict) -> list[list[float]]:
    return [face["box"] for face in item["faces"]]


def totals(scores: list[Score], shots: int) -> tuple[float, float, int]:
    required = sum(s.required for s in scores)
    return (100 * sum(s.found for s in scores) / required, sum(s.false for s in scores) / shots,
            sum(s.duplicates for s in scores))


def screenshots(galleries: Path, gt: dict[str, dict], out: Path) -> None:
    started = time.monotonic()
    results = analyze_json(galleries)
    elapsed = time.monotonic() - started
    results_path = out / "screenshots.jsonl"
    results_path.write_text("".join(json.dumps(item) + "\n" for item in results))
    by_name = {Path(item["source"]).name: item for item in results}
    rows, scores = [], []
    for name, entry in gt.items():
        if name not in by_name:
            raise SystemExit(f"{name}: fer-agent analyze gave no result")
        result = score(entry, boxes_of(by_name[name]))
        scores.append(result)
        rows.append([f"`{name}`", entry["app"], result.required, len(entry["optional"]), result.detections,
                     result.found, result.false, result.duplicates])
    recall, false_per_shot, duplicates = totals(scores, len(gt))
    found, required = sum(s.found for s in scores), sum(s.required for s in scores)
    rows.append(["**total**", "", f"**{required}**", f"**{sum(len(e['optional']) for e in gt.values())}**",
                 f"**{sum(s.detections for s in scores)}**", f"**{found}**", f"**{sum(s.false for s in scores)}**",
                 f"**{duplicates}**"])
    print(f"### 1. `fer-agent analyze {galleries} --json` ({len(gt)} screenshots, {elapsed:.0f} s wall in all)\n")
    print(table(["file", "app", "required", "optional", "detections", "found", "false", "duplicates"], rows))
    print(f"\nrecall {recall:.1f}% ({found}/{required}), {false_per_shot:.2f} false faces per screenshot, "
          f"{duplicates} duplicates")
    check = subprocess.run([sys.executable, str(galleries / "score.py"), str(galleries / "gt.json"),
                            str(results_path)], capture_output=True, text=True)
    summary = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()
    print(f"score.py on the same results: {summary} (exit {check.returncode})\n")


def write_still_video(image, path: Path) -> tuple[int, int]:
    """The picture (BGR) as a VIDEO_SECONDS mp4 at VIDEO_FPS, cropped to even sides; returns (width, height)."""
    height, width = image.shape[:2]
    even = image[:height - height % 2, :width - width % 2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (even.shape[1], even.shape[0]))
    if not writer.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot write mp4v here")
    for _ in range(VIDEO_FPS * VIDEO_SECONDS):
        writer.write(even)
    writer.release()
    return even.shape[1], even.shape[0]


def videos(galleries: Path, gt: dict[str, dict], out: Path) -> None:
    folder = out / "mp4"
    folder.mkdir(exist_ok=True)
    rows, all_scores, frames_total = [], [], 0
    started = time.monotonic()
    for name, entry in gt.items():
        image = cv2.imread(str(galleries / name), cv2.IMREAD_COLOR)
        video = folder / f"{Path(name).stem}.mp4"
        width, height = write_still_video(image, video)
        frames = analyze_json(video, "--fps", str(VIDEO_FPS))
        if len(frames) != VIDEO_FPS * VIDEO_SECONDS:
            raise SystemExit(f"{video}: expected {VIDEO_FPS * VIDEO_SECONDS} frames, got {len(frames)}")
        scores = [score(entry, boxes_of(frame)) for frame in frames]
        all_scores += scores
        frames_total += len(frames)
        counts = [s.detections for s in scores]
        found = sum(s.found for s in scores)
        required = sum(s.required for s in scores)
        rows.append([f"`{name}`", f"{width}x{height}", len(entry["faces"]), min(counts), max(counts),
                     f"{100 * found / required:.1f}%" if required else "-",
                     f"{sum(s.false for s in scores) / len(scores):.2f}",
                     "yes" if len(set(counts)) == 1 else "**no**"])
    elapsed = time.monotonic() - started
    recall, false_per_frame, duplicates = totals(all_scores, frames_total)
    found, required = sum(s.found for s in all_scores), sum(s.required for s in all_scores)
    steady = sum(row[-1] == "yes" for row in rows)
    print(f"### 2. Each screenshot as a {VIDEO_SECONDS} s mp4 (mp4v, {VIDEO_FPS} fps), `fer-agent analyze VIDEO "
          f"--json --fps {VIDEO_FPS}` ({frames_total} frames, {elapsed:.0f} s wall in all)\n")
    print(table(["file", "size (even)", "required", "faces found (min)", "faces found (max)", "recall",
                 "false per frame", "same count every frame"], rows))
    print(f"\nover all {frames_total} frames: recall {recall:.1f}% ({found}/{required}), {false_per_frame:.2f} false "
          f"faces per frame, {duplicates} duplicates; the same count in every frame for {steady} of {len(rows)} "
          "screenshots\n")


def detectors(galleries: Path, gt: dict[str, dict], repeats: int) -> None:
    from fer_agent.capture.sources import read_image
    from fer_agent.paths import default_emotion_model
    from fer_agent.vision.analysis import Analyzer
    from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model

    ways = {"centerface": "CenterFace alone (`FaceFinder.centerface`: `FaceDiscovery.detect` in pieces, doubles "
                          "left out)",
            "discover": "discovery as the finder runs it (`FaceFinder.discover`: CenterFace and one whole-picture "
                        "BlazeFace call), without BlazeFace confirmation",
            "find": "discovery + BlazeFace confirmation (`FaceFinder.find`), no classifier",
            "product": "product path (`Analyzer.find`: `FaceFinder.find` + classifier)"}
    scores: dict[str, list[Score]] = {way: [] for way in ways}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    discovered = confirmed = 0
    with Analyzer(resolve_detector_model(), resolve_discovery_model(), default_emotion_model(), 1) as analyzer:
        finder = analyzer.finder
        calls = {"centerface": finder.centerface,
                 "discover": finder.discover, "find": finder.find,
                 "product": lambda image: [o.face for o in analyzer.find(image)]}
        analyzer.find(read_image(galleries / next(iter(gt))))
        for name, entry in gt.items():
            image = read_image(galleries / name)
            for way, call in calls.items():
                runs = []
                for _ in range(repeats):
                    before = time.process_time()
                    faces = call(image)
                    runs.append(time.process_time() - before)
                seconds[way].append(statistics.median(runs))
                scores[way].append(score(entry, [list(face.box) for face in faces]))
            faces = calls["centerface"](image)
            discovered += len(faces)
            confirmed += sum(finder.confirm(image, face.box) is not None for face in faces)
    rows = []
    for way, label in ways.items():
        recall, false_per_shot, duplicates = totals(scores[way], len(gt))
        found = sum(s.found for s in scores[way])
        times = seconds[way]
        rows.append([label, f"{recall:.1f}% ({found}/{sum(s.required for s in scores[way])})",
                     f"{false_per_shot:.2f}", duplicates, f"{statistics.median(times):.3f}",
                     f"{min(times):.3f}-{max(times):.3f}"])
    print(f"### 3. Detectors on the {len(gt)} screenshots, in one process (1 onnxruntime thread; CPU seconds: "
          f"`time.process_time`, median of {repeats} runs per screenshot)\n")
    print(table(["detector", "recall", "false/shot", "duplicates", "median CPU s per screenshot", "range"], rows))
    print(f"\nBlazeFace (on the square around each face) confirms {confirmed} of the {discovered} faces that "
          "CenterFace discovers; the others keep CenterFace's box, moved to BlazeFace's framing.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galleries", required=True, type=Path, help="the galleries folder (gt.json, score.py)")
    parser.add_argument("--out", type=Path, help="keep the JSON results and mp4 files here")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per screenshot and detector")
    args = parser.parse_args()

    gt = load_truth(args.galleries)
    first, fingerprint = header_line("`fer-agent analyze` and the models on 1 thread (the CLI's default)")
    print(first + "\n")
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or Path(temporary)
        out.mkdir(parents=True, exist_ok=True)
        screenshots(args.galleries, gt, out)
        videos(args.galleries, gt, out)
        detectors(args.galleries, gt, args.repeats)
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
