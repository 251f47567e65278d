"""Measure how FER-2013 faces are framed, as the face detector sees them.

    python benchmarks/measure_framing.py --data ../shared/datasets/fer2013 [--faces 2000]

Upscales FER-2013 faces, runs the BlazeFace detector on them, and prints where the detector's box lies inside the
48x48 crop (centre and size as fractions of the crop side). agent/vision/crop.py frames run-time crops with these
numbers, so that the classifier sees faces framed the way it was trained.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_agent.training.data import load_fer2013_csv
from fer_agent.vision.detector import FaceDetector
from fer_agent.vision.detector_model import resolve_detector_model

UPSCALED = 192


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="fer2013.csv[.gz] or the folder holding it")
    parser.add_argument("--faces", type=int, default=2000, help="first N Training faces")
    parser.add_argument("--detector-model")
    args = parser.parse_args()

    data = args.data if args.data.endswith((".csv", ".gz")) else f"{args.data}/fer2013.csv.gz"
    faces = load_fer2013_csv(data, limit=args.faces).pixels
    rows = []
    with FaceDetector(resolve_detector_model(args.detector_model)) as detector:
        for face in faces:
            found = detector.detect(cv2.resize(face, (UPSCALED, UPSCALED), interpolation=cv2.INTER_CUBIC))
            if len(found) == 1:
                x, y, w, h = found[0].box
                rows.append(((x + w / 2) / UPSCALED, (y + h / 2) / UPSCALED, w / UPSCALED, h / UPSCALED))
    measured = np.array(rows)
    table = Table(title=f"detector box inside FER-2013 crops: {len(rows)} of {len(faces)} faces with one detection")
    for column in ("measure", "median", "25%", "75%"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for index, name in enumerate(("box centre x / side", "box centre y / side", "box width / side",
                                  "box height / side")):
        q25, median, q75 = np.percentile(measured[:, index], [25, 50, 75])
        table.add_row(name, f"{median:.3f}", f"{q25:.3f}", f"{q75:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
