"""How good a teacher an ensemble of trained models is: each model alone, and the mean of their probabilities (each
over the face and its mirror image, as ``fer-agent train --teacher`` uses them), on PublicTest and PrivateTest.

    python benchmarks/ensemble.py --data ../shared/datasets/fer2013 MODEL.onnx [MODEL.onnx ...]

Prints FER+ majority-vote accuracy, macro-F1 and the expected calibration error (15 bins) per split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import footer_line, header_line, table

from fer_agent.training.calibration import reliability
from fer_agent.training.data import load_dataset
from fer_agent.training.distill import ensemble_probabilities
from fer_agent.training.evaluate import confusion_matrix, per_class_scores


def scores(probabilities: np.ndarray, truth: np.ndarray) -> list[str]:
    counted = truth >= 0
    matrix = confusion_matrix(truth[counted], probabilities[counted].argmax(axis=1))
    return [f"{np.trace(matrix) / matrix.sum():.2%}", f"{per_class_scores(matrix)[2].mean():.3f}",
            f"{reliability(probabilities[counted], truth[counted]).ece:.2%}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("models", nargs="+", type=Path)
    args = parser.parse_args()
    first, fingerprint = header_line(f"ensemble of {len(args.models)} models")
    print(first + "\n")
    dataset = load_dataset(args.data)
    rows = []
    candidates = [(model.as_posix(), [model], False) for model in args.models]
    candidates += [(f"{model.as_posix()} with its mirror", [model], True) for model in args.models]
    if len(args.models) > 1:
        candidates.append(("mean of all, each with its mirror", args.models, True))
    for name, models, mirror in candidates:
        row = [name]
        for split in ("PublicTest", "PrivateTest"):
            faces = dataset.split(split)
            row += scores(ensemble_probabilities(models, faces.pixels, threads=2, mirror=mirror),
                          faces.majority_labels())
        rows.append(row)
    print(table(["model", "PublicTest FER+", "macro-F1", "ECE", "PrivateTest FER+", "macro-F1", "ECE"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
