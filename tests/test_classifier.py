"""EmotionClassifier on the shipped model, and its clear errors for missing, corrupt or off-contract models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from fer_agent.errors import ModelError
from fer_agent.labels import EMOTIONS
from fer_agent.vision.classifier import EmotionClassifier
from tests.conftest import SHIPPED_MODEL


def test_shipped_model_contract() -> None:
    classifier = EmotionClassifier(SHIPPED_MODEL)
    assert classifier.contract.labels == EMOTIONS
    assert classifier.input_size == 48
    probabilities = classifier.predict(np.full((3, 48, 48), 128, dtype=np.uint8))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert classifier.predict(np.zeros((0, 48, 48), dtype=np.uint8)).shape == (0, 7)


def test_wrong_face_shape() -> None:
    with pytest.raises(ValueError, match=r"expected \[N, 48, 48\] or \[N, 1, 48, 48\], got \(2, 64, 64\)"):
        EmotionClassifier(SHIPPED_MODEL).predict(np.zeros((2, 64, 64)))


def test_missing_and_corrupt_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        EmotionClassifier(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(SHIPPED_MODEL.read_bytes()[:5000])
    with pytest.raises(ModelError, match="corrupt.onnx: cannot load ONNX model"):
        EmotionClassifier(corrupt)


def rewrite_metadata(tmp_path: Path, **changes: str | None) -> Path:
    model = onnx.load(SHIPPED_MODEL)
    metadata = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path / "changed.onnx"
    onnx.save(model, path)
    return path


def test_model_without_contract_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="metadata_props lack 'labels'"):
        EmotionClassifier(rewrite_metadata(tmp_path, labels=None))
    with pytest.raises(ModelError, match="metadata_props lack 'fer_agent_model_version'"):
        EmotionClassifier(rewrite_metadata(tmp_path, fer_agent_model_version=None))


def test_model_with_other_label_order(tmp_path: Path) -> None:
    shuffled = ",".join(reversed(EMOTIONS))
    with pytest.raises(ModelError, match=f"expected labels {','.join(EMOTIONS)}, got {shuffled}"):
        EmotionClassifier(rewrite_metadata(tmp_path, labels=shuffled))
