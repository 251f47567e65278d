"""What a post-hoc logit adjustment would do for the weak classes: each logit raised by ``-tau * log(prior)`` (the
class's share of the PublicTest majority labels), which favours rare classes without retraining (Menon et al., "Long-
tail learning via logit adjustment", 2021). tau = 0 is the model as it is.

    python benchmarks/logit_adjustment.py --data ../shared/datasets/fer2013 [--model models/emotion.onnx]

Prints, per tau, FER+ majority-vote accuracy and macro-F1 on PublicTest (where a tau would be chosen) and PrivateTest,
PrivateTest recall of disgust, fear and sad, and how far the mean of the probabilities (what the live view's class
mood and the report's mood chart show) is from the PrivateTest label shares (total variation distance).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, footer_line, header_line, table

from fer_agent.labels import EMOTIONS
from fer_agent.training.calibration import logits_of, softmax
from fer_agent.training.data import load_dataset
from fer_agent.training.distill import ensemble_probabilities
from fer_agent.training.evaluate import confusion_matrix, per_class_scores

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
WEAK = ("disgust", "fear", "sad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "emotion.onnx")
    args = parser.parse_args()
    first, fingerprint = header_line(f"post-hoc logit adjustment of {args.model.name}")
    print(first + "\n")
    dataset = load_dataset(args.data)
    splits = {}
    for split in ("PublicTest", "PrivateTest"):
        faces = dataset.split(split)
        truth = faces.majority_labels()
        counted = truth >= 0
        probabilities = ensemble_probabilities([args.model], faces.pixels, threads=1, mirror=False)
        splits[split] = (probabilities[counted], truth[counted])
    prior = np.bincount(splits["PublicTest"][1], minlength=len(EMOTIONS)) / len(splits["PublicTest"][1])
    bias = -np.log(prior)
    rows = []
    for tau in TAUS:
        row: list[object] = [f"{tau:g}"]
        for split, (probabilities, truth) in splits.items():
            matrix = confusion_matrix(truth, softmax(logits_of(probabilities) + tau * bias).argmax(axis=1))
            row += [f"{np.trace(matrix) / matrix.sum():.2%}", f"{per_class_scores(matrix)[2].mean():.3f}"]
        probabilities, truth = splits["PrivateTest"]
        shifted = softmax(logits_of(probabilities) + tau * bias)
        recall = per_class_scores(confusion_matrix(truth, shifted.argmax(axis=1)))[1]
        row += [f"{recall[EMOTIONS.index(name)]:.3f}" for name in WEAK]
        shares = np.bincount(truth, minlength=len(EMOTIONS)) / len(truth)
        row.append(f"{np.abs(shifted.mean(axis=0) - shares).sum() / 2:.3f}")
        rows.append(row)
    print(table(["tau", "PublicTest FER+", "macro-F1", "PrivateTest FER+", "macro-F1",
                 *(f"PrivateTest {name} recall" for name in WEAK), "PrivateTest mood vs label shares (TVD)"], rows))
    print(footer_line(fingerprint))


if __name__ == "__main__":
    main()
