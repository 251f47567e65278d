"""Reading participants' names off the real call screenshots of ``shared/datasets/galleries``: OCR engines compared.

    python benchmarks/names.py --galleries ../shared/datasets/galleries [--engines fer-agent,rapidocr,tesseract]

The faces are the product's (``FaceFinder.find``, as ``fer-agent analyze`` finds them); each engine reads the whole
picture once, and the lines it reads are given to the faces by the product's rule
(``fer_agent.vision.names.assign``). *fer-agent* is the product's reader (PP-OCRv4 through
``fer_agent.vision.ocr``); *rapidocr* is the RapidOCR library with the same two models (installed by hand: its wheel
requires opencv-python, see ``fer_agent.vision.ocr``); *tesseract* is Tesseract 5 through pytesseract (the Debian
packages tesseract-ocr and tesseract-ocr-kor). An annotated face takes the name of the found face whose box holds its
centre; one that was not found counts as missed.

The truth is ``tests/names_truth.json``: for each required face of ``gt.json``, the SHA-256 (``digest``: of its
letters and digits, casefolded, without accents) of the name on the label the app drew on its tile, as read by eye
(without the app's badges such as "(Me)", and without the ellipsis of a cut name), or null where the tile has no label
a person can read; the names themselves are not kept here.

A face's name counts as *exact* when its key's hash is the truth's, *wrong* when another name was read, *missed*
when nothing was read; a name read where the truth is null is *extra*. Seconds are wall time of the engine's reading
(after a warm-up).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from common import footer_line, header_line, table

from fer_agent.vision.detector import FaceDetector
from fer_agent.vision.detector_model import resolve_detector_model, resolve_discovery_model, resolve_text_models
from fer_agent.vision.discovery import FaceDiscovery
from fer_agent.vision.finder import FaceFinder
from fer_agent.vision.names import NameReader, assign
from fer_agent.vision.ocr import TextLine, TextReader
from tests.galleries import digest, load_names


def product_reader():
    return whole_picture(TextReader(*resolve_text_models()).lines)


def whole_picture(lines_of):
    def read(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[str | None]:
        return assign(boxes, lines_of(image))

    return read


def rapidocr_reader():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(image: np.ndarray) -> list[TextLine]:
        result, _elapsed = engine(image[:, :, ::-1])
        lines = []
        for points, text, score in result or []:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
            lines.append(TextLine(box, text, float(score)))
        return lines

    return read


def tesseract_reader(languages: str):
    import pytesseract

    def read(image: np.ndarray) -> list[TextLine]:
        data = pytesseract.image_to_data(image, lang=languages, config="--psm 11",
                                         output_type=pytesseract.Output.DICT)
        words: dict[tuple[int, int, int], list[int]] = {}
        for i, text in enumerate(data["text"]):
            if text.strip():
                words.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(i)
        lines = []
        for members in words.values():
            x0 = min(data["left"][i] for i in members)
            y0 = min(data["top"][i] for i in members)
            x1 = max(data["left"][i] + data["width"][i] for i in members)
            y1 = max(data["top"][i] + data["height"][i] for i in members)
            text = " ".join(data["text"][i] for i in sorted(members, key=lambda i: data["left"][i]))
            score = float(np.mean([float(data["conf"][i]) for i in members])) / 100
            lines.append(TextLine((x0, y0, x1 - x0, y1 - y0), text, score))
        return lines

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galleries", required=True, type=Path)
    parser.add_argument("--engines", default="fer-agent,rapidocr,tesseract")
    parser.add_argument("--languages", default="eng+kor", help="Tesseract's languages")
    parser.add_argument("--frames", type=int, default=10, help="frames per screenshot in the session cost")
    args = parser.parse_args()
    truth = load_names()
    readers = {"fer-agent": product_reader, "rapidocr": lambda: whole_picture(rapidocr_reader()),
               "tesseract": lambda: whole_picture(tesseract_reader(args.languages))}
    first, fingerprint = header_line("name reading on the real screenshots, on the faces the product finds")
    print(first + "\n")
    pictures = {name: cv2.cvtColor(cv2.imread(str(args.galleries / name)), cv2.COLOR_BGR2RGB) for name in truth}
    with FaceDetector(resolve_detector_model()) as detector:
        finder = FaceFinder(detector, FaceDiscovery(resolve_discovery_model()))
        found_faces = {name: [face.box for face in finder.find(picture)] for name, picture in pictures.items()}
    summary = []
    for engine in args.engines.split(","):
        read = readers[engine]()
        warm = next(iter(truth))
        read(pictures[warm], found_faces[warm])
        rows = []
        totals = np.zeros(5)
        seconds = []
        for name, faces in truth.items():
            boxes = found_faces[name]
            started = time.perf_counter()
            read_names = read(pictures[name], boxes)
            seconds.append(time.perf_counter() - started)
            names = [next((read_names[i] for i, (x, y, w, h) in enumerate(boxes)
                           if x <= cx <= x + w and y <= cy <= y + h), None)
                     for cx, cy, _w in (face["face"] for face in faces)]
            counts = np.zeros(5)
            for face, found in zip(faces, names):
                expected = face["name"]
                if expected is None:
                    counts[4] += found is not None
                    continue
                counts[0] += 1
                if found is None:
                    counts[3] += 1
                elif digest(found) == expected:
                    counts[1] += 1
                else:
                    counts[2] += 1
            totals += counts
            rows.append([f"`{name}`", *[int(c) for c in counts], f"{seconds[-1]:.2f}"])
        rows.append(["**total**", *[f"**{int(c)}**" for c in totals], f"**{sum(seconds):.1f}**"])
        print(f"### {engine}\n")
        print(table(["screenshot", "names", "exact", "wrong", "missed", "extra", "seconds"], rows))
        print()
        summary.append([engine, f"{totals[1] / max(totals[0], 1):.1%} ({int(totals[1])}/{int(totals[0])})",
                        int(totals[2]), int(totals[3]), int(totals[4]), f"{np.median(seconds):.2f}"])
    print("### Summary\n")
    print(table(["engine", "exact", "wrong", "missed", "extra", "median s per screenshot"], summary))
    print()
    session_cost(args.galleries, args.frames)
    print(footer_line(fingerprint))


def session_cost(galleries: Path, frames: int) -> None:
    """The cost of names in a session (``Analyzer.analyze`` with names, as ``start --names`` runs it on a recording
    or screenshots; on a live source the same reading runs on a thread of its own): each screenshot with names shown
    for ``frames`` frames; the first frame reads every name, the others only compare the labels' pixels."""
    from fer_agent.paths import default_emotion_model
    from fer_agent.types import Frame
    from fer_agent.vision.analysis import Analyzer

    rows = []
    for name, faces in load_names().items():
        if not any(face["name"] for face in faces):
            continue
        image = cv2.cvtColor(cv2.imread(str(galleries / name)), cv2.COLOR_BGR2RGB)
        names = NameReader(TextReader(*resolve_text_models()))
        with Analyzer(resolve_detector_model(), resolve_discovery_model(), default_emotion_model(), 1,
                      names=names) as analyzer:
            costs = [analyzer.analyze(Frame(image, float(second), name)).milliseconds["names"]
                     for second in range(frames)]
        rows.append([f"`{name}`", f"{costs[0]:.0f}", f"{np.mean(costs[1:]):.2f}", f"{max(costs[1:]):.2f}"])
    print(f"### Names in a session: ms per frame, each screenshot shown for {frames} frames (1 thread)\n")
    print(table(["screenshot", "first frame", "later frames, mean", "later frames, max"], rows))


if __name__ == "__main__":
    main()
