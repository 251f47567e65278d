"""Whether test-time flipping pays: the shipped model on PrivateTest as it is, and as the mean of each face and its
mirror image (what folding a flip into the graph would give), with the time per face of each.

    python benchmarks/flip_tta.py --data ../shared/datasets/fer2013 [--repeats 20]

Accuracy and macro-F1 against the FER+ majority vote, ECE with 15 bins; milliseconds per face at batch 49 on one
onnxruntime thread (median of ``--repeats`` runs; the flipped variant runs the model on both views).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from common import footer_line, header_line, table

from fer_agent.paths import default_emotion_model
from fer_agent.training.calibration import reliability
from fer_agent.training.data import load_dataset
from fer_agent.training.evaluate import confusion_matrix, per_class_scores
from fer_agent.vision.classifier import EmotionClassifier

BATCH = 49


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    first, fingerprint = header_line("test-time flip on PrivateTest, 1 onnxruntime thread")
    print(first + "\n")
    classifier = EmotionClassifier(default_emotion_model(), threads=1)
    split = load_dataset(args.data).split("PrivateTest")
    truth = split.majority_labels()
    counted = truth >= 0
    views = {"as it is": classifier.predict,
             "mean with the mirror image": lambda faces: (classifier.predict(faces) + classifier.predict(
                 np.ascontiguousarray(faces[:, :, ::-1]))) / 2}
    rows = []
    for name, predict in views.items():
        probabilities = predict(split.pixels)[counted]
        matrix = confusion_matrix(truth[counted], probabilities.argmax(axis=1))
        f1 = per_class_scores(matrix)[2]
        batch = split.pixels[:BATCH]
        predict(batch)
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            predict(batch)
            runs.append((time.perf_counter() - started) * 1000 / BATCH)
        rows.append([name, f"{np.trace(matrix) / matrix.sum():.2%}", f"{f1.mean():.3f}",
                     f"{reliability(probabilities, truth[counted]).ece:.2%}", f"{statistics.median(runs):.3f}"])
    print(table(["PrivateTest", "FER+ accuracy", "macro-F1", "ECE", f"ms per face (batch {BATCH})"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
