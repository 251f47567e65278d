"""Benchmark of the emotion model: accuracy on FER-2013 PrivateTest, size, and CPU speed with onnxruntime.

    python benchmarks/emotion_model.py --data ../shared/datasets/fer2013 [--model models/emotion.onnx]

Prints a table of what it measured. Speed: onnxruntime on one CPU thread unless --threads says otherwise; for each
batch size, the median time of --repeats runs in each of --rounds rounds, reported as the median over rounds with the
fastest and slowest round, since a shared machine's speed drifts.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from fer_agent.paths import default_emotion_model, model_card_for
from fer_agent.vision.classifier import EmotionClassifier


def milliseconds_per_face(classifier: EmotionClassifier, batch: int, repeats: int, rounds: int) -> list[float]:
    """Median milliseconds per face of each round of ``repeats`` timed runs (a shared machine drifts between rounds)."""
    faces = np.random.default_rng(0).integers(0, 256, (batch, classifier.input_size, classifier.input_size))
    faces = faces.astype(np.float32)
    for _ in range(5):
        classifier.predict(faces)
    medians = []
    for _ in range(rounds):
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            classifier.predict(faces)
            timings.append(time.perf_counter() - started)
        medians.append(statistics.median(timings) * 1000 / batch)
    return medians


def processor_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=default_emotion_model())
    parser.add_argument("--data", type=Path, help="FER-2013 folder; without it only size and speed are measured")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,49", help="comma-separated batch sizes to time")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    classifier = EmotionClassifier(args.model, threads=args.threads)
    card_path = model_card_for(args.model)
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    table = Table(title=f"{args.model.name}: measured on {processor_name()}, "
                        f"onnxruntime {ort.__version__}, {args.threads} thread(s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    if args.data:
        from fer_agent.training.data import load_dataset
        from fer_agent.training.evaluate import evaluate, predict_dataset

        private = load_dataset(args.data).split("PrivateTest")
        result = evaluate(predict_dataset(classifier, private), private, "PrivateTest")
        if result.ferplus_accuracy is not None:
            table.add_row(f"PrivateTest FER+ majority-vote accuracy ({result.reference_faces} faces)",
                          f"{result.ferplus_accuracy:.2%}")
        table.add_row(f"PrivateTest FER-2013-label accuracy ({result.faces} faces)", f"{result.fer2013_accuracy:.2%}")
        table.add_row(f"PrivateTest macro-F1 ({result.reference})", f"{result.macro_f1:.3f}")
    table.add_row("file size", f"{args.model.stat().st_size / 1e6:.2f} MB")
    if "parameters" in card:
        table.add_row("parameters", f"{card['parameters']:,}")
    for batch in (int(b) for b in args.batches.split(",")):
        rounds = milliseconds_per_face(classifier, batch, args.repeats, args.rounds)
        table.add_row(f"ms per face, batch {batch} (median of rounds, fastest-slowest)",
                      f"{statistics.median(rounds):.3f} ({min(rounds):.3f}-{max(rounds):.3f})")
    Console().print(table)


if __name__ == "__main__":
    main()
