"""Soft targets from an ensemble of trained ONNX models (knowledge distillation): the mean of the models'
probabilities, each over a face and its mirror image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from fer_agent.labels import EMOTIONS
from fer_agent.vision.classifier import EmotionClassifier


def ensemble_probabilities(models: Sequence[str | Path], pixels: np.ndarray, threads: int = 1,
                           mirror: bool = True, batch_size: int = 512,
                           console: Console | None = None) -> np.ndarray:
    """Mean probabilities [N, 7] of ``models`` (ONNX files) on grey faces [N, S, S], averaging each model over the
    face and its mirror image when ``mirror``."""
    if not models:
        raise ValueError("ensemble_probabilities: no models given")
    views = [pixels, np.ascontiguousarray(pixels[:, :, ::-1])] if mirror else [pixels]
    total = np.zeros((len(pixels), len(EMOTIONS)), dtype=np.float64)
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("teacher predictions", total=len(models) * len(views) * len(pixels))
        for model in models:
            classifier = EmotionClassifier(model, threads=threads)
            for view in views:
                for start in range(0, len(view), batch_size):
                    total[start:start + batch_size] += classifier.predict(view[start:start + batch_size])
                    progress.advance(task, len(view[start:start + batch_size]))
    return (total / (len(models) * len(views))).astype(np.float32)
