"""How models hold up on faces as webcams deliver them: PrivateTest as it is, and degraded by
``fer_agent.training.augment.WebcamDegradation`` (head turns, uneven light, blur, sensor noise, JPEG blocking) with
each effect drawn for half the faces, and with every effect on every face; the same degraded faces (seeded) for every
model.

    python benchmarks/webcam_robustness.py --data ../shared/datasets/fer2013 MODEL.onnx [MODEL.onnx ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import footer_line, header_line, table

from fer_agent.training.augment import WebcamDegradation
from fer_agent.training.data import load_dataset
from fer_agent.training.evaluate import confusion_matrix, per_class_scores
from fer_agent.vision.classifier import EmotionClassifier


def degraded(pixels: np.ndarray, chance: float, seed: int = 0) -> np.ndarray:
    faces = torch.from_numpy(pixels).float().unsqueeze(1)
    out = WebcamDegradation(chance=chance)(faces, torch.Generator().manual_seed(seed))
    return out[:, 0].round().clamp(0, 255).numpy().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("models", nargs="+", type=Path)
    args = parser.parse_args()
    first, fingerprint = header_line("PrivateTest, clean and with webcam degradations (seed 0)")
    print(first + "\n")
    split = load_dataset(args.data).split("PrivateTest")
    truth = split.majority_labels()
    counted = truth >= 0
    views = {"as it is": split.pixels, "each effect on half the faces": degraded(split.pixels, 0.5),
             "every effect on every face": degraded(split.pixels, 1.0)}
    rows = []
    for model in args.models:
        classifier = EmotionClassifier(model, threads=2)
        row = [model.as_posix()]
        for pixels in views.values():
            predicted = np.concatenate([classifier.predict(pixels[start:start + 512])
                                        for start in range(0, len(pixels), 512)]).argmax(axis=1)
            matrix = confusion_matrix(truth[counted], predicted[counted])
            row += [f"{np.trace(matrix) / matrix.sum():.2%}", f"{per_class_scores(matrix)[2].mean():.3f}"]
        rows.append(row)
    header = ["model"]
    for name in views:
        header += [f"{name}: FER+", "macro-F1"]
    print(table(header, rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
