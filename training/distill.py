"""Soft targets from an ensemble of trained models (knowledge distillation): the mean of the models' probabilities,
each over a face and its mirror image. A teacher is an ONNX file (run by onnxruntime on the CPU) or a training
checkpoint ``.pt`` (run by PyTorch on the training device, so that a GPU run needs no export between its stages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from fer_agent.errors import DatasetError
from fer_agent.labels import EMOTIONS
from fer_agent.vision.classifier import EmotionClassifier

CHECKPOINT_SUFFIX = ".pt"


def _predictor(model: str | Path, threads: int, device: str) -> Callable[[np.ndarray], np.ndarray]:
    if Path(model).suffix.lower() != CHECKPOINT_SUFFIX:
        return EmotionClassifier(model, threads=threads).predict
    import torch

    from fer_agent.training.train import load_checkpoint, model_from_checkpoint, pick_device, predict_probabilities

    target = pick_device(device)
    checkpoint = load_checkpoint(model)
    with torch.random.fork_rng(devices=[]):  # building the network draws weights: keep the caller's random stream
        try:
            network, _ = model_from_checkpoint(checkpoint)
        except DatasetError as error:
            raise DatasetError(f"{model}: {error}") from error
    network.to(target)
    return lambda faces: predict_probabilities(network, faces, target)


def ensemble_probabilities(models: Sequence[str | Path], pixels: np.ndarray, threads: int = 1,
                           mirror: bool = True, batch_size: int = 512, device: str = "cpu",
                           console: Console | None = None) -> np.ndarray:
    """Mean probabilities [N, 7] of ``models`` (ONNX files or ``.pt`` checkpoints, the latter run on ``device``) on
    grey faces [N, S, S], averaging each model over the face and its mirror image when ``mirror``."""
    if not models:
        raise ValueError("ensemble_probabilities: no models given")
    views = [pixels, np.ascontiguousarray(pixels[:, :, ::-1])] if mirror else [pixels]
    total = np.zeros((len(pixels), len(EMOTIONS)), dtype=np.float64)
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("teacher predictions", total=len(models) * len(views) * len(pixels))
        for model in models:
            predict = _predictor(model, threads, device)
            for view in views:
                for start in range(0, len(view), batch_size):
                    total[start:start + batch_size] += predict(view[start:start + batch_size])
                    progress.advance(task, len(view[start:start + batch_size]))
    return (total / (len(models) * len(views))).astype(np.float32)
