"""EmotionClassifier: runs the ONNX emotion model with onnxruntime and reads its contract from the model's metadata."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fer_agent.errors import ModelError
from fer_agent.labels import EMOTIONS
from fer_agent.runtime import quiet_session_options

log = logging.getLogger(__name__)

# Metadata keys every fer-agent emotion model carries (see models/emotion.json and training/export.py).
LABELS_KEY = "labels"
VERSION_KEY = "fer_agent_model_version"


@dataclass(frozen=True)
class ModelContract:
    """What the model expects and returns, read from the ONNX file itself."""

    input_name: str
    input_size: int
    labels: tuple[str, ...]
    version: str
    metadata: dict[str, str]


def read_contract(session: ort.InferenceSession, source: str) -> ModelContract:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{source}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
    shape = inputs[0].shape
    if len(shape) != 4 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] != shape[3]:
        raise ModelError(f"{source}: expected input shape [N, 1, S, S], got {shape}")
    if inputs[0].type != "tensor(float)":
        raise ModelError(f"{source}: expected a float32 input, got {inputs[0].type}")
    fixed = [f"{role} batch is fixed at {values[0]}" for role, values in (("input", shape),
                                                                          ("output", outputs[0].shape))
             if values and isinstance(values[0], int)]
    if fixed:
        # The faces of a frame go through the model in one batch: a fixed batch would pass here and fail at the first
        # frame with more faces than it.
        raise ModelError(f"{source}: its {' and its '.join(fixed)}, but fer-agent classifies all the faces of a frame "
                         "in one batch: re-export the model with a dynamic batch axis (the first dimension of its "
                         "input and output; `fer-agent export-model` does)")
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    for key in (LABELS_KEY, VERSION_KEY):
        if key not in metadata:
            raise ModelError(f"{source}: metadata_props lack {key!r}; found {', '.join(sorted(metadata)) or 'none'}")
    labels = tuple(name.strip() for name in metadata[LABELS_KEY].split(","))
    if labels != EMOTIONS:
        raise ModelError(f"{source}: expected labels {','.join(EMOTIONS)}, got {metadata[LABELS_KEY]}")
    output_shape = outputs[0].shape
    if len(output_shape) != 2 or output_shape[1] != len(EMOTIONS):
        raise ModelError(f"{source}: expected output shape [N, {len(EMOTIONS)}], got {output_shape}")
    return ModelContract(inputs[0].name, shape[2], labels, metadata[VERSION_KEY], metadata)


class EmotionClassifier:
    """Load once (``EmotionClassifier(path)``), then ``predict(faces)`` per batch.

    ``faces``: grey faces of the model's input size, uint8 or float 0..255, shaped [N, S, S] or [N, 1, S, S].
    Returns float32 probabilities [N, 7] in EMOTIONS order.
    """

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        try:
            self.session = ort.InferenceSession(str(self.model_path), quiet_session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelError(f"{self.model_path}: cannot load ONNX model: {error}") from error
        self.contract = read_contract(self.session, str(self.model_path))
        log.info("loaded emotion model %s (version %s)", self.model_path, self.contract.version)

    @property
    def input_size(self) -> int:
        return self.contract.input_size

    def predict(self, faces: np.ndarray) -> np.ndarray:
        size = self.contract.input_size
        faces = np.asarray(faces)
        batch = faces[:, None] if faces.ndim == 3 else faces
        if batch.ndim != 4 or batch.shape[1:] != (1, size, size):
            raise ValueError(f"faces: expected [N, {size}, {size}] or [N, 1, {size}, {size}], got {faces.shape}")
        if len(batch) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        (probabilities,) = self.session.run(None, {self.contract.input_name: batch.astype(np.float32, copy=False)})
        return probabilities
