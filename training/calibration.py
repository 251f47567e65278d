"""Calibration of the emotion model: whether a probability of 0.3 means "right 30% of the time".

- :func:`reliability`: the top label's confidence against how often it is right, in :data:`BINS` equal bins of
  confidence, and the expected calibration error (ECE): the bins' gaps between confidence and accuracy, weighted by
  their share of the faces.
- :func:`fit_temperature`: the temperature T that makes ``softmax(log p / T)`` most likely on a split (the negative
  log-likelihood's minimum, by golden-section search over log T). T < 1 sharpens an underconfident model, T > 1
  softens an overconfident one; the top label never changes.
- :func:`fold_temperature`: the ONNX model with T inside its graph: its final Softmax's input divided by T, so that
  the agent needs no change to use it (raw grey in, calibrated probabilities out).

Numpy and onnx only: no PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_agent.errors import ModelError

BINS = 15
# Temperatures searched, and the search's precision (in log T).
LOWEST, HIGHEST = 0.05, 20.0
TOLERANCE = 1e-4
TEMPERATURE_KEY = "temperature"


@dataclass(frozen=True)
class Reliability:
    """``ece``, and per bin of confidence: its bounds, faces, mean confidence and accuracy (None where empty)."""

    ece: float
    bins: list[dict]


def reliability(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> Reliability:
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    ece = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        inside = (confidence > lower) & (confidence <= upper)
        count = int(inside.sum())
        mean_confidence = float(confidence[inside].mean()) if count else None
        accuracy = float(right[inside].mean()) if count else None
        if count and mean_confidence is not None and accuracy is not None:
            ece += count / len(truth) * abs(accuracy - mean_confidence)
        table.append({"lower": round(float(lower), 4), "upper": round(float(upper), 4), "faces": count,
                      "confidence": mean_confidence, "accuracy": accuracy})
    return Reliability(float(ece), table)


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    """``log p``: a softmax's input up to a constant per face, which the softmax drops."""
    return np.log(np.clip(probabilities, 1e-12, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: what the model would give with its logits divided by T."""
    return softmax(logits_of(probabilities) / temperature)


def negative_log_likelihood(probabilities: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    calibrated = with_temperature(probabilities, temperature)
    return float(-np.log(np.clip(calibrated[np.arange(len(truth)), truth], 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``truth`` (golden-section search on log T)."""
    if len(truth) == 0:
        raise ValueError("fit_temperature: no faces with a reference label")
    low, high = math.log(LOWEST), math.log(HIGHEST)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a = negative_log_likelihood(probabilities, truth, math.exp(a))
    loss_b = negative_log_likelihood(probabilities, truth, math.exp(b))
    while high - low > TOLERANCE:
        if loss_a <= loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = negative_log_likelihood(probabilities, truth, math.exp(a))
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = negative_log_likelihood(probabilities, truth, math.exp(b))
    return float(math.exp((low + high) / 2))


def fold_temperature(model_path: str | Path, output_path: str | Path, temperature: float) -> float:
    """Write ``model_path`` with its final Softmax's input divided by ``temperature`` to ``output_path``; a model
    calibrated before keeps one division, by the product of both temperatures, which its metadata records. Returns
    the model's temperature now."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    outputs = {output.name for output in graph.output}
    softmax = next((node for node in graph.node if node.op_type == "Softmax" and set(node.output) & outputs), None)
    if softmax is None:
        raise ModelError(f"{model_path}: no Softmax gives the model's output; its temperature cannot be folded in")
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    total = float(metadata.get(TEMPERATURE_KEY, 1.0)) * temperature
    name = "fer_agent_temperature"
    divided = "fer_agent_calibrated_logits"
    division = next((node for node in graph.node if node.op_type == "Div" and divided in node.output), None)
    if division is None:
        graph.node.insert(list(graph.node).index(softmax), helper.make_node(
            "Div", [softmax.input[0], name], [divided], name="fer_agent_temperature_division"))
        softmax.input[0] = divided
    else:
        graph.initializer.remove(next(init for init in graph.initializer if init.name == name))
    graph.initializer.append(numpy_helper.from_array(np.array(total, dtype=np.float32), name))
    metadata[TEMPERATURE_KEY] = f"{total:.6f}"
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(output_path))
    return total
